"""Order engine figures of the simulated gateway (desk.sim.matching).

Prints, measured in one run on this machine:

* **market step cost** (``gateway.step()``, 0.25 s of market, every symbol): with no
  orders (the baseline) and with N resting orders spread over 10 stocks and some options;
  the ratio to the baseline is what matching adds to the tick loop (it only looks at
  instruments that have working orders);
* **matching pass alone** (``gateway.orders.on_step()``) per working order;
* **order round trips through ib_async** (placeOrder -> Filled for marketable orders;
  placeOrder -> Submitted for resting ones), orders per second, with ib_async's own
  45 requests/s throttle switched off so the gateway is what is measured;
* **what-if latency** (``whatIfOrderAsync``), median and p95 in ms.

Usage: python bench/orders.py [--orders 1000] [--steps 400]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from ib_async import IB, LimitOrder, Option, Stock

from desk.sim import SimGateway

CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}  # we step by hand
STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA"]


def time_steps(gw: SimGateway, steps: int) -> float:
    """Mean seconds per gateway.step()."""
    t0 = time.perf_counter()
    for _ in range(steps):
        gw.step()
    return (time.perf_counter() - t0) / steps


def naive_scan(gw: SimGateway, steps: int) -> float:
    """Seconds per step of the naive alternative: look every working order's quote up
    and test it, whether or not the quote can reach it (the baseline of the books)."""
    orders = gw.orders.open_orders()
    t0 = time.perf_counter()
    hits = 0
    for _ in range(steps):
        for o in orders:
            q = gw.quote_for(o.contract.con_id)
            if o.action == "BUY" and 0 < q.ask <= o.lmt_price:
                hits += 1
            elif o.action == "SELL" and q.bid >= o.lmt_price:
                hits += 1
    assert hits == 0
    return (time.perf_counter() - t0) / steps


async def connect(gw: SimGateway, client_id: int) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id)
    ib.client.MaxRequests = 0  # no client-side throttle: measure the gateway
    return ib


async def main(n_orders: int, steps: int) -> None:
    gw = SimGateway(seed=7, **CALM)
    await gw.start()
    ib = await connect(gw, 1)
    try:
        contracts = await ib.qualifyContractsAsync(*[Stock(s, "SMART", "USD") for s in STOCKS])
        params = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", contracts[0].conId)
        p = next(x for x in params if x.exchange == "SMART")
        spot = gw.quote_for(contracts[0].conId).bid
        strikes = sorted(p.strikes, key=lambda k: abs(k - spot))[:10]
        options = await ib.qualifyContractsAsync(*[Option("SPY", p.expirations[2], k, "C", "SMART") for k in strikes])
        options = [o for o in options if o and o.conId]
        for o in options:  # quote them now so that the baseline steps them too
            gw.quote_for(o.conId)

        # 1. baseline: no orders
        base = time_steps(gw, steps)

        # 2. resting orders (far from the market: they never fill)
        t0 = time.perf_counter()
        trades = []
        instruments = contracts + options
        for i in range(n_orders):
            c = instruments[i % len(instruments)]
            q = gw.quote_for(c.conId)
            price = round(max(q.bid * 0.5, 0.05), 2)
            trades.append(ib.placeOrder(c, LimitOrder("BUY", 1, price)))
        while not all(t.orderStatus.status == "Submitted" for t in trades):
            await asyncio.sleep(0.001)
        resting_rate = n_orders / (time.perf_counter() - t0)
        working = len(gw.orders.open_orders())
        loaded = time_steps(gw, steps)
        t0 = time.perf_counter()
        for _ in range(steps):
            gw.orders.on_step()
        match_only = (time.perf_counter() - t0) / steps
        naive = naive_scan(gw, steps)
        ib.reqGlobalCancel()
        while gw.orders.open_orders():
            await asyncio.sleep(0.01)

        # 3. marketable orders: placeOrder -> Filled round trips
        n_fill = max(50, n_orders // 5)
        t0 = time.perf_counter()
        fills = []
        for i in range(n_fill):
            c = contracts[i % len(contracts)]
            q = gw.quote_for(c.conId)
            fills.append(ib.placeOrder(c, LimitOrder("BUY" if i % 2 else "SELL", 1, q.ask if i % 2 else q.bid)))
        while not all(t.isDone() for t in fills):
            await asyncio.sleep(0.001)
        fill_rate = n_fill / (time.perf_counter() - t0)
        filled = sum(t.orderStatus.status == "Filled" for t in fills)

        # 4. what-if latency
        lat = []
        for i in range(100):
            c = contracts[i % len(contracts)]
            t1 = time.perf_counter()
            await ib.whatIfOrderAsync(c, LimitOrder("BUY", 100, gw.quote_for(c.conId).ask))
            lat.append((time.perf_counter() - t1) * 1000)
        lat.sort()
    finally:
        ib.disconnect()
        await gw.stop()

    print(f"market step, no orders (baseline):      {base * 1e3:8.3f} ms")
    print(f"market step, {working:5d} working orders:    {loaded * 1e3:8.3f} ms (x{loaded / base:.2f} of the baseline)")
    print(
        f"matching pass alone:                    {match_only * 1e3:8.3f} ms "
        f"({match_only / working * 1e6:.2f} us per working order)"
    )
    print(f"naive scan of every working order:      {naive * 1e3:8.3f} ms (x{naive / match_only:.1f} the matching pass)")
    print(f"resting orders placed (-> Submitted):   {resting_rate:8.0f} orders/s")
    print(f"marketable orders (-> Filled):          {fill_rate:8.0f} orders/s ({filled}/{n_fill} filled)")
    print(
        f"what-if latency:                        median {statistics.median(lat):.2f} ms, p95 {lat[int(0.95 * len(lat))]:.2f} ms"
    )


if __name__ == "__main__":
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # 202 per cancelled order
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    asyncio.run(main(args.orders, args.steps))
