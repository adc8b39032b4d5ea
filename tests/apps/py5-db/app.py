"""Gyre test app for outbound databases and MQTT through the Python SDK 5:
spin:postgres@4.2.0 (async and synchronous functions), spin:mysql@3.0.0 and
spin:mqtt@3.0.0 (async).

POST /pg?api=async|sync, POST /mysql — body:
  {"addr": URL, "steps": [{"op": "execute"|"query", "sql": S,
                           "params": [[type, value], ...]}]}
  -> JSON list, one entry per step: {"changed": n} for execute (PostgreSQL),
     {} (MySQL), {"columns": [[name, type]], "rows": [[[type, value]]]}
     for query. Types are the interface's case names (`int32`, `db-null`).
POST /mqtt — body {"addr", "user", "password", "keep_alive", "topic",
  "payload", "qos": "at-most-once"|"at-least-once"|"exactly-once", "count"}
  -> "published N"
GET /hello -> "hello"
Interface errors answer 409 with the error's variant name (and payload).
"""

import dataclasses
import enum
import json

from urllib.parse import parse_qs

from spin_sdk import http
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import spin_postgres_postgres_4_2_0 as pg
from spin_sdk.wit.imports import spin_mysql_mysql_3_0_0 as my
from spin_sdk.wit.imports import spin_mqtt_mqtt_3_0_0 as mq


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


def case_class(module, prefix, kebab):
    return getattr(module, prefix + "_" + "".join(w.capitalize() for w in kebab.split("-")))


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
    cls = case_class(module, "ParameterValue", kind)
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
    """A variant value as [case, payload]."""
    name = type(v).__name__.split("_", 1)[1]
    if isinstance(v, enum.Enum):
        return [kebab(v.name.title().replace("_", ""))]
    if hasattr(v, "value"):
        return [kebab(name), plain(v.value)]
    return [kebab(name)]


def column(c):
    t = c.data_type
    return [c.name, tagged(t)[0] if not isinstance(t, enum.Enum) else plain(t)]


async def read_all(reader):
    items = []
    with reader:
        while True:
            batch = await reader.read(64)
            if not batch:
                break
            items.extend(batch)
    return items


async def pg_route(query, spec):
    sync = query.get("api") == "sync"
    conn = pg.Connection.open(spec["addr"]) if sync else await pg.Connection.open_async(spec["addr"])
    out = []
    with conn:
        for step in spec["steps"]:
            params = [param(pg, p) for p in step.get("params", [])]
            if step["op"] == "execute":
                n = conn.execute(step["sql"], params) if sync else await conn.execute_async(step["sql"], params)
                out.append({"changed": n})
            elif sync:
                rs = conn.query(step["sql"], params)
                out.append({"columns": [column(c) for c in rs.columns],
                            "rows": [[tagged(v) for v in row] for row in rs.rows]})
            else:
                columns, rows, done = await conn.query_async(step["sql"], params)
                rows = await read_all(rows)
                with done:
                    await done.read()
                out.append({"columns": [column(c) for c in columns],
                            "rows": [[tagged(v) for v in row] for row in rows]})
    return text(200, json.dumps(out))


async def mysql_route(spec):
    conn = await my.Connection.open(spec["addr"])
    out = []
    with conn:
        for step in spec["steps"]:
            params = [param(my, p) for p in step.get("params", [])]
            if step["op"] == "execute":
                await conn.execute(step["sql"], params)
                out.append({})
            else:
                columns, rows, done = await conn.query(step["sql"], params)
                rows = await read_all(rows)
                with done:
                    await done.read()
                out.append({"columns": [column(c) for c in columns],
                            "rows": [[tagged(v) for v in row] for row in rows]})
    return text(200, json.dumps(out))


async def mqtt_route(spec):
    qos = {"at-most-once": mq.Qos.AT_MOST_ONCE, "at-least-once": mq.Qos.AT_LEAST_ONCE,
           "exactly-once": mq.Qos.EXACTLY_ONCE}[spec.get("qos", "at-least-once")]
    conn = await mq.Connection.open(spec["addr"], spec.get("user", ""), spec.get("password", ""),
                                    spec.get("keep_alive", 30))
    count = spec.get("count", 1)
    with conn:
        for i in range(count):
            payload = spec["payload"].replace("{i}", str(i)).encode()
            await conn.publish(spec["topic"], payload, qos)
    return text(200, "published " + str(count))


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path, _, qs = request.uri.partition("?")
        if "://" in path:
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        query = {k: v[-1] for k, v in parse_qs(qs).items()}
        # The component may be mounted under a prefix (`/v3/pg`).
        path = "/" + path.rstrip("/").rsplit("/", 1)[-1]
        try:
            if path == "/hello":
                return text(200, "hello")
            spec = json.loads(request.body or b"{}")
            if path == "/pg":
                return await pg_route(query, spec)
            if path == "/mysql":
                return await mysql_route(spec)
            if path == "/mqtt":
                return await mqtt_route(spec)
        except Exception as e:
            return text(409, error_name(e))
        return text(404, "no route " + path)
