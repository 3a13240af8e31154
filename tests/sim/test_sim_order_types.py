"""IB's conditional order types in the simulated gateway (desk.sim.order_types): brackets,
OCA groups, trailing stops, touched, pegged and auction orders, GTD and FOK, through the
real, unmodified ib_async client.

As in test_sim_orders.py the gateway never steps on its own: each test sets the top of
book (``set_quote``) and runs the matching pass of a market step
(``gateway.orders.on_step()``); the auction and GTD tests move a FrozenClock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Order, StopOrder, Trade
from test_sim_orders import (
    CALM,
    SPY_CON_ID,
    collect_errors,
    set_option_quote,
    set_quote,
    spy,
    statuses,
)

from desk.domain import FrozenClock
from desk.domain.calendar import nyse_calendar
from desk.sim import SimGateway


@pytest.fixture
async def gateway():
    gw = SimGateway(seed=7, **CALM)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def step(gw: SimGateway, bid: float, ask: float, last: float | None = None, **kw: int) -> None:
    """One market step at this top of book (dollars per share)."""
    set_quote(gw, "SPY", bid, ask, last=last, **kw)
    gw.orders.on_step()


def order_of(gw: SimGateway, trade: Trade):
    return gw.orders.orders[(1, trade.order.orderId)]


# --- brackets ---------------------------------------------------------------------------


async def test_bracket_children_wait_for_the_parent_and_take_profit_cancels_the_stop(
    ib: IB, gateway: SimGateway, wait_until
) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, last=600.01)
    bracket = ib.bracketOrder("BUY", 100, 600.02, 601.00, 599.00)
    # the parent alone (transmit=False) does not work, though marketable
    parent = ib.placeOrder(contract, bracket.parent)
    await wait_until(lambda: parent.orderStatus.status == "PreSubmitted", 2.0)
    step(gateway, 600.00, 600.02, last=600.01)
    take = ib.placeOrder(contract, bracket.takeProfit)
    await wait_until(lambda: take.orderStatus.status == "PreSubmitted", 2.0)
    assert parent.orderStatus.status == "PreSubmitted" and not parent.fills
    # the stop-loss arrives with transmit=True: the parent is transmitted and fills
    stop = ib.placeOrder(contract, bracket.stopLoss)
    await wait_until(lambda: parent.isDone(), 2.0, "the parent's fill")
    assert parent.fills[0].execution.price == 600.02
    # children active on the parent's fill: the take-profit works, the stop waits
    await wait_until(lambda: take.orderStatus.status == "Submitted", 2.0)
    assert stop.orderStatus.status == "PreSubmitted"
    assert statuses(take) == ["PendingSubmit", "PreSubmitted", "Submitted"]
    step(gateway, 601.00, 601.02, last=601.01)  # the bid reaches the take-profit
    await wait_until(lambda: take.isDone() and stop.isDone(), 2.0, "take-profit and stop")
    assert take.orderStatus.status == "Filled" and take.fills[0].execution.price == 601.00
    assert stop.orderStatus.status == "Cancelled" and not stop.fills
    assert gateway.accounts[0].position_of(contract.conId) == 0  # in and out: flat


async def test_children_are_cancelled_with_their_parent(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02)
    bracket = ib.bracketOrder("BUY", 100, 590.00, 610.00, 580.00)
    trades = [ib.placeOrder(contract, o) for o in bracket]
    await wait_until(lambda: trades[0].orderStatus.status == "Submitted", 2.0)
    assert [t.orderStatus.status for t in trades[1:]] == ["PreSubmitted", "PreSubmitted"]
    ib.cancelOrder(bracket.parent)
    await wait_until(lambda: all(t.isDone() for t in trades), 2.0, "three cancels")
    assert [t.orderStatus.status for t in trades] == ["Cancelled"] * 3


# --- OCA groups ---------------------------------------------------------------------------


@pytest.mark.parametrize(("oca_type", "other_status", "other_qty"), [(1, "Cancelled", 100), (2, "Submitted", 40)])
async def test_oca_fill_cancels_or_reduces_the_others(
    ib: IB, gateway: SimGateway, wait_until, oca_type, other_status, other_qty
) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, ask_size=1000)
    orders = ib.oneCancelsAll([LimitOrder("BUY", 100, 599.00), LimitOrder("BUY", 100, 598.00)], f"grp{oca_type}", oca_type)
    a, b = (ib.placeOrder(contract, o) for o in orders)
    await wait_until(lambda: b.orderStatus.status == "Submitted", 2.0)
    step(gateway, 598.50, 599.00, ask_size=60)  # 60 shares at a's limit
    await wait_until(lambda: a.orderStatus.filled == 60, 2.0, "a's partial fill")
    await wait_until(
        lambda: b.orderStatus.status == other_status and b.order.totalQuantity == other_qty, 2.0, "b cancelled or reduced"
    )
    assert not b.fills


async def test_oca_type_3_has_no_block_and_overfills(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(1)
    contract = await spy(ib)
    step(gateway, 600.00, 600.02)
    results = {}
    for oca_type in (2, 3):
        orders = ib.oneCancelsAll([LimitOrder("BUY", 100, 599.00), LimitOrder("BUY", 100, 599.00)], f"same{oca_type}", oca_type)
        trades = [ib.placeOrder(contract, o) for o in orders]
        await wait_until(lambda: trades[1].orderStatus.status == "Submitted", 2.0)
        step(gateway, 598.50, 599.00, ask_size=1000)  # both marketable in one pass
        await wait_until(lambda: all(t.isDone() for t in trades), 2.0, "the group")
        results[oca_type] = [t.orderStatus.status for t in trades]
        step(gateway, 600.00, 600.02)
    assert results[2] == ["Filled", "Cancelled"]  # with block: the second never trades
    assert results[3] == ["Filled", "Filled"]  # without block: both fill in the same pass


# --- trailing stops -------------------------------------------------------------------------


async def test_trailing_stop_follows_the_market_then_triggers(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, last=600.00)
    trail = Order(action="SELL", totalQuantity=100, orderType="TRAIL", auxPrice=1.00)
    trade = ib.placeOrder(contract, trail)
    await wait_until(lambda: trade.orderStatus.status == "PreSubmitted", 2.0)
    sim = order_of(gateway, trade)
    assert sim.stop_price == 599.00
    step(gateway, 602.49, 602.51, last=602.50)  # up 2.50: the stop follows
    assert sim.stop_price == 601.50
    step(gateway, 601.99, 602.01, last=602.00)  # down: the stop stays
    assert sim.stop_price == 601.50 and trade.orderStatus.status == "PreSubmitted"
    step(gateway, 601.40, 601.45, last=601.45)  # through the stop: a market order
    await wait_until(lambda: trade.isDone(), 2.0, "the trailing stop's fill")
    assert trade.fills[0].execution.price == 601.40
    assert statuses(trade) == ["PendingSubmit", "PreSubmitted", "Submitted", "Filled"]


async def test_trailing_percent_limit_sets_its_limit_off_the_stop(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 500.00, 500.02, last=500.00)
    order = Order(action="SELL", totalQuantity=10, orderType="TRAIL LIMIT", trailingPercent=1.0, lmtPriceOffset=0.50)
    trade = ib.placeOrder(contract, order)
    await wait_until(lambda: trade.orderStatus.status == "PreSubmitted", 2.0)
    sim = order_of(gateway, trade)
    assert sim.stop_price == 495.00  # 1% below 500
    step(gateway, 509.99, 510.01, last=510.00)
    assert sim.stop_price == 504.90
    # elected at 504.90: a limit at 504.40; a bid of 504.30 is below it: it rests
    step(gateway, 504.30, 504.35, last=504.80)
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    assert sim.peg_limit == 504.40 and not trade.fills
    step(gateway, 504.45, 504.50, last=504.45)
    await wait_until(lambda: trade.isDone(), 2.0)
    assert trade.fills[0].execution.price == 504.40


# --- GTD, FOK ---------------------------------------------------------------------------


async def test_gtd_order_expires_at_its_good_till_date(wait_until) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 10:00 ET, a Tuesday
    gw = SimGateway(seed=7, clock=clock, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        contract = await spy(ib)
        step(gw, 600.00, 600.02)
        gtd = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00, tif="GTD", goodTillDate="20261124 11:00:00 US/Eastern"))
        await wait_until(lambda: gtd.orderStatus.status == "Submitted", 2.0)
        clock.advance(3599)
        gw.orders.on_step()
        assert not gtd.isDone()
        clock.advance(1)
        gw.orders.on_step()
        await wait_until(lambda: gtd.isDone(), 2.0, "the expiry")
        assert gtd.orderStatus.status == "Cancelled" and not gtd.fills
    finally:
        ib.disconnect()
        await gw.stop()


async def test_fok_fills_in_full_or_not_at_all(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, ask_size=300)
    kill = ib.placeOrder(contract, LimitOrder("BUY", 500, 600.05, tif="FOK"))
    await wait_until(lambda: kill.isDone(), 2.0)
    assert kill.orderStatus.status == "Cancelled" and not kill.fills  # IOC would take 300
    fill = ib.placeOrder(contract, LimitOrder("BUY", 300, 600.05, tif="FOK"))
    await wait_until(lambda: fill.isDone(), 2.0)
    assert fill.orderStatus.status == "Filled" and fill.orderStatus.filled == 300


# --- touched, pegged ---------------------------------------------------------------------


async def test_mit_and_lit_trigger_when_touched(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, last=600.01)
    mit = ib.placeOrder(contract, Order(action="BUY", totalQuantity=100, orderType="MIT", auxPrice=599.00))
    lit = ib.placeOrder(contract, Order(action="SELL", totalQuantity=100, orderType="LIT", auxPrice=601.00, lmtPrice=601.50))
    await wait_until(lambda: lit.orderStatus.status == "PreSubmitted" and mit.orderStatus.status == "PreSubmitted", 2.0)
    step(gateway, 598.98, 599.00, last=599.00)  # touches the MIT's trigger
    await wait_until(lambda: mit.isDone(), 2.0)
    assert mit.fills[0].execution.price == 599.00 and lit.orderStatus.status == "PreSubmitted"
    step(gateway, 601.00, 601.02, last=601.00)  # touches the LIT: a limit at 601.50 rests
    await wait_until(lambda: lit.orderStatus.status == "Submitted", 2.0)
    assert not lit.fills
    step(gateway, 601.50, 601.52, last=601.51)
    await wait_until(lambda: lit.isDone(), 2.0)
    assert lit.fills[0].execution.price == 601.50


async def test_relative_order_is_pegged_to_the_bid(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.04)
    rel = ib.placeOrder(contract, Order(action="BUY", totalQuantity=100, orderType="REL", auxPrice=0.01, lmtPrice=600.50))
    await wait_until(lambda: rel.orderStatus.status == "Submitted", 2.0)
    sim = order_of(gateway, rel)
    assert sim.peg_limit == 600.01 and not rel.fills
    step(gateway, 600.10, 600.14)  # re-pegged with the bid
    assert sim.peg_limit == 600.11 and not rel.fills
    step(gateway, 600.10, 600.11)  # the ask comes down to the peg
    await wait_until(lambda: rel.isDone(), 2.0)
    assert rel.fills[0].execution.price == 600.11


# --- auctions ----------------------------------------------------------------------------


async def test_moc_loc_fill_at_the_close_and_opg_at_the_open(wait_until) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 20, 0, tzinfo=UTC))  # 15:00 ET, a Tuesday
    gw = SimGateway(seed=7, clock=clock, **CALM)
    await gw.start()
    ib = IB()
    errors = collect_errors(ib)
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        contract = await spy(ib)
        step(gw, 600.00, 600.02, last=600.01)
        moc = ib.placeOrder(contract, Order(action="BUY", totalQuantity=100, orderType="MOC"))
        loc_ok = ib.placeOrder(contract, Order(action="SELL", totalQuantity=50, orderType="LOC", lmtPrice=601.00))
        loc_miss = ib.placeOrder(contract, Order(action="BUY", totalQuantity=50, orderType="LOC", lmtPrice=590.00))
        opg = ib.placeOrder(contract, MarketOrder("SELL", 100, tif="OPG"))
        await wait_until(lambda: opg.orderStatus.status == "Submitted", 2.0)
        step(gw, 602.00, 602.02, last=602.01)  # 15:00: nothing trades before the close
        assert not (moc.fills or loc_ok.fills or opg.fills)
        clock.advance(3600)  # 16:00 ET: the closing auction at the last price
        step(gw, 603.00, 603.02, last=603.01)
        await wait_until(lambda: moc.isDone() and loc_ok.isDone() and loc_miss.isDone(), 2.0)
        assert moc.fills[0].execution.price == 603.01
        assert loc_ok.fills[0].execution.price == 603.01
        assert loc_miss.orderStatus.status == "Cancelled" and not loc_miss.fills
        assert opg.orderStatus.status == "Submitted" and not opg.fills
        clock.advance(17.5 * 3600)  # Wednesday 09:30 ET: the opening auction
        step(gw, 598.00, 598.02, last=598.01)
        await wait_until(lambda: opg.isDone(), 2.0)
        assert opg.fills[0].execution.price == 598.01
        assert not [e for e in errors if e[1] == 201]
    finally:
        ib.disconnect()
        await gw.stop()


async def test_stop_child_of_a_filled_parent_is_elected(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    step(gateway, 600.00, 600.02, last=600.01)
    bracket = ib.bracketOrder("BUY", 100, 600.02, 610.00, 599.00)
    trades = [ib.placeOrder(contract, o) for o in bracket]
    await wait_until(lambda: trades[0].isDone(), 2.0)
    step(gateway, 598.98, 599.00, last=599.00)  # the stop-loss is elected
    await wait_until(lambda: trades[2].isDone() and trades[1].isDone(), 2.0)
    assert trades[2].fills[0].execution.price == 598.98
    assert trades[1].orderStatus.status == "Cancelled"
    assert isinstance(bracket.stopLoss, StopOrder)


# --- exercise and expiry -----------------------------------------------------------------


async def test_exercise_and_automatic_exercise_and_assignment_at_expiry(wait_until) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 10:00 ET, a Tuesday
    gw = SimGateway(seed=7, clock=clock, **CALM)
    await gw.start()
    ib = IB()
    errors = collect_errors(ib)
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        stock = await spy(ib)
        step(gw, 600.00, 600.02, last=600.00)
        [params] = [p for p in await ib.reqSecDefOptParamsAsync("SPY", "", "STK", SPY_CON_ID) if p.exchange == "SMART"]
        expiry = sorted(params.expirations)[0]
        low = max(k for k in params.strikes if k <= 590)
        high = min(k for k in params.strikes if k >= 610)
        call, put = await ib.qualifyContractsAsync(
            Option("SPY", expiry, low, "C", "SMART"), Option("SPY", expiry, high, "P", "SMART")
        )
        set_option_quote(gw, call.conId, 10.00, 10.10)
        set_option_quote(gw, put.conId, 10.00, 10.10)
        buy = ib.placeOrder(call, LimitOrder("BUY", 3, 10.10))
        sell = ib.placeOrder(put, LimitOrder("SELL", 2, 10.00))
        await wait_until(lambda: buy.isDone() and sell.isDone(), 2.0, "the option fills")
        acc = gw.accounts[0]
        cash = acc.cash
        # early exercise of one call: 100 shares at the strike
        ib.exerciseOptions(call, 1, 1, "DU1234567", 0)
        await wait_until(lambda: acc.position_of(stock.conId) == 100, 2.0, "the exercise")
        assert acc.position_of(call.conId) == 2
        assert acc.cash == pytest.approx(cash - 100 * low)
        ib.exerciseOptions(call, 1, 5, "DU1234567", 0)  # more than held
        await wait_until(lambda: any(c == 321 for _, c, _ in errors), 2.0)
        assert acc.position_of(call.conId) == 2
        # at the expiry's close both are in the money: 2 calls exercised, 2 puts assigned
        close = nyse_calendar().expiry_close(expiry)
        clock.advance((close - clock.now()).total_seconds())
        step(gw, 600.00, 600.02, last=600.00)
        await wait_until(lambda: acc.position_of(call.conId) == 0 and acc.position_of(put.conId) == 0, 2.0, "the expiry")
        assert acc.position_of(stock.conId) == 100 + 200 + 200
        assert acc.cash == pytest.approx(cash - 100 * low - 200 * low - 200 * high)
        await wait_until(
            lambda: {p.contract.conId: p.position for p in ib.positions()}.get(stock.conId) == 500, 2.0, "the position update"
        )
    finally:
        ib.disconnect()
        await gw.stop()
