"""Options in the simulated gateway: chain loading, option tick rate, repricing cost.

Prints, with baselines measured in the same run:

1. **one full expiry's contract details through ib_async** (``reqContractDetailsAsync``
   for the largest SPY expiry, the way the desk loads a chain): median wall time and
   contracts/s, against one stock's contract details (the request round trip alone);
2. **option ticks/s**: 100 streaming option lines (IB's default line limit) on a market
   sped up ``--speed`` times; tick messages per second the gateway queued and ticker
   updates per second ib_async delivered, against the same run's stock lines;
3. **repricing per market step**, without sockets: ``OptionEngine.step`` (vectorized
   quotes, IV at bid/ask/last, Greeks, encoding) over N subscribed options, against a
   naive per-option loop (scalar ``bsm_greeks`` + three scalar ``implied_vol`` calls).

The machine may be shared: figures are wall times; look at the ratios.

Usage: python bench/sim_options.py [--seconds 5] [--speed 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
from ib_async import IB, Option, Stock

from desk.domain.calendar import exchange_date
from desk.pricing import bsm_greeks, implied_vol
from desk.sim import EmbeddedSim, SimGateway
from desk.sim.chain import listing_for
from desk.sim.ports import OptionLine


async def chain_loading(port: int, runs: int) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1)
    try:
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
        smart = next(c for c in chains if c.exchange == "SMART")
        chain = listing_for(exchange_date(datetime.now(UTC))).chain("SPY")
        biggest = max(chain.expiries, key=lambda e: len(e.strikes)).expiry
        assert biggest in smart.expirations
        stock_times, chain_times = [], []
        n = 0
        for _ in range(runs):
            t0 = time.perf_counter()
            await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
            stock_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cds = await ib.reqContractDetailsAsync(Option("SPY", biggest, exchange="SMART"))
            chain_times.append(time.perf_counter() - t0)
            n = len(cds)
        s, c = statistics.median(stock_times), statistics.median(chain_times)
        print(f"1. contract details, SPY {biggest} ({n} contracts): median {c * 1000:.1f} ms = {n / c:,.0f} contracts/s")
        print(
            f"   baseline one stock: {s * 1000:.2f} ms; ratio {c / s:.1f}x for {n}x the "
            f"contracts ({c / n / s * 100:.1f} % of a round trip per contract)"
        )
    finally:
        ib.disconnect()


async def tick_rate(seconds: float, speed: float) -> None:
    sim = EmbeddedSim(seed=7, tick_interval=0.05, speed=speed, max_tickers=200)
    sim.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", sim.port, clientId=2)
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        chain = listing_for(exchange_date(sim.call(lambda gw: gw.clock.now()))).chain("SPY")
        exps = [e for e in chain.expiries[:3]]
        contracts = []
        for e in exps:
            near = sorted(e.strikes, key=lambda k: abs(k - 600))[:17]
            for k in near:
                contracts += [Option("SPY", e.expiry, k, r, "SMART") for r in ("C", "P")]
        contracts = contracts[:100]
        await ib.qualifyContractsAsync(*contracts)
        stocks = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "AMD")]
        await ib.qualifyContractsAsync(*stocks)
        option_tickers = [ib.reqMktData(c) for c in contracts]
        stock_tickers = [ib.reqMktData(c) for c in stocks]
        await asyncio.sleep(1.0)
        updates = {"opt": 0, "stk": 0}
        opt_ids = {id(t) for t in option_tickers}

        def on_pending(tickers) -> None:
            for t in tickers:
                updates["opt" if id(t) in opt_ids else "stk"] += 1

        ib.pendingTickersEvent += on_pending
        sent0 = sim.call(lambda gw: (gw.options.ticks_sent, gw.ticks_sent))
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        sent1 = sim.call(lambda gw: (gw.options.ticks_sent, gw.ticks_sent))
        opt_msgs = sent1[0] - sent0[0]
        all_msgs = sent1[1] - sent0[1]
        stk_msgs = all_msgs - opt_msgs
        print(
            f"2. streaming at speed {speed:g} for {elapsed:.1f} s: {len(option_tickers)} option "
            f"lines, {len(stock_tickers)} stock lines"
        )
        print(
            f"   option tick messages: {opt_msgs / elapsed:,.0f}/s "
            f"({opt_msgs / elapsed / len(option_tickers):,.1f}/s per line); ticker updates "
            f"{updates['opt'] / elapsed:,.0f}/s"
        )
        print(
            f"   baseline stock tick messages: {stk_msgs / elapsed:,.0f}/s "
            f"({stk_msgs / elapsed / len(stock_tickers):,.1f}/s per line); ticker updates "
            f"{updates['stk'] / elapsed:,.0f}/s"
        )
    finally:
        ib.disconnect()
        sim.stop()


def repricing(sizes: list[int], steps: int = 20) -> None:
    print("3. repricing per market step (OptionEngine.step, all rows subscribed)")
    for n in sizes:
        gw = SimGateway(seed=7, max_tickers=10_000)
        listing = gw.options.source.listing
        opts = [o for sym in ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "TSLA", "META") for o in listing.find(sym)][:n]
        rows = gw.options._activate_many(opts)
        session = SimpleNamespace(out=[])
        for row, opt in zip(rows, opts):
            line = OptionLine(session, row + 1, row, opt, False, frozenset())
            gw.options._lines[row].append(line)
            gw.options.rows.nsubs[row] += 1
        times = []
        frames = 0
        for _ in range(steps):
            gw.market.step(0.25)
            t0 = time.perf_counter()
            frames += gw.options.step(0.25, gw.epoch_ms())
            times.append(time.perf_counter() - t0)
            session.out.clear()
        vec = statistics.median(times)
        # naive baseline: one contract at a time (model Greeks + IV at bid, ask, last)
        r = gw.options.rows
        now = gw.clock.time()
        sample = min(n, 300)
        t0 = time.perf_counter()
        for i in range(sample):
            S, K, T, q = r.und_price[i], r.strike[i], r.years(now, slice(i, i + 1))[0], r.q[i]
            c = bool(r.is_call[i])
            bsm_greeks(c, S, K, T, gw.options.rate, q, r.model_iv[i])
            for p in (r.bid[i], r.ask[i], r.last[i]):
                if p > 0:
                    iv = implied_vol(c, p, S, K, T, gw.options.rate, q).iv
                    if np.isfinite(iv):
                        bsm_greeks(c, S, K, T, gw.options.rate, q, iv)
        naive = (time.perf_counter() - t0) / sample * n
        print(
            f"   {n:>6} options: {vec * 1000:7.2f} ms per step "
            f"({n / vec:,.0f} options/s, {frames / steps:,.0f} frames/step); "
            f"naive per-option loop {naive * 1000:8.1f} ms -> {naive / vec:,.0f}x faster"
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with EmbeddedSim(seed=7) as sim:
        await chain_loading(sim.port, args.runs)
    await tick_rate(args.seconds, args.speed)
    repricing([100, 1000, 4000])


if __name__ == "__main__":
    asyncio.run(main())
