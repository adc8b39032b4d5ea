"""Gyre test app for application state through the Python SDK 3 (wasi:http
0.2, synchronous): fermyon:spin/key-value@2.0.0, spin:sqlite@3.0.0 and
fermyon:spin/variables@2.0.0, as existing Spin 3 apps use them.

Routes:
  /kv/set/<key>   body is the value -> "ok"
  /kv/get/<key>   200 value | 404 "missing"
  /kv/keys        JSON, sorted
  /kv/delete/<key>
  /sql            body {"sql": ..., "params": [...]} -> JSON with rowid and changes
  /var/<name>     the value
  /fetch?url=U    outbound HTTP; 200 with the upstream body and x-upstream-status
  /chain?url=U&next=N  one request doing a bit of everything, for traces:
                  key-value set and get, GET U, GET N (another component) -> 200
Interface errors answer 409 with the error's variant name (and payload).
"""

import json

from urllib.parse import parse_qs

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response, send
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite


def error_name(e):
    value = getattr(e, "value", None)
    if value is None:
        return type(e).__name__ + ": " + str(e)
    name = type(value).__name__
    payload = getattr(value, "value", None)
    return name if payload is None else name + ": " + str(payload)


def text(status, body):
    if isinstance(body, str):
        body = body.encode()
    return Response(status, {"content-type": "text/plain"}, body)


def sql_param(p):
    if p is None:
        return sqlite.Value_Null()
    if isinstance(p, int):
        return sqlite.Value_Integer(p)
    if isinstance(p, float):
        return sqlite.Value_Real(p)
    return sqlite.Value_Text(p)


def sql_value(v):
    if type(v).__name__ == "Value_Null":
        return None
    if type(v).__name__ == "Value_Blob":
        return bytes(v.value).hex()
    return v.value


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.uri.split("?", 1)[0]
        if "://" in path:
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        parts = path.strip("/").split("/")
        # The component may be mounted under a prefix (`/v3/...`).
        for index, part in enumerate(parts):
            if part in ("kv", "sql", "var", "fetch", "chain"):
                parts = parts[index:]
                break
        body = request.body or b""
        try:
            if parts[0] == "kv":
                with key_value.open_default() as store:
                    op, key = parts[1], "/".join(parts[2:])
                    if op == "set":
                        store.set(key, body)
                        return text(200, "ok")
                    if op == "get":
                        value = store.get(key)
                        return text(404, "missing") if value is None else text(200, value)
                    if op == "keys":
                        return text(200, json.dumps(sorted(store.get_keys())))
                    if op == "delete":
                        store.delete(key)
                        return text(200, "ok")
            if parts[0] == "sql":
                req = json.loads(body)
                with sqlite.Connection.open("default") as conn:
                    result = conn.execute(req["sql"], [sql_param(p) for p in req.get("params", [])])
                    return text(200, json.dumps({
                        "columns": list(result.columns),
                        "rows": [[sql_value(v) for v in r.values] for r in result.rows],
                        "last_insert_rowid": conn.last_insert_rowid(),
                        "changes": conn.changes(),
                    }))
            if parts[0] == "fetch":
                # Outbound HTTP (wasi:http/outgoing-handler@0.2.0); SDK 3
                # writes the request body while the request is being sent.
                query = {k: v[-1] for k, v in parse_qs(request.uri.partition("?")[2]).items()}
                sent = send(Request(query.get("method", "GET"), query["url"], {}, body or None))
                return Response(200, {"x-upstream-status": str(sent.status)}, sent.body or b"")
            if parts[0] == "chain":
                query = {k: v[-1] for k, v in parse_qs(request.uri.partition("?")[2]).items()}
                with key_value.open_default() as store:
                    store.set("chained", b"yes")
                    store.get("chained")
                statuses = []
                for which in ("url", "next"):
                    try:
                        statuses.append(send(Request("GET", query[which], {}, None)).status)
                    except Exception as e:
                        return text(409, which + ": " + error_name(e))
                return text(200, f"upstream {statuses[0]}, next {statuses[1]}")
            if parts[0] == "var":
                return text(200, variables.get(parts[1]))
        except Exception as e:
            return text(409, error_name(e))
        return text(404, "no route " + path)
