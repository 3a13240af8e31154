"""Consumers of the tick stream through Redis consumer groups (desk.bus.consumer, desk tail),
against the real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from bus_testlib import make_ticks, same_tick

from desk.bus import RedisPublisher
from desk.bus.consumer import TickConsumer, format_tick


async def _publish(redis_url, stream, ticks) -> None:
    async with RedisPublisher(redis_url, stream=stream, channel_prefix=stream + ":ch:", maxlen=None) as pub:
        for t in ticks:
            pub.submit(t)


async def _drain(c: TickConsumer, want: int) -> list:
    got = []
    for _ in range(50):
        got += await c.read(count=100, block=0.1)
        if len(got) >= want:
            break
    await c.ack()
    return got


async def test_a_group_shares_the_stream_and_each_group_sees_all(redis_url, keys) -> None:
    stream = keys["stream"]
    ticks = make_ticks(300, seed=8)
    a = TickConsumer(redis_url, stream=stream, group="g1", consumer="a", start_at="0")
    b = TickConsumer(redis_url, stream=stream, group="g1", consumer="b", start_at="0")
    other = TickConsumer(redis_url, stream=stream, group="g2", consumer="x", start_at="0")
    for c in (a, b, other):
        await c.start()
    try:
        await _publish(redis_url, stream, ticks)
        first = await a.read(count=120, block=1.0)  # a takes some, b the rest
        await a.ack()
        rest = await _drain(b, len(ticks) - len(first))
        ids_a, ids_b = {i for i, _ in first}, {i for i, _ in rest}
        assert ids_a and ids_b and ids_a.isdisjoint(ids_b) and len(ids_a | ids_b) == len(ticks)
        everything = await _drain(other, len(ticks))
        assert len(everything) == len(ticks)
        assert all(same_tick(x, y) for (_, x), y in zip(everything, ticks))
        # acknowledged: nothing pending in g1; a restarted consumer gets only what is new
        assert await a.read(count=10, block=None) == []
    finally:
        for c in (a, b, other):
            await c.close()


async def test_desk_tail_prints_the_stream(redis_url, keys) -> None:
    stream = keys["stream"]
    ticks = make_ticks(20, seed=9)
    await _publish(redis_url, stream, ticks)
    env = {**os.environ, "DESK_REDIS_URL": redis_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "desk", "tail", "--stream", stream, "--from-start", "--count", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [format_tick(t) for t in ticks[:5]]
    # the same group again: the next five, not what the first run read past its --count
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "desk", "tail", "--stream", stream, "--from-start", "--count", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [format_tick(t) for t in ticks[5:10]]


async def test_desk_tail_without_redis_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DESK_REDIS_URL"}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "desk", "tail", "--count", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert (
        proc.returncode == 2 and proc.stderr.strip() == "desk: tail needs DESK_REDIS_URL (the Redis the collector publishes to)"
    )
