"""Gyre test app: a Redis trigger handler built with the Python SDK 5
(`spin:redis/inbound-redis@3.0.0`, component-model async).

For each message it counts it and records it, on the Redis server named by
the component variable `redis_address` (through outbound Redis):
  INCR <prefix>:received ; RPUSH <prefix>:seen <message>
A message `fail` raises, which the host must log and survive.
"""

from spin_sdk import redis, variables
from spin_sdk.wit.exports import RedisHandler as Base
from spin_sdk.wit.imports import spin_redis_redis_3_0_0 as r


class RedisHandler(Base):
    async def handle_message(self, message: bytes) -> None:
        if message == b"fail":
            raise RuntimeError("this message fails on purpose")
        prefix = await variables.get("prefix")
        with await redis.open(await variables.get("redis_address")) as conn:
            await conn.incr(prefix + ":received")
            await conn.execute("RPUSH", [r.RedisParameter_Binary((prefix + ":seen").encode()), r.RedisParameter_Binary(message)])
