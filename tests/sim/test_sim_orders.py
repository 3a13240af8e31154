"""Order entry, matching, combos, what-if and reconnects in the simulated gateway, driven
through the real, unmodified ib_async client (no mocks).

The gateway here never steps on its own (``tick_interval`` of an hour): each test moves
the market itself, either by setting a symbol's top of book (``set_quote``) and running
the matching pass of a market step (``gateway.orders.on_step()``), or by stepping the
seeded market model (``gateway.step()``, deterministic for a seed).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from ib_async import (
    IB,
    Bag,
    ComboLeg,
    Contract,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
    Trade,
)

from desk.domain import FrozenClock, Instrument
from desk.domain.commission import IBKR_FIXED
from desk.risk import Action, MarketContext, OrderIntent, evaluate
from desk.risk.margin import initial_margin_change
from desk.sim import SimGateway

#: The timer never fires during a test: 0.25 s of market per manual ``gateway.step()``.
CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}
SPY_CON_ID = 756733


@pytest.fixture
async def gateway():
    gw = SimGateway(seed=7, **CALM)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


def set_quote(
    gw: SimGateway, symbol: str, bid: float, ask: float, bid_size: int = 1000, ask_size: int = 1000, last: float | None = None
) -> None:
    """Move a stock's top of book (dollars per share, shares) as the market would."""
    st = gw.market.state(symbol)
    tick = st.stock.min_tick
    st.bid_t, st.ask_t = round(bid / tick), round(ask / tick)
    st.bid_size, st.ask_size = bid_size, ask_size
    st.mid = (bid + ask) / 2.0
    if last is not None:
        st.last_t = round(last / tick)


def collect_errors(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


def statuses(trade: Trade) -> list[str]:
    """The distinct statuses a trade went through, in order."""
    out: list[str] = []
    for entry in trade.log:
        if not out or out[-1] != entry.status:
            out.append(entry.status)
    return out


async def spy(ib: IB) -> Contract:
    return (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]


async def spy_options(ib: IB, strikes: tuple[float, ...]) -> dict[tuple[float, str], Contract]:
    """Qualified SPY options of the third listed expiry at ``strikes``, calls and puts."""
    params = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", SPY_CON_ID)
    expiry = next(p for p in params if p.exchange == "SMART").expirations[2]
    opts = [Option("SPY", expiry, k, r, "SMART") for k in strikes for r in "CP"]
    qualified = await ib.qualifyContractsAsync(*opts)
    assert all(c.conId for c in qualified)
    return {(c.strike, c.right): c for c in qualified}


# --- single orders -------------------------------------------------------------------------


async def test_marketable_limit_fills_at_the_ask_with_commission(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=800)
    commissions = []
    ib.commissionReportEvent += lambda trade, fill, report: commissions.append(report)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.10, orderRef="desk-0001"))
    await wait_until(lambda: trade.isDone() and commissions, 2.0, "the fill")
    assert statuses(trade) == ["PendingSubmit", "PreSubmitted", "Submitted", "Filled"]
    st = trade.orderStatus
    assert (st.status, st.filled, st.remaining, st.avgFillPrice) == ("Filled", 100, 0, 600.02)
    assert st.permId > 0
    [fill] = trade.fills
    ex = fill.execution
    assert (ex.side, ex.shares, ex.price, ex.cumQty, ex.avgPrice) == ("BOT", 100, 600.02, 100, 600.02)
    assert ex.orderRef == "desk-0001" and ex.permId == st.permId and ex.acctNumber == "DU1234567"
    assert ex.exchange == "ARCA" and ex.execId
    assert abs((ex.time - datetime.now(UTC)).total_seconds()) < 60  # IB time with its zone
    # IB fixed: 100 x $0.005 = $0.50, below the $1.00 minimum
    assert fill.commissionReport.commission == pytest.approx(1.00)
    assert fill.commissionReport.currency == "USD"
    assert commissions[0].execId == ex.execId


async def test_partial_fill_rests_then_fills_with_one_minimum(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=300)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 500, 600.05))
    await wait_until(lambda: trade.orderStatus.filled == 300, 2.0, "the partial fill")
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 200
    # the next step shows 1,000 shares again at the same ask: the rest trades there
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=1000)
    gateway.orders.on_step()
    await wait_until(
        lambda: trade.isDone() and len(trade.fills) == 2 and trade.fills[1].commissionReport.commission > 0, 2.0, "the rest"
    )
    assert [f.execution.shares for f in trade.fills] == [300, 200]
    assert [f.execution.price for f in trade.fills] == [600.02, 600.02]
    assert [f.execution.cumQty for f in trade.fills] == [300, 500]
    # 300 x 0.005 = 1.50, then 500 x 0.005 = 2.50 in all: the minimum is paid once
    assert [f.commissionReport.commission for f in trade.fills] == pytest.approx([1.50, 1.00])
    assert len({f.execution.execId for f in trade.fills}) == 2


async def test_resting_order_fills_when_the_market_moves(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    bid, ask, *_ = gateway.quote_for(SPY_CON_ID)
    limit = round(bid - 0.01, 2)  # below the bid: rests
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, limit))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    assert not trade.fills
    order = gateway.orders.orders[(1, trade.order.orderId)]
    for _ in range(20_000):  # the seeded market walks until its ask reaches the limit
        gateway.step()
        if order.filled:
            break
    assert order.filled == 100
    assert gateway.quote_for(SPY_CON_ID).ask <= limit
    await wait_until(lambda: trade.isDone() and trade.fills, 2.0, "the fill")
    ex = trade.fills[0].execution
    assert ex.price == limit  # a resting limit is filled at its limit
    assert ex.lastLiquidity == 1  # added liquidity


async def test_resting_sell_fills_at_its_limit_when_the_bid_rises(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    ib.placeOrder(contract, MarketOrder("BUY", 100))
    await wait_until(lambda: ib.positions(), 2.0, "the long position")
    set_quote(gateway, "SPY", 600.00, 600.01)
    trade = ib.placeOrder(contract, LimitOrder("SELL", 100, 600.50))
    gateway.orders.on_step()
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    assert trade.orderStatus.filled == 0
    set_quote(gateway, "SPY", 600.55, 600.56)  # the market jumps through the limit
    gateway.orders.on_step()
    await wait_until(lambda: trade.isDone() and trade.fills, 2.0, "the fill")
    assert trade.fills[0].execution.price == 600.50
    assert trade.fills[0].execution.side == "SLD"


async def test_market_order_takes_the_bid(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 599.98, 600.00, bid_size=200)
    trade = ib.placeOrder(contract, MarketOrder("SELL", 200))
    await wait_until(lambda: trade.isDone(), 2.0)
    assert trade.orderStatus.avgFillPrice == 599.98
    assert trade.fills[0].execution.side == "SLD"


async def test_cancel_and_cancel_again(ib: IB, gateway: SimGateway, wait_until) -> None:
    errors = collect_errors(ib)
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    cancelled = asyncio.Event()
    trade.cancelledEvent += lambda t: cancelled.set()
    ib.cancelOrder(trade.order)
    await asyncio.wait_for(cancelled.wait(), 2.0)
    assert trade.orderStatus.status == "Cancelled" and not trade.fills
    assert 202 in [code for _, code, _ in errors]
    ib.cancelOrder(trade.order)  # already cancelled: IB's 10148
    await wait_until(lambda: 10148 in [code for _, code, _ in errors], 2.0)
    ib.client.cancelOrder(999_999)  # never placed: IB's 10147
    await wait_until(lambda: 10147 in [code for _, code, _ in errors], 2.0)
    # a cancelled order never fills, even when the market reaches it
    set_quote(gateway, "SPY", 589.00, 589.01)
    gateway.orders.on_step()
    await asyncio.sleep(0.05)
    assert not trade.fills and ib.positions() == []


async def test_modify_keeps_the_order_id_and_perm_id(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 595.00, orderRef="mod-1"))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    perm_id = trade.orderStatus.permId
    trade.order.lmtPrice = 596.00
    trade.order.totalQuantity = 200
    ib.placeOrder(contract, trade.order)
    await wait_until(lambda: trade.orderStatus.remaining == 200, 2.0, "the modification")
    assert trade.log[-2].message == "Modify"
    order = gateway.orders.orders[(1, trade.order.orderId)]
    assert (order.lmt_price, order.quantity, order.perm_id) == (596.00, 200, perm_id)
    assert len(gateway.orders.orders) == 1
    trade.order.lmtPrice = 600.02  # now marketable: fills at once
    ib.placeOrder(contract, trade.order)
    await wait_until(lambda: trade.isDone(), 2.0)
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.permId == perm_id
    assert trade.fills[0].execution.shares == 200 and trade.fills[0].execution.price == 600.02


async def test_rejected_modification_leaves_the_order_working(ib: IB, gateway: SimGateway, wait_until) -> None:
    errors = collect_errors(ib)
    contract = await spy(ib)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 500.00))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    trade.order.lmtPrice = 500.005  # off the grid
    ib.placeOrder(contract, trade.order)
    await wait_until(lambda: 201 in [code for _, code, _ in errors], 2.0)
    assert "modification rejected" in errors[-1][2]
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0, "the restatement")
    order = gateway.orders.orders[(1, trade.order.orderId)]
    assert order.lmt_price == 500.00 and order.status == "Submitted"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda c: LimitOrder("BUY", 0, 500.0), "quantity must be positive"),
        (lambda c: LimitOrder("BUY", -5, 500.0), "quantity must be positive"),
        (lambda c: LimitOrder("BUY", 10.5, 500.0), "fractional quantity"),
        (lambda c: LimitOrder("BUY", 100, 500.005), "minimum price variation"),
        (lambda c: LimitOrder("BUY", 100, -1.0), "must be positive"),
        (
            lambda c: Order(action="BUY", totalQuantity=100, orderType="PEG MID", auxPrice=1.0),
            "order type 'PEG MID' is not supported",
        ),
        (lambda c: Order(action="BUY", totalQuantity=100, orderType="TRAIL"), "needs a trailing amount"),
        (lambda c: LimitOrder("BUY", 100, 500.0, tif="GTX"), "time in force 'GTX'"),
        (lambda c: StopOrder("BUY", 100, 500.0, tif="OPG"), "OPG applies to LMT and MKT"),
        (lambda c: LimitOrder("BUY", 100, 500.0, account="DU999"), "account 'DU999'"),
        (lambda c: LimitOrder("BUY", 100, 500.0, parentId=999_999), "parent order 999999"),
        (lambda c: LimitOrder("BUY", 100, 500.0, tif="GTD", goodTillDate="20200101 10:00:00"), "is in the past"),
        (lambda c: Order(action="BUY", totalQuantity=100, orderType="LMT"), "needs a limit price"),
        (lambda c: Order(action="BUY", totalQuantity=100, orderType="STP"), "needs a stop price"),
        (lambda c: LimitOrder("BUY", 10_000, 600.0), "MUST EXCEED THE INITIAL MARGIN"),
    ],
)
async def test_rejections_are_201_with_a_reason(ib: IB, wait_until, make, reason) -> None:
    errors = collect_errors(ib)
    contract = await spy(ib)
    trade = ib.placeOrder(contract, make(contract))
    await wait_until(lambda: trade.isDone(), 2.0, "the rejection")
    assert trade.orderStatus.status == "Cancelled" and not trade.fills
    [(req_id, code, text)] = [e for e in errors if e[1] < 2100]
    assert (req_id, code) == (trade.order.orderId, 201)
    assert text.startswith("Order rejected - reason:") and reason in text


async def test_unknown_contract_is_rejected(ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    trade = ib.placeOrder(Stock(conId=12345, symbol="NOPE", exchange="SMART", currency="USD"), LimitOrder("BUY", 1, 10.0))
    await wait_until(lambda: trade.isDone(), 2.0)
    assert [(c, "unknown contract" in t) for _, c, t in errors if c < 2100] == [(201, True)]


async def test_short_sale_of_a_hard_to_borrow_stock_is_rejected(ib: IB, gateway: SimGateway, wait_until) -> None:
    errors = collect_errors(ib)
    gme, spy_ = await ib.qualifyContractsAsync(Stock("GME", "SMART", "USD"), Stock("SPY", "SMART", "USD"))
    short_gme = ib.placeOrder(gme, MarketOrder("SELL", 100))
    await wait_until(lambda: short_gme.isDone(), 2.0)
    assert short_gme.orderStatus.status == "Cancelled"
    assert any(c == 201 and "hard to borrow" in t for _, c, t in errors)
    # selling what one owns is fine, and easy-to-borrow names can be shorted
    buy = ib.placeOrder(gme, MarketOrder("BUY", 100))
    await wait_until(lambda: buy.isDone(), 2.0)
    sell = ib.placeOrder(gme, MarketOrder("SELL", 100))
    short_spy = ib.placeOrder(spy_, MarketOrder("SELL", 100))
    await wait_until(lambda: sell.isDone() and short_spy.isDone(), 2.0)
    assert sell.orderStatus.status == short_spy.orderStatus.status == "Filled"
    assert {p.contract.symbol: p.position for p in ib.positions()} == {"SPY": -100}


async def test_duplicate_order_id_is_103(ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    contract = await spy(ib)
    first = ib.placeOrder(contract, LimitOrder("BUY", 1, 500.0))
    await wait_until(lambda: first.orderStatus.status == "Submitted", 2.0)
    stale = LimitOrder("BUY", 1, 500.0)
    stale.orderId = first.order.orderId - 1  # below an id already used
    trade = ib.placeOrder(contract, stale)
    await wait_until(lambda: trade.isDone(), 2.0)
    assert (stale.orderId, 103, "Duplicate order id") in errors
    assert first.orderStatus.status == "Submitted"  # untouched


async def test_stop_waits_presubmitted_until_elected(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    stop = ib.placeOrder(contract, StopOrder("BUY", 100, 601.00))
    stop_limit = ib.placeOrder(contract, StopLimitOrder("BUY", 100, 601.10, 601.00))
    await wait_until(lambda: stop_limit.orderStatus.status == "PreSubmitted", 2.0)
    gateway.orders.on_step()
    await asyncio.sleep(0.05)
    assert stop.orderStatus.status == stop_limit.orderStatus.status == "PreSubmitted"
    # a print at the stop elects both (stocks trigger on the last price)
    set_quote(gateway, "SPY", 601.02, 601.05, last=601.00)
    gateway.orders.on_step()
    await wait_until(lambda: stop.isDone(), 2.0)
    assert stop.fills[0].execution.price == 601.05  # a market order once elected
    # the stop limit's limit (601.10) is above the ask: filled too
    await wait_until(lambda: stop_limit.isDone(), 2.0)
    assert stop_limit.fills[0].execution.price == 601.05
    assert "Submitted" in statuses(stop)


async def test_ioc_fills_what_it_can_and_cancels_the_rest(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=300)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 500, 600.05, tif="IOC"))
    await wait_until(lambda: trade.isDone(), 2.0)
    assert (trade.orderStatus.status, trade.orderStatus.filled) == ("Cancelled", 300)
    miss = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00, tif="IOC"))
    await wait_until(lambda: miss.isDone(), 2.0)
    assert miss.orderStatus.status == "Cancelled" and not miss.fills


async def test_orders_share_the_displayed_size(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(1)
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=500)
    a = ib.placeOrder(contract, LimitOrder("BUY", 400, 599.00))
    b = ib.placeOrder(contract, LimitOrder("BUY", 400, 599.00))
    await wait_until(lambda: b.orderStatus.status == "Submitted", 2.0)
    set_quote(gateway, "SPY", 598.98, 599.00, ask_size=500)
    gateway.orders.on_step()
    await wait_until(lambda: a.orderStatus.filled + b.orderStatus.filled == 500, 2.0)
    assert (a.orderStatus.filled, b.orderStatus.filled) == (400, 100)  # time priority


# --- combos ----------------------------------------------------------------------------------


def combo(legs: list[tuple[Contract, int, str]]) -> Bag:
    return Bag(
        symbol="SPY",
        exchange="SMART",
        currency="USD",
        comboLegs=[ComboLeg(conId=c.conId, ratio=r, action=a, exchange="SMART") for c, r, a in legs],
    )


async def test_conversion_fills_every_leg_at_its_quote(ib: IB, gateway: SimGateway, wait_until) -> None:
    stock = await spy(ib)
    opts = await spy_options(ib, (600.0,))
    call, put = opts[(600.0, "C")], opts[(600.0, "P")]
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=1000)
    c_bid = gateway.quote_for(call.conId).bid
    p_ask = gateway.quote_for(put.conId).ask
    net = 600.02 - c_bid + p_ask  # S - C + P per share (the combo's net price)
    bag = combo([(stock, 100, "BUY"), (call, 1, "SELL"), (put, 1, "BUY")])
    trade = ib.placeOrder(bag, LimitOrder("BUY", 2, round(net + 0.05, 2), orderRef="conv-1"))
    await wait_until(
        lambda: trade.isDone() and len(trade.fills) == 4 and all(f.commissionReport.execId for f in trade.fills[1:]), 2.0
    )
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == pytest.approx(net, abs=1e-6)
    by_type = {f.contract.secType + f.contract.right: f for f in trade.fills}
    assert by_type["BAG"].execution.shares == 2
    assert by_type["BAG"].execution.price == pytest.approx(net, abs=1e-6)
    stk, c, p = by_type["STK"].execution, by_type["OPTC"].execution, by_type["OPTP"].execution
    assert (stk.side, stk.shares, stk.price) == ("BOT", 200, 600.02)
    assert (c.side, c.shares, c.price) == ("SLD", 2, c_bid)
    assert (p.side, p.shares, p.price) == ("BOT", 2, p_ask)
    assert all(f.execution.orderRef == "conv-1" for f in trade.fills)
    # commissions per leg: 200 shares -> $1.00; 2 contracts -> 2 x $0.65 = $1.30
    assert by_type["STK"].commissionReport.commission == pytest.approx(1.00)
    assert by_type["OPTC"].commissionReport.commission == pytest.approx(1.30)
    await wait_until(lambda: len(ib.positions()) == 3, 2.0, "three positions")
    pos = {(p.contract.secType, p.contract.right): p.position for p in ib.positions()}
    assert pos == {("STK", ""): 200, ("OPT", "C"): -2, ("OPT", "P"): 2}


async def test_combo_fills_all_legs_or_none(ib: IB, gateway: SimGateway, wait_until) -> None:
    stock = await spy(ib)
    opts = await spy_options(ib, (600.0,))
    call, put = opts[(600.0, "C")], opts[(600.0, "P")]
    set_quote(gateway, "SPY", 600.00, 600.02, ask_size=1000)
    bag = combo([(stock, 100, "BUY"), (call, 1, "SELL"), (put, 1, "BUY")])
    net = 600.02 - gateway.quote_for(call.conId).bid + gateway.quote_for(put.conId).ask
    # 20 conversions need 2,000 shares; 1,000 are shown: nothing may fill
    trade = ib.placeOrder(bag, LimitOrder("BUY", 20, round(net + 0.05, 2)))
    await wait_until(lambda: trade.orderStatus.status == "Submitted", 2.0)
    gateway.orders.on_step()
    await asyncio.sleep(0.05)
    assert trade.orderStatus.filled == 0 and not trade.fills and ib.positions() == []
    # a limit under the market: still nothing
    trade.order.totalQuantity = 1
    trade.order.lmtPrice = round(net - 0.50, 2)
    ib.placeOrder(bag, trade.order)
    await wait_until(lambda: trade.orderStatus.remaining == 1, 2.0, "the modification")
    gateway.orders.on_step()
    await asyncio.sleep(0.05)
    assert not trade.fills and ib.positions() == []
    # at the market: every leg at once
    trade.order.lmtPrice = round(net + 0.05, 2)
    ib.placeOrder(bag, trade.order)
    await wait_until(lambda: trade.isDone() and len(ib.positions()) == 3, 2.0)
    assert len(trade.fills) == 4


async def test_box_sold_at_its_net_bid(ib: IB, gateway: SimGateway, wait_until) -> None:
    await spy(ib)
    o = await spy_options(ib, (590.0, 610.0))
    legs = [(o[(590.0, "C")], 1, "BUY"), (o[(610.0, "C")], 1, "SELL"), (o[(610.0, "P")], 1, "BUY"), (o[(590.0, "P")], 1, "SELL")]
    q = {c.conId: gateway.quote_for(c.conId) for c, _, _ in legs}
    # selling the box: legs bought by a BUY are sold at their bids, and vice versa
    net_bid = sum((q[c.conId].bid if a == "BUY" else -q[c.conId].ask) for c, _, a in legs)
    assert 0 < net_bid < 20.0
    trade = ib.placeOrder(combo(legs), LimitOrder("SELL", 1, round(net_bid - 0.01, 2)))
    await wait_until(lambda: trade.isDone(), 2.0)
    assert trade.orderStatus.avgFillPrice == pytest.approx(net_bid, abs=1e-6)
    await wait_until(lambda: len(ib.positions()) == 4, 2.0)
    assert sorted(p.position for p in ib.positions()) == [-1, -1, 1, 1]


async def test_combo_rejections(ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    stock = await spy(ib)
    one_leg = ib.placeOrder(combo([(stock, 100, "BUY")]), LimitOrder("BUY", 1, 1.0))
    bad_leg = Bag(
        symbol="SPY",
        exchange="SMART",
        currency="USD",
        comboLegs=[ComboLeg(conId=stock.conId, ratio=1, action="BUY"), ComboLeg(conId=4242, ratio=1, action="SELL")],
    )
    unknown = ib.placeOrder(bad_leg, LimitOrder("BUY", 1, 1.0))
    await wait_until(lambda: one_leg.isDone() and unknown.isDone(), 2.0)
    texts = [t for _, c, t in errors if c == 201]
    assert any("2 to 4 legs" in t for t in texts)
    assert any("unknown contract in combo leg 2" in t for t in texts)


# --- options -----------------------------------------------------------------------------


async def test_option_order_fills_with_option_commission(ib: IB, gateway: SimGateway, wait_until) -> None:
    await spy(ib)
    call = (await spy_options(ib, (600.0,)))[(600.0, "C")]
    ask = gateway.quote_for(call.conId).ask
    trade = ib.placeOrder(call, LimitOrder("BUY", 3, ask))
    await wait_until(lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.commission > 0, 2.0)
    assert trade.fills[0].execution.price == ask
    assert trade.fills[0].commissionReport.commission == pytest.approx(3 * 0.65)
    await wait_until(lambda: ib.positions(), 2.0)
    [p] = ib.positions()
    # IB reports an option's average cost per contract: price x 100 + commission per contract
    assert p.avgCost == pytest.approx(ask * 100 + 0.65)


def set_option_quote(gw: SimGateway, con_id: int, bid: float, ask: float, size: int = 500) -> None:
    """Move an option's top of book (dollars per share, contracts) as its source would."""
    gw.quote_for(con_id)  # activates the option's row
    engine = gw.options
    row = engine._row_of[con_id]
    engine.rows.bid[row], engine.rows.ask[row] = bid, ask
    engine.rows.bid_size[row] = engine.rows.ask_size[row] = size


def ticket_commission(contract: Contract, action: str, quantity: int, limit: float) -> float:
    """What the desk's order ticket estimates (desk.risk.evaluate) for this limit order."""
    if contract.secType == "OPT":
        ins = Instrument(
            contract.symbol,
            sec_type="OPT",
            con_id=contract.conId,
            expiry=contract.lastTradeDateOrContractMonth,
            strike=contract.strike,
            right=contract.right,
            multiplier=int(contract.multiplier),
        )
    else:
        ins = Instrument(contract.symbol, con_id=contract.conId)
    intent = OrderIntent(ins, Action(action), quantity, limit_price=limit)
    return evaluate(intent, MarketContext(now=datetime.now(UTC))).commission


@pytest.mark.parametrize(("premium", "per_contract"), [(0.03, 0.25), (0.07, 0.50), (0.45, 0.65)])
async def test_option_fills_charge_what_the_ticket_estimates_in_every_premium_tier(
    ib: IB, gateway: SimGateway, wait_until, premium: float, per_contract: float
) -> None:
    """Issue 10: the simulator charged $0.65 a contract where the ticket estimated $0.25."""
    await spy(ib)
    put = (await spy_options(ib, (560.0,)))[(560.0, "P")]
    set_option_quote(gateway, put.conId, round(premium - 0.01, 2), premium)
    trade = ib.placeOrder(put, LimitOrder("BUY", 10, premium))
    await wait_until(lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.execId, 2.0)
    [fill] = trade.fills
    assert fill.execution.price == premium
    charged = fill.commissionReport.commission
    assert charged == pytest.approx(ticket_commission(put, "BUY", 10, premium), abs=5e-5)
    assert charged == pytest.approx(IBKR_FIXED.option(10, premium), abs=5e-5)
    assert charged == pytest.approx(10 * per_contract)  # the tier, above the $1.00 minimum


async def test_a_small_stock_fill_pays_one_percent_of_its_value(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 1.99, 2.00)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 30, 2.00))
    await wait_until(lambda: trade.isDone() and trade.fills and trade.fills[0].commissionReport.execId, 2.0)
    charged = trade.fills[0].commissionReport.commission
    assert charged == pytest.approx(0.01 * 30 * 2.00)  # below the $1.00 minimum: the cap wins
    assert charged == pytest.approx(ticket_commission(contract, "BUY", 30, 2.00), abs=5e-5)


async def test_an_option_order_in_two_executions_pays_the_minimum_once(ib: IB, gateway: SimGateway, wait_until) -> None:
    await spy(ib)
    put = (await spy_options(ib, (560.0,)))[(560.0, "P")]
    set_option_quote(gateway, put.conId, 0.06, 0.07, size=2)
    trade = ib.placeOrder(put, LimitOrder("BUY", 6, 0.07))
    await wait_until(
        lambda: trade.orderStatus.filled == 2 and trade.fills and trade.fills[0].commissionReport.execId, 2.0, "the partial fill"
    )
    set_option_quote(gateway, put.conId, 0.06, 0.07, size=50)
    gateway.orders.on_step()
    await wait_until(lambda: trade.isDone() and len(trade.fills) == 2 and trade.fills[1].commissionReport.execId, 2.0, "the rest")
    fees = [f.commissionReport.commission for f in trade.fills]
    # 2 x 0.50 = the $1.00 minimum, then 6 x 0.50 = 3.00 in all: the ticket's estimate
    assert fees == pytest.approx([1.00, 2.00])
    assert sum(fees) == pytest.approx(ticket_commission(put, "BUY", 6, 0.07), abs=5e-5)


async def test_option_price_must_be_on_its_tick(ib: IB, gateway: SimGateway, wait_until) -> None:
    errors = collect_errors(ib)
    await ib.qualifyContractsAsync(Stock("JPM", "SMART", "USD"))
    params = await ib.reqSecDefOptParamsAsync("JPM", "", "STK", 1520593)
    p = next(p for p in params if p.exchange == "SMART")
    details = await ib.reqContractDetailsAsync(Option("JPM", p.expirations[3], right="C", exchange="SMART"))
    # the deepest in-the-money call costs more than $3: JPM quotes in $0.05 there
    call = min((d.contract for d in details), key=lambda c: c.strike)
    assert gateway.quote_for(call.conId).ask > 3.0
    trade = ib.placeOrder(call, LimitOrder("BUY", 1, 5.03))
    await wait_until(lambda: trade.isDone(), 2.0)
    assert any(c == 201 and "minimum price variation 0.05" in t for _, c, t in errors)


# --- what-if ---------------------------------------------------------------------------------


async def test_what_if_returns_reg_t_margins_and_keeps_nothing(ib: IB, gateway: SimGateway) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(contract, LimitOrder("BUY", 100, 600.02)), 2.0)
    # Reg T: 50 % initial, 25 % maintenance of the market value (marked at the last price)
    assert float(state.initMarginBefore) == 0.0
    assert float(state.initMarginChange) == pytest.approx(0.50 * 100 * 600.01, abs=0.01)
    assert float(state.maintMarginChange) == pytest.approx(0.25 * 100 * 600.01, abs=0.01)
    assert float(state.initMarginAfter) == pytest.approx(0.50 * 100 * 600.01, abs=0.01)
    # equity with loan drops by the commission and the 1 cent paid above the mark
    assert float(state.equityWithLoanBefore) == pytest.approx(1_000_000.00)
    assert float(state.equityWithLoanChange) == pytest.approx(-1.00 - 100 * 0.01, abs=0.01)
    assert state.commission == pytest.approx(1.00) and state.commissionCurrency == "USD"
    assert ib.openTrades() == [] and gateway.orders.orders == {}
    assert gateway.account().cash == 1_000_000.0


async def test_what_if_short_put_uses_the_cboe_formula(ib: IB, gateway: SimGateway) -> None:
    await spy(ib)
    put = (await spy_options(ib, (590.0,)))[(590.0, "P")]
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    q = gateway.quote_for(put.conId)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(put, LimitOrder("SELL", 2, q.bid)), 2.0)
    mv = (q.bid + q.ask) / 2 * 100  # an option is marked at its mid
    u = 600.01 * 100
    otm = (600.01 - 590.0) * 100
    # SPY is a broad-based index ETF: 15 % of the underlying instead of 20 %
    per_contract = max(mv + 0.15 * u - otm, mv + 0.10 * 590.0 * 100)
    assert float(state.initMarginChange) == pytest.approx(2 * per_contract, abs=0.02)
    assert float(state.maintMarginChange) == pytest.approx(2 * per_contract, abs=0.02)
    # the sale credits the premium: equity with loan (cash + stock) rises
    assert float(state.equityWithLoanChange) == pytest.approx(2 * q.bid * 100 - 2 * 0.65, abs=0.01)


async def test_what_if_of_a_long_box_needs_no_margin(ib: IB, gateway: SimGateway) -> None:
    await spy(ib)
    o = await spy_options(ib, (590.0, 610.0))
    bag = combo(
        [(o[(590.0, "C")], 1, "BUY"), (o[(610.0, "C")], 1, "SELL"), (o[(610.0, "P")], 1, "BUY"), (o[(590.0, "P")], 1, "SELL")]
    )
    state = await asyncio.wait_for(ib.whatIfOrderAsync(bag, LimitOrder("BUY", 1, 20.0)), 2.0)
    assert float(state.initMarginChange) == pytest.approx(0.0)
    assert float(state.equityWithLoanChange) < 0  # paid for the box
    assert state.commission == pytest.approx(4 * 1.00)  # $1.00 minimum per leg


async def test_what_if_of_a_short_box_needs_its_width_once(ib: IB, gateway: SimGateway) -> None:
    """Issue 10: the simulator charged a short box twice its width."""
    await spy(ib)
    o = await spy_options(ib, (590.0, 610.0))
    bag = combo(
        [(o[(590.0, "C")], 1, "BUY"), (o[(610.0, "C")], 1, "SELL"), (o[(610.0, "P")], 1, "BUY"), (o[(590.0, "P")], 1, "SELL")]
    )
    # selling the combo sells the 590 call and the 610 put, buys the 610 call and 590 put
    state = await asyncio.wait_for(ib.whatIfOrderAsync(bag, LimitOrder("SELL", 3, 19.0)), 2.0)
    width = (610.0 - 590.0) * 100
    assert float(state.initMarginChange) == pytest.approx(3 * width, abs=0.01)
    assert float(state.maintMarginChange) == pytest.approx(3 * width, abs=0.01)


async def test_what_if_margin_is_the_risk_engines_rule(ib: IB, gateway: SimGateway, wait_until) -> None:
    """The simulator's what-if and desk.risk.margin.initial_margin_change (the risk
    engine's fallback) give the same requirement for the same order at the same marks."""
    contract = await spy(ib)
    o = await spy_options(ib, (590.0, 600.0))
    set_quote(gateway, "SPY", 600.00, 600.02, last=600.01)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02))
    await wait_until(lambda: trade.isDone() and gateway.account().positions, 2.0, "the stock")
    call, put = o[(600.0, "C")], o[(590.0, "P")]
    instruments = {
        c.conId: Instrument(
            "SPY",
            sec_type="OPT",
            con_id=c.conId,
            strike=c.strike,
            right=c.right,
            expiry=c.lastTradeDateOrContractMonth,
            multiplier=100,
        )
        for c in (call, put)
    }
    stock = Instrument("SPY", con_id=SPY_CON_ID)
    marks = {SPY_CON_ID: 600.01}
    for c in (call, put):
        q = gateway.quote_for(c.conId)
        marks[c.conId] = (q.bid + q.ask) / 2  # an option is marked at its mid
    for c, qty in ((call, -3), (put, -2)):  # 1 call covered by the stock, 2 naked; 2 naked puts
        q = gateway.quote_for(c.conId)
        state = await asyncio.wait_for(ib.whatIfOrderAsync(c, LimitOrder("SELL", -qty, q.bid)), 2.0)
        desk = initial_margin_change([(stock, 100.0)], [(instruments[c.conId], qty)], marks)
        assert float(state.initMarginChange) == pytest.approx(desk, abs=0.01)
        assert desk > 0


# --- open / completed orders, executions, global cancel, reconnect --------------------------


async def test_open_orders_per_client_and_all(connect, gateway: SimGateway, wait_until) -> None:
    ib1, ib2 = await connect(1), await connect(2)
    contract = await spy(ib1)
    t1 = ib1.placeOrder(contract, LimitOrder("BUY", 1, 500.0, orderRef="c1"))
    t2 = ib2.placeOrder(contract, LimitOrder("BUY", 2, 501.0, orderRef="c2"))
    await wait_until(lambda: t1.orderStatus.status == t2.orderStatus.status == "Submitted", 2.0)
    mine = await asyncio.wait_for(ib2.reqOpenOrdersAsync(), 2.0)
    assert [t.order.orderRef for t in mine] == ["c2"]
    every = await asyncio.wait_for(ib2.reqAllOpenOrdersAsync(), 2.0)
    assert sorted((t.order.clientId, t.order.orderRef) for t in every) == [(1, "c1"), (2, "c2")]


async def test_global_cancel_cancels_every_client(connect, gateway: SimGateway, wait_until) -> None:
    ib1, ib2 = await connect(1), await connect(2)
    contract = await spy(ib1)
    t1 = ib1.placeOrder(contract, LimitOrder("BUY", 1, 500.0))
    t2 = ib2.placeOrder(contract, LimitOrder("SELL", 1, 700.0))
    await wait_until(lambda: t1.orderStatus.status == t2.orderStatus.status == "Submitted", 2.0)
    ib1.reqGlobalCancel()
    await wait_until(lambda: t1.isDone() and t2.isDone(), 2.0)
    assert t1.orderStatus.status == t2.orderStatus.status == "Cancelled"
    assert gateway.orders.open_orders() == []


async def test_completed_orders_and_executions(ib: IB, gateway: SimGateway, wait_until) -> None:
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02)
    filled = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02, orderRef="f-1"))
    cancelled = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00, orderRef="c-1"))
    await wait_until(lambda: filled.isDone() and cancelled.orderStatus.status == "Submitted", 2.0)
    ib.cancelOrder(cancelled.order)
    await wait_until(lambda: cancelled.isDone(), 2.0)
    done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 2.0)
    by_ref = {t.order.orderRef: t for t in done}
    assert by_ref["f-1"].orderStatus.status == "Filled"
    assert by_ref["c-1"].orderStatus.status == "Cancelled"
    assert by_ref["f-1"].order.permId == filled.orderStatus.permId
    assert by_ref["f-1"].contract.conId == SPY_CON_ID
    fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 2.0)
    assert [(f.execution.orderRef, f.execution.shares) for f in fills] == [("f-1", 100)]
    assert fills[0].execution.execId == filled.fills[0].execution.execId
    none = await asyncio.wait_for(ib.reqExecutionsAsync(ExecutionFilter(symbol="AAPL")), 2.0)
    assert none == []


async def test_reconnect_keeps_orders_executions_and_account(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(1)
    contract = await spy(ib)
    set_quote(gateway, "SPY", 600.00, 600.02)
    bought = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02, orderRef="desk-fill"))
    resting = ib.placeOrder(contract, LimitOrder("BUY", 50, 590.00, orderRef="desk-rest"))
    await wait_until(lambda: bought.isDone() and resting.orderStatus.status == "Submitted", 2.0)
    used = resting.order.orderId
    perm_id = resting.orderStatus.permId
    ib.disconnect()
    await wait_until(lambda: gateway.clients == 0, 2.0)
    # while the client is away its resting order keeps working
    set_quote(gateway, "SPY", 589.99, 590.00, ask_size=20)
    gateway.orders.on_step()

    again = IB()
    await again.connectAsync("127.0.0.1", gateway.port, clientId=1)
    try:
        [trade] = again.openTrades()
        assert (trade.order.orderRef, trade.order.permId, trade.order.orderId) == ("desk-rest", perm_id, used)
        assert (trade.orderStatus.status, trade.orderStatus.filled) == ("Submitted", 20)
        assert {p.contract.conId: p.position for p in again.positions()} == {SPY_CON_ID: 120}
        fills = sorted(again.fills(), key=lambda f: f.execution.orderRef)
        assert [f.execution.orderRef for f in fills] == ["desk-fill", "desk-rest"]
        # the startup sync's reqExecutions brings the commission reports too
        assert [f.commissionReport.commission for f in fills] == pytest.approx([1.00, 1.00])
        assert again.client.getReqId() > used  # nextValidId stays ahead
        cancelled = asyncio.Event()
        trade.cancelledEvent += lambda t: cancelled.set()
        again.cancelOrder(trade.order)
        await asyncio.wait_for(cancelled.wait(), 2.0)
        assert gateway.orders.open_orders() == []
    finally:
        again.disconnect()


# --- market hours ----------------------------------------------------------------------------


async def test_market_hours_hold_orders_until_the_open_and_expire_day_orders(wait_until) -> None:
    saturday = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # 12:00 US/Eastern, Saturday
    clock = FrozenClock(saturday)
    gw = SimGateway(seed=7, clock=clock, market_hours=True, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        contract = await spy(ib)
        set_quote(gw, "SPY", 600.00, 600.02)
        day = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02))
        ioc = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02, tif="IOC"))
        gtc = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00, tif="GTC"))
        rest = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00))
        await wait_until(lambda: ioc.isDone() and rest.orderStatus.status == "PreSubmitted", 2.0)
        assert ioc.orderStatus.status == "Cancelled" and not ioc.fills
        assert day.orderStatus.status == "PreSubmitted" and not day.fills
        clock.advance(2 * 86400 - 2.5 * 3600)  # Monday 09:30 US/Eastern
        gw.orders.on_step()
        await wait_until(lambda: day.isDone(), 2.0)
        assert day.fills[0].execution.price == 600.02
        assert rest.orderStatus.status == "Submitted"
        clock.advance(6.5 * 3600)  # 16:00: DAY orders expire, GTC orders stay
        gw.orders.on_step()
        await wait_until(lambda: rest.isDone(), 2.0)
        assert rest.orderStatus.status == "Cancelled"
        assert gtc.orderStatus.status == "Submitted"
    finally:
        ib.disconnect()
        await gw.stop()


def test_placeorder_parser_reads_what_ib_async_writes() -> None:
    """The parser walks every conditional block of ib_async's client.placeOrder (the real
    client's encoding, captured before the socket)."""
    from ib_async.client import Client

    from desk.sim.order_parse import parse_place_order

    class Capture(Client):
        def __init__(self) -> None:  # no connection: keep what send() would write
            self.msgs: list[str] = []

        def isConnected(self) -> bool:
            return True

        def serverVersion(self) -> int:
            return 178

        def sendMsg(self, msg: str) -> None:
            self.msgs.append(msg)

    client = Capture()
    order = LimitOrder("SELL", 7, 12.34, tif="GTC", orderRef="ref-9", outsideRth=True, triggerMethod=2, account="DU1234567")
    order.algoStrategy = "Adaptive"
    order.deltaNeutralOrderType = "LMT"
    order.hedgeType = "D"
    order.hedgeParam = "0.5"
    order.scalePriceIncrement = 0.05
    bag = Bag(
        symbol="SPY",
        exchange="SMART",
        currency="USD",
        comboLegs=[
            ComboLeg(conId=1, ratio=100, action="BUY", exchange="SMART"),
            ComboLeg(conId=2, ratio=1, action="SELL", exchange="SMART"),
        ],
    )
    for contract in (Stock("SPY", "SMART", "USD"), bag):
        for what_if in (False, True):
            order.whatIf = what_if
            client.placeOrder(42, contract, order)
            fields = client.msgs[-1].split("\0")[:-1]
            req = parse_place_order(fields, 178)
            assert (req.order_id, req.action, req.quantity, req.order_type) == (42, "SELL", 7, "LMT")
            assert (req.lmt_price, req.tif, req.order_ref, req.outside_rth) == (12.34, "GTC", "ref-9", True)
            assert req.trigger_method == 2 and req.account == "DU1234567"
            assert req.what_if is what_if
            assert set(req.unsupported) >= {"delta-neutral orders", "scale orders", "hedge orders", "algo 'Adaptive'"}
            if contract is bag:
                assert [(leg.con_id, leg.ratio, leg.action) for leg in req.legs] == [(1, 100, "BUY"), (2, 1, "SELL")]
    with pytest.raises(ValueError, match="placeOrder ends"):
        parse_place_order(client.msgs[0].split("\0")[:30], 178)


async def test_combo_orders_come_back_after_a_reconnect(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(5)
    stock = await spy(ib)
    opts = await spy_options(ib, (600.0,))
    bag = combo([(stock, 100, "BUY"), (opts[(600.0, "C")], 1, "SELL"), (opts[(600.0, "P")], 1, "BUY")])
    resting = ib.placeOrder(bag, LimitOrder("BUY", 1, 100.00, orderRef="conv-rest"))
    filled = ib.placeOrder(bag, LimitOrder("BUY", 1, 1000.00, orderRef="conv-done"))
    await wait_until(lambda: filled.isDone() and resting.orderStatus.status == "Submitted", 2.0)
    ib.disconnect()
    await wait_until(lambda: gateway.clients == 0, 2.0)
    again = await connect(5)
    [trade] = again.openTrades()
    assert trade.order.orderRef == "conv-rest" and trade.contract.secType == "BAG"
    assert [(leg.conId, leg.ratio, leg.action) for leg in trade.contract.comboLegs] == [
        (stock.conId, 100, "BUY"),
        (opts[(600.0, "C")].conId, 1, "SELL"),
        (opts[(600.0, "P")].conId, 1, "BUY"),
    ]
    done = await asyncio.wait_for(again.reqCompletedOrdersAsync(False), 2.0)
    [completed] = [t for t in done if t.order.orderRef == "conv-done"]
    assert completed.orderStatus.status == "Filled" and len(completed.contract.comboLegs) == 3
    execs = await asyncio.wait_for(again.reqExecutionsAsync(), 2.0)
    assert sorted(f.contract.secType for f in execs) == ["BAG", "OPT", "OPT", "STK"]
