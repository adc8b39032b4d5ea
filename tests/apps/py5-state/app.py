"""Gyre test app for application state through the Python SDK 5 (and 4, which
builds the same source against WASI 0.3.0-rc-2026-03-15): key-value, SQLite and
variables, in every interface version the SDK imports.

Each route picks the interface family with `?api=`:
  v3   spin:key-value@3.0.0, spin:sqlite@3.1.0, spin:variables@3.0.0 (async; default)
  v2   fermyon:spin/*@2.0.0 (synchronous)
  wasi wasi:keyvalue@0.2.0-draft2, wasi:config/store (synchronous)

Routes:
  /hello                       200 "hello" (the benchmark's baseline)
  /fetch?url=U[&method=M]      outbound HTTP; 200 with the upstream body and x-upstream-status
  /kv/get/<key>?store=L        200 value | 404
  /kv/set/<key>?store=L        body is the value -> 200 "ok"
  /kv/delete/<key>, /kv/exists/<key>, /kv/keys (JSON, sorted)
  /kv/incr/<key>?delta=N       (wasi) -> the new value
  /kv/cas/<key>?expect=V       (wasi) body is the new value -> "swapped" | 409 "cas-failed"
  /kv/batch?store=L            (wasi) set-many, get-many, delete-many of a JSON object body
  /sql?db=L                    body {"sql": ..., "params": [...]} -> JSON result
  /var/<name>                  -> the value
  /var-all                     (wasi) -> JSON of every variable
  /redis?addr=A&prefix=P       every outbound Redis operation in order -> JSON of results
  /llm/infer?model=M[&max_tokens=N]  body is the prompt -> JSON {text, usage}
                               (no max_tokens: the host's defaults, params = none)
  /llm/embed?model=M           body is a JSON list of texts -> JSON {embeddings, usage}
  /tcp?addr=IP:PORT[&api=p2]   connect, send the body, shut down sending, answer what the peer
                               sent back (wasi:sockets types 0.3 — the rc for SDK 4 — or 0.2.6 tcp)
  /udp?addr=IP:PORT            send the body as one datagram, answer the one that comes back
  /listen?addr=IP:PORT         bind there and listen -> 200 "listening" (Gyre denies it)
Socket errors answer 409 with the error code in WIT's spelling (`access-denied`).
Interface errors answer 409 with the error's variant name (and payload).
"""

import json
import re
from enum import Enum
from urllib.parse import parse_qs

from spin_sdk import http, key_value, sqlite, variables
from spin_sdk.http import Request, Response
from spin_sdk import redis
from spin_sdk.wit.imports import fermyon_spin_llm_2_0_0 as llm2
from spin_sdk.wit.imports import fermyon_spin_key_value_2_0_0 as kv2
from spin_sdk.wit.imports import fermyon_spin_redis_2_0_0 as redis2
from spin_sdk.wit.imports import spin_redis_redis_3_0_0 as redis3
from spin_sdk.wit.imports import fermyon_spin_sqlite_2_0_0 as sql2
from spin_sdk.wit.imports import spin_sqlite_sqlite_3_1_0 as sql3
from spin_sdk.wit.imports import fermyon_spin_variables_2_0_0 as vars2
from spin_sdk.wit.imports import wasi_config_store_0_2_0_draft_2024_09_27 as wasi_config
from spin_sdk.wit.imports import wasi_keyvalue_atomics_0_2_0_draft2 as wasi_atomics
from spin_sdk.wit.imports import wasi_keyvalue_batch_0_2_0_draft2 as wasi_batch
from spin_sdk.wit.imports import wasi_keyvalue_store_0_2_0_draft2 as wasi_kv
from spin_sdk.wit.imports import wasi_sockets_instance_network_0_2_6 as p2_network
from spin_sdk.wit.imports import wasi_sockets_network_0_2_6 as p2_net
from spin_sdk.wit.imports import wasi_sockets_tcp_0_2_6 as p2_tcp
from spin_sdk.wit.imports import wasi_sockets_tcp_create_socket_0_2_6 as p2_tcp_create
from spin_sdk.wit.imports import wasi_io_streams_0_2_6 as p2_streams
from spin_sdk import wit
from componentize_py_types import Err

try:  # SDK 5: WASI 0.3.0
    from spin_sdk.wit.imports import wasi_sockets_types_0_3_0 as sockets
except ImportError:  # SDK 4: the 0.3.0-rc-2026-03-15 release candidate
    from spin_sdk.wit.imports import wasi_sockets_types_0_3_0_rc_2026_03_15 as sockets


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


def to_sql_params(params, module):
    out = []
    for p in params:
        if p is None:
            out.append(module.Value_Null())
        elif isinstance(p, bool) or isinstance(p, int):
            out.append(module.Value_Integer(int(p)))
        elif isinstance(p, float):
            out.append(module.Value_Real(p))
        elif isinstance(p, str):
            out.append(module.Value_Text(p))
        else:
            out.append(module.Value_Blob(bytes.fromhex(p["blob"])))
    return out


def from_sql_value(v):
    name = type(v).__name__
    if name == "Value_Null":
        return None
    if name == "Value_Blob":
        return {"blob": bytes(v.value).hex()}
    return v.value


async def read_all(reader):
    items = []
    with reader:
        while True:
            batch = await reader.read(64)
            if not batch:
                break
            items.extend(batch)
    return items


async def kv_route(op, key, query, body):
    api = query.get("api", "v3")
    label = query.get("store", "default")
    if api == "v3":
        with await key_value.open(label) as store:
            if op == "get":
                value = await store.get(key)
                return text(404, "missing") if value is None else text(200, value)
            if op == "set":
                await store.set(key, body)
                return text(200, "ok")
            if op == "delete":
                await store.delete(key)
                return text(200, "ok")
            if op == "exists":
                return text(200, "true" if await store.exists(key) else "false")
            if op == "keys":
                stream, done = await store.get_keys()
                keys = await read_all(stream)
                result = await done.read()
                if getattr(result, "value", None) is not None:
                    return text(409, error_name(result))
                return text(200, json.dumps(sorted(keys)))
    if api == "v2":
        with kv2.Store.open(label) as store:
            if op == "get":
                value = store.get(key)
                return text(404, "missing") if value is None else text(200, value)
            if op == "set":
                store.set(key, body)
                return text(200, "ok")
            if op == "delete":
                store.delete(key)
                return text(200, "ok")
            if op == "exists":
                return text(200, "true" if store.exists(key) else "false")
            if op == "keys":
                return text(200, json.dumps(sorted(store.get_keys())))
    if api == "wasi":
        with wasi_kv.open(label) as bucket:
            if op == "get":
                value = bucket.get(key)
                return text(404, "missing") if value is None else text(200, value)
            if op == "set":
                bucket.set(key, body)
                return text(200, "ok")
            if op == "delete":
                bucket.delete(key)
                return text(200, "ok")
            if op == "exists":
                return text(200, "true" if bucket.exists(key) else "false")
            if op == "keys":
                return text(200, json.dumps(sorted(bucket.list_keys(None).keys)))
            if op == "incr":
                return text(200, str(wasi_atomics.increment(bucket, key, int(query.get("delta", "1")))))
            if op == "cas":
                cas = wasi_atomics.Cas.new(bucket, key)
                current = cas.current()
                expected = query.get("expect")
                if expected is not None and (current or b"").decode() != expected:
                    # Someone else changed it between our read and now: let
                    # the host decide, which must refuse the swap.
                    pass
                try:
                    wasi_atomics.swap(cas, body)
                    return text(200, "swapped")
                except Exception as e:
                    return text(409, "cas-failed" if "CasFailed" in error_name(e) else error_name(e))
            if op == "batch":
                pairs = json.loads(body)
                wasi_batch.set_many(bucket, [(k, v.encode()) for k, v in pairs.items()])
                got = wasi_batch.get_many(bucket, list(pairs.keys()) + ["absent"])
                wasi_batch.delete_many(bucket, list(pairs.keys()))
                after = wasi_batch.get_many(bucket, list(pairs.keys()))
                return text(200, json.dumps({
                    "got": [[k, None if v is None else bytes(v).decode()] for k, v in got],
                    "after_delete": [[k, v] for k, v in after],
                }))
    return text(400, "unknown kv route " + op + " for api " + api)


async def sql_route(query, body):
    api = query.get("api", "v3")
    label = query.get("db", "default")
    request = json.loads(body)
    if api == "v3":
        with await sqlite.Connection.open(label) as conn:
            columns, rows, done = await conn.execute(request["sql"], to_sql_params(request.get("params", []), sql3))
            rows = await read_all(rows)
            result = await done.read()
            if getattr(result, "value", None) is not None:
                return text(409, error_name(result))
            out = {
                "columns": list(columns),
                "rows": [[from_sql_value(v) for v in r.values] for r in rows],
                "last_insert_rowid": await conn.last_insert_rowid(),
                "changes": await conn.changes(),
            }
            return text(200, json.dumps(out))
    if api == "v2":
        with sql2.Connection.open(label) as conn:
            result = conn.execute(request["sql"], to_sql_params(request.get("params", []), sql2))
            out = {
                "columns": list(result.columns),
                "rows": [[from_sql_value(v) for v in r.values] for r in result.rows],
            }
            return text(200, json.dumps(out))
    return text(400, "unknown sql api " + api)


def redis_reply(r):
    name = type(r).__name__
    if name.endswith("Nil"):
        return None
    if name.endswith("Binary"):
        return bytes(r.value).decode(errors="replace")
    return r.value


async def redis_route(query):
    """Every outbound Redis operation, in order, on keys under `prefix`."""
    api = query.get("api", "v3")
    addr = query["addr"]
    p = query.get("prefix", "t")
    out = []
    if api == "v3":
        with await redis.open(addr) as conn:
            await conn.publish(p + "-channel", b"hello")
            await conn.set(p + ":k", b"v1")
            out.append(bytes(await conn.get(p + ":k")).decode())
            out.append(await conn.get(p + ":missing"))
            out.append(await conn.incr(p + ":n"))
            out.append(await conn.incr(p + ":n"))
            out.append(await conn.sadd(p + ":s", ["a", "b", "c"]))
            out.append(await conn.srem(p + ":s", ["b"]))
            out.append(sorted(await conn.smembers(p + ":s")))
            out.append(await conn.del_([p + ":k", p + ":nothing"]))
            out.append([redis_reply(r) for r in await conn.execute("APPEND", [redis3.RedisParameter_Binary(p.encode() + b":e"), redis3.RedisParameter_Binary(b"xy")])])
            out.append([redis_reply(r) for r in await conn.execute("GET", [redis3.RedisParameter_Binary(p.encode() + b":e")])])
            try:
                await conn.incr(p + ":s")
            except Exception as e:
                out.append(error_name(e))
    else:
        with redis2.Connection.open(addr) as conn:
            conn.publish(p + "-channel", b"hello")
            conn.set(p + ":k", b"v1")
            out.append(bytes(conn.get(p + ":k")).decode())
            out.append(conn.get(p + ":missing"))
            out.append(conn.incr(p + ":n"))
            out.append(conn.incr(p + ":n"))
            out.append(conn.sadd(p + ":s", ["a", "b", "c"]))
            out.append(conn.srem(p + ":s", ["b"]))
            out.append(sorted(conn.smembers(p + ":s")))
            out.append(conn.del_([p + ":k", p + ":nothing"]))
            out.append([redis_reply(r) for r in conn.execute("APPEND", [redis2.RedisParameter_Binary(p.encode() + b":e"), redis2.RedisParameter_Binary(b"xy")])])
            out.append([redis_reply(r) for r in conn.execute("GET", [redis2.RedisParameter_Binary(p.encode() + b":e")])])
            try:
                conn.incr(p + ":s")
            except Exception as e:
                out.append(error_name(e))
    return text(200, json.dumps(out))


async def var_route(name, query):
    api = query.get("api", "v3")
    if api == "v3":
        return text(200, await variables.get(name))
    if api == "v2":
        return text(200, vars2.get(name))
    if api == "wasi":
        value = wasi_config.get(name)
        return text(404, "none") if value is None else text(200, value)
    return text(400, "unknown variables api " + api)


def llm_route(op, query, body):
    model = query.get("model", "")
    if op == "infer":
        params = None
        if "max_tokens" in query:
            params = llm2.InferencingParams(int(query["max_tokens"]), 1.5, 32, 0.25, 7, 0.5)
        result = llm2.infer(model, body.decode(), params)
        usage = {"prompt": result.usage.prompt_token_count, "generated": result.usage.generated_token_count}
        return text(200, json.dumps({"text": result.text, "usage": usage}))
    if op == "embed":
        result = llm2.generate_embeddings(model, json.loads(body))
        return text(200, json.dumps({"embeddings": result.embeddings, "usage": result.usage.prompt_token_count}))
    return text(400, "unknown llm operation " + op)


def socket_error(e):
    """A socket error code in WIT's spelling, whichever binding raised it."""
    value = getattr(e, "value", None)
    if isinstance(value, Enum):  # 0.2.6: an enum
        return value.name.lower().replace("_", "-")
    if value is not None:  # 0.3: a variant case class, `ErrorCode_AccessDenied`
        name = type(value).__name__.split("_", 1)[-1]
        return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    return type(e).__name__ + ": " + str(e)


def ipv4(addr, module):
    host, _, port = addr.rpartition(":")
    octets = tuple(int(x) for x in host.split("."))
    return module.IpSocketAddress_Ipv4(module.Ipv4SocketAddress(int(port), octets))


async def read_stream(reader):
    data = bytearray()
    with reader:
        while not reader.writer_dropped:
            data += await reader.read(16 * 1024)
    return bytes(data)


async def tcp_route(query, body):
    if query.get("api") == "p2":
        return tcp_p2(query["addr"], body)
    with sockets.TcpSocket.create(sockets.IpAddressFamily.IPV4) as sock:
        await sock.connect(ipv4(query["addr"], sockets))
        tx, rx = wit.byte_stream()
        sent = sock.send(rx)
        with tx:
            await tx.write_all(body)
        with sent:
            await sent.read()
        received, _done = sock.receive()
        return text(200, await read_stream(received))


def tcp_p2(addr, body):
    network = p2_network.instance_network()
    with p2_tcp_create.create_tcp_socket(p2_net.IpAddressFamily.IPV4) as sock:
        sock.start_connect(network, ipv4(addr, p2_net))
        while True:
            sock.subscribe().block()
            try:
                input, output = sock.finish_connect()
                break
            except Err as e:
                if socket_error(e) != "would-block":
                    raise
        with output:
            for start in range(0, len(body), 4096):
                output.blocking_write_and_flush(body[start:start + 4096])
        sock.shutdown(p2_tcp.ShutdownType.SEND)
        data = bytearray()
        with input:
            while True:
                try:
                    data += input.blocking_read(16 * 1024)
                except Err as e:
                    if isinstance(e.value, p2_streams.StreamError_Closed):
                        break
                    raise
        return text(200, bytes(data))


async def udp_route(query, body):
    with sockets.UdpSocket.create(sockets.IpAddressFamily.IPV4) as sock:
        await sock.send(body, ipv4(query["addr"], sockets))
        data, _source = await sock.receive()
        return text(200, data)


def listen_route(query):
    with sockets.TcpSocket.create(sockets.IpAddressFamily.IPV4) as sock:
        sock.bind(ipv4(query["addr"], sockets))
        sock.listen()
        return text(200, "listening")


class HttpHandler(http.Handler):
    async def handle_request(self, request: Request) -> Response:
        path, _, qs = request.uri.partition("?")
        if "://" in path:
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        query = {k: v[-1] for k, v in parse_qs(qs).items()}
        body = request.body or b""
        parts = path.strip("/").split("/")
        # The component may be mounted under a prefix (`/noaccess/...`).
        for index, part in enumerate(parts):
            if part in ("kv", "sql", "var", "var-all", "redis", "fetch", "hello", "llm", "tcp", "udp", "listen"):
                parts = parts[index:]
                break
        try:
            if parts[0] == "hello":
                return text(200, "hello")
            if parts[0] == "fetch":
                # Outbound HTTP (wasi:http/client@0.3.0): the response's
                # status and body, with the target's x-seen-path header.
                sent = await http.send(Request(query.get("method", "GET"), query["url"], {}, body or None))
                return Response(200, {"x-upstream-status": str(sent.status)}, sent.body or b"")
            if parts[0] == "kv" and len(parts) >= 2:
                return await kv_route(parts[1], "/".join(parts[2:]), query, body)
            if parts[0] == "sql":
                return await sql_route(query, body)
            if parts[0] == "var" and len(parts) == 2:
                return await var_route(parts[1], query)
            if parts[0] == "redis":
                return await redis_route(query)
            if parts[0] == "llm" and len(parts) == 2:
                return llm_route(parts[1], query, body)
            if parts[0] in ("tcp", "udp", "listen"):
                try:
                    if parts[0] == "tcp":
                        return await tcp_route(query, body)
                    if parts[0] == "udp":
                        return await udp_route(query, body)
                    return listen_route(query)
                except Err as e:
                    return text(409, socket_error(e))
            if parts[0] == "var-all":
                return text(200, json.dumps(sorted(wasi_config.get_all())))
        except Exception as e:
            return text(409, error_name(e))
        return text(404, "no route " + path)
