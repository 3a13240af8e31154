"""Cost of the simulator's durable state (``desk sim --state FILE``, desk.sim.journal).

Prints, measured in one run on this machine, with and without a state file (in a
temporary folder on the file system of ``--dir``, default the system's temp folder):

* **resting orders placed -> Submitted**, orders per second through the real ib_async
  client (its 45 requests/s throttle off, so the gateway is what is measured); with
  ``--state`` every placeOrder is one journal batch, one write and one fdatasync;
* **marketable orders -> Filled**, orders per second (each batch then also carries the
  execution and the account);
* **fdatasync** of a one-line append alone (median and p95, ms): the floor of a batch;
* **snapshot** (compaction) time and size with every order above in it, and the
  **restart** time of a gateway reading the snapshot and a journal of ``--replay``
  batches back.

Figures are printed, not asserted: compare runs on the same machine.

Usage: python bench/sim_state.py [--orders 1000] [--replay 2000] [--dir PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ib_async import IB, LimitOrder, Stock

from desk.sim import SimGateway

CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}  # we step by hand
STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA"]


async def connect(gw: SimGateway, client_id: int) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id)
    ib.client.MaxRequests = 0  # no client-side throttle: measure the gateway
    return ib


async def order_rates(state: Path | None, n_orders: int) -> dict[str, float]:
    """Orders/s to Submitted (resting) and to Filled (marketable), and journal figures."""
    gw = SimGateway(seed=7, state_file=state, cash=1e9, **CALM)
    await gw.start()
    ib = await connect(gw, 1)
    out: dict[str, float] = {}
    try:
        contracts = await ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in STOCKS])
        t0 = time.perf_counter()
        trades = []
        for i in range(n_orders):
            c = contracts[i % len(contracts)]
            price = round(gw.quote_for(c.conId).bid * 0.5, 2)
            trades.append(ib.placeOrder(c, LimitOrder("BUY", 1, price)))
        while not all(t.orderStatus.status == "Submitted" for t in trades):
            await asyncio.sleep(0.001)
        out["resting"] = n_orders / (time.perf_counter() - t0)
        n_fill = max(50, n_orders // 5)
        t0 = time.perf_counter()
        fills = []
        for i in range(n_fill):
            c = contracts[i % len(contracts)]
            q = gw.quote_for(c.conId)
            fills.append(ib.placeOrder(c, LimitOrder("BUY" if i % 2 else "SELL", 1, q.ask if i % 2 else q.bid)))
        while not all(t.isDone() for t in fills):
            await asyncio.sleep(0.001)
        out["filled"] = n_fill / (time.perf_counter() - t0)
        out["fill_ok"] = sum(t.orderStatus.status == "Filled" for t in fills) / n_fill
        store = gw.orders.journal
        if store is not None:
            out["batches"] = store.batches
            out["snapshots"] = store.snapshots
            t0 = time.perf_counter()
            store.snapshot()
            out["snapshot_s"] = time.perf_counter() - t0
            out["snapshot_bytes"] = state.stat().st_size if state else 0
            out["orders_kept"] = len(gw.orders.orders)
    finally:
        ib.disconnect()
        await gw.stop()
    return out


def fsync_latency(folder: Path, n: int = 300) -> tuple[float, float]:
    """Median and p95 ms of append + fdatasync of one 1,000-byte line."""
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sync = getattr(os, "fdatasync", os.fsync)
    line = b"x" * 999 + b"\n"
    lat = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, line)
            sync(fd)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    return statistics.median(lat), lat[int(0.95 * len(lat))]


async def restart_time(state: Path, n_batches: int) -> tuple[float, int, int]:
    """Seconds for a gateway to start on ``state`` after ``n_batches`` journaled
    modifications (a crash: no last snapshot), the journal's size and the orders kept."""
    from desk.sim import journal

    gw = SimGateway(seed=7, state_file=state, cash=1e9, **CALM)
    await gw.start()
    ib = await connect(gw, 2)
    try:
        [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        low = round(gw.quote_for(c.conId).bid * 0.5, 2)
        trade = ib.placeOrder(c, LimitOrder("BUY", 1, low))
        while trade.orderStatus.status != "Submitted":
            await asyncio.sleep(0.001)
        store = gw.orders.journal
        assert store is not None
        store.compact_bytes = 1 << 40  # let the journal grow: this measures its replay
        before = store.batches
        for i in range(n_batches):  # modifications: one batch each
            trade.order.lmtPrice = low + 0.01 * (1 + i % 50)
            ib.placeOrder(c, trade.order)
        while store.batches - before < n_batches:
            await asyncio.sleep(0.001)
        crashed = state.with_name("crashed.json")  # the files as kill -9 leaves them
        shutil.copyfile(state, crashed)
        shutil.copyfile(journal.journal_path(state), journal.journal_path(crashed))
        size = journal.journal_path(crashed).stat().st_size
        orders = len(gw.orders.orders)
    finally:
        ib.disconnect()
        await gw.stop()
    t0 = time.perf_counter()
    again = SimGateway(seed=7, state_file=crashed, cash=1e9, **CALM)
    await again.start()
    took = time.perf_counter() - t0
    await again.stop()
    return took, size, orders


async def main(n_orders: int, n_replay: int, folder: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        base = Path(tmp)
        plain = await order_rates(None, n_orders)
        durable = await order_rates(base / "state.json", n_orders)
        med, p95 = fsync_latency(base)
        took, jsize, kept = await restart_time(base / "state.json", n_replay)
    print(f"state folder: {base.parent} ({n_orders} resting, {max(50, n_orders // 5)} marketable orders)")
    print(
        f"resting orders -> Submitted:   {plain['resting']:8.0f} orders/s without --state, "
        f"{durable['resting']:8.0f} with (x{durable['resting'] / plain['resting']:.2f})"
    )
    print(
        f"marketable orders -> Filled:   {plain['filled']:8.0f} orders/s without --state, "
        f"{durable['filled']:8.0f} with (x{durable['filled'] / plain['filled']:.2f}); "
        f"filled {plain['fill_ok']:.0%} / {durable['fill_ok']:.0%}"
    )
    print(f"journal: {durable['batches']:.0f} batches, {durable['snapshots']:.0f} snapshots (compactions, the start's included)")
    print(f"fdatasync of a 1 kB append:    median {med:.3f} ms, p95 {p95:.3f} ms")
    print(
        f"snapshot of {durable['orders_kept']:.0f} orders:     "
        f"{durable['snapshot_s'] * 1e3:8.1f} ms, {durable['snapshot_bytes'] / 1e6:.2f} MB"
    )
    print(
        f"restart after a crash:         {took * 1e3:8.1f} ms ({kept} orders in the "
        f"snapshot, {n_replay} journal batches = {jsize / 1e6:.2f} MB replayed)"
    )


if __name__ == "__main__":
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--replay", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="folder for the state files (its file system is what fsync costs)")
    args = ap.parse_args()
    asyncio.run(main(args.orders, args.replay, args.dir))
