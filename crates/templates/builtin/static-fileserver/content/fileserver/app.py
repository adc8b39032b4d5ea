"""A file server: answers GET and HEAD with the file under `/` (where the
component's `files` are mounted) at the request's path below the route."""

import mimetypes
import posixpath

from spin_sdk import http
from spin_sdk.http import Request, Response

INDEX = "index.html"


def resolve(path_info: str):
    """Maps a request path to a file path, refusing to leave the root."""
    parts = [p for p in path_info.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    path = "/" + "/".join(parts)
    if path == "/" or path_info.endswith("/"):
        path = posixpath.join(path, INDEX)
    return path


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, {"allow": "GET, HEAD"}, b"")
        path_info = request.headers.get("spin-path-info", "/")
        path = resolve(path_info)
        if path is None:
            return Response(400, {}, b"")
        try:
            with open(path, "rb") as f:
                body = f.read()
        except IsADirectoryError:
            try:
                with open(posixpath.join(path, INDEX), "rb") as f:
                    body = f.read()
                path = posixpath.join(path, INDEX)
            except OSError:
                return Response(404, {}, b"")
        except OSError:
            return Response(404, {}, b"")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers = {"content-type": content_type, "content-length": str(len(body))}
        return Response(200, headers, b"" if request.method == "HEAD" else body)
