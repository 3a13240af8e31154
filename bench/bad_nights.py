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

from desk.domain import ConnectionState
from desk.runtime import Runtime
from desk.settings import Mode, Settings
from desk.sim import SimGateway

logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # its own lines for every fault: noise here

SYMBOLS = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN"]


async def wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def one(rt: Runtime, gw: SimGateway, fault: str) -> tuple[float, int]:
    """(seconds from the restore until every line ticked again, lines still silent)."""
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
    recorded = rt.broker.ticks_recorded

    def all_ticked() -> bool:
        return rt.broker.ticks_recorded > recorded and all(rt.quotes.get(c).seq > s for c, s in seqs.items())

    ok = await wait(all_ticked, 10.0)
    dt = time.monotonic() - t0 if ok else float("nan")
    dead = sum(1 for c, s in seqs.items() if rt.quotes.get(c).seq <= s)
    await wait(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, 10.0)
    return dt, dead


async def run(runs: int) -> None:
    gw = SimGateway("127.0.0.1", 0, seed=5, tick_interval=0.05)
    await gw.start()
    folder = Path(tempfile.mkdtemp(prefix="desk-bad-nights-"))
    settings = Settings(mode=Mode.SIM, ib_port=gw.port, database_url=f"sqlite:///{folder / 'ticks.sqlite3'}",
                        watchlist=SYMBOLS, kill_switch_file=folder / "kill", spool_dir=folder / "spool",
                        stale_stock_seconds=1.0, ib_client_id_fallback=0, _env_file=None)
    rt = Runtime(settings)
    await rt.start()
    try:
        await wait(lambda: rt.broker.state is ConnectionState.CONNECTED and len(rt.broker.watchlist) == len(SYMBOLS), 20)
        await wait(lambda: all(rt.quotes.get(i.con_id).seq > 3 for i in rt.broker.watchlist), 20)
        faults = ["1101", "farm", "drop", "farm-blip", "silent", "restart", "held-id"]
        print(f"{'fault':<16} {'median s':>9} {'max s':>7} {'dead lines (sum)':>17}  runs")
        for fault in faults:
            times, dead = [], 0
            for _ in range(runs):
                dt, d = await one(rt, gw, fault)
                times.append(dt)
                dead += d
                await asyncio.sleep(0.3)
            ok = [t for t in times if t == t]
            med = statistics.median(ok) if ok else float("nan")
            print(f"{fault:<16} {med:>9.3f} {max(ok) if ok else float('nan'):>7.3f} {dead:>17}  {len(ok)}/{runs}")
    finally:
        await rt.stop()
        await gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(run(parser.parse_args().runs))


if __name__ == "__main__":
    main()
