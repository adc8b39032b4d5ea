"""Gyre test app for the Python SDKs 5 (wasi:http/handler@0.3.0) and 4
(wasi:http/handler@0.3.0-rc-2026-03-15): the same source builds with both.

Routes (by path prefix, because one component serves `/...`):
  /hello            -> 200 "Hello from Python SDK <5 or 4>"
  /headers          -> 200, JSON of the request headers as the guest sees them
  /echo             -> 200, the body back, with x-body-sha256 of it
  /status/<n>       -> status n, empty body
  /raise            -> raises: the host must answer 500 and keep serving
  /env              -> 200, JSON of selected environment variables
  /file/<path>      -> 200, contents of a file mounted with `files`
  /instance         -> 200, "<instance id> <requests this instance has served>"; the body
                       (if any) is read first, so a client that holds it back holds the
                       request inside its instance
  anything else     -> 200, "path=<uri>"
"""

import hashlib
import json
import os

from spin_sdk import http
from spin_sdk.http import Request, Response

try:  # Only SDK 5 has the final WASI 0.3.0 bindings.
    from spin_sdk.wit.imports import wasi_http_types_0_3_0  # noqa: F401
    SDK = "5"
except ImportError:
    SDK = "4"


# Drawn at the first request, not at import: import runs once, at build time
# (componentize-py snapshots it), so every instance would share it.
_instance_id = None
_served = 0


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path = request.uri.split("?", 1)[0]
        if path.endswith("/hello"):
            return Response(200, {"content-type": "text/plain"}, f"Hello from Python SDK {SDK}".encode())
        if path.endswith("/headers"):
            body = json.dumps(request.headers, sort_keys=True).encode()
            return Response(200, {"content-type": "application/json"}, body)
        if path.endswith("/echo"):
            data = request.body or b""
            digest = hashlib.sha256(data).hexdigest()
            return Response(200, {"x-body-sha256": digest, "x-body-len": str(len(data))}, data)
        if path.endswith("/instance"):
            global _instance_id, _served
            if _instance_id is None:
                _instance_id = os.urandom(6).hex()
            _served += 1
            return Response(200, {"content-type": "text/plain"}, f"{_instance_id} {_served}".encode())
        if "/status/" in path:
            return Response(int(path.rsplit("/", 1)[1]), {}, b"")
        if path.endswith("/raise"):
            raise RuntimeError("this route raises on purpose")
        if path.endswith("/env"):
            wanted = {k: v for k, v in os.environ.items() if k.startswith("GYRE_T")}
            return Response(200, {"content-type": "application/json"}, json.dumps(wanted, sort_keys=True).encode())
        if "/file/" in path:
            name = path.split("/file/", 1)[1]
            try:
                with open("/" + name, "rb") as f:
                    return Response(200, {}, f.read())
            except OSError as e:
                return Response(404, {}, str(e).encode())
        return Response(200, {"content-type": "text/plain"}, ("path=" + request.uri).encode())
