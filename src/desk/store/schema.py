"""Tables of the tick store, as SQLAlchemy Core metadata, and their creation.

Tables (``ticks`` may be renamed and everything may live in a PostgreSQL schema, for
tests and side-by-side recordings):

``ticks`` — one row per :class:`~desk.domain.models.TickRecord`, columns in that order.

=========== ======================================= ===============================
column      PostgreSQL / TimescaleDB                SQLite
=========== ======================================= ===============================
time        ``timestamptz`` (UTC instant, µs)       ``BIGINT``: µs since 1970-01-01Z
con_id      ``integer`` (IB conId)                  ``INTEGER``
symbol      ``text``                                ``TEXT``
kind        ``char(1)``: ``Q`` quote, ``T`` trade   ``CHAR(1)``
bid ... size ``double precision``; NULL = absent    ``DOUBLE`` (REAL); NULL = absent
=========== ======================================= ===============================

Absent prices and sizes (``nan`` in desk) are stored as SQL NULL on both backends, so
``avg()``/``max()`` behave (SQLite cannot store NaN at all; it turns it into NULL).
:class:`NanFloat` maps NULL back to ``nan`` when reading through SQLAlchemy.

SQLite keeps time as integer microseconds rather than ISO text or REAL seconds: exact
round trip of every ``datetime`` (REAL seconds would not be), cheap range scans, 8 bytes.

Indexes: without TimescaleDB a BRIN index on ``time`` (tiny, ticks arrive in time order)
and a btree on ``(con_id, time)`` for per-instrument replay; on SQLite btrees on ``time``
and ``(con_id, time)``. With TimescaleDB, ``ticks`` is a hypertable partitioned by
``time`` (1-day chunks; TimescaleDB makes its own time index instead of the BRIN) with
compression segmented by ``con_id`` after 7 days when the licence allows it.

``recorder_batches`` — one row per committed recorder batch (uuid), written in the same
transaction as the batch's rows: replaying a spooled batch that had in fact been
committed is then detected and skipped (exactly-once). Rows are only needed while a spool
file could still be replayed; deleting old ones is safe once spools are empty.

``instruments`` — contracts seen by desk (IB conId primary key), see
:func:`upsert_instruments`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    create_engine,
    func,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema
from sqlalchemy.types import TypeDecorator

from desk.domain.models import Instrument
from desk.store.codec import as_utc, from_epoch_us, to_epoch_us
from desk.store.errors import StoreError
from desk.store.urls import DatabaseTarget, parse_database_url

log = logging.getLogger(__name__)

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

BATCHES_TABLE = "recorder_batches"
INSTRUMENTS_TABLE = "instruments"


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a plain SQL identifier (letters, digits, ``_``, at most 63
    characters, not starting with a digit); raise :class:`StoreError` otherwise."""
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise StoreError(f"{what} name {name!r} is not a plain identifier (letters, digits, _; at most 63)")
    return name


class UtcTime(TypeDecorator):
    """A UTC instant: ``timestamptz`` on PostgreSQL, integer µs since the epoch on SQLite.

    Binds tz-aware datetimes (naive ones are taken as UTC); returns tz-aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_epoch_us(value)
        return as_utc(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_epoch_us(value)
        return as_utc(value)


class NanFloat(TypeDecorator):
    """``double precision`` where SQL NULL means "absent": ``nan`` binds as NULL and NULL
    reads back as ``nan``."""

    impl = Double
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None or value != value:
            return None
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return math.nan if value is None else value


@dataclass
class StoreSchema:
    """The metadata of one tick store: ``ticks`` (named ``table``), ``recorder_batches``
    and ``instruments``, all in PostgreSQL schema ``schema`` (``None``: the default).

    ``timescale`` only changes the indexes (no BRIN on a hypertable).
    """

    table: str = "ticks"
    schema: str | None = None
    timescale: bool = False
    metadata: MetaData = field(init=False)
    ticks: Table = field(init=False)
    batches: Table = field(init=False)
    instruments: Table = field(init=False)

    def __post_init__(self) -> None:
        check_identifier(self.table, "table")
        if self.schema is not None:
            check_identifier(self.schema, "schema")
        if self.table in (BATCHES_TABLE, INSTRUMENTS_TABLE):
            raise StoreError(f"table name {self.table!r} is reserved by desk")
        md = MetaData(schema=self.schema)
        t = self.table
        self.ticks = Table(
            t,
            md,
            Column("time", UtcTime(), nullable=False, comment="UTC receive time"),
            Column("con_id", Integer, nullable=False, comment="IB conId"),
            Column("symbol", Text, nullable=False),
            Column("kind", CHAR(1), nullable=False, comment="Q quote, T trade"),
            Column("bid", NanFloat(), comment="dollars per share; NULL if absent"),
            Column("ask", NanFloat(), comment="dollars per share; NULL if absent"),
            Column("bid_size", NanFloat(), comment="shares or contracts"),
            Column("ask_size", NanFloat(), comment="shares or contracts"),
            Column("price", NanFloat(), comment="trade price, dollars per share"),
            Column("size", NanFloat(), comment="trade size, shares or contracts"),
            comment="desk tick recorder: one row per quote or trade tick",
        )
        Index(f"{t}_con_id_time_idx", self.ticks.c.con_id, self.ticks.c.time)
        if not self.timescale:
            Index(f"{t}_time_idx", self.ticks.c.time, postgresql_using="brin")
        self.batches = Table(
            BATCHES_TABLE,
            md,
            Column("batch_id", Uuid(), primary_key=True),
            Column("table_name", Text, nullable=False),
            Column("rows", Integer, nullable=False),
            Column("committed_at", UtcTime(), nullable=False, server_default=_now_default()),
            comment="desk recorder batches already committed (spool replay is idempotent)",
        )
        self.instruments = Table(
            INSTRUMENTS_TABLE,
            md,
            Column("con_id", BigInteger, primary_key=True, autoincrement=False, comment="IB conId"),
            Column("symbol", Text, nullable=False),
            Column("sec_type", Text, nullable=False, comment="STK, OPT, ..."),
            Column("exchange", Text, nullable=False),
            Column("currency", Text, nullable=False),
            Column("primary_exchange", Text, nullable=False, server_default=""),
            Column("local_symbol", Text, nullable=False, server_default=""),
            Column("expiry", Text, nullable=False, server_default="", comment="YYYYMMDD for options"),
            Column("strike", Double, nullable=False, server_default="0", comment="dollars per share"),
            Column("right", Text, nullable=False, server_default="", comment="C or P"),
            Column("multiplier", Integer, nullable=False, server_default="1", comment="shares per contract"),
            Column("first_seen", UtcTime(), nullable=False),
            Column("last_seen", UtcTime(), nullable=False),
        )
        self.metadata = md

    @property
    def qualified_table(self) -> str:
        """``schema.table`` (or ``table``), unquoted: both are plain identifiers."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def qualified(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name


def _now_default() -> Any:
    # CURRENT_TIMESTAMP works on both; on SQLite it would be text, so SQLite inserts pass
    # committed_at explicitly (see sinks.SqliteSink).
    return func.now()


@dataclass
class SchemaInfo:
    """What :func:`ensure_schema` found or did.

    ``timescaledb_available``: the extension can be installed on the server;
    ``timescaledb_installed``: it is installed in this database; ``hypertable``: the tick
    table is a hypertable; ``compression``: compression is enabled on it. ``warnings``:
    one line per TimescaleDB step that could not be done (the plain-table path is used).
    """

    dialect: str
    timescaledb_available: bool = False
    timescaledb_installed: bool = False
    hypertable: bool = False
    compression: bool = False
    warnings: list[str] = field(default_factory=list)


def make_engine(target: DatabaseTarget | str, *, application_name: str = "desk", connect_timeout: int = 5) -> Engine:
    """A SQLAlchemy engine without pooling for ``target`` (a URL or parsed target).

    For SQLite the parent directory of the file is created. Connection errors surface
    on first use, not here.
    """
    if isinstance(target, str):
        target = parse_database_url(target)
    if target.dialect == "sqlite":
        assert target.path is not None
        target.path.parent.mkdir(parents=True, exist_ok=True)
        return create_engine(target.sqlalchemy_url, poolclass=NullPool)
    args: dict[str, Any] = {"connect_timeout": connect_timeout}
    if "application_name" not in target.connect_kwargs:
        args["application_name"] = application_name
    return create_engine(target.sqlalchemy_url, poolclass=NullPool, connect_args=args)


def ensure_schema(engine: Engine, store: StoreSchema, *, timescale: bool = True) -> SchemaInfo:
    """Create the store's tables and indexes if absent (idempotent, safe to run
    concurrently: PostgreSQL DDL runs under an advisory lock).

    On PostgreSQL with ``timescale`` true: if the ``timescaledb`` extension is available it
    is installed (``CREATE EXTENSION IF NOT EXISTS``), the tick table becomes a hypertable
    on ``time`` and compression segmented by ``con_id`` is enabled. Each TimescaleDB step
    that fails (no privilege, not preloaded, Apache-only build) adds a warning and the
    plain-table path is kept. ``store.timescale`` is set to what was used.

    Raises SQLAlchemy / driver errors on connection failure (callers translate them).
    """
    dialect = engine.dialect.name
    info = SchemaInfo(dialect=dialect)
    if dialect == "sqlite":
        store.timescale = False
        _rebuild(store)
        with engine.begin() as conn:
            store.metadata.create_all(conn, checkfirst=True)
        return info

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('desk.store.schema'))"))
        if store.schema:
            conn.execute(CreateSchema(store.schema, if_not_exists=True))
        info.timescaledb_available = bool(
            conn.scalar(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"))
        )
        installed = conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"))
        if timescale and info.timescaledb_available and installed is None:
            try:
                with conn.begin_nested():
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
                installed = conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"))
            except Exception as exc:  # noqa: BLE001 - any failure keeps the plain path
                info.warnings.append(f"cannot install timescaledb: {_first_line(exc)}")
        info.timescaledb_installed = installed is not None
        use_ts = timescale and info.timescaledb_installed
        store.timescale = use_ts
        _rebuild(store)
        store.metadata.create_all(conn, checkfirst=True)
        if use_ts:
            rel = _quoted_rel(store)
            try:
                with conn.begin_nested():
                    conn.execute(
                        text(
                            "SELECT create_hypertable(CAST(:rel AS regclass), 'time', if_not_exists => TRUE, "
                            "migrate_data => TRUE, chunk_time_interval => INTERVAL '1 day')"
                        ),
                        {"rel": rel},
                    )
            except Exception as exc:  # noqa: BLE001
                info.warnings.append(f"cannot make {store.qualified_table} a hypertable: {_first_line(exc)}")
            info.hypertable = _is_hypertable(conn, store)
            if info.hypertable:
                info.compression = _compression_enabled(conn, store)
                if not info.compression:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                text(
                                    f"ALTER TABLE {rel} SET (timescaledb.compress, "
                                    "timescaledb.compress_segmentby = 'con_id', "
                                    "timescaledb.compress_orderby = 'time DESC')"
                                )
                            )
                            conn.execute(
                                text(
                                    "SELECT add_compression_policy(CAST(:rel AS regclass), INTERVAL '7 days', "
                                    "if_not_exists => TRUE)"
                                ),
                                {"rel": rel},
                            )
                        info.compression = True
                    except Exception as exc:  # noqa: BLE001
                        info.warnings.append(f"cannot enable compression on {store.qualified_table}: {_first_line(exc)}")
    for warning in info.warnings:
        log.warning("%s", warning)
    return info


def _rebuild(store: StoreSchema) -> None:
    fresh = StoreSchema(store.table, store.schema, timescale=store.timescale)
    store.metadata, store.ticks, store.batches, store.instruments = (
        fresh.metadata,
        fresh.ticks,
        fresh.batches,
        fresh.instruments,
    )


def _quoted_rel(store: StoreSchema) -> str:
    rel = f'"{store.table}"'
    return f'"{store.schema}".{rel}' if store.schema else rel


def _is_hypertable(conn: Any, store: StoreSchema) -> bool:
    try:
        with conn.begin_nested():
            return bool(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM timescaledb_information.hypertables "
                        "WHERE hypertable_name = :t AND hypertable_schema = coalesce(CAST(:s AS name), current_schema())"
                    ),
                    {"t": store.table, "s": store.schema},
                )
            )
    except Exception:  # noqa: BLE001 - no timescaledb: not a hypertable
        return False


def _compression_enabled(conn: Any, store: StoreSchema) -> bool:
    try:
        with conn.begin_nested():
            return bool(
                conn.scalar(
                    text(
                        "SELECT compression_enabled FROM timescaledb_information.hypertables "
                        "WHERE hypertable_name = :t AND hypertable_schema = coalesce(CAST(:s AS name), current_schema())"
                    ),
                    {"t": store.table, "s": store.schema},
                )
            )
    except Exception:  # noqa: BLE001
        return False


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def upsert_instruments(
    engine: Engine,
    instruments: Iterable[Instrument],
    *,
    schema: str | None = None,
    seen_at: datetime | None = None,
) -> int:
    """Insert or update ``instruments`` (keyed by IB conId) and return how many were given.

    ``first_seen`` is set on insert only; ``last_seen`` and the descriptive columns are
    updated every time. ``seen_at`` defaults to now (UTC). Creates the tables if absent.
    Synchronous: call it through :func:`asyncio.to_thread` from the event loop.

    Raises :class:`StoreError` for an instrument without a conId (``con_id <= 0``: not
    qualified by the gateway yet).
    """
    from datetime import timezone

    now = as_utc(seen_at) if seen_at else datetime.now(timezone.utc)
    rows = []
    for ins in instruments:
        if ins.con_id <= 0:
            raise StoreError(f"instrument {ins.key!r} has no conId (not qualified)")
        rows.append(
            {
                "con_id": ins.con_id,
                "symbol": ins.symbol,
                "sec_type": ins.sec_type,
                "exchange": ins.exchange,
                "currency": ins.currency,
                "primary_exchange": ins.primary_exchange,
                "local_symbol": ins.local_symbol,
                "expiry": ins.expiry,
                "strike": float(ins.strike),
                "right": ins.right,
                "multiplier": int(ins.multiplier),
                "first_seen": now,
                "last_seen": now,
            }
        )
    if not rows:
        return 0
    store = StoreSchema(schema=schema)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if schema and dialect == "postgresql":
            conn.execute(CreateSchema(schema, if_not_exists=True))
        store.instruments.create(conn, checkfirst=True)
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(store.instruments)
        updated = {c: insert.excluded[c] for c in rows[0] if c not in ("con_id", "first_seen")}
        conn.execute(insert.on_conflict_do_update(index_elements=["con_id"], set_=updated), rows)
    return len(rows)
