"""P&L that agrees, through the unmodified ib_async client against the simulator: after
every fill of a sequence (open today, add, partial close, flip, a position from the
previous day, an option opened today and partly closed) the desk's account line equals the
sum of its positions to the cent, every position's daily, unrealized, realized and value
equal a brute-force lot-by-lot model at the simulator's marks, and NetLiq moves with the
daily P&L. After a 1101 (data lost) the P&L subscriptions tick again.

The market is calm (no market steps): prices move only when a test sets them, so every
figure has one right value to wait for."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from ib_async import IB, LimitOrder, Option, Stock
from pnl_model import LotModel

from desk.broker.account import AccountManager
from desk.domain import QuoteStore
from desk.sim import SimGateway

CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}
START_CASH = 1_000_000.0


async def wait_until(cond, what: str, timeout: float = 10.0):
    """Poll ``cond`` (returns a falsy value when satisfied, or a list of problems) until it
    reports nothing; fail with the last problems after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        problems = cond()
        if not problems:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {problems}")
        await asyncio.sleep(0.02)


def set_quote(gw: SimGateway, symbol: str, bid: float, ask: float, last: float, size: int = 5000) -> None:
    s = gw.market.state(symbol)
    tick = s.stock.min_tick
    s.bid_t, s.ask_t, s.last_t = round(bid / tick), round(ask / tick), round(last / tick)
    s.bid_size = s.ask_size = size
    s.mid = (bid + ask) / 2.0


@pytest.fixture
async def gateway():
    gw = SimGateway(seed=7, **CALM)
    gw.orders.feed.pnl_interval = gw.orders.feed.account_interval = 0.05
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def desk(gateway):
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=3, timeout=5)
    account = AccountManager(ib, QuoteStore())
    await account.on_connected()
    try:
        yield ib, account
    finally:
        ib.disconnect()


class Book:
    """The test's own books: a lot model per conId, the cash, the NetLiq at the reset."""

    def __init__(self, gw: SimGateway) -> None:
        self.gw = gw
        self.models: dict[int, LotModel] = {}
        self.cash = START_CASH
        self.nlv_at_reset = START_CASH

    def mark(self, con_id: int) -> float:
        return self.gw.orders.instruments.mark(con_id)

    async def trade(self, ib: IB, contract, action: str, quantity: int) -> None:
        bid, ask, *_ = self.gw.quote_for(contract.conId)
        price = ask if action == "BUY" else bid
        trade = ib.placeOrder(contract, LimitOrder(action, quantity, round(price, 2)))
        await wait_until(
            lambda: (
                None
                if trade.isDone() and trade.fills and all(f.commissionReport.commission > 0 for f in trade.fills)
                else ["not filled"]
            ),
            f"{action} {quantity}",
        )
        assert trade.orderStatus.status == "Filled"
        mult = float(contract.multiplier or 1)
        model = self.models.setdefault(contract.conId, LotModel(mult))
        for f in trade.fills:
            q = f.execution.shares if f.execution.side == "BOT" else -f.execution.shares
            model.fill(q, f.execution.price, f.commissionReport.commission)
            self.cash -= q * f.execution.price * mult + f.commissionReport.commission

    def new_day(self) -> None:
        self.gw.orders.end_of_day()
        self.nlv_at_reset = self.net_liquidation()
        for con_id, model in self.models.items():
            model.new_day(self.mark(con_id))

    def net_liquidation(self) -> float:
        return self.cash + sum(m.at(self.mark(c))["value"] for c, m in self.models.items())


def disagreements(account: AccountManager, book: Book) -> list[str]:
    """Every way the desk's figures differ from the model and from themselves (empty: agree)."""
    out: list[str] = []
    rows = {r.instrument.con_id: r for r in account.rows()}
    fig = account.figures()
    for con_id, model in book.models.items():
        want = model.at(book.mark(con_id))
        row = rows.get(con_id)
        if row is None:
            if want["quantity"] or abs(want["daily"]) >= 0.005 or abs(want["realized"]) >= 0.005:
                out.append(f"{con_id}: no row, want {want}")
            continue
        got = {
            "quantity": row.quantity,
            "daily": row.daily_pnl,
            "unrealized": row.unrealized,
            "realized": row.realized,
            "value": row.market_value,
        }
        for key, value in got.items():
            if not (abs(value - want[key]) <= (1e-9 if key == "quantity" else 0.0101)):
                out.append(f"{row.instrument.key} {key} {value} != model {want[key]:.4f}")
        if row.quantity and abs(row.avg_cost - want["avg_cost"]) > 1e-6:
            out.append(f"{row.instrument.key} avg cost {row.avg_cost} != {want['avg_cost']}")
    for key, attr in (("daily", "daily_pnl"), ("unrealized", "unrealized"), ("realized", "realized")):
        total = round(sum(getattr(r, attr) for r in rows.values()), 2)
        if not abs(getattr(fig, attr) - total) < 0.005:
            out.append(f"account {key} {getattr(fig, attr)} != sum of positions {total}")
    nlv = book.net_liquidation()
    if not abs(fig.net_liquidation - nlv) < 0.0101:
        out.append(f"NetLiq {fig.net_liquidation} != model {nlv:.2f}")
    if not abs(fig.net_liquidation - book.nlv_at_reset - fig.daily_pnl) < 0.0101:
        out.append(f"NetLiq - NetLiq at the reset {fig.net_liquidation - book.nlv_at_reset:.2f} != daily {fig.daily_pnl}")
    return out


async def test_account_and_positions_agree_with_each_other_and_the_model_after_every_fill(gateway, desk) -> None:
    ib, account = desk
    gw = gateway
    book = Book(gw)
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    set_quote(gw, "SPY", 600.00, 600.02, last=600.01)
    details = await ib.reqContractDetailsAsync(Option("SPY", "", 0, "C", "SMART"))
    first = sorted({d.contract.lastTradeDateOrContractMonth for d in details})[1]
    call = min(
        (d.contract for d in details if d.contract.lastTradeDateOrContractMonth == first), key=lambda c: abs(c.strike - 600)
    )
    gw.quote_for(call.conId)  # quoted from now on

    async def step(what: str) -> None:
        await wait_until(lambda: disagreements(account, book), f"agreement after {what}")

    await book.trade(ib, spy, "BUY", 100)  # opened today
    await step("opening 100")
    [row] = [r for r in account.rows() if r.instrument.con_id == spy.conId]
    assert row.daily_pnl == row.unrealized  # opened today: daily == unrealized
    await book.trade(ib, spy, "BUY", 50)  # added
    await step("adding 50")
    await book.trade(ib, spy, "SELL", 60)  # partial close: realized
    await step("selling 60")
    assert account.figures().realized != 0
    await book.trade(ib, spy, "SELL", 200)  # flip: 90 long to 110 short
    await step("the flip")
    set_quote(gw, "SPY", 601.50, 601.52, last=601.51)
    gw.orders.on_step()
    await step("a move")
    # a new day: the short is held from before today, marked from the prior close
    book.new_day()
    await step("the new day")
    set_quote(gw, "SPY", 599.00, 599.02, last=599.01)
    gw.orders.on_step()
    await step("a move on the new day")
    [row] = [r for r in account.rows() if r.instrument.con_id == spy.conId]
    assert row.daily_pnl == pytest.approx(-110 * (599.01 - 601.51), abs=0.01)  # (price - prior close) x position
    assert row.daily_pnl != row.unrealized
    await book.trade(ib, call, "BUY", 2)  # an option opened today
    await step("buying 2 calls")
    await book.trade(ib, spy, "BUY", 150)  # covers the short, 40 long opened today
    await step("covering the short")
    await book.trade(ib, call, "SELL", 1)
    await step("selling 1 call")
    fig = account.figures()
    rows = account.rows()
    assert {r.instrument.con_id: r.quantity for r in rows} == {spy.conId: 40, call.conId: 1}
    assert math.isfinite(fig.daily_pnl) and fig.realized == pytest.approx(sum(r.realized for r in rows), abs=0.005)


async def test_a_position_closed_today_keeps_its_row_and_counts_in_the_account(gateway, desk) -> None:
    ib, account = desk
    book = Book(gateway)
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    await book.trade(ib, spy, "BUY", 100)
    set_quote(gateway, "SPY", 603.00, 603.02, last=603.01)
    gateway.orders.on_step()
    await book.trade(ib, spy, "SELL", 100)
    await wait_until(lambda: disagreements(account, book), "agreement after the round trip")
    [row] = account.rows()
    assert row.quantity == 0 and row.realized == pytest.approx(100 * (603.00 - 600.02) - 2.00, abs=0.01)
    assert account.figures().daily_pnl == pytest.approx(row.daily_pnl) == pytest.approx(row.realized)
    assert account.positions() == []  # the risk engine sees open positions only


async def test_after_1101_the_pnl_subscriptions_tick_again(gateway, desk) -> None:
    """1101 (connectivity restored, data lost): IB drops the account subscriptions; on the
    broker's DataLost the account manager requests them again and P&L ticks again."""
    from desk.broker.ib_worker import DataLost

    ib, account = desk
    book = Book(gateway)
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    await book.trade(ib, spy, "BUY", 100)
    await wait_until(lambda: disagreements(account, book), "agreement before the outage")
    gateway.faults.connectivity_lost()
    gateway.faults.connectivity_restored(data_lost=True)  # the gateway dropped every account subscription
    set_quote(gateway, "SPY", 605.00, 605.02, last=605.01)
    gateway.orders.on_step()
    await asyncio.sleep(0.3)  # six P&L intervals: nothing comes while nobody asks
    assert account.rows()[0].daily_pnl == pytest.approx(100 * (600.01 - 600.02) - 1.00)
    account.on_broker_event(DataLost("1101"))  # what the broker emits on 1101
    assert account.resubscribes == 1
    await wait_until(lambda: disagreements(account, book), "P&L ticking again after the 1101")
    assert account.rows()[0].daily_pnl == pytest.approx(100 * (605.01 - 600.02) - 1.00)
    # and it keeps ticking: the next move arrives too
    set_quote(gateway, "SPY", 606.00, 606.02, last=606.01)
    gateway.orders.on_step()
    await wait_until(lambda: disagreements(account, book), "the next move")


async def test_in_a_moving_market_every_figure_is_of_one_instant() -> None:
    """The market moves every 50 ms; P&L comes every 0.2 s and the portfolio and account
    values every 0.6 s (IB: 1 s and 3 minutes). At every update the desk shows, for the
    positions opened today, daily == unrealized (the sign flip came from mixing the two
    schedules), the account line = the sum of the positions, and NetLiq - the starting
    cash = the daily P&L."""
    gw = SimGateway(seed=5, tick_interval=0.05)
    gw.orders.feed.pnl_interval, gw.orders.feed.account_interval = 0.2, 0.6
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=4, timeout=5)
        account = AccountManager(ib, QuoteStore())
        await account.on_connected()
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        details = await ib.reqContractDetailsAsync(Option("SPY", "", 0, "C", "SMART"))
        first = sorted({d.contract.lastTradeDateOrContractMonth for d in details})[1]
        call = min(
            (d.contract for d in details if d.contract.lastTradeDateOrContractMonth == first),
            key=lambda c: abs(c.strike - gw.market.state("SPY").mid),
        )
        gw.quote_for(call.conId)
        await asyncio.sleep(0.1)
        for contract, qty in ((spy, 100), (call, 2)):
            _, ask, *_ = gw.quote_for(contract.conId)
            trade = ib.placeOrder(contract, LimitOrder("BUY", qty, round(ask + (0.05 if qty < 100 else 0.10), 2)))
            await wait_until(lambda t=trade: None if t.isDone() else ["working"], "the fill")
        await wait_until(
            lambda: None if len([r for r in account.rows() if math.isfinite(r.daily_pnl)]) == 2 else ["rows"],
            "both rows from PnLSingle",
        )
        samples, seen, seq = 0, set(), -1
        deadline = time.monotonic() + 20
        while samples < 12:
            assert time.monotonic() < deadline, f"only {samples} P&L updates"
            await asyncio.sleep(0.02)
            if account.seq == seq:
                continue
            seq = account.seq
            rows = account.rows()
            fig = account.figures()
            if len(rows) != 2 or not all(math.isfinite(r.daily_pnl) for r in rows):
                continue
            for r in rows:
                assert r.daily_pnl == pytest.approx(r.unrealized, abs=0.005), r
            assert fig.daily_pnl == pytest.approx(sum(r.daily_pnl for r in rows), abs=0.005)
            assert fig.unrealized == pytest.approx(sum(r.unrealized for r in rows), abs=0.005)
            assert fig.net_liquidation - START_CASH == pytest.approx(fig.daily_pnl, abs=0.0101)
            seen.add(round(fig.daily_pnl, 2))
            samples += 1
        assert len(seen) > 2  # the market did move the figures
    finally:
        ib.disconnect()
        await gw.stop()
