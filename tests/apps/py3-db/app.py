"""Gyre test app for outbound databases and MQTT through the Python SDK 3
(wasi:http 0.2, synchronous): fermyon:spin/postgres@2.0.0,
fermyon:spin/mysql@2.0.0, fermyon:spin/mqtt@2.0.0, spin:postgres@3.0.0 and
spin:postgres@4.0.0 (which Gyre serves with 4.2).

POST /pg?api=v2|v3|v4, POST /mysql — body:
  {"addr": URL, "steps": [{"op": "execute"|"query", "sql": S,
                           "params": [[type, value], ...]}]}
  -> JSON list, one entry per step (see py5-db).
POST /mqtt — body {"addr", "user", "password", "keep_alive", "topic",
  "payload", "qos", "count"} -> "published N"
Interface errors answer 409 with the error's variant name (and payload).
"""

import dataclasses
import enum
import json

from urllib.parse import parse_qs

from spin_sdk import http
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import postgres as pg2
from spin_sdk.wit.imports import mysql as my2
from spin_sdk.wit.imports import mqtt as mq2
from spin_sdk.wit.imports import rdbms_types as rdbms
from spin_sdk.wit.imports import spin_postgres_postgres_3_0_0 as pg3
from spin_sdk.wit.imports import spin_postgres_postgres_4_0_0 as pg4


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


def kebab(name):
    out = ""
    for i, c in enumerate(name):
        if c.isupper() and i > 0:
            out += "-"
        out += c.lower()
    return out


def bound(module, b):
    if b is None:
        return None
    value, kind = b
    return (value, module.RangeBoundKind.INCLUSIVE if kind == "inclusive" else module.RangeBoundKind.EXCLUSIVE)


def param(module, p):
    kind = p[0]
    cls = getattr(module, "ParameterValue_" + "".join(w.capitalize() for w in kind.split("-")))
    if kind == "db-null":
        return cls()
    value = p[1]
    if kind in ("date", "time", "datetime"):
        value = tuple(value)
    elif kind in ("binary", "jsonb"):
        value = value.encode()
    elif kind.startswith("range-"):
        value = (bound(module, value[0]), bound(module, value[1]))
    elif kind == "interval":
        value = module.Interval(**value)
    return cls(value)


def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, enum.Enum):
        return kebab(v.name.title().replace("_", ""))
    if dataclasses.is_dataclass(v):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def tagged(v):
    name = type(v).__name__.split("_", 1)[1]
    if hasattr(v, "value"):
        return [kebab(name), plain(v.value)]
    return [kebab(name)]


def column(c):
    t = c.data_type
    return [c.name, plain(t) if isinstance(t, enum.Enum) else tagged(t)[0]]


def run(conn, module, steps, execute_result):
    out = []
    for step in steps:
        params = [param(module, p) for p in step.get("params", [])]
        if step["op"] == "execute":
            out.append(execute_result(conn.execute(step["sql"], params)))
        else:
            rs = conn.query(step["sql"], params)
            out.append({"columns": [column(c) for c in rs.columns],
                        "rows": [[tagged(v) for v in row] for row in rs.rows]})
    return out


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path, _, qs = request.uri.partition("?")
        if "://" in path:
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        query = {k: v[-1] for k, v in parse_qs(qs).items()}
        # The component may be mounted under a prefix (`/v3/pg`).
        path = "/" + path.rstrip("/").rsplit("/", 1)[-1]
        try:
            spec = json.loads(request.body or b"{}")
            if path == "/pg":
                api = query.get("api", "v2")
                module, types = {"v2": (pg2, rdbms), "v3": (pg3, pg3), "v4": (pg4, pg4)}[api]
                with module.Connection.open(spec["addr"]) as conn:
                    out = run(conn, types, spec["steps"], lambda n: {"changed": n})
                return text(200, json.dumps(out))
            if path == "/mysql":
                with my2.Connection.open(spec["addr"]) as conn:
                    out = run(conn, rdbms, spec["steps"], lambda _: {})
                return text(200, json.dumps(out))
            if path == "/mqtt":
                qos = {"at-most-once": mq2.Qos.AT_MOST_ONCE, "at-least-once": mq2.Qos.AT_LEAST_ONCE,
                       "exactly-once": mq2.Qos.EXACTLY_ONCE}[spec.get("qos", "at-least-once")]
                count = spec.get("count", 1)
                with mq2.Connection.open(spec["addr"], spec.get("user", ""), spec.get("password", ""),
                                         spec.get("keep_alive", 30)) as conn:
                    for i in range(count):
                        conn.publish(spec["topic"], spec["payload"].replace("{i}", str(i)).encode(), qos)
                return text(200, "published " + str(count))
        except Exception as e:
            return text(409, error_name(e))
        return text(404, "no route " + path)
