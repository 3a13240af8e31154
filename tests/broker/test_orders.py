"""The broker's order path through the real Runtime: embedded simulator, ib_async, the
OrderManager, the OrderRouter and a SQLite audit log. Fills, cancel, modify, what-if,
account / P&L, the kill switch, and no duplicate send across a forced disconnect."""

from __future__ import annotations

import asyncio
import math

import pytest

from desk.domain import ConnectionState
from desk.risk import OrderIntent
from desk.runtime import Runtime
from desk.settings import Mode, Settings


def _settings(tmp_path, **kw) -> Settings:
    base = dict(
        mode=Mode.SIM, record=False, database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}", watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill", live_override_file=tmp_path / "override", _env_file=None,
    )
    base.update(kw)
    return Settings(**base)


async def wait_for(cond, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def runtime(tmp_path):
    rt = Runtime(_settings(tmp_path))
    await rt.start()
    await wait_for(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, "connected")
    spy = rt.broker.watchlist[0]
    await wait_for(lambda: (q := rt.quotes.get(spy.con_id)) is not None and q.bid > 0 and q.ask > 0, "SPY quotes")
    yield rt
    await rt.stop()


def spy_of(rt: Runtime):
    return next(i for i in rt.broker.watchlist if i.symbol == "SPY")


def intent(rt: Runtime, action: str, qty: int, *, offset: float = 0.0, order_type: str = "LMT") -> OrderIntent:
    spy = spy_of(rt)
    q = rt.quotes.get(spy.con_id)
    ref = q.ask if action == "BUY" else q.bid
    if order_type == "MKT":
        return OrderIntent(spy, action, qty, "MKT")
    return OrderIntent(spy, action, qty, "LMT", limit_price=round(ref + offset, 2))


async def test_marketable_order_fills_and_is_audited(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 10, offset=0.25)
    result = await rt.router.submit(i, rt.market_context(i))
    assert result.sent, result.reasons
    ref = result.client_order_id
    await wait_for(lambda: ref in rt.orders.rows and rt.orders.rows[ref].status == "Filled", "the fill")
    row = rt.orders.rows[ref]
    assert row.filled == 10 and row.remaining == 0 and row.avg_price <= i.limit_price
    assert row.describe.startswith("BUY 10 SPY LMT")
    await wait_for(lambda: rt.audit.current_state(ref) == "filled", "the fill row")
    events = [r.event for r in rt.audit.events_for(ref)]
    assert events[:2] == ["intent", "sent"] and "fill" in events
    # the position and its P&L arrive from the account
    await wait_for(lambda: any(r.instrument.con_id == i.instrument.con_id and r.quantity == 10 for r in rt.account.rows()),
                   "the position")
    figures = rt.account.figures()
    assert figures.net_liquidation > 0 and figures.buying_power > 0 and figures.excess_liquidity > 0
    await wait_for(lambda: math.isfinite(rt.account.figures().daily_pnl), "reqPnL")


async def test_resting_order_is_modified_and_cancelled(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 3, offset=-2.0)
    result = await rt.router.submit(i, rt.market_context(i))
    assert result.sent, result.reasons
    ref = result.client_order_id
    await wait_for(lambda: rt.orders.rows.get(ref) and rt.orders.rows[ref].status == "Submitted", "working")
    assert [o.quantity for o in rt.orders.open_intents()] == [3]
    new = rt.orders.modify(ref, limit_price=round(i.limit_price - 0.5, 2))
    await wait_for(lambda: rt.orders.rows[ref].limit_price == new.limit_price, "the modified price")
    rt.orders.cancel(ref)
    await wait_for(lambda: rt.orders.rows[ref].status == "Cancelled", "the cancel")
    assert not rt.orders.rows[ref].working
    with pytest.raises(Exception, match="Cancelled"):
        rt.orders.cancel(ref)


async def test_what_if_gives_the_margin_impact(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 100, offset=0.0)
    impact = await rt.orders.what_if(i)
    assert impact is not None
    assert impact.init_margin_change > 0
    assert math.isclose(impact.init_margin_after, impact.init_margin_before + impact.init_margin_change, rel_tol=1e-6)
    report = rt.router.preview(i, rt.market_context(i, impact))
    assert report.margin == impact
    assert not rt.orders.rows  # a what-if is not an order


async def test_gateway_rejection_text_reaches_the_row(runtime: Runtime) -> None:
    rt = runtime
    # cancelling a filled order: the gateway answers with an error for that orderId
    i = intent(rt, "BUY", 1, offset=0.25)
    result = await rt.router.submit(i, rt.market_context(i))
    ref = result.client_order_id
    await wait_for(lambda: rt.orders.rows.get(ref) and rt.orders.rows[ref].status == "Filled", "the fill")
    trade = rt.orders._trades[ref]
    rt.broker.ib.cancelOrder(trade.order)
    await wait_for(lambda: rt.orders.rows[ref].error != "", "the gateway's error")
    assert rt.orders.rows[ref].error.split(":")[0].isdigit()


async def test_kill_switch_cancels_everything_and_blocks(runtime: Runtime) -> None:
    rt = runtime
    refs = []
    for k in range(2):
        i = intent(rt, "BUY", 1 + k, offset=-3.0 - k)
        r = await rt.router.submit(i, rt.market_context(i))
        assert r.sent, r.reasons
        refs.append(r.client_order_id)
    await wait_for(lambda: all(rt.orders.rows.get(x) and rt.orders.rows[x].status == "Submitted" for x in refs), "working")
    state = await rt.router.engage_kill_switch("test")
    assert state.engaged and state.error == ""
    await wait_for(lambda: all(rt.orders.rows[x].status == "Cancelled" for x in refs), "global cancel")
    i = intent(rt, "BUY", 5, offset=-1.0)
    blocked = await rt.router.submit(i, rt.market_context(i))
    assert blocked.status == "blocked" and "kill switch" in blocked.reasons[0]
    await rt.router.reset_kill_switch("test")
    assert (await rt.router.submit(i, rt.market_context(i))).sent


async def test_no_duplicate_send_across_a_forced_disconnect(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 4, offset=-2.5)
    result = await rt.router.submit(i, rt.market_context(i))
    assert result.sent, result.reasons
    ref = result.client_order_id
    before = rt.orders.reconciles
    await asyncio.to_thread(rt.sim.drop_clients)  # the connection dies under the order
    await wait_for(lambda: rt.orders.reconciles > before and rt.orders.ready, "reconnect and reconcile")
    plan = rt.orders.last_plan
    assert {d.client_order_id: d.action for d in plan.decisions}[ref] == "adopt"
    assert rt.audit.current_state(ref) == "working"
    # the same order again is a duplicate: refused, not sent
    again = await rt.router.submit(i, rt.market_context(i))
    assert again.status == "blocked" and again.reasons[0].startswith("duplicate")
    orders, _ = await rt.orders.snapshot()
    assert [r for r in orders if r == ref] == [ref]
    assert sum(1 for t in await rt.broker.ib.reqAllOpenOrdersAsync() if t.order.orderRef == ref) == 1
    # after the reconnect the order is still ours to cancel
    await wait_for(lambda: rt.orders.rows[ref].status == "Submitted", "working after reconnect")
    rt.orders.cancel(ref)
    await wait_for(lambda: rt.orders.rows[ref].status == "Cancelled", "the cancel")


async def test_transmit_waits_for_reconciliation(runtime: Runtime) -> None:
    rt = runtime
    rt.orders.ready = False  # as between a connect and the end of its reconciliation
    i = intent(rt, "BUY", 2, offset=-2.0)
    r = await rt.router.submit(i, rt.market_context(i))
    assert r.status == "rejected" and "reconciling" in r.reasons[0]
    assert rt.audit.current_state(r.client_order_id) == "rejected"
    assert not rt.orders.rows


async def test_option_position_has_greeks_and_portfolio_sums(runtime: Runtime) -> None:
    from ib_async import LimitOrder, Option

    rt = runtime
    ib = rt.broker.ib
    spot = rt.quotes.get(spy_of(rt).con_id).mid
    details = await ib.reqContractDetailsAsync(Option("SPY", "", 0, "C", "SMART"))
    first = min(d.contract.lastTradeDateOrContractMonth for d in details)
    call = min((d.contract for d in details if d.contract.lastTradeDateOrContractMonth == first),
               key=lambda c: abs(c.strike - spot))
    [ticker] = await ib.reqTickersAsync(call)
    assert ticker.ask > 0
    trade = ib.placeOrder(call, LimitOrder("BUY", 2, round(ticker.ask + 0.05, 2)))
    await wait_for(lambda: trade.orderStatus.status == "Filled", "the option fill")

    def option_row():
        return next((r for r in rt.account.rows() if r.instrument.sec_type == "OPT" and r.quantity == 2), None)

    await wait_for(lambda: (r := option_row()) is not None and math.isfinite(r.delta), "the option position's Greeks")
    row = option_row()
    assert row.instrument.multiplier == 100 and row.avg_cost < 100  # per share, not per contract
    assert 0 < row.delta < 200 and row.theta < 0 and row.vega > 0 and row.gamma > 0 and 0 < row.iv < 5
    assert math.isclose(row.dollar_delta, row.delta * rt.account.underlying_price("SPY"), rel_tol=1e-9)
    greeks = rt.account.greeks()
    assert greeks.options == greeks.priced == 1
    assert math.isclose(greeks.delta, row.delta, rel_tol=1e-6, abs_tol=1.0)


async def test_restart_reconciles_before_sending_and_says_what_never_left(tmp_path) -> None:
    from desk.domain import Instrument, StatusEvent
    from desk.store import AuditEvent, AuditLog

    settings = _settings(tmp_path)
    crashed = "desk-" + "c" * 24  # written, then the desk died before placeOrder
    audit = AuditLog(settings.database_url)
    spy = Instrument("SPY", con_id=756733)
    audit.write(AuditEvent("intent", crashed, "corr-c", {"intent": OrderIntent(spy, "BUY", 1, "LMT", limit_price=1.0)
                                                         .to_payload()}, mode="sim", account=""))
    audit.close()
    rt = Runtime(settings)
    notices: list[StatusEvent] = []
    rt.broker.add_listener(lambda ev: notices.append(ev) if isinstance(ev, StatusEvent) else None)
    await rt.start()
    try:
        await wait_for(lambda: rt.orders.ready, "reconciled")
        assert rt.orders.reconciles == 1
        assert [(d.client_order_id, d.action) for d in rt.orders.last_plan.decisions] == [(crashed, "resend")]
        assert rt.audit.current_state(crashed) == "abandoned"
        assert any(n.level == "warning" and "never sent before the restart: not resent" in n.text for n in notices)
        orders, _ = await rt.orders.snapshot()
        assert crashed not in orders  # reconciliation itself sends nothing
    finally:
        await rt.stop()
