"""The primary component of the composition tests: `/greet?name=N` answers
what the `greeter` dependency says; `/headers` echoes the request headers
(to see what middleware passed on)."""
from urllib.parse import urlparse, parse_qs

from spin_sdk import http
from spin_sdk.http import Request, Response
from wit_world.imports import greeting


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        url = urlparse(request.uri)
        if url.path.endswith("/greet"):
            name = parse_qs(url.query).get("name", ["world"])[0]
            body = greeting.greet(name)
        elif url.path.endswith("/headers"):
            body = "\n".join(f"{k}: {v}" for k, v in sorted(request.headers.items()))
        else:
            return Response(404, {"content-type": "text/plain"}, b"no such route\n")
        return Response(200, {"content-type": "text/plain"}, bytes(body, "utf-8"))
