"""Gyre test app: a Redis trigger handler built with the Python SDK 3
(unversioned `fermyon:spin/inbound-redis`).

For each message: INCR <prefix>:received and RPUSH <prefix>:seen <message>
on the Redis server named by the component variable `redis_address`.
"""

from spin_sdk import variables
from spin_sdk.wit import exports
from spin_sdk.wit.imports import redis as r


class InboundRedis(exports.InboundRedis):
    def handle_message(self, message: bytes) -> None:
        prefix = variables.get("prefix")
        with r.Connection.open(variables.get("redis_address")) as conn:
            conn.incr(prefix + ":received")
            conn.execute("RPUSH", [r.RedisParameter_Binary((prefix + ":seen").encode()), r.RedisParameter_Binary(message)])
