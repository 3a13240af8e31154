"""Every arbitrage opportunity the desk saw: table ``opportunities``, upserted in batches.

One row per opportunity key (:func:`desk.domain.opportunity_codec.opportunity_key`):

=============  ==========================================================================
key            text, primary key: symbol, kind, rule and legs
kind, rule     conversion / reversal / box / vertical / butterfly / calendar; the rule
underlying     the underlying's symbol; ``expiry`` the (nearest) expiry ``YYYYMMDD``
legs           JSON list of the legs (conId, secType, right, strike, expiry, action,
               ratio, price $/share, size)
first_seen     UTC, when it was first seen (kept on update: the earliest)
last_seen      UTC, when a scan last found it
best_edge      largest total edge after costs seen, dollars (``edge_total``)
last_edge      total edge after costs at the last update, dollars
state          ``new`` / ``live`` / ``gone`` (the last change)
simulated      true when seen on the simulator (not a real opportunity)
risks          the risk flags at the last update, comma-separated
               (:class:`desk.domain.opportunity.RiskFlag` values, e.g.
               ``american-premium,early-exercise-put``); empty for none
riskless       :attr:`desk.domain.opportunity.Opportunity.riskless` at the last update
               (the desk's riskless view); NULL in rows written before these columns
=============  ==========================================================================

A table created before ``risks`` and ``riskless`` existed gets them added
(``ALTER TABLE ... ADD COLUMN``) by :meth:`OpportunityStore.ensure`.

:class:`OpportunityStore` does the SQL (SQLite or PostgreSQL, ``INSERT ... ON CONFLICT
DO UPDATE``, one statement per batch). :class:`OpportunityWriter` owns a thread that
takes payload batches from the scanner (:meth:`OpportunityWriter.submit` only appends
to a queue: never I/O on the event loop), coalesces them by key and upserts every
``flush_interval`` seconds. A database that is down makes the writer keep the latest
state per key (bounded by ``max_pending`` keys) and retry at the next interval;
nothing here is on the tick path.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Float, MetaData, String, Table, Text, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateSchema

from desk.store.errors import StoreError
from desk.store.schema import check_identifier, make_engine
from desk.store.urls import parse_database_url

__all__ = ["OpportunityStore", "OpportunityWriter", "WriterStats"]

log = logging.getLogger(__name__)

_STATES = ("new", "live", "gone")


def _table(name: str, schema: str | None) -> Table:
    md = MetaData(schema=schema)
    return Table(
        name,
        md,
        Column("key", Text, primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("rule", String(64), nullable=False),
        Column("underlying", String(32), nullable=False),
        Column("expiry", String(8), nullable=False),
        Column("legs", Text, nullable=False),
        Column("first_seen", DateTime(timezone=True), nullable=False),
        Column("last_seen", DateTime(timezone=True), nullable=False),
        Column("best_edge", Float, nullable=False),
        Column("last_edge", Float, nullable=False),
        Column("state", String(8), nullable=False),
        Column("simulated", Boolean, nullable=False),
        Column("risks", Text, nullable=True),
        Column("riskless", Boolean, nullable=True),
    )


#: Columns added after the table's first version: (name, SQL type) for ADD COLUMN.
_ADDED_COLUMNS = (("risks", "TEXT"), ("riskless", "BOOLEAN"))


def _row(p: Mapping[str, Any]) -> dict[str, Any]:
    """A payload (:func:`~desk.domain.opportunity_codec.opportunity_payload`) as a row."""
    try:
        state = p["state"]
        if state not in _STATES:
            raise StoreError(f"opportunity {p.get('key')!r}: state must be one of {_STATES}, got {state!r}")
        edge = p["edge_total"]
        best = p.get("best_edge_total", edge)
        edge = float(edge) if edge is not None else math.nan
        best = float(best) if best is not None else edge
        if not (math.isfinite(edge) and math.isfinite(best)):
            raise StoreError(f"opportunity {p['key']!r}: edge_total must be a finite number of dollars")
        return {
            "key": str(p["key"]),
            "kind": str(p["kind"]),
            "rule": str(p["rule"]),
            "underlying": str(p["underlying"]),
            "expiry": str(p["expiry"]),
            "legs": json.dumps(p["legs"], separators=(",", ":")),
            "first_seen": _time(p["first_seen"]),
            "last_seen": _time(p["last_seen"]),
            "best_edge": max(best, edge),
            "last_edge": edge,
            "state": state,
            "simulated": bool(p.get("simulated", False)),
            "risks": ",".join(sorted(str(r) for r in p.get("risks") or ())),
            "riskless": bool(p["riskless"]) if p.get("riskless") is not None else None,
        }
    except KeyError as exc:
        raise StoreError(f"opportunity payload is missing {exc.args[0]!r}") from None


def _time(value: Any) -> datetime:
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise StoreError(f"opportunity time must be a tz-aware ISO 8601 time, got {value!r}")
    return t


def opportunities_url(database_url: str) -> str:
    """Where the opportunities of a desk recording to ``database_url`` go. PostgreSQL: the
    same database (it takes concurrent writers). SQLite: a file of its own beside the tick
    file (``desk.sqlite3`` -> ``desk-opportunities.sqlite3``), because SQLite allows one
    writer per file and a fast feed would leave one of the two waiting on the lock
    ("database is locked"). Raises :class:`StoreError` for a bad URL."""
    target = parse_database_url(database_url)
    if target.dialect != "sqlite" or target.path is None:
        return database_url
    path = target.path
    own = path.with_name(path.stem + "-opportunities" + (path.suffix or ".sqlite3"))
    return f"sqlite:///{own}"


class OpportunityStore:
    """The ``opportunities`` table in the database at ``url`` (SQLite or PostgreSQL URL,
    as ``DESK_DATABASE_URL``), in ``schema`` (PostgreSQL only; created if absent) under
    the name ``table``. Synchronous: call from a thread (see :class:`OpportunityWriter`).

    Raises :class:`StoreError` for a bad URL or identifier, and from :meth:`upsert` /
    :meth:`rows` when the database refuses (one line naming the database).
    """

    def __init__(self, url: str, *, schema: str | None = None, table: str = "opportunities") -> None:
        self.url = url
        self.schema = check_identifier(schema, "schema") if schema else None
        self.table = _table(check_identifier(table, "table"), self.schema)
        self.engine: Engine = make_engine(url, application_name="desk-opportunities")
        self._created = False

    def ensure(self) -> None:
        """Create the schema and table if absent (idempotent)."""
        if self._created:
            return
        try:
            with self.engine.begin() as conn:
                if self.schema and self.engine.dialect.name == "postgresql":
                    conn.execute(CreateSchema(self.schema, if_not_exists=True))
                self.table.create(conn, checkfirst=True)
                self._add_columns(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"opportunities table: {_one_line(exc)}") from None
        self._created = True

    def _add_columns(self, conn: Any) -> None:
        """Add the columns of :data:`_ADDED_COLUMNS` that an older table lacks."""
        have = {c["name"] for c in inspect(conn).get_columns(self.table.name, schema=self.schema)}
        preparer = self.engine.dialect.identifier_preparer
        name = preparer.format_table(self.table)
        for column, sql_type in _ADDED_COLUMNS:
            if column not in have:
                conn.execute(text(f"ALTER TABLE {name} ADD COLUMN {preparer.quote(column)} {sql_type}"))
                log.info("opportunities table: added column %s", column)

    def upsert(self, payloads: Iterable[Mapping[str, Any]]) -> int:
        """Insert or update one row per key in one statement; returns the rows written.

        Of several payloads with the same key the last one wins, except ``first_seen``
        (the earliest is kept, also against the row already stored) and ``best_edge``
        (the largest). Raises :class:`StoreError` for a malformed payload (nothing is
        written) or a database error.
        """
        rows: dict[str, dict[str, Any]] = {}
        for p in payloads:
            row = _row(p)
            prev = rows.get(row["key"])
            if prev is not None:
                row["first_seen"] = min(prev["first_seen"], row["first_seen"])
                row["best_edge"] = max(prev["best_edge"], row["best_edge"])
            rows[row["key"]] = row
        if not rows:
            return 0
        self.ensure()
        t = self.table
        dialect = self.engine.dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t)
        ex = insert.excluded
        bigger = func.greatest if dialect == "postgresql" else func.max
        smaller = func.least if dialect == "postgresql" else func.min
        stmt = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "first_seen": smaller(t.c.first_seen, ex.first_seen),
                "last_seen": ex.last_seen,
                "best_edge": bigger(t.c.best_edge, ex.best_edge),
                "last_edge": ex.last_edge,
                "state": ex.state,
                "legs": ex.legs,
                "simulated": ex.simulated,
                "risks": ex.risks,
                "riskless": ex.riskless,
            },
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, list(rows.values()))
        except SQLAlchemyError as exc:
            raise StoreError(f"opportunities upsert: {_one_line(exc)}") from None
        return len(rows)

    def rows(self, *, underlying: str | None = None) -> list[dict[str, Any]]:
        """Every stored row (optionally of one underlying), best edge first; ``legs``
        decoded from JSON, times tz-aware UTC."""
        self.ensure()
        q = select(self.table).order_by(self.table.c.best_edge.desc())
        if underlying is not None:
            q = q.where(self.table.c.underlying == underlying)
        try:
            with self.engine.connect() as conn:
                out = [dict(r._mapping) for r in conn.execute(q)]
        except SQLAlchemyError as exc:
            raise StoreError(f"opportunities read: {_one_line(exc)}") from None
        from datetime import UTC

        for r in out:
            r["legs"] = json.loads(r["legs"])
            for k in ("first_seen", "last_seen"):
                if r[k].tzinfo is None:  # SQLite keeps no zone: stored as UTC
                    r[k] = r[k].replace(tzinfo=UTC)
        return out

    def close(self) -> None:
        self.engine.dispose()


class WriterStats:
    """Counters of an :class:`OpportunityWriter`: ``written`` rows upserted, ``batches``,
    ``pending`` keys waiting, ``errors`` failed upserts, ``dropped`` keys dropped because
    more than ``max_pending`` were waiting, ``last_error`` one line."""

    __slots__ = ("written", "batches", "pending", "errors", "dropped", "last_error")

    def __init__(self) -> None:
        self.written = self.batches = self.pending = self.errors = self.dropped = 0
        self.last_error = ""


class OpportunityWriter:
    """A thread that upserts opportunity payloads into an :class:`OpportunityStore`.

    ``flush_interval``: seconds between upserts at most (> 0); ``max_pending``: keys kept
    while the database is down (oldest dropped beyond). :meth:`submit` is thread-safe and
    never blocks on I/O: use it as a :data:`desk.arbitrage.live.OpportunitySink`.
    """

    def __init__(self, store: OpportunityStore, *, flush_interval: float = 1.0, max_pending: int = 10_000) -> None:
        if not (flush_interval > 0):
            raise ValueError(f"flush_interval must be > 0 seconds, got {flush_interval!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending!r}")
        self.store = store
        self.flush_interval = float(flush_interval)
        self.max_pending = int(max_pending)
        self.stats = WriterStats()
        self._pending: dict[str, list[Mapping[str, Any]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._stop = False
        self._busy = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="desk-opportunities", daemon=True)
            self._thread.start()

    def submit(self, payloads: Sequence[Mapping[str, Any]]) -> None:
        """Queue payloads (coalesced by key until the next upsert)."""
        with self._lock:
            for p in payloads:
                self._pending.setdefault(p["key"], []).append(p)
            while len(self._pending) > self.max_pending:
                self._pending.pop(next(iter(self._pending)))
                self.stats.dropped += 1
            self.stats.pending = len(self._pending)

    __call__ = submit

    def flush(self, timeout: float = 10.0) -> bool:
        """Block (a thread, not the event loop: use ``asyncio.to_thread``) until what was
        submitted before the call is written or ``timeout`` seconds pass; True if written."""
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, stop the thread, dispose of the engine."""
        if self._thread is not None:
            self.flush(timeout)
            self._stop = True
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None
        self.store.close()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, {}
                self._busy = bool(batch)
            if not batch:
                continue
            payloads = [p for items in batch.values() for p in items]
            try:
                n = self.store.upsert(payloads)
            except StoreError as exc:
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                log.warning("opportunities not written yet: %s", exc)
                with self._lock:  # keep them (newer submissions of the same key come after)
                    for k, items in batch.items():
                        self._pending[k] = items + self._pending.get(k, [])
            else:
                self.stats.written += n
                self.stats.batches += 1
            with self._idle:
                self._busy = False
                self.stats.pending = len(self._pending)
                self._idle.notify_all()


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
