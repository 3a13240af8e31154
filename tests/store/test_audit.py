"""The order audit log on real SQLite and real PostgreSQL: append-only enforced by the
database itself, write-ahead durability, lifecycle queries (reconciliation is tested in
tests/orders/test_reconcile.py)."""

from __future__ import annotations

import math
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from store_testlib import pg_connect

from desk.store import (
    AuditError,
    AuditEvent,
    AuditLog,
    new_client_order_id,
    new_correlation_id,
)
from desk.store.audit_records import TERMINAL_STATES

T0 = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_target(request, tmp_path) -> tuple[str, str | None]:
    """``(url, schema)`` of a fresh audit database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit' / 'desk.sqlite3'}", None
    pg_url = request.getfixturevalue("pg_url")
    return pg_url, request.getfixturevalue("pg_schema")


@pytest.fixture
def audit(audit_target):
    url, schema = audit_target
    log = AuditLog(url, schema=schema)
    yield log
    log.close()


def _intent_payload(qty: int = 100) -> dict:
    return {"intent": {"instrument": {"symbol": "SPY", "sec_type": "STK"}, "action": "BUY", "quantity": qty}}


def _write_order(log: AuditLog, *events: tuple[str, dict], mode: str = "sim", qty: int = 100) -> str:
    coid, corr = new_client_order_id(), new_correlation_id()
    log.write(AuditEvent("intent", coid, corr, _intent_payload(qty), mode=mode, account="DU1"))
    for name, payload in events:
        log.write(AuditEvent(name, coid, corr, payload, mode=mode, account="DU1"))
    return coid


# --- the database refuses changes -----------------------------------------------------


def _raw_sqlite(log: AuditLog) -> sqlite3.Connection:
    return sqlite3.connect(str(log.target.path), isolation_level=None)


def test_rows_cannot_be_updated_or_deleted(audit: AuditLog) -> None:
    coid = _write_order(audit, ("sent", {"order_id": 7}))
    before = audit.events_for(coid)
    rel = audit.qualified_table
    statements = [
        f"UPDATE {rel} SET event = 'reject'",
        f"UPDATE {rel} SET payload = payload WHERE id = 1",
        f"DELETE FROM {rel}",
        f"DELETE FROM {rel} WHERE id = 2",
    ]
    if audit.dialect == "postgresql":
        statements.append(f"TRUNCATE {rel}")
        statements.append(
            f"INSERT INTO {rel} (id, time, event, payload) VALUES (1, now(), 'intent', '{{}}') "
            "ON CONFLICT (id) DO UPDATE SET event = 'status'"
        )
        with pg_connect(audit.target.sqlalchemy_url.render_as_string(hide_password=False)) as conn:
            for stmt in statements:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    conn.execute(stmt)
    else:
        statements.append(
            f"INSERT OR REPLACE INTO {rel} (id, time, event, payload, correlation_id, client_order_id, mode, account) "
            "VALUES (1, 0, 'status', '{}', '', '', '', '')"
        )
        statements.append(
            f"REPLACE INTO {rel} (id, time, event, payload, correlation_id, client_order_id, mode, account) "
            "VALUES (2, 0, 'status', '{}', '', '', '', '')"
        )
        conn = _raw_sqlite(audit)
        try:
            for stmt in statements:
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(stmt)
        finally:
            conn.close()
    assert audit.events_for(coid) == before
    # appending still works, and reopening does not duplicate the triggers
    audit.write(AuditEvent("status", coid, "", {"status": "Submitted"}))
    url = audit.target.sqlalchemy_url.render_as_string(hide_password=False)
    AuditLog(url, schema=audit.schema).close()
    assert len(audit.events_for(coid)) == 3


def test_postgres_creation_is_idempotent_under_concurrency(pg_url: str, pg_schema: str) -> None:
    errors: list[BaseException] = []

    def make() -> None:
        try:
            AuditLog(pg_url, schema=pg_schema).close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg_connect(pg_url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(%s AS regclass) AND NOT tgisinternal ORDER BY 1",
                (f"{pg_schema}.order_audit",),
            )
        ]
    assert names == ["order_audit_no_truncate", "order_audit_no_update_delete"]


# --- write-ahead ----------------------------------------------------------------------

_CHILD = """
import os, sys
from desk.store import AuditEvent, AuditLog
log = AuditLog(sys.argv[1], schema=(sys.argv[2] or None))
rec = log.write(AuditEvent("intent", "desk-crash", "c", {"intent": {"quantity": 1}}))
print(rec.id, flush=True)
os._exit(0)  # die at once: no close, no dispose, no atexit
"""


def test_a_written_row_survives_the_writer_dying_right_after(audit_target) -> None:
    url, schema = audit_target
    AuditLog(url, schema=schema).close()
    out = subprocess.run([sys.executable, "-c", _CHILD, url, schema or ""], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with AuditLog(url, schema=schema) as log:
        rows = log.events_for("desk-crash")
    assert [r.id for r in rows] == [int(out.stdout.split()[0])]
    assert rows[0].state == "intent"


# --- reading back ---------------------------------------------------------------------


def test_rows_round_trip_in_order_with_json_payloads(audit: AuditLog) -> None:
    corr = new_correlation_id()
    coid = new_client_order_id()
    assert coid.startswith("desk-") and len(coid) == 29 and coid != new_client_order_id()
    t = datetime(2024, 3, 8, 10, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=5)
    rows = [
        audit.write(AuditEvent("preview", "", corr, {"notional": 10_002.0, "bad": math.nan}, mode="paper", time=t)),
        audit.write(AuditEvent("intent", coid, corr, {"intent": {"quantity": 5}, "when": t}, mode="paper")),
        audit.write(AuditEvent("sent", coid, corr, {"transmit": {"order_id": 12}}, mode="paper")),
        audit.write(AuditEvent("status", coid, corr, {"status": "Submitted", "filled": 0}, mode="paper")),
        audit.write(AuditEvent("fill", coid, corr, {"fill": {"exec_id": "0001"}, "filled": 5, "remaining": 0})),
    ]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert [r.state for r in rows] == [None, "intent", "sent", "working", "filled"]
    got = audit.events_for(coid)
    assert got == rows[1:]
    assert got[0].payload == {"intent": {"quantity": 5}, "when": t.isoformat()}
    chain = audit.events_for_correlation(corr)
    assert [r.event for r in chain] == ["preview", "intent", "sent", "status", "fill"]
    assert chain[0].payload == {"notional": 10_002.0, "bad": None}
    assert chain[0].time == t and chain[0].time.tzinfo is not None
    assert audit.current_state(coid) == "filled" and audit.current_state("nope") is None
    assert [r.id for r in audit.all_events(after_id=rows[1].id, limit=2)] == [rows[2].id, rows[3].id]


def test_bad_events_are_refused_with_a_clear_error(audit: AuditLog) -> None:
    with pytest.raises(AuditError, match="unknown audit event 'placed'"):
        AuditEvent("placed")
    with pytest.raises(AuditError, match=r"payload.when: object is not JSON-serializable"):
        audit.write(AuditEvent("intent", "x", "", {"when": object()}))
    with pytest.raises(AuditError, match="reconcile event needs payload state"):
        audit.write(AuditEvent("reconcile", "x", "", {"state": "gone"}))
    with pytest.raises(AuditError, match="client_order_id must be a string"):
        AuditEvent("intent", 5)  # type: ignore[arg-type]
    assert audit.events_for("x") == []  # nothing half-written


def test_open_intents_are_those_without_a_terminal_state(audit: AuditLog) -> None:
    only_intent = _write_order(audit)
    sent = _write_order(audit, ("sent", {}))
    working = _write_order(
        audit, ("sent", {}), ("status", {"status": "PreSubmitted", "filled": 0}), ("fill", {"filled": 40, "remaining": 60})
    )
    done = _write_order(audit, ("sent", {}), ("status", {"status": "Filled", "filled": 100}))
    cancelled = _write_order(audit, ("sent", {}), ("cancel_request", {}), ("status", {"status": "ApiCancelled"}))
    rejected = _write_order(audit, ("reject", {"reason": "not connected"}))
    unknown = _write_order(audit, ("send_error", {"reason": "socket"}))
    abandoned = _write_order(audit, ("reconcile", {"state": "abandoned"}))
    late_status = _write_order(audit, ("sent", {}), ("status", {"status": "Filled"}), ("kill_switch", {}))
    paper = _write_order(audit, mode="paper")
    audit.write(AuditEvent("blocked", "", new_correlation_id(), {"reason": "kill switch"}))
    open_ = audit.open_intents(mode="sim")
    states = {i.client_order_id: i.state for i in open_}
    assert states == {only_intent: "intent", sent: "sent", working: "working", unknown: "unknown"}
    assert [i.client_order_id for i in open_] == [only_intent, sent, working, unknown]  # oldest first
    w = next(i for i in open_ if i.client_order_id == working)
    assert w.filled == 40 and w.quantity == 100 and w.intent["action"] == "BUY" and w.account == "DU1"
    assert {i.client_order_id for i in audit.open_intents()} == set(states) | {paper}
    assert audit.open_intents(account="DU2") == []
    for closed in (done, cancelled, rejected, abandoned, late_status):
        assert audit.current_state(closed) in TERMINAL_STATES


def test_unreachable_database_is_one_line(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AuditError) as err:
        AuditLog(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", connect_timeout=2)
    msg = str(err.value)
    assert msg.startswith(f"cannot create the audit table in PostgreSQL at 127.0.0.1:{port}") and "\n" not in msg
    with pytest.raises(AuditError, match="schema can only be given for PostgreSQL"):
        AuditLog(f"sqlite:///{tmp_path / 'a.sqlite3'}", schema="x")
