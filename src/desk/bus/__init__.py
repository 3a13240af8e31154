"""desk.bus: Redis fan-out of ticks (Streams + pub/sub). Optional: desk runs without it.

* :class:`RedisPublisher` — O(1) ``submit``; batched, one round trip per batch;
  bounded drop-oldest buffer and reconnect with backoff when Redis goes away;
* :mod:`desk.bus.codec` — the compact JSON payload and its decoder;
* :func:`probe_redis` — the ``desk doctor`` check.

Imports only desk.domain, redis and the standard library.
"""

from desk.bus.codec import decode_tick, encode_tick
from desk.bus.doctor import RedisInfo, probe_redis
from desk.bus.publisher import BusError, PublisherStats, RedisPublisher

__all__ = [
    "BusError",
    "PublisherStats",
    "RedisInfo",
    "RedisPublisher",
    "decode_tick",
    "encode_tick",
    "probe_redis",
]
