"""The order service through the real Runtime: embedded simulator, ib_async, the broker's
order gateway, the order service and a SQLite audit log. Fills, cancel, modify, what-if,
account / P&L, the kill switch and reduce-only, rejections, fills missed during a
disconnect, and no duplicate send across a forced disconnect."""

from __future__ import annotations

import asyncio
import math

import pytest
from orders_testlib import wait_until as wait_for

from desk.domain import ConnectionState
from desk.domain.calendar import exchange_date
from desk.domain.orders import OrderNotSent
from desk.risk import OrderIntent
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings


def _settings(tmp_path, **kw) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "override",
        _env_file=None,
    )
    base.update(kw)
    return Settings(**base)


async def audit_state(rt: Runtime, ref: str) -> str | None:
    """The order's lifecycle state in the audit log once every queued row is written."""
    await rt.audit.drain()
    return rt.audit.log.current_state(ref)


async def audit_events(rt: Runtime, ref: str) -> list[str]:
    await rt.audit.drain()
    return [r.event for r in rt.audit.log.events_for(ref)]


async def eventually_state(rt: Runtime, ref: str, state: str, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (got := await audit_state(rt, ref)) != state:
        assert loop.time() < deadline, f"timed out waiting for {what}: {got}"
        await asyncio.sleep(0.05)


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
    result = await rt.orders.place(i)
    assert result.sent, result.reasons
    ref = result.client_order_id
    await wait_for(lambda: ref in rt.orders.rows and rt.orders.rows[ref].status == "Filled", "the fill")
    row = rt.orders.rows[ref]
    assert row.filled == 10 and row.remaining == 0 and row.avg_price <= i.limit_price
    assert row.describe.startswith("BUY 10 SPY LMT")
    await eventually_state(rt, ref, "filled", "the fill row")
    events = await audit_events(rt, ref)
    assert events[:2] == ["intent", "sent"] and events.count("fill") == len(rt.orders.ledger.fills(ref)) >= 1
    # the position and its P&L arrive from the account
    await wait_for(
        lambda: any(r.instrument.con_id == i.instrument.con_id and r.quantity == 10 for r in rt.account.rows()), "the position"
    )
    figures = rt.account.figures()
    assert figures.net_liquidation > 0 and figures.buying_power > 0 and figures.excess_liquidity > 0
    await wait_for(lambda: math.isfinite(rt.account.figures().daily_pnl), "reqPnL")


async def test_resting_order_is_modified_and_cancelled(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 3, offset=-2.0)
    result = await rt.orders.place(i)
    assert result.sent, result.reasons
    ref = result.client_order_id
    await wait_for(lambda: rt.orders.rows.get(ref) and rt.orders.rows[ref].status == "Submitted", "working")
    assert [o.quantity for o in rt.orders.book.open_intents()] == [3]
    price = round(i.limit_price - 0.5, 2)
    changed = await rt.orders.modify(ref, limit_price=price, quantity=5)
    assert changed.sent, changed.reasons
    await wait_for(
        lambda: rt.orders.rows[ref].limit_price == price and rt.orders.rows[ref].quantity == 5, "the modified price and quantity"
    )
    assert "modify_request" in await audit_events(rt, ref)
    await rt.orders.cancel(ref)
    await wait_for(lambda: rt.orders.rows[ref].status == "Cancelled", "the cancel")
    row = rt.orders.rows[ref]
    assert not row.working and row.error == ""  # the cancel we asked for is not an error
    with pytest.raises(OrderNotSent, match="Cancelled"):
        await rt.orders.cancel(ref)


async def test_what_if_gives_the_margin_impact(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 100, offset=0.0)
    impact = await rt.orders.what_if(i)
    assert impact is not None
    assert impact.init_margin_change > 0
    assert math.isclose(impact.init_margin_after, impact.init_margin_before + impact.init_margin_change, rel_tol=1e-6)
    report = rt.orders.preview(i, impact)
    assert report.margin == impact and report.cost_basis == "IB what-if"
    assert report.cost == pytest.approx(impact.init_margin_change - impact.equity_with_loan_change)
    assert not rt.orders.rows  # a what-if is not an order


async def test_a_gateway_rejection_is_rejected_with_its_text(runtime: Runtime) -> None:
    """GME is hard to borrow in the simulator: a short sale is refused with error 201."""
    from desk.domain import StatusEvent

    rt = runtime
    notices: list[StatusEvent] = []
    rt.broker.add_listener(lambda ev: notices.append(ev) if isinstance(ev, StatusEvent) else None)
    gme = await rt.broker.watch_contract("GME")
    await wait_for(lambda: (q := rt.quotes.get(gme.con_id)) is not None and q.bid > 0, "GME quotes")
    q = rt.quotes.get(gme.con_id)
    result = await rt.orders.place(OrderIntent(gme, "SELL", 10, "LMT", limit_price=round(q.bid, 2)))
    assert result.sent, result.reasons
    ref = result.client_order_id
    await wait_for(lambda: rt.orders.rows.get(ref) is not None and rt.orders.rows[ref].status == "Rejected", "rejected")
    row = rt.orders.rows[ref]
    assert row.error.startswith("201: ") and "hard to borrow" in row.error and not row.working
    await eventually_state(rt, ref, "rejected", "the reject row")
    await wait_for(
        lambda: any(n.level == "error" and "rejected" in n.text and "201" in n.text for n in notices), "the rejection on the desk"
    )


async def test_kill_switch_cancels_everything_and_blocks(runtime: Runtime) -> None:
    rt = runtime
    refs = []
    for k in range(2):
        i = intent(rt, "BUY", 1 + k, offset=-3.0 - k)
        r = await rt.orders.place(i)
        assert r.sent, r.reasons
        refs.append(r.client_order_id)
    await wait_for(lambda: all(rt.orders.rows.get(x) and rt.orders.rows[x].status == "Submitted" for x in refs), "working")
    state = await rt.orders.halt("test")
    assert state.engaged and state.error == ""
    await wait_for(lambda: all(rt.orders.rows[x].status == "Cancelled" for x in refs), "global cancel")
    i = intent(rt, "BUY", 5, offset=-1.0)
    blocked = await rt.orders.place(i)
    assert blocked.status == "blocked" and "kill switch" in blocked.reasons[0]
    await rt.orders.reset("test")
    assert (await rt.orders.place(i)).sent


async def test_no_duplicate_send_across_a_forced_disconnect(runtime: Runtime) -> None:
    rt = runtime
    i = intent(rt, "BUY", 4, offset=-2.5)
    result = await rt.orders.place(i)
    assert result.sent, result.reasons
    ref = result.client_order_id
    before = rt.orders.reconciles
    await asyncio.to_thread(rt.sim.drop_clients)  # the connection dies under the order
    await wait_for(lambda: rt.orders.reconciles > before and rt.orders.ready, "reconnect and reconcile")
    plan = rt.orders.last_plan
    assert {d.client_order_id: d.action for d in plan.decisions}[ref] == "adopt"
    assert await audit_state(rt, ref) == "working"
    # the same order again is a duplicate: refused, not sent
    again = await rt.orders.place(i)
    assert again.status == "blocked" and again.reasons[0].startswith("duplicate")
    assert [o.order_ref for o in await rt.orders.gateway.orders()].count(ref) == 1
    assert sum(1 for t in await rt.broker.ib.reqAllOpenOrdersAsync() if t.order.orderRef == ref) == 1
    # after the reconnect the order is still ours to cancel
    await wait_for(lambda: rt.orders.rows[ref].status == "Submitted", "working after reconnect")
    await rt.orders.cancel(ref)
    await wait_for(lambda: rt.orders.rows[ref].status == "Cancelled", "the cancel")


async def test_transmit_waits_for_reconciliation(runtime: Runtime) -> None:
    rt = runtime
    rt.orders.ready = False  # as between a connect and the end of its reconciliation
    i = intent(rt, "BUY", 2, offset=-2.0)
    r = await rt.orders.place(i)
    assert r.status == "blocked" and "reconciling" in r.reasons[0] and r.client_order_id == ""
    await rt.audit.drain()
    assert [e.event for e in rt.audit.log.events_for_correlation(r.correlation_id)] == ["blocked"]
    assert not rt.orders.rows


async def test_option_position_has_greeks_and_portfolio_sums(runtime: Runtime) -> None:
    from ib_async import LimitOrder, Option

    rt = runtime
    ib = rt.broker.ib
    spot = rt.quotes.get(spy_of(rt).con_id).mid
    details = await ib.reqContractDetailsAsync(Option("SPY", "", 0, "C", "SMART"))
    # the first expiry after today's: after the close, today's options have expired and
    # carry no Greeks (their time to expiry is gone)
    today = exchange_date(rt.clock.now()).strftime("%Y%m%d")
    first = min(e for d in details if (e := d.contract.lastTradeDateOrContractMonth) > today)
    call = min(
        (d.contract for d in details if d.contract.lastTradeDateOrContractMonth == first), key=lambda c: abs(c.strike - spot)
    )
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
    audit.write(
        AuditEvent(
            "intent",
            crashed,
            "corr-c",
            {"intent": OrderIntent(spy, "BUY", 1, "LMT", limit_price=1.0).to_payload()},
            mode="sim",
            account="",
        )
    )
    audit.close()
    rt = Runtime(settings)
    notices: list[StatusEvent] = []
    rt.broker.add_listener(lambda ev: notices.append(ev) if isinstance(ev, StatusEvent) else None)
    await rt.start()
    try:
        await wait_for(lambda: rt.orders.ready, "reconciled")
        assert rt.orders.reconciles == 1
        assert [(d.client_order_id, d.action) for d in rt.orders.last_plan.decisions] == [(crashed, "resend")]
        assert await audit_state(rt, crashed) == "abandoned"
        assert any(n.level == "warning" and "never sent before the restart: not resent" in n.text for n in notices)
        orders = await rt.orders.gateway.orders()
        assert crashed not in {o.order_ref for o in orders}  # reconciliation itself sends nothing
    finally:
        await rt.stop()


async def test_reduce_only_cancels_what_adds_and_passes_only_reductions(runtime: Runtime) -> None:
    rt = runtime
    buy = intent(rt, "BUY", 10, offset=0.25)
    filled = await rt.orders.place(buy)
    await wait_for(lambda: rt.orders.rows[filled.client_order_id].status == "Filled", "the fill")
    await wait_for(lambda: any(r.quantity == 10 for r in rt.account.rows()), "the position")
    adding = await rt.orders.place(intent(rt, "BUY", 5, offset=-3.0))
    await wait_for(lambda: rt.orders.rows[adding.client_order_id].status == "Submitted", "a resting buy")
    state = await rt.orders.reduce_only("end of day")
    assert state.state.value == "reduce_only" and state.error == ""
    await wait_for(lambda: rt.orders.rows[adding.client_order_id].status == "Cancelled", "the adding order cancelled")
    more = await rt.orders.place(intent(rt, "BUY", 1, offset=-3.0))
    assert more.status == "blocked" and "reduce-only" in more.reasons[0]
    flip = await rt.orders.place(intent(rt, "SELL", 20, offset=3.0))
    assert flip.status == "blocked" and "reduce-only" in flip.reasons[0]
    close = await rt.orders.place(intent(rt, "SELL", 10, offset=-0.25))
    assert close.sent, close.reasons
    await rt.orders.reset("test")


async def test_a_fill_while_disconnected_is_recovered_once(runtime: Runtime) -> None:
    """An order fills at the gateway while the desk is not connected (its orderStatus and
    execDetails never reach it): after the reconnect the executions are recovered from
    reqExecutions, the row is Filled and the audit log has each fill once."""
    rt = runtime
    spy = spy_of(rt)
    q = rt.quotes.get(spy.con_id)
    # a sell limit just above the market: it rests, and fills when the market reaches it
    i = OrderIntent(spy, "SELL", 5, "LMT", limit_price=round(q.ask + 0.02, 2))
    pos = await rt.orders.place(intent(rt, "BUY", 5, offset=0.25))
    await wait_for(lambda: rt.orders.rows[pos.client_order_id].status == "Filled", "the position")
    result = await rt.orders.place(i)
    assert result.sent, result.reasons
    ref = result.client_order_id
    before = rt.orders.reconciles
    await rt.broker.stop()  # the desk goes offline; the gateway keeps the order working

    def done_at_gateway() -> bool:
        return rt.sim.call(lambda gw: any(o.order_ref == ref and o.is_done for o in gw.orders.orders.values()))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not await asyncio.to_thread(done_at_gateway):
        assert loop.time() < deadline, "the order never filled at the gateway"
        await asyncio.sleep(0.1)
    assert rt.orders.rows[ref].status != "Filled"  # the desk has not heard of it
    await rt.broker.start()
    await wait_for(lambda: rt.orders.reconciles > before and rt.orders.ready, "reconnect and reconcile")
    await wait_for(lambda: rt.orders.rows[ref].status == "Filled" and rt.orders.rows[ref].filled == 5, "recovered fill")
    fills = [e for e in await audit_events(rt, ref) if e == "fill"]
    assert len(fills) == len(rt.orders.ledger.fills(ref)) >= 1
    assert await audit_state(rt, ref) == "filled"
    # another reconnect recovers nothing new and writes no row twice
    before = rt.orders.reconciles
    await asyncio.to_thread(rt.sim.drop_clients)
    await wait_for(lambda: rt.orders.reconciles > before and rt.orders.ready, "second reconnect")
    assert [e for e in await audit_events(rt, ref) if e == "fill"] == fills


async def test_orders_the_gateway_forgot_are_marked_unknown_and_cannot_be_touched(tmp_path) -> None:
    """A standalone simulator restarts without its state: the desk's working order is not
    at the gateway any more. After the reconnect the row says Unknown, it is not working,
    and cancel / modify refuse instead of reaching another order."""
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=4, tick_interval=0.05)
    port = await gw.start()
    rt = Runtime(_settings(tmp_path, ib_port=port))
    await rt.start()
    try:
        await wait_for(lambda: rt.orders.ready and rt.broker.state is ConnectionState.CONNECTED, "connected")
        await wait_for(
            lambda: rt.quotes.get(spy_of(rt).con_id) is not None and rt.quotes.get(spy_of(rt).con_id).bid > 0, "quotes"
        )
        result = await rt.orders.place(intent(rt, "BUY", 3, offset=-5.0))
        ref = result.client_order_id
        await wait_for(lambda: rt.orders.rows[ref].status == "Submitted", "working")
        before = rt.orders.reconciles
        await gw.stop()
        gw = SimGateway("127.0.0.1", port, seed=4, tick_interval=0.05)  # no state: it knows no order
        await gw.start()
        await wait_for(lambda: rt.orders.reconciles > before and rt.orders.ready, "reconnect and reconcile", timeout=20)
        row = rt.orders.rows[ref]
        assert row.status == "Unknown" and row.gone and not row.working and "not at the gateway" in row.error
        with pytest.raises(OrderNotSent, match="not at the gateway"):
            await rt.orders.cancel(ref)
        with pytest.raises(OrderNotSent, match="not at the gateway"):
            await rt.orders.modify(ref, limit_price=1.0)
        assert rt.orders.book.open_intents() == ()  # no longer counted as working by the checks
        # a new order gets a fresh id from the restarted gateway and works normally
        fresh = await rt.orders.place(intent(rt, "BUY", 2, offset=-5.0))
        await wait_for(lambda: rt.orders.rows[fresh.client_order_id].status == "Submitted", "the new order")
        assert rt.orders.rows[fresh.client_order_id].order_id != row.order_id
    finally:
        await rt.stop()
        await gw.stop()


async def test_a_desk_started_while_the_database_is_down_enables_orders_when_it_returns(tmp_path) -> None:
    """The audit database cannot be opened at start: orders are refused with the reason, the
    desk keeps running; once the database can be opened the service reconciles by itself
    and orders go out."""
    blocker = tmp_path / "db-folder"
    blocker.write_text("not a folder")  # the SQLite file's folder cannot be created
    rt = Runtime(_settings(tmp_path, database_url=f"sqlite:///{blocker / 'desk.sqlite3'}"))
    rt.audit.retry_interval = 0.1
    await rt.start()
    try:
        await wait_for(lambda: rt.broker.state is ConnectionState.CONNECTED, "connected")
        assert not rt.orders.ready and not rt.audit.healthy
        line, ok = rt.orders.gate_line()
        assert not ok and "audit log down" in line
        spy = spy_of(rt)
        await wait_for(lambda: (q := rt.quotes.get(spy.con_id)) is not None and q.bid > 0, "quotes")
        refused = await rt.orders.place(intent(rt, "BUY", 1, offset=-5.0))
        assert refused.status == "blocked" and "audit log down, orders disabled" in refused.reasons[0]
        blocker.unlink()  # the database can be created now
        await wait_for(lambda: rt.audit.healthy, "the audit log opened", timeout=20)
        await wait_for(lambda: rt.orders.ready, "reconciled once the audit log is back", timeout=20)
        sent = await rt.orders.place(intent(rt, "BUY", 1, offset=-5.0))
        assert sent.sent, sent.reasons
        assert await audit_state(rt, sent.client_order_id) in ("sent", "working")
    finally:
        await rt.stop()


async def test_a_working_combo_is_valued_at_its_legs_and_does_not_block_other_orders(runtime: Runtime) -> None:
    """The working-notional check values a working combo at its legs' quotes: those quotes
    are in every order's context, not only in the combo's own (else every order on another
    instrument was refused with "no price to value working order")."""
    import dataclasses

    from desk.risk import ComboLeg
    from desk.risk.checks import notional_of

    rt = runtime
    spy = spy_of(rt)
    await rt.chains.set_underlying(spy)
    chains = rt.chains
    call, put = chains.contracts.calls[chains.atm_strike], chains.contracts.puts[chains.atm_strike]
    await wait_for(
        lambda: all((q := rt.quote_for(i)) is not None and q.bid > 0 and q.ask > 0 for i in (call, put)), "the legs' quotes"
    )
    legs = (ComboLeg(spy, "BUY", 100), ComboLeg(call, "SELL", 1), ComboLeg(put, "BUY", 1))
    bag = dataclasses.replace(spy, sec_type="BAG", con_id=0, multiplier=100)
    book = rt.orders.preview(OrderIntent(bag, "BUY", 1, "MKT", legs=legs))
    combo = OrderIntent(bag, "BUY", 1, "LMT", limit_price=round(book.bid - 5.0, 2), legs=legs)  # rests
    resting = await rt.orders.place(combo)
    assert resting.sent, resting.reasons
    await wait_for(lambda: (r := rt.orders.rows.get(resting.client_order_id)) is not None and r.working, "the combo working")
    aapl = next(i for i in rt.broker.watchlist if i.symbol == "AAPL")
    await wait_for(lambda: (q := rt.quotes.get(aapl.con_id)) is not None and q.bid > 0, "AAPL quotes")
    order = OrderIntent(aapl, "BUY", 5, "LMT", limit_price=round(rt.quotes.get(aapl.con_id).bid - 1.0, 2))
    report = rt.orders.preview(order)
    check = next(c for c in report.checks if c.name == "working_notional")
    ctx = rt.orders.context(order)
    assert check.passed and check.value == pytest.approx(notional_of(combo, ctx.quotes) + notional_of(order, ctx.quotes))
    assert check.value > 60_000  # the combo's 100 shares of SPY at least
    placed = await rt.orders.place(order)
    assert placed.sent, placed.reasons
