"""OrderRouter: no order leaves without every gate and every risk check, the intent row is
durable before the order is placed, and what could not be written refuses the order.

Everything is real: orders go through the broker's order gateway on an ib_async
connection to the simulated gateway, and the audit trail writes a SQLite file (PostgreSQL
through a cuttable TCP proxy for the outage).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
from pathlib import Path

import pytest
from orders_testlib import RecordingGateway, make_router, wait_until
from risk_testlib import OPEN, ctx, quote

from desk.domain import FrozenClock
from desk.orders import AuditTrail, TradingState
from desk.risk import OrderIntent, RiskLimits
from desk.store import AuditLog

#: every gate and risk check passes for these limits unless a case says otherwise
OPEN_LIMITS = RiskLimits(max_orders_per_minute=10_000, duplicate_window_s=0, enforce_market_hours=False)


def resting(spy, qty: int = 10) -> OrderIntent:
    """A buy limit far below the simulated market (SPY ~600): it rests, never fills."""
    return OrderIntent(spy, "BUY", qty, "LMT", limit_price=100.01)


def market(spy, *, age: float = 0.0):
    return ctx(quote(spy, 100.0, 100.02, age=age))


async def test_no_order_leaves_without_every_gate(tmp_path: Path, ib, spy, trail: AuditTrail, log: AuditLog) -> None:
    """Every combination of mode, orders enabled, override file, typed confirmation,
    trading state and risk outcome, against the real gateway."""
    gateway = RecordingGateway(ib, log)
    cases = itertools.product(
        ["sim", "paper", "live"],
        [False, True],
        [False, True],
        [None, "SPY", "spy", "QQQ"],
        list(TradingState),
        ["ok", "restricted", "too_big", "stale"],
    )
    n = 0
    for i, (mode, enabled, override, confirmation, state, risk) in enumerate(cases):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        router = make_router(folder, trail, gateway, mode=mode, enabled=enabled, override=override, limits=OPEN_LIMITS)
        if state is TradingState.HALTED:
            router.gate.kill_switch.halt("test")
        elif state is TradingState.REDUCE_ONLY:
            router.gate.kill_switch.reduce_only("test")
        intent, book = resting(spy), market(spy)
        if risk == "restricted":
            router.limits = dataclasses.replace(router.limits, restricted_symbols=frozenset({"SPY"}))
        elif risk == "too_big":
            intent = resting(spy, 5000)
        elif risk == "stale":
            book = market(spy, age=60)
        placed = len(gateway.placed)
        result = await router.submit(intent, book, confirmation)
        await trail.drain()
        confirmed = (confirmation or "").upper() == "SPY"
        gate_ok = state is TradingState.ACTIVE and (mode == "sim" or (enabled and (mode == "paper" or (override and confirmed))))
        expected = gate_ok and risk == "ok"
        assert result.sent == expected, (mode, enabled, override, confirmation, state, risk, result)
        chain = [r.event for r in log.events_for_correlation(result.correlation_id)]
        if expected:
            n += 1
            assert gateway.placed[placed:] == [(result.client_order_id, intent)]
            assert gateway.states_at_send[-1] == "intent"  # write-ahead: committed before it left
            assert chain == ["intent", "sent"]
            assert log.current_state(result.client_order_id) == "sent"
        else:
            assert len(gateway.placed) == placed
            assert result.status == "blocked" and result.client_order_id == "" and result.reasons
            assert chain == ["blocked"]
    # active and risk ok: sim 2 x 2 x 4 = 16, paper enabled 2 x 4 = 8, live enabled + override + SPY/spy 2
    assert n == 26
    # the gateway holds exactly the orders that were sent, once each
    await wait_until(
        lambda: sum(1 for t in ib.openTrades() if t.order.orderRef.startswith("desk-")) == n, "orders at the gateway"
    )


async def test_gate_is_asked_again_after_the_intent_is_written(tmp_path: Path, ib, spy, audit_url: str, log) -> None:
    class KillingLog(AuditLog):
        """The real audit log; the kill switch is hit while the intent row is written."""

        kill_switch = None

        def write(self, ev):  # type: ignore[override]
            rec = super().write(ev)
            if ev.event == "intent" and self.kill_switch is not None:
                self.kill_switch.halt("hit during the write")
            return rec

    killing = KillingLog(audit_url)
    trail = AuditTrail(lambda: killing, tmp_path / "spool.jsonl")
    await trail.start_async()
    gateway = RecordingGateway(ib, log)
    router = make_router(tmp_path, trail, gateway)
    killing.kill_switch = router.gate.kill_switch
    result = await router.submit(resting(spy), market(spy))
    await trail.drain()
    assert result.status == "rejected" and gateway.placed == []
    assert "kill switch engaged (hit during the write)" in result.reasons[0]
    assert [r.event for r in log.events_for(result.client_order_id)] == ["intent", "reject"]
    assert log.current_state(result.client_order_id) == "rejected"
    await asyncio.to_thread(trail.close)


async def test_a_lost_connection_is_not_transmitted_and_says_so(tmp_path: Path, ib, spy, trail, log) -> None:
    gateway = RecordingGateway(ib, log)
    router = make_router(tmp_path, trail, gateway)
    ib.disconnect()
    r = await router.submit(resting(spy), market(spy))
    await trail.drain()
    assert r.status == "rejected" and r.reasons == ("not transmitted: not connected to the gateway",)
    assert log.current_state(r.client_order_id) == "rejected"


async def test_duplicates_and_rate_use_the_routers_own_memory(tmp_path: Path, ib, spy, trail, log) -> None:
    clock = FrozenClock(OPEN)
    limits = RiskLimits(duplicate_window_s=10, max_orders_per_minute=3, enforce_market_hours=False)
    router = make_router(tmp_path, trail, RecordingGateway(ib, log), limits=limits, clock=clock)

    def book():  # fresh quotes; the caller passes no recent orders
        return ctx(quote(spy, 100.0, 100.02, at=clock.now()), at=clock.now())

    good = resting(spy)
    assert (await router.submit(good, book())).sent
    dup = await router.submit(good, book())
    assert dup.status == "blocked" and dup.reasons[0].startswith("duplicate: identical order sent 0.0 s ago")
    clock.advance(10.5)
    assert (await router.submit(good, book())).sent
    assert (await router.submit(resting(spy, 11), book())).sent
    rate = await router.submit(resting(spy, 12), book())
    assert rate.status == "blocked" and rate.reasons == ("order_rate: 4 orders in 60 s > max 3",)
    clock.advance(60)
    assert (await router.submit(resting(spy, 12), book())).sent


async def test_concurrent_identical_submits_send_once(tmp_path: Path, ib, spy, trail, log) -> None:
    gateway = RecordingGateway(ib, log)
    router = make_router(tmp_path, trail, gateway, limits=RiskLimits(enforce_market_hours=False))
    results = await asyncio.gather(*(router.submit(resting(spy), market(spy)) for _ in range(5)))
    assert sorted(r.status for r in results) == ["blocked"] * 4 + ["sent"]
    assert len(gateway.placed) == 1


@pytest.mark.postgres
async def test_audit_outage_refuses_orders_until_the_trail_is_written(tmp_path: Path, ib, spy) -> None:
    """The database goes away: the next order is refused (no write-ahead row), rows queued
    meanwhile are spooled; when it is back they are written in order and orders pass."""
    from netfaults import TcpProxy

    from desk.store.urls import parse_database_url

    pg_url = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    target = parse_database_url(pg_url)
    proxy = TcpProxy(target.connect_kwargs.get("host", "127.0.0.1"), int(target.connect_kwargs.get("port", 5432)))
    schema = "desk_t_router_" + os.urandom(4).hex()
    url = target.sqlalchemy_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    direct = target.sqlalchemy_url.render_as_string(hide_password=False)
    trail = AuditTrail(lambda: AuditLog(url, schema=schema, connect_timeout=2), tmp_path / "spool.jsonl", retry_interval=0.2)
    reader = None
    try:
        await trail.start_async()
        reader = AuditLog(direct, schema=schema)
        gateway = RecordingGateway(ib, reader)
        router = make_router(tmp_path, trail, gateway)
        first = await router.submit(resting(spy), market(spy))
        assert first.sent
        proxy.cut()
        router.record("status", first.client_order_id, first.correlation_id, {"status": "Submitted", "filled": 0})
        await trail.drain()
        refused = await router.submit(resting(spy, 11), market(spy))
        assert refused.status in ("blocked", "rejected") and "audit log" in refused.reasons[0]
        assert not trail.healthy and trail.status().queued >= 1
        router.record("status", first.client_order_id, first.correlation_id, {"status": "Cancelled", "filled": 0})
        proxy.restore()
        await wait_until(lambda: trail.healthy, "the trail written after the outage", timeout=20)
        assert await trail.drain()  # the last status may still be on its way to the worker
        events = [r.event for r in reader.events_for(first.client_order_id)]
        assert events == ["intent", "sent", "status", "status"]  # in order, nothing lost, once each
        assert reader.current_state(first.client_order_id) == "cancelled"
        again = await router.submit(resting(spy, 12), market(spy))
        assert again.sent and len(gateway.placed) == 2
    finally:
        proxy.close()
        await asyncio.to_thread(trail.close)
        if reader is not None:
            reader.close()
        import psycopg

        with psycopg.connect(**target.connect_kwargs, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_row_whose_commit_answer_is_lost_is_written_once(tmp_path: Path, audit_url: str) -> None:
    """The connection fails after the database committed a row but before the answer came
    back (injected at that exact point into the real AuditLog): the trail cannot know,
    spools the row and, on recovery, checks before writing it, so the row is in the log
    exactly once (at-least-once would write it twice)."""
    from desk.store import AuditError, AuditEvent

    class AnswerLost(AuditLog):
        lose_next = False

        def write(self, ev):  # type: ignore[no-untyped-def]
            rec = super().write(ev)
            if AnswerLost.lose_next:
                AnswerLost.lose_next = False
                raise AuditError("server closed the connection unexpectedly (after the commit)")
            return rec

    trail = AuditTrail(lambda: AnswerLost(audit_url), tmp_path / "spool.jsonl", retry_interval=0.2)
    reader = AuditLog(audit_url)
    try:
        await trail.start_async()
        ref = "desk-doubt"
        trail.record(AuditEvent("status", ref, "c1", {"status": "Submitted"}))
        assert await trail.drain()
        AnswerLost.lose_next = True
        trail.record(AuditEvent("status", ref, "c1", {"status": "Cancelled"}))
        trail.record(AuditEvent("status", ref, "c1", {"status": "Inactive"}))
        assert await trail.drain()
        await wait_until(lambda: trail.healthy, "the spool written after the failure", timeout=20)
        rows = reader.events_for(ref)
        assert [r.payload["status"] for r in rows] == ["Submitted", "Cancelled", "Inactive"]
    finally:
        await asyncio.to_thread(trail.close)
        reader.close()


async def test_rows_queued_before_the_trail_starts_are_spooled_on_close_and_written_by_the_next_start(
    tmp_path: Path, audit_url: str, log
) -> None:
    """The engine serves views while it starts: a cancel or a kill switch then queues its
    rows before the trail has a worker. Closed like that (a failed start, a quit), the
    trail spools them; the next start writes them, in order, once each."""
    from desk.store import AuditEvent

    spool = tmp_path / "spool" / "audit.jsonl"
    early = AuditTrail(lambda: AuditLog(audit_url), spool, clock=FrozenClock(OPEN))
    early.record(AuditEvent("cancel_request", "desk-early", "c1", {"why": "first"}))
    early.record(AuditEvent("kill_switch", "", "c2", {"why": "second"}))
    await asyncio.to_thread(early.close)
    assert len(spool.read_text().splitlines()) == 2 and log.events_for("desk-early") == []

    later = AuditTrail(lambda: AuditLog(audit_url), spool, clock=FrozenClock(OPEN))
    status = await later.start_async()
    assert status.healthy and status.queued == 0
    await asyncio.to_thread(later.close)
    rows = [r for r in log.events_for_correlation("c1") + log.events_for_correlation("c2")]
    assert [(r.event, r.payload["why"]) for r in rows] == [("cancel_request", "first"), ("kill_switch", "second")]
    assert rows[0].id < rows[1].id
