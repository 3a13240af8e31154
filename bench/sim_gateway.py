"""Benchmarks of the simulated gateway: ``python bench/sim_gateway.py [--seconds S]``.

Prints, for this machine:

* ``connectAsync`` time of the real ib_async client against the simulator (mean and
  max over several connects, simulator in its own thread as the desk runs it);
* raw throughput: tick frames per second one connection receives when the market runs
  fast (``tick_interval`` 10 ms, ``speed`` 100x, every symbol
  subscribed), read by a minimal frame counter, i.e. what the simulator can produce;
* end-to-end throughput: ticks per second decoded by ib_async from the same feed
  (``Ticker.ticks`` entries), i.e. what the desk's broker would receive.

Figures are printed, not asserted: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from desk.sim.gateway import EmbeddedSim
from desk.sim.probe import count_frames, raw_subscribe_all
from desk.sim.universe import UNIVERSE


async def bench_connect(port: int, n: int = 20) -> tuple[float, float]:
    """Mean and max seconds of ``IB.connectAsync`` over ``n`` connects."""
    from ib_async import IB

    times = []
    for i in range(n):
        ib = IB()
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=100 + i)
        times.append(time.perf_counter() - t0)
        ib.disconnect()
        await asyncio.sleep(0.01)
    return sum(times) / len(times), max(times)


async def bench_ib_async(port: int, seconds: float) -> float:
    """Ticks per second decoded by ib_async with every symbol subscribed."""
    from ib_async import IB, Stock

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=901)
    contracts = [Stock(s, "SMART", "USD") for s in UNIVERSE]
    await ib.qualifyContractsAsync(*contracts)
    count = 0

    def on_pending(tickers):
        nonlocal count
        for t in tickers:
            count += len(t.ticks)

    for c in contracts:
        ib.reqMktData(c)
    await asyncio.sleep(0.5)
    ib.pendingTickersEvent += on_pending
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    ib.pendingTickersEvent -= on_pending
    ib.disconnect()
    return count / elapsed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--speed", type=float, default=100.0)
    ap.add_argument("--tick-interval", type=float, default=0.01)
    args = ap.parse_args(argv)

    with EmbeddedSim(seed=7) as sim:
        mean, worst = asyncio.run(bench_connect(sim.port))
        print(f"connectAsync: mean {mean * 1000:.1f} ms, max {worst * 1000:.1f} ms (20 connects, simulator in its own thread)")

    kw = dict(seed=7, tick_interval=args.tick_interval, speed=args.speed)
    with EmbeddedSim(**kw) as sim:
        sock = raw_subscribe_all(sim.port)
        count_frames(sock, 0.5)  # warm-up: handshake and initial snapshots
        frames = count_frames(sock, args.seconds)
        sock.close()
        dropped = sim.call(lambda gw: sum(s.dropped_ticks for s in gw.sessions))
        print(
            f"raw feed: {frames / args.seconds:,.0f} frames/s to one connection "
            f"({len(UNIVERSE)} symbols, tick_interval {args.tick_interval}s, speed "
            f"{args.speed:g}x; dropped {dropped})"
        )

    with EmbeddedSim(**kw) as sim:
        rate = asyncio.run(bench_ib_async(sim.port, args.seconds))
        print(
            f"ib_async end to end: {rate:,.0f} ticks/s decoded "
            f"(simulator thread + ib_async loop in one process, {threading.active_count()} threads)"
        )


if __name__ == "__main__":
    main()
