"""OrderRouter: no order leaves without every gate and every risk check, the intent row
is durable before transmission, and reconciliation never resends what may have left.

Audit logs are real (SQLite files, PostgreSQL through a cuttable TCP proxy); the last
tests send real orders with ib_async to the simulated gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_testlib import AAPL, OPEN, SPY, ctx, lmt, quote

from desk.domain import FrozenClock
from desk.domain.orders import BrokerOrder, Fill
from desk.risk import OrderIntent, RiskLimits
from desk.safety import KillSwitch, NotTransmitted, OrderGate, OrderRouter
from desk.settings import load_settings
from desk.store import AuditEvent, AuditLog

Q_SPY = quote(SPY, 100.0, 100.02)
Q_AAPL = quote(AAPL, 170.0, 170.02)
GOOD = lmt(SPY, "BUY", 10, 100.01)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


class Wire:
    """A transmit function that records what left and checks write-ahead as it goes."""

    def __init__(self, audit: AuditLog, fail: BaseException | None = None) -> None:
        self.audit = audit
        self.sent: list[tuple[str, OrderIntent]] = []
        self.states_at_send: list[str | None] = []
        self.fail = fail
        self.next_id = 100

    async def __call__(self, intent: OrderIntent, client_order_id: str) -> dict:
        # the intent row must already be committed, and nothing after it
        self.states_at_send.append(self.audit.current_state(client_order_id))
        if self.fail is not None:
            raise self.fail
        self.sent.append((client_order_id, intent))
        self.next_id += 1
        return {"order_id": self.next_id}


def make_router(folder: Path, audit: AuditLog, *, mode: str = "sim", enabled: bool = True, override: bool = True,
                limits: RiskLimits | None = None, wire: Wire | None = None, clock: FrozenClock | None = None,
                cancel_all=None) -> tuple[OrderRouter, Wire]:
    s = load_settings(mode=mode, orders_enabled=enabled, live_override_file=folder / "override",
                      kill_switch_file=folder / "kill")
    if override:
        (folder / "override").write_text("")
    clock = clock or FrozenClock(OPEN)
    gate = OrderGate(s, kill_switch=KillSwitch(folder / "kill", clock=clock))
    wire = wire or Wire(audit)
    router = OrderRouter(gate, audit, limits or RiskLimits.from_settings(s), wire, clock=clock, cancel_all=cancel_all,
                         account="DU1")
    return router, wire


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.sqlite3'}", clock=FrozenClock(OPEN))
    yield log
    log.close()


_SHARED: dict[str, AuditLog] = {}


def shared_audit() -> AuditLog:
    """One SQLite audit log for all hypothesis examples (rows are told apart by correlation id)."""
    if "log" not in _SHARED:
        folder = tempfile.mkdtemp(prefix="desk-router-")
        _SHARED["log"] = AuditLog(f"sqlite:///{folder}/audit.sqlite3")
    return _SHARED["log"]


@settings(max_examples=80, deadline=None)
@given(
    mode=st.sampled_from(["sim", "paper", "live"]),
    enabled=st.booleans(),
    override=st.booleans(),
    confirmation=st.sampled_from([None, "SPY", "spy", "QQQ"]),
    kill=st.booleans(),
    risk_ok=st.sampled_from(["ok", "restricted", "too_big", "stale"]),
)
def test_no_order_leaves_without_every_gate(mode, enabled, override, confirmation, kill, risk_ok) -> None:
    audit = shared_audit()
    with tempfile.TemporaryDirectory() as tmp:
        router, wire = make_router(Path(tmp), audit, mode=mode, enabled=enabled, override=override)
        if kill:
            router.gate.kill_switch.engage("test")
        intent, market = GOOD, ctx(Q_SPY)
        if risk_ok == "restricted":
            router.limits = dataclasses.replace(router.limits, restricted_symbols=frozenset({"SPY"}))
        elif risk_ok == "too_big":
            intent = lmt(SPY, "BUY", 5000, 100.01)
        elif risk_ok == "stale":
            market = ctx(quote(SPY, 100.0, 100.02, age=60))
        result = asyncio.run(router.submit(intent, market, confirmation))

    confirmed = (confirmation or "").upper() == "SPY"
    gate_ok = not kill and (mode == "sim" or (enabled and (mode == "paper" or (override and confirmed))))
    expected = gate_ok and risk_ok == "ok"
    assert result.sent == expected, result
    chain = [r.event for r in audit.events_for_correlation(result.correlation_id)]
    if expected:
        assert [c for c, _ in wire.sent] == [result.client_order_id]
        assert wire.sent[0][1] == intent
        assert wire.states_at_send == ["intent"]  # write-ahead: committed before it left
        assert chain == ["intent", "sent"]
        assert audit.current_state(result.client_order_id) == "sent"
    else:
        assert wire.sent == [] and wire.states_at_send == []
        assert result.status == "blocked" and result.client_order_id == ""
        assert chain == ["blocked"]
        assert result.reasons


async def test_gate_is_asked_again_after_the_intent_is_written(tmp_path: Path) -> None:
    class KillingAudit(AuditLog):
        """The real audit log; the kill switch is hit while the intent row is written."""

        kill_switch: KillSwitch | None = None

        def write(self, ev: AuditEvent):  # type: ignore[override]
            rec = super().write(ev)
            if ev.event == "intent" and self.kill_switch is not None:
                self.kill_switch.engage("hit during the write")
            return rec

    audit = KillingAudit(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    router, wire = make_router(tmp_path, audit)
    audit.kill_switch = router.gate.kill_switch
    result = await router.submit(GOOD, ctx(Q_SPY))
    assert result.status == "rejected" and wire.sent == []
    assert "kill switch engaged (hit during the write)" in result.reasons[0]
    assert [r.event for r in audit.events_for(result.client_order_id)] == ["intent", "reject"]
    assert audit.current_state(result.client_order_id) == "rejected"
    audit.close()


@pytest.mark.postgres
async def test_audit_outage_refuses_the_order(tmp_path: Path, request) -> None:
    from netfaults import TcpProxy

    from desk.store.urls import parse_database_url

    pg_url = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    target = parse_database_url(pg_url)
    proxy = TcpProxy(target.connect_kwargs.get("host", "127.0.0.1"), int(target.connect_kwargs.get("port", 5432)))
    schema = "desk_t_router_" + os.urandom(4).hex()
    url = target.sqlalchemy_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    audit = AuditLog(url, schema=schema, connect_timeout=2)
    try:
        router, wire = make_router(tmp_path, audit)
        proxy.cut()
        result = await router.submit(GOOD, ctx(Q_SPY))
        assert result.status == "rejected" and wire.sent == [] and wire.states_at_send == []
        assert result.reasons[0].startswith("audit log unavailable, order not sent: cannot write the audit log in PostgreSQL")
        proxy.restore()
        again = await router.submit(GOOD, ctx(Q_SPY))
        assert again.sent and len(wire.sent) == 1
        assert [r.event for r in audit.events_for(again.client_order_id)] == ["intent", "sent"]
    finally:
        proxy.close()
        audit.close()
        import psycopg

        with psycopg.connect(**target.connect_kwargs, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_transmit_failures_are_recorded_for_what_they_are(tmp_path: Path, audit: AuditLog) -> None:
    router, wire = make_router(tmp_path, audit, wire=Wire(audit, NotTransmitted("not connected")))
    r = await router.submit(GOOD, ctx(Q_SPY))
    assert r.status == "rejected" and r.reasons == ("not transmitted: not connected",)
    assert audit.current_state(r.client_order_id) == "rejected"

    router.transmit = Wire(audit, ConnectionResetError("peer reset"))
    r2 = await router.submit(lmt(SPY, "BUY", 11, 100.01), ctx(Q_SPY))
    assert r2.status == "unknown" and "may have been sent" in r2.reasons[0]
    assert audit.current_state(r2.client_order_id) == "unknown"
    # reconciliation will not resend it: it is a human's decision
    plan = await router.reconcile({}, {})
    assert [(d.client_order_id, d.action) for d in plan.decisions] == [(r2.client_order_id, "human")]


async def test_duplicates_and_rate_use_the_routers_own_memory(tmp_path: Path, audit: AuditLog) -> None:
    clock = FrozenClock(OPEN)
    limits = RiskLimits(duplicate_window_s=10, max_orders_per_minute=3, enforce_market_hours=False)
    router, wire = make_router(tmp_path, audit, limits=limits, clock=clock)
    def market():  # fresh quotes; the caller passes no recent orders
        now = clock.now()
        return ctx(quote(SPY, 100.0, 100.02, at=now), quote(AAPL, 170.0, 170.02, at=now), at=now)

    assert (await router.submit(GOOD, market())).sent
    dup = await router.submit(GOOD, market())
    assert dup.status == "blocked" and dup.reasons[0].startswith("duplicate: identical order sent 0.0 s ago")
    clock.advance(10.5)
    assert (await router.submit(GOOD, market())).sent
    assert (await router.submit(lmt(AAPL, "BUY", 1, 170.01), market())).sent
    rate = await router.submit(lmt(AAPL, "SELL", 1, 170.01), market())
    assert rate.status == "blocked" and rate.reasons == ("order_rate: 4 orders in 60 s > max 3",)
    clock.advance(60)
    assert (await router.submit(lmt(AAPL, "SELL", 1, 170.01), market())).sent
    assert len(wire.sent) == 4


async def test_concurrent_identical_submits_send_once(tmp_path: Path, audit: AuditLog) -> None:
    router, wire = make_router(tmp_path, audit)
    results = await asyncio.gather(*(router.submit(GOOD, ctx(Q_SPY)) for _ in range(5)))
    assert sorted(r.status for r in results) == ["blocked"] * 4 + ["sent"]
    assert len(wire.sent) == 1


async def test_kill_switch_cancels_everything_blocks_and_resets(tmp_path: Path, audit: AuditLog) -> None:
    cancels: list[str] = []

    async def cancel_all() -> None:
        cancels.append("reqGlobalCancel")

    router, wire = make_router(tmp_path, audit, cancel_all=cancel_all)
    state = await router.engage_kill_switch("F12")
    assert state.engaged and state.error == "" and cancels == ["reqGlobalCancel"]
    blocked = await router.submit(GOOD, ctx(Q_SPY))
    assert blocked.status == "blocked" and "kill switch engaged (F12)" in blocked.reasons[0]
    kill_rows = [r for r in audit.all_events() if r.event == "kill_switch"]
    assert len(kill_rows) == 1 and kill_rows[0].payload["global_cancel"] is True
    # a restart keeps it engaged
    restarted, _ = make_router(tmp_path, audit)
    assert not (await restarted.submit(GOOD, ctx(Q_SPY))).sent
    await restarted.reset_kill_switch("me")
    assert (await restarted.submit(GOOD, ctx(Q_SPY))).sent
    assert [r.event for r in audit.all_events()][-3:] == ["kill_switch_reset", "intent", "sent"]

    async def broken_cancel() -> None:
        raise ConnectionError("gateway gone")

    router.cancel_all = broken_cancel
    state = await router.engage_kill_switch()
    assert state.engaged and "global cancel failed: ConnectionError: gateway gone" in state.error
    assert not (await router.submit(lmt(SPY, "SELL", 1, 100.0), ctx(Q_SPY))).sent


async def test_reconcile_after_a_restart_writes_its_decisions(tmp_path: Path, audit: AuditLog) -> None:
    router, wire = make_router(tmp_path, audit)
    sent = await router.submit(GOOD, ctx(Q_SPY))
    finished = await router.submit(lmt(SPY, "BUY", 20, 100.01), ctx(Q_SPY))
    # a crash between the intent row and placeOrder leaves an intent-only order
    audit.write(AuditEvent("intent", "desk-crashed", "corr-x", {"intent": GOOD.to_payload()}, mode="sim", account="DU1"))
    # an intent of another mode is not ours to reconcile
    audit.write(AuditEvent("intent", "desk-paper", "corr-y", {"intent": GOOD.to_payload()}, mode="paper", account="DU1"))
    router.in_flight.add("desk-inflight")
    audit.write(AuditEvent("intent", "desk-inflight", "corr-z", {"intent": GOOD.to_payload()}, mode="sim", account="DU1"))

    restarted, _ = make_router(tmp_path, audit)
    restarted.in_flight.add("desk-inflight")
    orders = {sent.client_order_id: BrokerOrder(sent.client_order_id, "Submitted", order_id=101, filled=4, remaining=6)}
    fills = {finished.client_order_id: [Fill("e1", finished.client_order_id, OPEN, SPY, "BOT", 20, 100.0)]}
    plan = await restarted.reconcile(orders, fills)
    got = {d.client_order_id: d.action for d in plan.decisions}
    assert got == {sent.client_order_id: "adopt", finished.client_order_id: "close", "desk-crashed": "resend"}
    assert audit.current_state(sent.client_order_id) == "working"
    assert audit.current_state(finished.client_order_id) == "filled"
    assert audit.current_state("desk-crashed") == "abandoned"
    assert audit.current_state("desk-inflight") == "intent"
    # a second pass finds only what is still open, and writes nothing new for it
    n = len(audit.all_events())
    plan2 = await restarted.reconcile(orders, fills)
    assert [d.client_order_id for d in plan2.decisions] == [sent.client_order_id]
    assert len(audit.all_events()) == n
    assert len(wire.sent) == 2  # reconciliation itself never sends


# --- the real thing: ib_async to the simulated gateway ----------------------------------
#
# transmit / cancel_all / the gateway snapshot below are the broker's job; they are
# written here, small, so these tests run the real client against the real simulator.


def ib_transmit(ib, contract, trades: dict):
    """placeOrder with orderRef = client order id (what the broker's transmit does)."""
    from ib_async import LimitOrder

    async def transmit(intent: OrderIntent, client_order_id: str) -> dict:
        if not ib.isConnected():
            raise NotTransmitted("not connected to the gateway")
        order = LimitOrder(intent.action.value, intent.quantity, intent.limit_price, orderRef=client_order_id,
                           tif=intent.tif.value, outsideRth=intent.outside_rth)
        trade = ib.placeOrder(contract, order)
        trades[client_order_id] = trade
        return {"order_id": trade.order.orderId}

    return transmit


async def gateway_snapshot(ib) -> tuple[dict[str, BrokerOrder], dict[str, list[Fill]]]:
    """Open + completed orders and executions of the gateway, by orderRef."""
    open_trades = await ib.reqAllOpenOrdersAsync()
    done_trades = await ib.reqCompletedOrdersAsync(apiOnly=True)
    orders: dict[str, BrokerOrder] = {}
    for t in [*done_trades, *open_trades]:
        if t.order.orderRef:
            orders[t.order.orderRef] = BrokerOrder(
                t.order.orderRef, t.orderStatus.status, order_id=t.order.orderId, perm_id=t.order.permId,
                filled=float(t.orderStatus.filled), remaining=float(t.orderStatus.remaining), client_id=t.order.clientId,
            )
    fills: dict[str, list[Fill]] = {}
    for f in await ib.reqExecutionsAsync():
        ex = f.execution
        if ex.orderRef:
            fills.setdefault(ex.orderRef, []).append(
                Fill(ex.execId, ex.orderRef, ex.time, dataclasses.replace(SPY, con_id=f.contract.conId,
                                                                        sec_type=f.contract.secType),
                     ex.side, float(ex.shares), ex.price, ex.orderId, ex.permId)
            )
    return orders, fills


async def _wait(cond, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def sim():
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=3, tick_interval=0.05)
    await gw.start()
    yield gw
    await gw.stop()


async def _connect(gw, client_id: int = 7):
    from ib_async import IB, Contract

    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5)
    [contract] = await ib.qualifyContractsAsync(Contract(symbol="SPY", secType="STK", exchange="SMART", currency="USD"))
    return ib, contract


async def test_orders_reach_the_simulated_gateway_with_their_orderref(tmp_path: Path, audit: AuditLog, sim) -> None:
    ib, contract = await _connect(sim)
    try:
        spy = dataclasses.replace(SPY, con_id=contract.conId)
        trades: dict = {}

        async def cancel_all() -> None:
            ib.reqGlobalCancel()

        router, _ = make_router(tmp_path, audit, cancel_all=cancel_all)
        router.transmit = ib_transmit(ib, contract, trades)
        result = await router.submit(lmt(spy, "BUY", 5, 100.01), ctx(quote(spy, 100.0, 100.02)))
        assert result.sent, result.reasons
        trade = trades[result.client_order_id]
        assert trade.order.orderRef == result.client_order_id
        order_id = result.transmit_info["order_id"]
        # the gateway answers the order (acknowledges or rejects it): it has arrived
        await _wait(lambda: trade.orderStatus.status not in ("PendingSubmit", "") or trade.log[1:], "an answer")
        assert sim.next_order_id(7) > order_id  # the simulator saw this order id
        status = BrokerOrder(result.client_order_id, trade.orderStatus.status, order_id=order_id,
                             filled=trade.orderStatus.filled, remaining=trade.orderStatus.remaining)
        await router.record_status(status, result.correlation_id)
        chain = [r.event for r in audit.events_for_correlation(result.correlation_id)]
        assert chain == ["intent", "sent", "status"]
        state = await router.engage_kill_switch("test")
        assert state.error == ""
        assert not (await router.submit(lmt(spy, "BUY", 6, 100.01), ctx(quote(spy, 100.0, 100.02)))).sent
        assert len(trades) == 1
        ib.disconnect()
        await router.reset_kill_switch()
        gone = await router.submit(lmt(spy, "BUY", 7, 100.01), ctx(quote(spy, 100.0, 100.02)))
        assert gone.status == "rejected" and gone.reasons == ("not transmitted: not connected to the gateway",)
    finally:
        ib.disconnect()


async def test_after_a_restart_orders_are_reconciled_by_orderref_and_never_sent_twice(
    tmp_path: Path, audit: AuditLog, sim
) -> None:
    ib, contract = await _connect(sim)
    spy = dataclasses.replace(SPY, con_id=contract.conId)
    [ticker] = await ib.reqTickersAsync(contract)
    bid, ask = ticker.bid, ticker.ask
    assert 0 < bid < ask
    trades: dict = {}
    clock = FrozenClock(OPEN)
    router, _ = make_router(tmp_path, audit, clock=clock)
    router.transmit = ib_transmit(ib, contract, trades)
    book = ctx(quote(spy, bid, ask))
    resting = await router.submit(lmt(spy, "BUY", 3, round(bid * 0.97, 2)), book)  # rests below the market
    filled = await router.submit(lmt(spy, "BUY", 2, round(ask * 1.01, 2)), book)  # marketable: fills
    assert resting.sent and filled.sent, (resting.reasons, filled.reasons)
    await _wait(lambda: trades[filled.client_order_id].orderStatus.status == "Filled", "the fill")
    await _wait(lambda: trades[resting.client_order_id].orderStatus.status == "Submitted", "the resting order")
    # a crash between the intent row and placeOrder: written, never transmitted
    crashed = "desk-" + "c" * 24
    audit.write(AuditEvent("intent", crashed, "corr-c", {"intent": GOOD.to_payload()}, mode="sim", account="DU1"))
    ib.disconnect()  # the desk dies; the gateway keeps its orders

    ib2, _ = await _connect(sim)  # the desk restarts with the same client id
    try:
        restarted, _ = make_router(tmp_path, audit, clock=clock)
        orders, fills = await gateway_snapshot(ib2)
        plan = await restarted.reconcile(orders, fills)
        got = {d.client_order_id: (d.action, d.state) for d in plan.decisions}
        assert got == {
            resting.client_order_id: ("adopt", "working"),
            filled.client_order_id: ("close", "filled"),
            crashed: ("resend", "abandoned"),
        }
        assert audit.current_state(resting.client_order_id) == "working"
        assert audit.current_state(filled.client_order_id) == "filled"
        assert audit.current_state(crashed) == "abandoned"
        # the gateway holds exactly the two orders that were sent, once each
        ours = sorted(r for r in orders if r.startswith("desk-"))
        assert ours == sorted([resting.client_order_id, filled.client_order_id])
        assert sum(f.shares for f in fills[filled.client_order_id]) == 2
        # a second reconcile (another reconnect) changes nothing and sends nothing
        n = len(audit.all_events())
        plan2 = await restarted.reconcile(*(await gateway_snapshot(ib2)))
        assert [d.action for d in plan2.decisions] == ["adopt"]
        assert len(audit.all_events()) == n
        assert len(trades) == 2
    finally:
        ib2.disconnect()
