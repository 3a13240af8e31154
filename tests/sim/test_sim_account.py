"""Accounts of the simulated gateway: positions with average cost, P&L, Reg T margin and
what ib_async's account calls see (positions, portfolio, accountValues, accountSummary,
reqPnL, reqPnLSingle) as fills happen; plus the pure account and margin arithmetic."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import IB, LimitOrder, MarketOrder, Stock

from desk.sim import SimGateway
from desk.sim.account import SimAccount
from desk.risk.margin import reg_t, short_option_requirement
from desk.sim.orders import Tradable

CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}
SPY_CON_ID = 756733

SPY = Tradable(con_id=SPY_CON_ID, symbol="SPY", primary_exchange="ARCA", underlying_con_id=SPY_CON_ID, etf=True)
XYZ = Tradable(con_id=1, symbol="XYZ", primary_exchange="NYSE", underlying_con_id=1)


def opt(con_id: int, strike: float, right: str, expiry: str = "20261218", symbol: str = "XYZ", und: int = 1) -> Tradable:
    return Tradable(
        con_id=con_id,
        symbol=symbol,
        sec_type="OPT",
        expiry=expiry,
        strike=strike,
        right=right,
        multiplier=100,
        underlying_con_id=und,
    )


@pytest.fixture
async def gateway():
    gw = SimGateway(seed=7, **CALM)
    gw.orders.feed.pnl_interval = gw.orders.feed.account_interval = 0.001
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def set_quote(gw: SimGateway, symbol: str, bid: float, ask: float, last: float, size: int = 1000) -> None:
    """Move a stock's top of book and last trade (dollars per share, shares)."""
    s = gw.market.state(symbol)
    tick = s.stock.min_tick
    s.bid_t, s.ask_t, s.last_t = round(bid / tick), round(ask / tick), round(last / tick)
    s.bid_size = s.ask_size = size
    s.mid = (bid + ask) / 2.0


def values(ib: IB) -> dict[str, float]:
    return {
        v.tag: float(v.value)
        for v in ib.accountValues()
        if v.currency == "USD" and v.tag not in ("Currency",) and v.value.replace(".", "").replace("-", "").isdigit()
    }


# --- the account arithmetic ------------------------------------------------------------------


def test_average_cost_includes_commissions_and_realized_is_net() -> None:
    acc = SimAccount("DU1", 100_000.0)
    assert acc.apply_fill(XYZ, 100, 10.00, 1.00) is None  # opening
    assert acc.positions[1].avg_cost == pytest.approx(10.01)
    assert acc.apply_fill(XYZ, 100, 11.00, 1.00) is None  # adding
    assert acc.positions[1].avg_cost == pytest.approx((1001 + 1101) / 200)
    realized = acc.apply_fill(XYZ, -50, 12.00, 1.00)
    assert realized == pytest.approx(50 * (12.00 - 10.51) - 1.00)
    assert acc.positions[1].quantity == 150
    # selling 250 closes 150 and opens 100 short; each part pays its share of $2
    realized = acc.apply_fill(XYZ, -250, 9.00, 2.00)
    assert realized == pytest.approx(150 * (9.00 - 10.51) - 2.00 * 150 / 250)
    assert acc.positions[1].quantity == -100
    assert acc.positions[1].avg_cost == pytest.approx((100 * 9.00 - 2.00 * 100 / 250) / 100)
    assert acc.cash == pytest.approx(100_000 - 1001 - 1101 + 599 + 2248)
    with pytest.raises(ValueError, match="non-zero"):
        acc.apply_fill(XYZ, 0, 9.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        acc.apply_fill(XYZ, 1, math.nan, 0.0)


fills = st.lists(
    st.tuples(st.integers(-500, 500).filter(bool), st.integers(100, 20_000), st.integers(0, 300), st.booleans()),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(fills, st.integers(100, 20_000), st.integers(100, 20_000))
def test_total_pnl_identity(trades, mark_cents, opt_mark_cents) -> None:
    """Whatever the fills: net liquidation - starting cash = realized + unrealized, and
    (no new day started) = daily P&L (each position's figures are rounded to the cent)."""
    acc = SimAccount("DU1", 1_000_000.0)
    option = opt(2, 100.0, "C")
    realized = 0.0
    for qty, cents, fee_cents, is_option in trades:
        r = acc.apply_fill(option if is_option else XYZ, qty, cents / 100, fee_cents / 100)
        realized += r or 0.0
    marks = {1: mark_cents / 100, 2: opt_mark_cents / 100}
    s = acc.snapshot(marks.get)
    assert s.realized == pytest.approx(realized, abs=0.015)
    assert s.net_liquidation - 1_000_000.0 == pytest.approx(s.realized + s.unrealized, abs=0.03)
    assert s.daily == pytest.approx(s.net_liquidation - 1_000_000.0, abs=0.015)


def test_start_day_resets_daily_pnl_and_persists() -> None:
    acc = SimAccount("DU1", 50_000.0)
    acc.apply_fill(XYZ, 100, 20.00, 1.00)
    acc.start_day({1: 21.00}.get)
    daily, unrealized, realized = acc.pnl({1: 22.50}.get)
    assert daily == pytest.approx(150.0)  # from yesterday's 21.00 mark
    assert unrealized == pytest.approx(100 * (22.50 - 20.01))
    assert realized == 0.0
    rows = {k: v for k, v, c in acc.values({1: 22.50}.get) if c == "USD"}
    assert float(rows["PreviousDayEquityWithLoanValue"]) == pytest.approx(50_000 - 2001 + 2100)
    assert float(rows["EquityWithLoanValue"]) == pytest.approx(50_000 - 2001 + 2250)
    copy = SimAccount.from_dict(acc.to_dict())
    assert copy.snapshot({1: 22.50}.get) == acc.snapshot({1: 22.50}.get)


# --- Reg T margin (the rules are desk.risk.margin, tested in tests/risk/test_margin.py) ---


def test_account_requirement_uses_the_desk_margin_rules_with_simulator_contracts() -> None:
    """The simulator's Tradable contracts go through desk.risk.margin as they are; an
    option's underlying is priced by its conId even when the stock is not held."""
    acc = SimAccount("DU1", 100_000.0)
    c50, c55 = opt(10, 50.0, "C"), opt(11, 55.0, "C")
    p50, p55 = opt(12, 50.0, "P"), opt(13, 55.0, "P")
    marks = {1: 52.0, 10: 3.0, 11: 0.8, 12: 0.9, 13: 3.4}
    # a short box: sell the 50 call, buy the 55 call, sell the 55 put, buy the 50 put
    for contract, qty in ((c50, -2), (c55, 2), (p55, -2), (p50, 2)):
        acc.apply_fill(contract, qty, marks[contract.con_id], 0.0)
    assert acc.requirement(marks.get) == (2 * 500.0, 2 * 500.0)  # the width once
    assert acc.requirement(marks.get) == reg_t([(p.contract, p.quantity) for p in acc.positions.values()], marks, {"XYZ": 52.0})
    # what-if: buying back the short 50 call leaves a put credit spread and a long call
    assert acc.requirement(marks.get, extra=[(c50, 2)]) == (1000.0, 1000.0)
    # an uncovered short call is charged at the underlying's mark (conId 1, not held)
    naked = short_option_requirement(True, 55.0, 0.8, 52.0)
    assert acc.requirement(marks.get, extra=[(c55, -3), (p50, -2), (p55, 2), (c50, 2)]) == (
        pytest.approx(naked),
        pytest.approx(naked),
    )


# --- through ib_async -------------------------------------------------------------------------


async def test_positions_portfolio_and_values_follow_fills(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02))
    await wait_until(lambda: trade.isDone() and ib.positions() and ib.portfolio(), 2.0)
    [pos] = ib.positions()
    assert (pos.account, pos.contract.conId, pos.position) == ("DU1234567", SPY_CON_ID, 100)
    assert pos.avgCost == pytest.approx(600.03)  # 600.02 + $1.00 commission / 100
    [item] = ib.portfolio()
    assert (item.position, item.marketPrice) == (100, 600.01)
    assert item.marketValue == pytest.approx(60_001.00)
    assert item.unrealizedPNL == pytest.approx(100 * (600.01 - 600.03))
    await wait_until(lambda: values(ib).get("GrossPositionValue") == 60_001.00, 2.0)
    v = values(ib)
    cash = 1_000_000 - 60_002 - 1.00
    assert v["TotalCashValue"] == pytest.approx(cash)
    assert v["NetLiquidation"] == pytest.approx(cash + 60_001.00)
    assert v["EquityWithLoanValue"] == pytest.approx(cash + 60_001.00)
    assert v["InitMarginReq"] == pytest.approx(0.50 * 60_001.00)
    assert v["MaintMarginReq"] == pytest.approx(0.25 * 60_001.00)
    assert v["AvailableFunds"] == pytest.approx(v["EquityWithLoanValue"] - v["InitMarginReq"])
    assert v["ExcessLiquidity"] == pytest.approx(v["EquityWithLoanValue"] - v["MaintMarginReq"])
    assert v["BuyingPower"] == pytest.approx(4 * v["AvailableFunds"])
    # the market moves: the portfolio is marked to the new last price
    set_quote(gateway, "SPY", 601.00, 601.02, last=601.01)
    gateway.orders.on_step()
    await wait_until(lambda: ib.portfolio()[0].marketPrice == 601.01, 2.0)
    assert ib.portfolio()[0].unrealizedPNL == pytest.approx(100 * (601.01 - 600.03))


async def test_pnl_and_pnl_single_stream(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    pnl = ib.reqPnL("DU1234567")
    single = ib.reqPnLSingle("DU1234567", "", SPY_CON_ID)
    await wait_until(lambda: pnl.dailyPnL == 0.0 and single.position == 0, 2.0, "first pnl")
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.02)
    buy = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02))
    await wait_until(lambda: buy.isDone() and single.position == 100, 2.0)
    assert single.unrealizedPnL == pytest.approx(-1.00)  # the commission
    assert single.value == pytest.approx(60_002.00)
    set_quote(gateway, "SPY", 602.00, 602.02, last=602.03)
    gateway.orders.on_step()
    await wait_until(lambda: pnl.unrealizedPnL == pytest.approx(100 * (602.03 - 600.03)), 2.0)
    assert pnl.dailyPnL == pytest.approx(100 * (602.03 - 600.02) - 1.00)
    reports = []
    ib.commissionReportEvent += lambda t, f, r: reports.append(r)
    sell = ib.placeOrder(contract, MarketOrder("SELL", 40))
    await wait_until(lambda: sell.isDone() and reports and single.position == 60, 2.0)
    realized = 40 * (602.00 - 600.03) - 1.00
    assert reports[0].realizedPNL == pytest.approx(realized)
    await wait_until(lambda: pnl.realizedPnL == pytest.approx(realized, abs=0.01), 2.0)
    assert single.realizedPnL == pytest.approx(realized, abs=0.01)
    ib.cancelPnL("DU1234567")
    ib.cancelPnLSingle("DU1234567", "", SPY_CON_ID)
    await asyncio.sleep(0.05)
    assert not any(s.pnl or s.pnl_single for s in gateway.orders.feed._subs.values())


async def test_account_summary_follows_fills(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    rows = {r.tag: r for r in await ib.accountSummaryAsync()}
    assert float(rows["NetLiquidation"].value) == 1_000_000.0
    assert rows["Cushion"].currency == "" and rows["NetLiquidation"].currency == "USD"
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.02)
    trade = ib.placeOrder(contract, MarketOrder("SELL", 200))  # short 200
    await wait_until(lambda: trade.isDone(), 2.0)

    def summary() -> dict[str, float]:
        return {r.tag: float(r.value) for r in ib.wrapper.acctSummary.values() if r.currency == "USD"}

    await wait_until(lambda: summary()["InitMarginReq"] > 0, 2.0, "the summary update")
    s = summary()
    assert s["InitMarginReq"] == pytest.approx(0.50 * 200 * 600.02)
    assert s["MaintMarginReq"] == pytest.approx(0.30 * 200 * 600.02)
    assert s["TotalCashValue"] == pytest.approx(1_000_000 + 200 * 600.00 - 1.00)
    assert s["NetLiquidation"] == pytest.approx(1_000_000 + 200 * (600.00 - 600.02) - 1.00)


async def test_starting_cash_is_configurable() -> None:
    gw = SimGateway(seed=7, cash=250_000.0, accounts=("DU7654321",), **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        assert ib.managedAccounts() == ["DU7654321"]
        assert values(ib)["NetLiquidation"] == 250_000.0
        assert values(ib)["BuyingPower"] == 1_000_000.0
    finally:
        ib.disconnect()
        await gw.stop()
    with pytest.raises(ValueError, match="cash"):
        SimGateway(cash=math.inf)


async def test_account_survives_a_reconnect(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(3)
    contract = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.02)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 300))
    await wait_until(lambda: trade.isDone() and values(ib)["GrossPositionValue"] > 0, 2.0)
    before = values(ib)
    ib.disconnect()
    await wait_until(lambda: gateway.clients == 0, 2.0)
    again = await connect(3)
    assert [(p.contract.conId, p.position, round(p.avgCost, 4)) for p in again.positions()] == [
        (SPY_CON_ID, 300, round(600.02 + 1.50 / 300, 4))
    ]
    after = values(again)
    for tag in ("TotalCashValue", "NetLiquidation", "InitMarginReq", "GrossPositionValue"):
        assert after[tag] == pytest.approx(before[tag]), tag


async def test_desk_sim_cash_option() -> None:
    """``desk sim --cash`` starts the stand-alone gateway with that much cash."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", "sim", "--port", str(port), "--cash", "250000"], stdout=subprocess.PIPE, text=True
    )
    ib = IB()
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20.0)
        assert f"listening on 127.0.0.1:{port}" in line
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        assert values(ib)["NetLiquidation"] == 250_000.0
    finally:
        ib.disconnect()
        proc.terminate()
        proc.wait(10)


async def test_state_file_keeps_account_and_orders_across_a_restart(tmp_path, wait_until) -> None:
    state = tmp_path / "sim-state.json"
    gw = SimGateway(seed=7, state_file=state, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        contract = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
        set_quote(gw, "SPY", 600.00, 600.02, last=600.02)
        bought = ib.placeOrder(contract, MarketOrder("BUY", 100, orderRef="keep-fill"))
        resting = ib.placeOrder(contract, LimitOrder("BUY", 10, 500.00, orderRef="keep-rest"))
        await wait_until(lambda: bought.isDone() and resting.orderStatus.status == "Submitted", 2.0)
        cash = gw.account().cash
    finally:
        ib.disconnect()
        await gw.stop()
    assert state.exists()

    gw2 = SimGateway(seed=7, state_file=state, **CALM)  # a new simulator process
    await gw2.start()
    again = IB()
    try:
        await again.connectAsync("127.0.0.1", gw2.port, clientId=1)
        assert gw2.account().cash == cash
        assert [(p.contract.conId, p.position) for p in again.positions()] == [(SPY_CON_ID, 100)]
        [trade] = again.openTrades()
        assert (trade.order.orderRef, trade.order.permId) == ("keep-rest", resting.order.permId)
        assert [f.execution.orderRef for f in again.fills()] == ["keep-fill"]
        assert again.client.getReqId() > resting.order.orderId
        # the restored order still works: the market reaches it
        set_quote(gw2, "SPY", 499.98, 500.00, last=500.00)
        gw2.orders.on_step()
        await wait_until(lambda: trade.isDone(), 2.0)
        assert trade.orderStatus.status == "Filled"
    finally:
        again.disconnect()
        await gw2.stop()

    state.write_text("{not json")
    broken = SimGateway(seed=7, state_file=state, **CALM)
    with pytest.raises(ValueError, match="sim-state.json"):
        await broken.start()
    assert not broken.running
