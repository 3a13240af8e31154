"""``desk doctor`` check of Redis: :func:`probe_redis`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.exceptions import RedisError

from desk.bus.publisher import BusError, redis_client, describe_redis_error, redis_address
from desk.domain.secrets import redact_url


@dataclass
class RedisInfo:
    """What :func:`probe_redis` found. ``address``: ``host:port/db``; ``reachable``: PING
    answered; ``error``: one line otherwise; ``server_version``: e.g. ``7.0.15``;
    ``stream_length``: entries in the tick stream (``None`` if it does not exist)."""

    url: str
    address: str
    reachable: bool = False
    error: str = ""
    server_version: str = ""
    stream: str = "desk:ticks"
    stream_length: int | None = None

    def summary(self) -> str:
        """One line for ``desk doctor``."""
        if not self.reachable:
            return f"redis: {self.error}"
        tail = f", {self.stream}: {self.stream_length:,} entries" if self.stream_length is not None else ""
        return f"redis: Redis {self.server_version} at {self.address}{tail}"


async def probe_redis(url: str, *, stream: str = "desk:ticks", timeout: float = 2.0) -> RedisInfo:
    """PING Redis at ``url`` and read its version and the tick stream's length.

    Never raises for connection problems or a malformed URL: they go to ``error``
    (``cannot connect to Redis at 127.0.0.1:1/0: connection refused``).
    """
    address = redis_address(url) if isinstance(url, str) else "?"
    info = RedisInfo(url=redact_url(str(url)), address=address, stream=stream)
    try:
        client = redis_client(url, timeout, timeout)
    except BusError as exc:
        info.error = str(exc)
        return info
    try:
        await asyncio.wait_for(client.ping(), timeout + 1)
        server = await client.info("server")
        info.server_version = str(server.get("redis_version", ""))
        info.reachable = True
        if await client.exists(stream):
            info.stream_length = int(await client.xlen(stream))
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        info.error = describe_redis_error(exc, url)
        info.reachable = False
    finally:
        try:
            await client.aclose()
        except (RedisError, OSError):
            pass
    return info
