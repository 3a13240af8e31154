"""The order audit trail: an append-only table written *before* an order is transmitted.

Every order intent, risk preview, transmission, status change, fill, rejection, cancel
request and kill-switch action is one row of ``order_audit``:

================ ============================= ===========================================
column           type                          meaning
================ ============================= ===========================================
id               bigint (identity)             order of writing, strictly increasing
time             timestamptz (SQLite: µs int)  UTC time of the event
correlation_id   text                          links preview -> order -> statuses -> fills
client_order_id  text                          desk's id of the order, sent as IB orderRef
event            text                          one of :data:`EVENTS`
state            text, NULL                    lifecycle state after this event (see below)
payload          jsonb (SQLite: JSON text)     the event's data (intent, status, fill ...)
mode             text                          sim, paper or live
account          text                          IB account id
================ ============================= ===========================================

**Append-only.** On PostgreSQL a trigger function raises on every ``UPDATE`` and
``DELETE`` (row triggers) and on ``TRUNCATE`` (statement trigger), so even
``INSERT ... ON CONFLICT DO UPDATE`` is refused. On SQLite ``BEFORE UPDATE`` / ``BEFORE
DELETE`` triggers ``RAISE(ABORT)``, and a ``BEFORE INSERT`` trigger refuses an insert that
reuses an existing id (``INSERT OR REPLACE`` would otherwise delete the old row without
firing the delete trigger). Triggers stop the application and honest mistakes; dropping
the table or the triggers needs DDL rights, which a production role should not have
(grant it ``INSERT, SELECT`` only).

**Write-ahead.** :meth:`AuditLog.write` returns only after the row is committed
(PostgreSQL with ``synchronous_commit = on`` for that transaction; SQLite in WAL mode
with ``synchronous=FULL``: the WAL is fsynced at every commit), so a row written before ``placeOrder`` survives a crash that
happens after it. It is synchronous: from the event loop call it through
:func:`asyncio.to_thread` (a few rows per order, never per tick).

**Lifecycle.** ``state`` is derived from the event when the row is written: ``intent``
(written, maybe being transmitted), ``sent`` (handed to the gateway), ``working`` (the
gateway acknowledged it), ``filled``, ``cancelled``, ``inactive``, ``rejected`` (refused by
desk or by the gateway before it worked), ``blocked`` (stopped by a gate or a risk check,
never sent), ``abandoned`` (never reached the gateway and never will), ``unknown`` (may
have reached the gateway, not visible: a human decides). Events that do not change the
lifecycle (``preview``, ``cancel_request``, ``kill_switch``...) have a NULL state. The
current state of an order is that of its latest row with a state; :data:`TERMINAL_STATES`
are final.

**Reconciliation** after a reconnect or restart is :func:`desk.orders.reconcile.reconcile`,
a pure function of :meth:`AuditLog.open_intents` and what the gateway reports. This module
is persistence only: writing rows, and the reads the order path needs.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateSchema

from desk.store.codec import as_utc
from desk.store.schema import UtcTime, check_identifier
from desk.store.sinks import PG_CONNECT_DEFAULTS, describe_error
from desk.store.urls import DatabaseTarget, parse_database_url
from desk.store.audit_records import (
    AUDIT_TABLE,
    TERMINAL_STATES,
    AuditError,
    AuditEvent,
    AuditRecord,
    IntentState,
    jsonable,
    state_for,
)

__all__ = ["AuditLog"]  # the records it writes and reads: desk.store.audit_records


def _table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("time", UtcTime(), nullable=False, comment="UTC time of the event"),
        Column("correlation_id", Text, nullable=False, server_default=""),
        Column("client_order_id", Text, nullable=False, server_default="", comment="IB orderRef"),
        Column("event", Text, nullable=False),
        Column("state", Text, nullable=True, comment="lifecycle state after this event"),
        Column("payload", JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        Column("mode", Text, nullable=False, server_default=""),
        Column("account", Text, nullable=False, server_default=""),
        comment="desk order audit trail: append-only (UPDATE, DELETE, TRUNCATE refused by triggers)",
    )


class AuditLog:
    """The append-only order audit log in the database at ``url``.

    ``url``: a database URL as ``DESK_DATABASE_URL`` takes (SQLite file or PostgreSQL).
    ``schema``: PostgreSQL schema (``None``: the default; created if absent; refused for
    SQLite). ``table``: table name (default ``order_audit``). ``clock``: an object with
    ``now() -> datetime`` (UTC) for event times; default the wall clock.

    The table, its indexes and its append-only triggers are created on construction
    (idempotent; concurrent creators on PostgreSQL serialise on an advisory lock). Every
    method is synchronous and thread-safe; call them via :func:`asyncio.to_thread` from
    the event loop. Raises :class:`AuditError` (one line) when the database cannot be
    reached or refuses a write.
    """

    def __init__(
        self,
        url: str | DatabaseTarget,
        *,
        schema: str | None = None,
        table: str = AUDIT_TABLE,
        clock: Any = None,
        connect_timeout: int = 5,
    ) -> None:
        self.target = parse_database_url(url) if isinstance(url, str) else url
        self.dialect = self.target.dialect
        check_identifier(table, "table")
        if schema is not None:
            if self.dialect == "sqlite":
                raise AuditError("a schema can only be given for PostgreSQL, not for SQLite")
            check_identifier(schema, "schema")
        self.schema = schema
        self.table_name = table
        self.clock = clock
        self.metadata = MetaData(schema=schema)
        self.table = _table(self.metadata, table)
        Index(f"{table}_client_order_id_idx", self.table.c.client_order_id, self.table.c.id)
        Index(f"{table}_correlation_id_idx", self.table.c.correlation_id, self.table.c.id)
        self._lock = threading.Lock()
        self.engine = self._make_engine(connect_timeout)
        try:
            self._ensure()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise AuditError(describe_error(exc, self.target, action="create the audit table in")) from None

    # --- set-up ------------------------------------------------------------------------

    def _make_engine(self, connect_timeout: int) -> Engine:
        t = self.target
        if t.dialect == "sqlite":
            if t.path is None:
                raise AuditError(f"{t.display}: the SQLite URL names no file")
            t.path.parent.mkdir(parents=True, exist_ok=True)
            # pooled connections: closing the last connection of a WAL database checkpoints
            # it (several fsyncs), which would triple the cost of every write
            engine = create_engine(
                t.sqlalchemy_url, pool_size=1, max_overflow=4, connect_args={"timeout": 30, "check_same_thread": False}
            )

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")  # one fsync per commit (the recorder uses WAL too)
                cur.execute("PRAGMA synchronous=FULL")  # durable at every commit (write-ahead)
                cur.close()

            return engine
        args: dict[str, Any] = {"connect_timeout": connect_timeout, "application_name": "desk-audit"}
        for key, value in PG_CONNECT_DEFAULTS.items():
            if key not in t.connect_kwargs:
                args[key] = value
        return create_engine(t.sqlalchemy_url, pool_size=1, max_overflow=2, pool_pre_ping=True, connect_args=args)

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table_name}" if self.schema else self.table_name

    def _ensure(self) -> None:
        name = self.table_name
        if self.dialect == "sqlite":
            with self.engine.begin() as conn:
                self.metadata.create_all(conn, checkfirst=True)
                for op in ("UPDATE", "DELETE"):
                    conn.execute(
                        text(
                            f"CREATE TRIGGER IF NOT EXISTS {name}_no_{op.lower()} BEFORE {op} ON {name} "
                            f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: {op} refused'); END"
                        )
                    )
                conn.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {name}_no_replace BEFORE INSERT ON {name} "
                        f"WHEN EXISTS (SELECT 1 FROM {name} WHERE id = NEW.id) "
                        f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: REPLACE refused'); END"
                    )
                )
            return
        rel = self.qualified_table
        func = f"{self.schema + '.' if self.schema else ''}{name}_append_only"
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('desk.store.audit'))"))
            if self.schema:
                conn.execute(CreateSchema(self.schema, if_not_exists=True))
            self.metadata.create_all(conn, checkfirst=True)
            conn.execute(
                text(
                    f"CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
                    "USING ERRCODE = 'insufficient_privilege', HINT = 'desk audit rows are never changed'; "
                    "END $$"
                )
            )
            existing = set(
                conn.scalars(
                    text("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:rel AS regclass) AND NOT tgisinternal"),
                    {"rel": rel},
                )
            )
            if f"{name}_no_update_delete" not in existing:
                conn.execute(
                    text(
                        f"CREATE TRIGGER {name}_no_update_delete BEFORE UPDATE OR DELETE ON {rel} "
                        f"FOR EACH ROW EXECUTE FUNCTION {func}()"
                    )
                )
            if f"{name}_no_truncate" not in existing:
                conn.execute(
                    text(
                        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {rel} FOR EACH STATEMENT EXECUTE FUNCTION {func}()"
                    )
                )

    # --- writing -----------------------------------------------------------------------

    def _now(self) -> datetime:
        if self.clock is not None:
            return as_utc(self.clock.now())
        return datetime.now(UTC)

    def write(self, ev: AuditEvent) -> AuditRecord:
        """Append ``ev`` and return the committed row. Returns only after the commit is
        durable (see the module doc). Raises :class:`AuditError` if the payload is not
        JSON-ready, a ``reconcile`` event has no valid ``state``, or the database refuses."""
        if not isinstance(ev, AuditEvent):
            raise AuditError(f"AuditLog.write needs an AuditEvent, got {type(ev).__name__}")
        payload = jsonable(dict(ev.payload))
        state = state_for(ev.event, payload)
        when = as_utc(ev.time) if ev.time is not None else self._now()
        row = {
            "time": when,
            "correlation_id": ev.correlation_id,
            "client_order_id": ev.client_order_id,
            "event": ev.event,
            "state": state,
            "payload": payload,
            "mode": ev.mode,
            "account": ev.account,
        }
        try:
            with self._lock, self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SET LOCAL synchronous_commit = on"))
                new_id = conn.execute(self.table.insert().values(**row).returning(self.table.c.id)).scalar_one()
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="write the audit log in")) from None
        return AuditRecord(id=int(new_id), **row)  # type: ignore[arg-type]

    # --- reading -----------------------------------------------------------------------

    def _rows(self, stmt: Any) -> list[AuditRecord]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="read the audit log in")) from None
        return [
            AuditRecord(
                id=int(r["id"]),
                time=r["time"],
                correlation_id=r["correlation_id"],
                client_order_id=r["client_order_id"],
                event=r["event"],
                state=r["state"],
                payload=r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"]),
                mode=r["mode"],
                account=r["account"],
            )
            for r in rows
        ]

    def events_for(self, client_order_id: str) -> list[AuditRecord]:
        """Every row of one order (by client order id = orderRef), oldest first."""
        t = self.table
        return self._rows(select(t).where(t.c.client_order_id == client_order_id).order_by(t.c.id))

    def events_for_correlation(self, correlation_id: str) -> list[AuditRecord]:
        """Every row sharing ``correlation_id`` (preview, orders, statuses, fills), oldest first."""
        t = self.table
        return self._rows(select(t).where(t.c.correlation_id == correlation_id).order_by(t.c.id))

    def all_events(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Rows with ``id > after_id``, oldest first, at most ``limit`` (for a blotter or an export)."""
        t = self.table
        return self._rows(select(t).where(t.c.id > after_id).order_by(t.c.id).limit(limit))

    def current_state(self, client_order_id: str) -> str | None:
        """The order's latest lifecycle state, ``None`` if the id is unknown."""
        t = self.table
        stmt = (
            select(t.c.state)
            .where(t.c.client_order_id == client_order_id, t.c.state.is_not(None))
            .order_by(t.c.id.desc())
            .limit(1)
        )
        try:
            with self.engine.connect() as conn:
                return conn.execute(stmt).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="read the audit log in")) from None

    def open_intents(self, *, mode: str | None = None, account: str | None = None) -> list[IntentState]:
        """Orders with an ``intent`` row whose latest state is not terminal, oldest first,
        optionally only those of ``mode`` / ``account`` (as written in the intent row)."""
        t = self.table
        # portable "latest row with a state per order": max(id) grouped
        latest = (
            select(t.c.client_order_id, func.max(t.c.id).label("last_id"))
            .where(t.c.client_order_id != "", t.c.state.is_not(None))
            .group_by(t.c.client_order_id)
            .subquery()
        )
        last = t.alias("last_row")
        stmt = (
            select(t, last.c.state.label("current_state"), last.c.id.label("current_id"))
            .join(latest, latest.c.client_order_id == t.c.client_order_id)
            .join(last, last.c.id == latest.c.last_id)
            .where(t.c.event == "intent", last.c.state.not_in(sorted(TERMINAL_STATES)))
            .order_by(t.c.id)
        )
        if mode is not None:
            stmt = stmt.where(t.c.mode == mode)
        if account is not None:
            stmt = stmt.where(t.c.account == account)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
                refs = [r["client_order_id"] for r in rows]
                filled: dict[str, float] = {}
                perms: dict[str, int] = {}
                if refs:
                    q = (
                        select(t.c.client_order_id, t.c.payload)
                        .where(t.c.client_order_id.in_(refs), t.c.event.in_(("status", "fill", "reconcile")))
                        .order_by(t.c.id)
                    )
                    for ref, payload in conn.execute(q):
                        data = payload if isinstance(payload, dict) else json.loads(payload)
                        value = data.get("filled")
                        if isinstance(value, int | float) and value > filled.get(ref, 0.0):
                            filled[ref] = float(value)
                        perm = data.get("perm_id") or (data.get("order") or {}).get("perm_id")
                        if isinstance(perm, int) and perm > 0:
                            perms[ref] = perm
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="read the audit log in")) from None
        out = []
        for r in rows:
            payload = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
            intent = payload.get("intent", payload)
            qty = intent.get("quantity", 0) if isinstance(intent, dict) else 0
            out.append(
                IntentState(
                    client_order_id=r["client_order_id"],
                    correlation_id=r["correlation_id"],
                    state=r["current_state"],
                    intent=intent if isinstance(intent, dict) else {},
                    intent_time=r["time"],
                    quantity=float(qty) if isinstance(qty, int | float) else 0.0,
                    mode=r["mode"],
                    account=r["account"],
                    filled=filled.get(r["client_order_id"], 0.0),
                    last_id=int(r["current_id"]),
                    perm_id=perms.get(r["client_order_id"], 0),
                )
            )
        return out

    def recorded_exec_ids(self, *, since: datetime | None = None) -> set[str]:
        """execIds of the executions already written as ``fill`` rows (since ``since``, UTC),
        so an execution recovered from the gateway after a restart is written once."""
        t = self.table
        stmt = select(t.c.payload).where(t.c.event == "fill")
        if since is not None:
            stmt = stmt.where(t.c.time >= as_utc(since))
        out: set[str] = set()
        try:
            with self.engine.connect() as conn:
                for (payload,) in conn.execute(stmt):
                    data = payload if isinstance(payload, dict) else json.loads(payload)
                    exec_id = (data.get("fill") or {}).get("exec_id")
                    if isinstance(exec_id, str) and exec_id:
                        out.add(exec_id)
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="read the audit log in")) from None
        return out

    def exists(self, ev: AuditEvent) -> bool:
        """True if a row with the same event, client order id, correlation id, time and
        payload as ``ev`` is already in the log (a spooled row written before a crash)."""
        if ev.time is None:
            return False
        t = self.table
        stmt = select(t.c.payload).where(
            t.c.event == ev.event,
            t.c.client_order_id == ev.client_order_id,
            t.c.correlation_id == ev.correlation_id,
            t.c.time == as_utc(ev.time),
        )
        want = jsonable(dict(ev.payload))
        try:
            with self.engine.connect() as conn:
                for (payload,) in conn.execute(stmt):
                    if (payload if isinstance(payload, dict) else json.loads(payload)) == want:
                        return True
            return False
        except SQLAlchemyError as exc:
            raise AuditError(describe_error(exc, self.target, action="read the audit log in")) from None

    def close(self) -> None:
        """Release the database connections (the log can be reopened with a new AuditLog)."""
        self.engine.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
