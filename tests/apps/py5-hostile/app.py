"""Gyre's hostile guest, Python SDK 5 (wasi:http/handler@0.3.0).

Each route misbehaves in one way a host must survive; the hostile suite
(crates/cli/tests/hostile.rs) runs them next to well-behaved requests.

  /ok                 -> 200 "ok" (the well-behaved request)
  /loop               -> spins forever (CPU deadline: 504)
  /sleep?s=N          -> waits N seconds without using CPU (wall-clock deadline)
  /alloc              -> allocates 1 MiB blocks until memory runs out (500)
  /stdout?mib=N       -> writes N MiB (default 1024) to stdout, then 200
  /fanout?n=N&url=U   -> sends N requests to U at once, 200 with a tally
  /headers?n=N        -> answers with N response headers (default 100000)
"""

import asyncio
import json
import sys
from urllib.parse import parse_qs

from spin_sdk import http
from spin_sdk.http import Request, Response, send
from spin_sdk.wit.imports import wasi_clocks_monotonic_clock_0_3_0 as monotonic_clock


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path, _, qs = request.uri.partition("?")
        query = {k: v[0] for k, v in parse_qs(qs).items()}
        if path.endswith("/ok"):
            return Response(200, {"content-type": "text/plain"}, b"ok")
        if path.endswith("/loop"):
            n = 0
            while True:
                n += 1
        if path.endswith("/sleep"):
            # asyncio.sleep needs call_later, which the SDK's loop lacks.
            await monotonic_clock.wait_for(int(float(query.get("s", "3600")) * 1e9))
            return Response(200, {}, b"slept")
        if path.endswith("/alloc"):
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if path.endswith("/stdout"):
            chunk = "x" * ((1 << 20) - 1) + "\n"
            for _ in range(int(query.get("mib", "1024"))):
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return Response(200, {}, b"wrote")
        if path.endswith("/fanout"):
            n = int(query.get("n", "2000"))
            url = query["url"]
            results = await asyncio.gather(
                *[send(Request("GET", url, {}, None)) for _ in range(n)],
                return_exceptions=True,
            )
            tally = {}
            for r in results:
                key = str(r.status) if isinstance(r, Response) else type(r).__name__ + ":" + str(r)[:60]
                tally[key] = tally.get(key, 0) + 1
            return Response(200, {"content-type": "application/json"}, json.dumps(tally, sort_keys=True).encode())
        if path.endswith("/headers"):
            n = int(query.get("n", "100000"))
            headers = {f"x-h-{i}": "v" for i in range(n)}
            return Response(200, headers, b"")
        return Response(404, {}, b"")
