from spin_sdk.wit.exports import RedisHandler as Base


class RedisHandler(Base):
    async def handle_message(self, message: bytes) -> None:
        print("Message received:", message.decode("utf-8", "replace"))
