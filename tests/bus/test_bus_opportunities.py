"""Opportunities to the real Redis: one stream entry and one pub/sub message each."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aredis

from desk.bus import BusError
from desk.bus.opportunities import OpportunityPublisher


async def test_payloads_go_to_the_stream_and_the_channel(redis_url, keys) -> None:
    channel = keys["prefix"] + "opps"
    sub = aredis.from_url(redis_url)
    pubsub = sub.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    pub = OpportunityPublisher(redis_url, stream=keys["stream"], channel=channel, maxlen=100)
    await pub.start()
    try:
        payloads = [{"key": f"SPY|box|long box|{i}", "state": "new", "edge_total": 10.0 * i, "simulated": True} for i in range(3)]
        pub.submit(payloads)
        assert await pub.flush(5.0) and pub.published == 3 and pub.errors == 0
        entries = await sub.xrange(keys["stream"])
        assert [json.loads(e[1][b"opportunity"])["key"] for e in entries] == [p["key"] for p in payloads]
        got = []
        while len(got) < 3:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            assert msg is not None, "pub/sub message missing"
            got.append(json.loads(msg["data"]))
        assert got == payloads
    finally:
        await pub.close()
        await pubsub.aclose()
        await sub.aclose()


async def test_unreachable_redis_is_a_bus_error() -> None:
    with pytest.raises(BusError):
        OpportunityPublisher("http://nope")
    pub = OpportunityPublisher("redis://127.0.0.1:1/0")
    with pytest.raises(BusError, match="127.0.0.1:1"):
        await pub.start()
    await pub.close()
