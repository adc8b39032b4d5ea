"""An HTTP middleware (`wasi:http/middleware@0.3.0`): passes the request on
with `x-middleware-seen: NAME` appended, and answers the inner response's
status and body, streamed through, with `x-middleware: NAME` and
`x-middleware-variable: <the `greeting` variable, or the error>` appended.
A request for a path ending in `/stop` is answered here, never passed on;
one for `/fetch-NAME?url=U` too, with `x-fetch:` what a GET of U through
`wasi:http/client` gave (`fetched STATUS` or `refused ERROR`). NAME is
`mwname.NAME`, written at build time."""
from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Err, Ok
from wit_world import (
    exports,
    result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers_future,
    result_unit_wasi_http_types_error_code_future as unit_future,
)
from wit_world.imports import client, handler, variables
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Get,
    Request,
    Response,
    Scheme_Http,
)

import mwname


def _no_trailers():
    return trailers_future(lambda: Ok(None))[1]


def _done():
    return unit_future(lambda: Ok(None))[1]


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        name = bytes(mwname.NAME, "utf-8")
        try:
            variable = bytes(await variables.get("greeting"), "utf-8")
        except Err as e:
            variable = bytes(f"denied: {e.value}", "utf-8")

        target = urlsplit(request.get_path_with_query() or "")
        if target.path.endswith("/stop"):
            return _answer(403, [("x-middleware", name)])
        if target.path.endswith(f"/fetch-{mwname.NAME}"):
            fetched = await _fetch(parse_qs(target.query)["url"][0])
            return _answer(200, [("x-middleware", name), ("x-fetch", fetched)])

        headers = request.get_headers().copy_all() + [("x-middleware-seen", name)]
        method, scheme = request.get_method(), request.get_scheme()
        authority, path = request.get_authority(), request.get_path_with_query()
        body, trailers = Request.consume_body(request, _done())
        forwarded = Request.new(Fields.from_list(headers), body, trailers, None)[0]
        forwarded.set_method(method)
        forwarded.set_scheme(scheme)
        forwarded.set_authority(authority)
        forwarded.set_path_with_query(path)

        inner = await handler.handle(forwarded)
        status = inner.get_status_code()
        headers = inner.get_headers().copy_all() + [
            ("x-middleware", name),
            ("x-middleware-variable", variable),
        ]
        body, trailers = Response.consume_body(inner, _done())
        response = Response.new(Fields.from_list(headers), body, trailers)[0]
        response.set_status_code(status)
        return response


def _answer(status: int, headers: list) -> Response:
    response = Response.new(Fields.from_list(headers), None, _no_trailers())[0]
    response.set_status_code(status)
    return response


async def _fetch(url: str) -> bytes:
    parts = urlsplit(url)
    outgoing = Request.new(Fields(), None, _no_trailers(), None)[0]
    outgoing.set_method(Method_Get())
    outgoing.set_scheme(Scheme_Http())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query(parts.path or "/")
    try:
        response = await client.send(outgoing)
    except Err as e:
        return bytes(f"refused {type(e.value).__name__}", "utf-8")
    return bytes(f"fetched {response.get_status_code()}", "utf-8")
