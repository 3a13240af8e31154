"""Opportunities to Redis: one Stream entry and one pub/sub message per change.

Per payload (:func:`desk.domain.opportunity_codec.opportunity_payload`, JSON)::

    XADD desk:opportunities MAXLEN ~ <maxlen> * opportunity <json>
    PUBLISH desk:opportunities <json>

separate from the ticks' stream and channels (:mod:`desk.bus.publisher`). Changes are
few (a scan every half second emits the new, gone and re-priced opportunities), so each
batch goes out as one non-transactional pipeline. :meth:`OpportunityPublisher.submit`
only appends to a bounded deque (oldest dropped beyond ``max_buffer``); a background
task sends. When Redis is down the batch is kept and retried with backoff; Redis is a
fan-out here, the store is the record (:mod:`desk.store.opportunities`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import RedisError

from desk.bus.publisher import BusError, redis_client, describe_redis_error
from desk.domain.opportunity_codec import payload_json

__all__ = ["OPPORTUNITY_CHANNEL", "OPPORTUNITY_STREAM", "OpportunityPublisher"]

log = logging.getLogger(__name__)

#: Stream key and pub/sub channel of opportunities.
OPPORTUNITY_STREAM = "desk:opportunities"
OPPORTUNITY_CHANNEL = "desk:opportunities"


class OpportunityPublisher:
    """Publishes opportunity payloads to Redis (see the module docstring).

    ``url``: ``redis://host:6379/0``; ``stream`` / ``channel``: keys (defaults above);
    ``maxlen``: approximate stream cap (``MAXLEN ~``); ``max_buffer``: payloads kept in
    memory at most. Raises :class:`~desk.bus.publisher.BusError` for a malformed URL or
    parameters, and from :meth:`start` when Redis cannot be reached. Use on one event loop.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = OPPORTUNITY_STREAM,
        channel: str = OPPORTUNITY_CHANNEL,
        maxlen: int = 10_000,
        max_buffer: int = 10_000,
        retry_min: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        if maxlen < 1 or max_buffer < 1:
            raise BusError(f"maxlen and max_buffer must be >= 1, got {maxlen!r}, {max_buffer!r}")
        self.url = url
        self.stream = stream
        self.channel = channel
        self.maxlen = maxlen
        self.retry_min = retry_min
        self.retry_max = retry_max
        self._client = redis_client(url, 3.0, 5.0)
        self._buf: deque[str] = deque(maxlen=max_buffer)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = 0
        self._closing = False
        #: payloads accepted by Redis, payloads dropped (buffer full), failed sends
        self.published = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""

    async def start(self) -> None:
        """Check Redis answers, then start the sending task."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise BusError(describe_redis_error(exc, self.url)) from None
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="desk-opportunities-redis")

    def submit(self, payloads: Sequence[Mapping[str, Any]]) -> None:
        """Queue payloads for the next send (never blocks)."""
        for p in payloads:
            if len(self._buf) == self._buf.maxlen:
                self.dropped += 1
            self._buf.append(payload_json(dict(p)))
        if self._wake is not None:
            self._wake.set()

    __call__ = submit

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted is sent (True) or ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._buf or self._sending:
            if loop.time() > deadline:
                return False
            if self._wake is not None:
                self._wake.set()
            await asyncio.sleep(0.01)
        return True

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), stop, close the connection."""
        if self._task is not None:
            await self.flush(timeout)
            self._closing = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def _run(self) -> None:
        assert self._wake is not None
        delay = self.retry_min
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._buf:
                batch = list(self._buf)
                self._buf.clear()
                self._sending = len(batch)
                try:
                    pipe = self._client.pipeline(transaction=False)
                    for text in batch:
                        pipe.xadd(self.stream, {"opportunity": text}, maxlen=self.maxlen, approximate=True)
                        pipe.publish(self.channel, text)
                    await pipe.execute()
                except (RedisError, OSError) as exc:
                    self.errors += 1
                    self.last_error = describe_redis_error(exc, self.url)
                    log.warning("opportunities not published yet: %s", self.last_error)
                    self._buf.extendleft(reversed(batch))
                    self._sending = 0
                    await asyncio.sleep(delay)
                    delay = min(self.retry_max, delay * 2)
                    continue
                self.published += len(batch)
                self._sending = 0
                delay = self.retry_min
