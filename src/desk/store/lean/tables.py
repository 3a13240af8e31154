"""The tables LEAN data is imported into (SQLAlchemy Core, same conventions as
:mod:`desk.store.schema`: ``UtcTime`` for times, SQL NULL for absent prices; everything in
the optional PostgreSQL ``schema``):

``bars`` — one row per bar and side. ``kind`` is ``TRADES`` (open/high/low/close of trade
prices, ``volume`` traded), ``BID`` or ``ASK`` (open/high/low/close of that side's quote,
``volume`` = the last displayed size of that side). A quote bar with no quote on one
side (LEAN's empty group) is stored with NULL prices and size 0: IB's "no bid".
Primary key ``(con_id, bar_size, kind, time)``.

``open_interest`` — contracts open, per option and time. ``trade_ticks`` — every print of
a LEAN tick file, with exchange code, sale condition (hex text) and LEAN's suspicious flag.

``instruments`` (the store's own table, :func:`desk.store.schema.upsert_instruments`'s
layout) gets the underlyings and every option contract.

Also the column orders the importer writes in and :func:`day_window`, the UTC bounds of
an exchange date that the importer and the readers query the tables with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.schema import CreateSchema

from desk.domain.calendar import exchange_midnight
from desk.store.schema import NanFloat, StoreSchema, UtcTime, check_identifier

__all__ = [
    "BARS_TABLE",
    "BAR_COLUMNS",
    "LeanTables",
    "OI_COLUMNS",
    "OPEN_INTEREST_TABLE",
    "PG_TYPES",
    "TICK_COLUMNS",
    "TRADE_TICKS_TABLE",
    "day_window",
    "ensure_lean_tables",
]

BARS_TABLE = "bars"
OPEN_INTEREST_TABLE = "open_interest"
TRADE_TICKS_TABLE = "trade_ticks"

BAR_COLUMNS = (
    "time",
    "con_id",
    "symbol",
    "sec_type",
    "expiry",
    "strike",
    "right",
    "bar_size",
    "kind",
    "open",
    "high",
    "low",
    "close",
    "volume",
)
OI_COLUMNS = ("time", "con_id", "symbol", "expiry", "strike", "right", "open_interest")
TICK_COLUMNS = ("time", "con_id", "symbol", "price", "size", "exchange", "condition", "suspicious")

#: PostgreSQL types of each table's columns, in the order above (binary COPY).
PG_TYPES = {
    BARS_TABLE: [
        "timestamptz",
        "int8",
        "text",
        "text",
        "text",
        "float8",
        "text",
        "text",
        "text",
        "float8",
        "float8",
        "float8",
        "float8",
        "float8",
    ],
    OPEN_INTEREST_TABLE: ["timestamptz", "int8", "text", "text", "float8", "text", "int8"],
    TRADE_TICKS_TABLE: ["timestamptz", "int8", "text", "float8", "float8", "text", "text", "bool"],
}


@dataclass
class LeanTables:
    """Metadata of the imported-data tables (``bars``, ``open_interest``,
    ``trade_ticks``) plus the store's ``instruments``, in PostgreSQL schema ``schema``."""

    schema: str | None = None
    metadata: MetaData = field(init=False)
    bars: Table = field(init=False)
    open_interest: Table = field(init=False)
    trade_ticks: Table = field(init=False)
    instruments: Table = field(init=False)

    def __post_init__(self) -> None:
        if self.schema is not None:
            check_identifier(self.schema, "schema")
        md = MetaData(schema=self.schema)
        self.bars = Table(
            BARS_TABLE,
            md,
            Column("time", UtcTime(), nullable=False, comment="bar start, UTC"),
            Column("con_id", BigInteger, nullable=False, comment="IB conId (deterministic for replayed options)"),
            Column("symbol", Text, nullable=False, comment="underlying symbol"),
            Column("sec_type", Text, nullable=False, comment="STK or OPT"),
            Column("expiry", Text, nullable=False, server_default="", comment="YYYYMMDD for options"),
            Column("strike", Double, nullable=False, server_default="0", comment="dollars per share"),
            Column("right", Text, nullable=False, server_default="", comment="C or P"),
            Column("bar_size", Text, nullable=False, comment="IB bar size text: 1 secs, 1 min, 1 hour, 1 day"),
            Column("kind", Text, nullable=False, comment="TRADES, BID or ASK"),
            Column("open", NanFloat(), comment="dollars per share; NULL: no quote on that side"),
            Column("high", NanFloat()),
            Column("low", NanFloat()),
            Column("close", NanFloat()),
            Column("volume", NanFloat(), comment="TRADES: traded; BID/ASK: last displayed size"),
            PrimaryKeyConstraint("con_id", "bar_size", "kind", "time", name=f"{BARS_TABLE}_pkey"),
            comment="desk: imported bars (LEAN), one row per bar and side",
            sqlite_with_rowid=False,
        )
        Index(f"{BARS_TABLE}_symbol_time_idx", self.bars.c.symbol, self.bars.c.bar_size, self.bars.c.time)
        self.open_interest = Table(
            OPEN_INTEREST_TABLE,
            md,
            Column("time", UtcTime(), nullable=False),
            Column("con_id", BigInteger, nullable=False),
            Column("symbol", Text, nullable=False),
            Column("expiry", Text, nullable=False),
            Column("strike", Double, nullable=False),
            Column("right", Text, nullable=False),
            Column("open_interest", BigInteger, nullable=False, comment="contracts"),
            PrimaryKeyConstraint("con_id", "time", name=f"{OPEN_INTEREST_TABLE}_pkey"),
            comment="desk: imported option open interest (LEAN)",
        )
        Index(f"{OPEN_INTEREST_TABLE}_symbol_time_idx", self.open_interest.c.symbol, self.open_interest.c.time)
        self.trade_ticks = Table(
            TRADE_TICKS_TABLE,
            md,
            Column("time", UtcTime(), nullable=False, comment="exchange time of the print, UTC"),
            Column("con_id", BigInteger, nullable=False),
            Column("symbol", Text, nullable=False),
            Column("price", Double, nullable=False, comment="dollars per share"),
            Column("size", Double, nullable=False, comment="shares"),
            Column("exchange", Text, nullable=False, server_default=""),
            Column("condition", Text, nullable=False, server_default="", comment="sale condition, hex"),
            Column("suspicious", Boolean, nullable=False, server_default="0"),
            comment="desk: imported trade prints (LEAN tick files)",
        )
        Index(f"{TRADE_TICKS_TABLE}_con_id_time_idx", self.trade_ticks.c.con_id, self.trade_ticks.c.time)
        self.instruments = StoreSchema(schema=self.schema).instruments.to_metadata(md)
        self.metadata = md

    def qualified(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.schema else f'"{name}"'


def ensure_lean_tables(engine: Engine, tables: LeanTables) -> None:
    """Create the schema (PostgreSQL), ``bars``, ``open_interest``, ``trade_ticks`` and
    ``instruments`` if absent (idempotent)."""
    with engine.begin() as conn:
        if tables.schema and engine.dialect.name == "postgresql":
            conn.execute(CreateSchema(tables.schema, if_not_exists=True))
        tables.metadata.create_all(conn, checkfirst=True)


def day_window(day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of exchange date ``day`` (midnight to midnight, America/New_York)
    as UTC datetimes."""
    start = exchange_midnight(day)
    end = exchange_midnight(day + timedelta(days=1))
    return start.astimezone(UTC), end.astimezone(UTC)
