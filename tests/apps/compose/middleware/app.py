"""An HTTP middleware (`wasi:http/middleware@0.3.0`): passes the request on
with `x-middleware-seen: NAME` appended, and answers the inner response's
status and body, streamed through, with `x-middleware: NAME` and
`x-middleware-variable: <the `greeting` variable, or the error>` appended.
A request for a path ending in `/stop` is answered here, never passed on. NAME is
`mwname.NAME`, written at build time."""
from componentize_py_types import Err, Ok
from wit_world import (
    exports,
    result_option_wasi_http_types_fields_wasi_http_types_error_code_future as trailers_future,
    result_unit_wasi_http_types_error_code_future as unit_future,
)
from wit_world.imports import handler, variables
from wit_world.imports.wasi_http_types import Fields, Request, Response

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

        if (request.get_path_with_query() or "").endswith("/stop"):
            response = Response.new(Fields.from_list([("x-middleware", name)]), None, _no_trailers())[0]
            response.set_status_code(403)
            return response

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

