"""Seconds from data restored to recording again, per gateway fault, and lines left dead.

A Runtime (the desk's engine: broker, chain, order path) connects to an in-process
simulated gateway with a watchlist of 6 symbols and records ticks. For each fault, ten
times: wait for ticks, inject the fault, restore, and time from the restore until every
watchlist line has ticked again (and the recorder has new rows), with the number of lines
still silent 10 s after the restore (goal: 0). Faults:

* ``1101``: connectivity lost, then restored with market data lost (lines dropped at the
  gateway: the desk must request them again);
* ``farm``: connectivity lost (1100 + farm broken), restored with data maintained
  (1102 + farm OK);
* ``drop``: every client connection closed (the socket reconnects);
* ``farm-blip``: the market data farm broken (2103, every line silently dead at the
  gateway) for 0.3 s, then OK (2104): the desk must re-request every line;
* ``silent``: one line (SPY) stops ticking with no message: time from the fault (there
  is no restore) until the feed watchdog (``stale_stock_seconds`` = 1 s here) has
  re-requested it and it ticks;
* ``restart``: the nightly restart: every client dropped, the port closed 1 s; timed from
  the port opening again;
* ``held-id``: a crash as TWS sees it: every client dropped and its client id refused
  with 326 for 1 s; timed from the end of the hold (the client id fallback is off).

Baseline, in the same run and through the same faults: a bare ib_async client (client id
90) on the same gateway with the same six lines and no recovery of its own, which is what
the desk did before it resubscribed on data loss (it re-requested only after its own
reconnect). Its columns are the seconds until its lines ticked again and the lines still
silent ``BASELINE_WAIT`` s after the restore; a bare client that was disconnected is
connected again and re-subscribed before the next run, so each run starts live.

Usage: python bench/bad_nights.py [--runs 10]
"""

from __future__ import annotations

import argparse
import logging
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ib_async import IB, Stock

from desk.domain import ConnectionState
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings
from desk.sim import SimGateway

logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # its own lines for every fault: noise here

SYMBOLS = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN"]
BASELINE_WAIT = 3.0  # s: a live line ticks every 0.05 s here


class Bare:
    """A bare ib_async client with one market data line per symbol and no recovery."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ib = IB()
        self.counts: dict[str, int] = dict.fromkeys(SYMBOLS, 0)
        self.ib.pendingTickersEvent += self._on_tickers

    def _on_tickers(self, tickers) -> None:
        for t in tickers:
            if t.contract.symbol in self.counts:
                self.counts[t.contract.symbol] += 1

    async def ensure_live(self) -> None:
        """Connected with every line ticking: after a fault left it disconnected or its
        lines dead, connect again and/or cancel and re-request the lines (by hand, as a
        user of a bare client would have to)."""
        before = dict(self.counts)
        if self.ib.isConnected() and await wait(lambda: all(self.counts[s] > before[s] for s in SYMBOLS), 1.0):
            return
        if not self.ib.isConnected():
            for _ in range(50):  # the gateway may still be refusing (restart, held id)
                try:
                    await self.ib.connectAsync("127.0.0.1", self.port, clientId=90, timeout=5)
                    break
                except (OSError, ConnectionError, asyncio.TimeoutError):
                    await asyncio.sleep(0.2)
        for ticker in self.ib.tickers():
            self.ib.cancelMktData(ticker.contract)
        contracts = await self.ib.qualifyContractsAsync(*(Stock(sym, "SMART", "USD") for sym in SYMBOLS))
        for contract in contracts:
            self.ib.reqMktData(contract)
        before = dict(self.counts)
        await wait(lambda: all(self.counts[s] > before[s] for s in SYMBOLS), 10.0)

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

    def dead(self, before: dict[str, int]) -> int:
        return sum(1 for s in SYMBOLS if self.counts[s] <= before[s])


async def wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def one(rt: Runtime, gw: SimGateway, bare: Bare, fault: str) -> tuple[float, int, float, int]:
    """(seconds from the restore until every desk line ticked again, desk lines still
    silent, the same two for the bare client)."""
    await bare.ensure_live()
    seqs = {i.con_id: rt.quotes.get(i.con_id).seq for i in rt.broker.watchlist}
    faults = gw.faults
    if fault == "1101":
        faults.connectivity_lost()
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        faults.connectivity_restored(data_lost=True)
    elif fault == "farm":
        faults.connectivity_lost()
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        faults.connectivity_restored(data_lost=False)
    elif fault == "drop":
        t0 = time.monotonic()
        await gw.drop_clients()
    elif fault == "farm-blip":
        faults.farm_broken()
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        faults.farm_ok()
    elif fault == "silent":
        t0 = time.monotonic()
        faults.silence("SPY")
    elif fault == "restart":
        await faults.restart(1.0)
        await wait(lambda: not faults.restarting, 10.0)
        t0 = time.monotonic()
    elif fault == "held-id":
        await faults.hold_client_ids(1.0)
        t0 = time.monotonic() + 1.0
    else:
        raise ValueError(f"unknown fault {fault!r}")
    seqs = {c: rt.quotes.get(c).seq for c in seqs}
    bare_before = bare.snapshot()
    recorded = rt.broker.ticks_recorded

    def all_ticked() -> bool:
        return rt.broker.ticks_recorded > recorded and all(rt.quotes.get(c).seq > s for c, s in seqs.items())

    ok = await wait(all_ticked, 10.0)
    dt = time.monotonic() - t0 if ok else float("nan")
    dead = sum(1 for c, s in seqs.items() if rt.quotes.get(c).seq <= s)
    bare_ok = await wait(lambda: bare.dead(bare_before) == 0, max(0.0, t0 + BASELINE_WAIT - time.monotonic()))
    bare_dt = time.monotonic() - t0 if bare_ok else float("nan")
    bare_dead = bare.dead(bare_before)
    await wait(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, 10.0)
    return dt, dead, bare_dt, bare_dead


def _fmt(times: list[float]) -> tuple[str, str, int]:
    ok = [t for t in times if t == t]
    if not ok:
        return "-", "-", 0
    return f"{statistics.median(ok):.3f}", f"{max(ok):.3f}", len(ok)


async def run(runs: int) -> None:
    gw = SimGateway("127.0.0.1", 0, seed=5, tick_interval=0.05)
    await gw.start()
    folder = Path(tempfile.mkdtemp(prefix="desk-bad-nights-"))
    settings = Settings(
        mode=Mode.SIM,
        ib_port=gw.port,
        database_url=f"sqlite:///{folder / 'ticks.sqlite3'}",
        watchlist=SYMBOLS,
        kill_switch_file=folder / "kill",
        spool_dir=folder / "spool",
        stale_stock_seconds=1.0,
        ib_client_id_fallback=0,
        _env_file=None,
    )
    rt = Runtime(settings)
    await rt.start()
    bare = Bare(gw.port)
    try:
        await wait(lambda: rt.broker.state is ConnectionState.CONNECTED and len(rt.broker.watchlist) == len(SYMBOLS), 20)
        await wait(lambda: all(rt.quotes.get(i.con_id).seq > 3 for i in rt.broker.watchlist), 20)
        faults = ["1101", "farm", "drop", "farm-blip", "silent", "restart", "held-id"]
        print(f"{'':<10} {'desk':>36}   {'baseline: bare ib_async, no recovery':>40}")
        print(
            f"{'fault':<10} {'median s':>9} {'max s':>7} {'dead lines':>11} {'ok':>6}"
            f"   {'median s':>9} {'max s':>7} {'dead lines':>11} {'ok':>6}"
        )
        for fault in faults:
            times, dead, bare_times, bare_dead = [], 0, [], 0
            for _ in range(runs):
                dt, d, bdt, bd = await one(rt, gw, bare, fault)
                times.append(dt)
                dead += d
                bare_times.append(bdt)
                bare_dead += bd
                await asyncio.sleep(0.3)
            med, top, n = _fmt(times)
            bmed, btop, bn = _fmt(bare_times)
            print(
                f"{fault:<10} {med:>9} {top:>7} {dead:>11} {f'{n}/{runs}':>6}"
                f"   {bmed:>9} {btop:>7} {bare_dead:>11} {f'{bn}/{runs}':>6}",
                flush=True,
            )
        print(
            f"dead lines: summed over the runs ({len(SYMBOLS)} lines each); desk within 10 s, "
            f"baseline within {BASELINE_WAIT:.0f} s of the restore"
        )
    finally:
        bare.ib.disconnect()
        await rt.stop()
        await gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(run(parser.parse_args().runs))


if __name__ == "__main__":
    main()
