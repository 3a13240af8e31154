"""End-to-end tick throughput: simulator -> ib_async -> broker -> recorder (budget >= 20,000/s, zero loss).

The simulator runs in its own thread (as in the desk) with every universe symbol
subscribed and the market sped up; the broker and the recorder run on this process's
event loop, exactly as in `desk --headless`. Two runs on the same feed settings:

* baseline: a bare ib_async client that only counts ``Ticker.ticks`` (no broker, no recorder);
* desk: the Broker translating ticks to rows and the TickRecorder writing them.

Figures printed: IB ticks/s decoded, rows/s recorded, the ratio desk / baseline, and the
loss checks: frames the simulator dropped for a slow client, rows submitted vs written, and
whether every symbol's final bid/ask/last/volume at the broker equals the simulator's
after the market is paused.

Usage: python bench/e2e.py [--seconds 10] [--speed 300] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time

from ib_async import IB, Stock

from desk.broker import Broker
from desk.sim import EmbeddedSim
from desk.sim.universe import UNIVERSE
from desk.store import TickRecorder

PG_URL = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _sim(speed: float) -> EmbeddedSim:
    return EmbeddedSim(port=0, seed=7, tick_interval=0.01, speed=speed)


async def baseline(speed: float, seconds: float) -> float:
    """IB ticks per second a bare ib_async client decodes from the same feed."""
    sim = _sim(speed)
    port = sim.start()
    ib = IB()
    count = 0

    def on_pending(tickers) -> None:
        nonlocal count
        for t in tickers:
            count += len(t.ticks)

    try:
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        ib.pendingTickersEvent += on_pending
        for s in UNIVERSE.values():
            c = Stock(s.symbol, "SMART", "USD")
            c.conId = s.con_id
            ib.reqMktData(c)
        await asyncio.sleep(1.0)
        count, t0 = 0, time.perf_counter()
        await asyncio.sleep(seconds)
        return count / (time.perf_counter() - t0)
    finally:
        ib.disconnect()
        sim.stop()


async def desk_run(speed: float, seconds: float, url: str) -> dict[str, float]:
    sim = _sim(speed)
    port = sim.start()
    recorder = TickRecorder(url, table=f"bench_e2e_{os.getpid()}")
    await recorder.start()
    ib_ticks = 0
    broker = Broker("127.0.0.1", port, 1, symbols=list(UNIVERSE), sinks=[recorder.submit])

    def count(tickers) -> None:
        nonlocal ib_ticks
        for t in tickers:
            ib_ticks += len(t.ticks)

    broker.ib.pendingTickersEvent += count
    lag: list[float] = []
    stop_probe = asyncio.Event()

    async def probe() -> None:  # event-loop lag while the broker and recorder work
        loop = asyncio.get_running_loop()
        while not stop_probe.is_set():
            t = loop.time()
            await asyncio.sleep(0.01)
            lag.append(loop.time() - t - 0.01)

    try:
        await broker.start()
        if not await broker.wait_connected(10):
            raise SystemExit(f"broker did not connect: {broker.state}")
        await asyncio.sleep(1.0)
        probe_task = asyncio.create_task(probe())
        rows0, ticks0, t0 = broker.ticks_recorded, ib_ticks, time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        rows, ticks = broker.ticks_recorded - rows0, ib_ticks - ticks0
        stop_probe.set()
        await probe_task

        # pause the market, let the last frames arrive, then compare final state
        def pause(gw) -> int:
            gw._ticker.cancel()
            return sum(s.dropped_ticks for s in gw.sessions)

        dropped = sim.call(pause)
        await asyncio.sleep(1.0)
        snaps = sim.call(lambda gw: {s: gw.market.snapshot(s) for s in UNIVERSE})
        mismatched = []
        for inst in broker.watchlist:
            q, s = broker.quotes.get(inst.con_id), snaps[inst.symbol]
            if not (q.bid == s.bid and q.ask == s.ask and q.last == s.last and math.isclose(q.volume, s.volume)):
                mismatched.append(inst.symbol)
        await recorder.flush()
        stats = recorder.stats
        lag.sort()
        return {
            "ib_ticks_per_s": ticks / elapsed,
            "rows_per_s": rows / elapsed,
            "submitted": broker.ticks_recorded,
            "written": stats.written,
            "dropped_frames": dropped,
            "mismatched": len(mismatched),
            "symbols": len(broker.watchlist),
            "lag_p99_ms": lag[int(len(lag) * 0.99) - 1] * 1000 if lag else math.nan,
        }
    finally:
        await broker.stop()
        await recorder.close()
        sim.stop()
        await _drop_table(url, f"bench_e2e_{os.getpid()}")


async def _drop_table(url: str, table: str) -> None:
    if not url.startswith("postgresql"):
        return
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"drop table if exists {table}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--speed", type=float, default=300.0, help="market seconds per wall second")
    ap.add_argument("--url", default=PG_URL, help="database URL (default: the test PostgreSQL); 'sqlite' for a temp file")
    args = ap.parse_args()
    url = args.url
    if url == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/e2e.sqlite3"
    base = asyncio.run(baseline(args.speed, args.seconds))
    res = asyncio.run(desk_run(args.speed, args.seconds, url))
    print(f"feed: {res['symbols']:.0f} symbols, speed {args.speed:g}x, {args.seconds:g} s, recorder -> {url.split('@')[-1]}")
    print(f"baseline  bare ib_async client: {base:10,.0f} IB ticks/s")
    print(
        f"desk      ib_async in broker:   {res['ib_ticks_per_s']:10,.0f} IB ticks/s  ({res['ib_ticks_per_s'] / base:.2f}x baseline)"
    )
    print(
        f"desk      rows recorded:        {res['rows_per_s']:10,.0f} rows/s      (budget 20,000/s: {'met' if res['rows_per_s'] >= 20000 else 'MISSED'})"
    )
    print(f"event-loop lag p99: {res['lag_p99_ms']:.1f} ms")
    loss = res["dropped_frames"] or res["submitted"] != res["written"] or res["mismatched"]
    print(
        f"loss checks: simulator dropped frames {res['dropped_frames']:.0f}; rows submitted {res['submitted']:,.0f} "
        f"written {res['written']:,.0f}; symbols whose final book differs from the simulator: {res['mismatched']:.0f}"
        f" -> {'LOSS' if loss else 'zero loss'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
