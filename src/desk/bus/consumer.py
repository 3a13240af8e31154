"""Reading the tick stream with a Redis consumer group (``desk tail``, and your own code).

The publisher (:mod:`desk.bus.publisher`) appends every tick to the stream ``desk:ticks``
(trimmed with ``MAXLEN ~``). Consumers read it through a *consumer group*, so several
processes share the work (each entry goes to one consumer of the group), a consumer that
restarts resumes after what it acknowledged, and a consumer that died leaves its pending
entries for another to claim. Each group sees every entry once; two groups both see all.

Example, the whole of a consumer::

    import asyncio
    from desk.bus.consumer import TickConsumer

    async def main():
        async with TickConsumer("redis://127.0.0.1:6379/0", group="my-strategy", consumer="a") as c:
            while True:
                for entry_id, tick in await c.read(count=500, block=1.0):
                    print(tick.symbol, tick.bid, tick.ask)   # TickRecord, prices per share
                await c.ack()                                 # what was read is done

    asyncio.run(main())

Delivery is at least once (see the publisher: a batch may be sent twice after an outage);
make the handler idempotent or de-duplicate on ``(time, con_id, kind)``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import RedisError, ResponseError

from desk.bus.codec import decode_tick
from desk.bus.publisher import BusError, redis_client, describe_redis_error
from desk.domain.models import TickRecord

__all__ = ["TickConsumer", "format_tick"]


class TickConsumer:
    """One consumer ``consumer`` (default: host name and process id) of group ``group`` on
    ``stream``. :meth:`start` creates the group if absent (``start_at`` ``"$"``: only new
    entries; ``"0"``: the whole stream). Raises :class:`BusError` (one line) when Redis is
    unreachable or refuses."""

    def __init__(
        self, url: str, *, stream: str = "desk:ticks", group: str = "desk-tail", consumer: str | None = None, start_at: str = "$"
    ) -> None:
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.start_at = start_at
        self._redis: aredis.Redis | None = None
        self._unacked: list[bytes] = []

    async def __aenter__(self) -> TickConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._redis = redis_client(self.url, 3.0, None)  # reads block: no socket timeout
        try:
            await self._redis.xgroup_create(self.stream, self.group, id=self.start_at, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise BusError(f"Redis refused XGROUP CREATE {self.stream} {self.group}: {exc}") from None
        except (RedisError, OSError) as exc:
            raise BusError(describe_redis_error(exc, self.url)) from None

    async def read(self, count: int = 500, block: float | None = 1.0) -> list[tuple[str, TickRecord]]:
        """Up to ``count`` new entries for this consumer (waiting up to ``block`` seconds
        for the first; ``None``: do not wait), as ``(entry id, TickRecord)``. Entries are
        acknowledged by :meth:`ack`. Malformed entries are acknowledged and skipped."""
        if self._redis is None:
            raise BusError("TickConsumer.start() first")
        try:
            reply: Any = await self._redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=count,
                block=None if block is None else max(1, int(block * 1000)),
            )
        except (RedisError, OSError) as exc:
            raise BusError(describe_redis_error(exc, self.url)) from None
        out: list[tuple[str, TickRecord]] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._unacked.append(entry_id)
                payload = fields.get(b"tick")
                if payload is None:
                    continue
                try:
                    out.append((entry_id.decode(), decode_tick(payload)))
                except ValueError:
                    continue
        return out

    async def ack(self) -> int:
        """Acknowledge every entry read so far; how many."""
        ids, self._unacked = self._unacked, []
        if not ids or self._redis is None:
            return 0
        try:
            return int(await self._redis.xack(self.stream, self.group, *ids))
        except (RedisError, OSError) as exc:
            self._unacked = ids + self._unacked
            raise BusError(describe_redis_error(exc, self.url)) from None

    async def close(self) -> None:
        r, self._redis = self._redis, None
        if r is not None:
            with contextlib.suppress(RedisError, OSError):
                await r.aclose()


def format_tick(t: TickRecord) -> str:
    """One line of ``desk tail``: UTC time, symbol, kind, bid x size / ask x size or the
    trade price x size (dollars per share)."""
    when = t.time.strftime("%H:%M:%S.%f")[:-3]
    if t.kind == "T":
        return f"{when}Z {t.symbol:<22} T {t.price:>10.2f} x {t.size:g}"
    return f"{when}Z {t.symbol:<22} Q {t.bid:>10.2f} x {t.bid_size:<6g} {t.ask:>10.2f} x {t.ask_size:g}"
