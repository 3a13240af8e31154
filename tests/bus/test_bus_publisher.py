"""RedisPublisher against a real Redis: stream entries, pub/sub delivery, outages."""

from __future__ import annotations

import asyncio
import math
from datetime import timezone

import pytest
import redis.asyncio as aredis
from bus_testlib import make_ticks, same_tick
from hypothesis import given
from hypothesis import strategies as st

from desk.bus import BusError, RedisPublisher, decode_tick, encode_tick, probe_redis
from desk.domain.models import TickRecord

finite = st.floats(allow_nan=False, allow_infinity=False)
maybe_nan = finite | st.just(math.nan)


@given(
    time=st.datetimes(timezones=st.just(timezone.utc)),
    con_id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    symbol=st.text(max_size=30),
    kind=st.sampled_from(["Q", "T"]),
    values=st.lists(maybe_nan, min_size=6, max_size=6),
)
def test_payload_round_trip(time, con_id, symbol, kind, values):
    rec = TickRecord(time, con_id, symbol, kind, *values)
    assert same_tick(rec, decode_tick(encode_tick(rec)))


def test_payload_is_compact_json_with_null_for_absent():
    rec = make_ticks(2)[1]._replace(ask=math.inf)  # a quote: price and size absent
    text = encode_tick(rec)
    assert text.startswith("[") and " " not in text.replace("BRK B", "")
    assert text.endswith("null,null]") and ",null," in text  # nan and inf are null
    assert decode_tick(text).time == rec.time


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("use_script", [True, False], ids=["script", "pipeline"])
async def test_stream_entries_and_pubsub_delivery(redis_url, keys, use_script):
    rows = make_ticks(3000)
    client = aredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(keys["prefix"] + "*")
    await pubsub.get_message(timeout=1)  # subscription confirmation
    received: list[tuple[str, TickRecord]] = []

    async def listen() -> None:
        while len(received) < len(rows):
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if msg and msg["type"] == "pmessage":
                received.append((msg["channel"].decode(), decode_tick(msg["data"])))

    listener = asyncio.create_task(listen())
    pub = RedisPublisher(redis_url, stream=keys["stream"], channel_prefix=keys["prefix"], maxlen=None, use_script=use_script)
    await pub.start()
    assert pub.mode == ("script" if use_script else "pipeline")
    for row in rows:
        pub.submit(row)
    assert await pub.flush(timeout=10)
    await asyncio.wait_for(listener, 10)
    await pub.close()

    assert pub.stats.published == len(rows) and pub.stats.errors == 0 and pub.stats.queued == 0
    entries = await client.xrange(keys["stream"])
    assert len(entries) == len(rows)
    for (_, fields), row in zip(entries, rows, strict=True):
        assert set(fields) == {b"tick"}
        assert same_tick(row, decode_tick(fields[b"tick"]))
    assert all(same_tick(row, got) for row, (_, got) in zip(rows, received, strict=True))
    assert all(ch == keys["prefix"] + row.symbol for row, (ch, _) in zip(rows, received, strict=True))
    await pubsub.aclose()
    await client.aclose()


async def test_stream_is_trimmed_approximately(redis_url, keys):
    async with RedisPublisher(redis_url, stream=keys["stream"], channel_prefix=keys["prefix"], maxlen=500, max_batch=300) as pub:
        pub.submit_many(make_ticks(5000))
    client = aredis.from_url(redis_url)
    n = await client.xlen(keys["stream"])
    await client.aclose()
    assert 500 <= n < 1500


async def test_flushes_by_time_without_close(redis_url, keys):
    pub = RedisPublisher(redis_url, stream=keys["stream"], channel_prefix=keys["prefix"], flush_interval=0.05)
    await pub.start()
    pub.submit(make_ticks(1)[0])
    await _wait_for(lambda: pub.stats.published == 1, timeout=2)
    await pub.close()
    await pub.close()  # idempotent
    pub.submit(make_ticks(1)[0])  # ignored after close
    assert pub.stats.queued == 0


async def test_outage_counts_errors_drops_oldest_and_reconnects(redis_url, redis_proxy, keys):
    proxy, url = redis_proxy
    pub = RedisPublisher(
        url,
        stream=keys["stream"],
        channel_prefix=keys["prefix"],
        maxlen=None,
        max_batch=100,
        max_buffer=1000,
        flush_interval=0.01,
        retry_min=0.02,
        retry_max=0.1,
    )
    await pub.start()
    rows = make_ticks(3500)
    pub.submit_many(rows[:200])
    assert await pub.flush(timeout=5)

    proxy.cut()
    pub.submit_many(rows[200:3200])  # 3000 ticks while Redis is away
    await _wait_for(lambda: pub.stats.errors >= 2)
    s = pub.stats
    assert not s.connected and "127.0.0.1" in s.last_error
    assert s.queued <= 1000 and s.dropped >= 2000

    proxy.restore()
    pub.submit_many(rows[3200:])
    assert await pub.flush(timeout=10)
    assert pub.stats.connected
    await pub.close()
    s = pub.stats
    assert s.published + s.dropped >= 3500 and s.queued == 0
    client = aredis.from_url(redis_url)
    entries = await client.xrange(keys["stream"])
    await client.aclose()
    got = [decode_tick(f[b"tick"]) for _, f in entries]
    # the first 200 went out before the outage; the newest ticks survive it (oldest dropped)
    assert all(same_tick(a, b) for a, b in zip(rows[:200], got[:200], strict=True))
    # the buffer kept the newest max_buffer ticks, which all went out after the restore
    assert all(same_tick(a, b) for a, b in zip(rows[-1000:], got[-1000:], strict=True))
    assert len(got) == 200 + 1000


async def test_close_gives_up_when_redis_stays_away(redis_url, redis_proxy, keys):
    proxy, url = redis_proxy
    pub = RedisPublisher(url, stream=keys["stream"], channel_prefix=keys["prefix"], retry_min=0.02, retry_max=0.05)
    await pub.start()
    proxy.cut()
    pub.submit_many(make_ticks(50))
    await pub.close(timeout=0.3)
    assert pub.stats.dropped == 50 and "unsent" in pub.stats.last_error


async def test_start_fails_clearly_when_unreachable():
    pub = RedisPublisher("redis://127.0.0.1:1/0", connect_timeout=1)
    with pytest.raises(BusError, match=r"cannot connect to Redis at 127\.0\.0\.1:1/0: connection refused"):
        await pub.start()


def test_bad_url_and_parameters():
    with pytest.raises(BusError, match="must start with redis://"):
        RedisPublisher("http://127.0.0.1:6379")
    with pytest.raises(BusError, match="max_batch"):
        RedisPublisher("redis://127.0.0.1:6379/0", max_batch=10, max_buffer=5)


async def test_probe_redis(redis_url, keys):
    info = await probe_redis(redis_url, stream=keys["stream"])
    assert info.reachable and info.server_version and info.stream_length is None
    async with RedisPublisher(redis_url, stream=keys["stream"], channel_prefix=keys["prefix"]) as pub:
        pub.submit_many(make_ticks(10))
    info = await probe_redis(redis_url, stream=keys["stream"])
    assert info.stream_length == 10 and "10 entries" in info.summary()
    down = await probe_redis("redis://127.0.0.1:1/0")
    assert not down.reachable and down.error == "cannot connect to Redis at 127.0.0.1:1/0: connection refused"
