"""Reading imported LEAN data back from the store (the simulator's replay and history do):
:func:`read_bars`, :func:`read_bar_table` (the replay's bulk read), :func:`read_chain`,
:func:`read_open_interest`, :func:`has_day` and :func:`stored_days`.

Every reader takes a database URL or an engine (a URL gets an engine of its own, disposed
after the read) and returns an empty result when nothing was ever imported. Synchronous;
call through :func:`asyncio.to_thread` from an event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, func, select

from desk.domain.calendar import NEW_YORK
from desk.domain.models import Instrument
from desk.store.codec import as_utc, to_epoch_us
from desk.store.lean.identifiers import OPTION_MULTIPLIER, occ_symbol
from desk.store.lean.tables import BARS_TABLE, LeanTables, day_window
from desk.store.schema import make_engine

__all__ = [
    "BAR_TABLE_COLUMNS",
    "StoredBar",
    "has_day",
    "read_bar_table",
    "read_bars",
    "read_chain",
    "read_open_interest",
    "stored_days",
]


class StoredBar(NamedTuple):
    """One stored bar: ``time`` bar start (UTC, aware), prices dollars per share (``nan``
    when that side had no quote), ``volume`` traded (TRADES) or last displayed size
    (BID/ASK), shares or contracts."""

    time: datetime
    con_id: int
    kind: str
    open: float
    high: float
    low: float
    close: float
    volume: float


def _engine_for(url: str | Engine) -> tuple[Engine, bool]:
    if isinstance(url, str):
        return make_engine(url, application_name="desk-reader"), True
    return url, False


def _tables_exist(conn: Any, tables: LeanTables) -> bool:
    from sqlalchemy import inspect

    return inspect(conn).has_table(BARS_TABLE, schema=tables.schema)


def read_bars(
    url: str | Engine,
    *,
    symbol: str | None = None,
    con_ids: Iterable[int] | None = None,
    sec_type: str | None = None,
    bar_size: str = "1 min",
    kinds: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    schema: str | None = None,
) -> list[StoredBar]:
    """Stored bars ordered by time then conId, filtered by underlying ``symbol``, ``con_ids``,
    ``sec_type`` (``STK``/``OPT``), ``bar_size``, ``kinds`` (``TRADES``/``BID``/``ASK``) and
    ``start <= time < end`` (aware datetimes; naive means UTC). An empty list when nothing
    matches or nothing was ever imported."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.bars
    q = select(t.c.time, t.c.con_id, t.c.kind, t.c.open, t.c.high, t.c.low, t.c.close, t.c.volume).where(t.c.bar_size == bar_size)
    if symbol is not None:
        q = q.where(t.c.symbol == symbol.upper())
    if con_ids is not None:
        q = q.where(t.c.con_id.in_(list(con_ids)))
    if sec_type is not None:
        q = q.where(t.c.sec_type == sec_type)
    if kinds is not None:
        q = q.where(t.c.kind.in_(list(kinds)))
    if start is not None:
        q = q.where(t.c.time >= as_utc(start))
    if end is not None:
        q = q.where(t.c.time < as_utc(end))
    q = q.order_by(t.c.time, t.c.con_id, t.c.kind)
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return []
            return [StoredBar(*row) for row in conn.execute(q)]
    finally:
        if own:
            engine.dispose()


def read_chain(
    url: str | Engine, symbol: str, day: date, *, bar_size: str = "1 min", schema: str | None = None
) -> list[Instrument]:
    """The option contracts of ``symbol`` that have bars on ``day`` (exchange date), as
    :class:`Instrument` (conId, expiry, strike, right, multiplier 100, OCC localSymbol),
    sorted by expiry, right, strike."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.bars
    start, end = day_window(day)
    q = (
        select(t.c.con_id, t.c.expiry, t.c.strike, t.c.right)
        .distinct()
        .where(t.c.symbol == symbol.upper(), t.c.sec_type == "OPT", t.c.bar_size == bar_size, t.c.time >= start, t.c.time < end)
    )
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return []
            rows = conn.execute(q).all()
    finally:
        if own:
            engine.dispose()
    out = [
        Instrument(
            symbol.upper(),
            "OPT",
            "SMART",
            "USD",
            int(cid),
            expiry=exp,
            strike=float(k),
            right=r,
            multiplier=OPTION_MULTIPLIER,
            local_symbol=occ_symbol(symbol, exp, r, float(k)),
        )
        for cid, exp, k, r in rows
    ]
    out.sort(key=lambda i: (i.expiry, i.right, i.strike))
    return out


def read_open_interest(url: str | Engine, symbol: str, day: date, *, schema: str | None = None) -> dict[int, int]:
    """Open interest per option conId of ``symbol`` on ``day`` (the day's last value),
    contracts."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.open_interest
    start, end = day_window(day)
    q = (
        select(t.c.con_id, t.c.open_interest)
        .where(t.c.symbol == symbol.upper(), t.c.time >= start, t.c.time < end)
        .order_by(t.c.time)
    )
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return {}
            return {int(c): int(n) for c, n in conn.execute(q)}
    finally:
        if own:
            engine.dispose()


def has_day(
    url: str | Engine, symbol: str, day: date, *, sec_type: str = "STK", bar_size: str = "1 min", schema: str | None = None
) -> bool:
    """True if ``symbol`` has ``bar_size`` bars of ``sec_type`` on exchange date ``day``
    (one indexed lookup)."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.bars
    start, end = day_window(day)
    q = (
        select(t.c.time)
        .where(
            t.c.symbol == symbol.upper(), t.c.bar_size == bar_size, t.c.time >= start, t.c.time < end, t.c.sec_type == sec_type
        )
        .limit(1)
    )
    try:
        with engine.connect() as conn:
            return _tables_exist(conn, tables) and conn.execute(q).first() is not None
    finally:
        if own:
            engine.dispose()


#: Columns of :func:`read_bar_table` rows.
BAR_TABLE_COLUMNS = ("time", "con_id", "sec_type", "expiry", "strike", "right", "kind", "open", "high", "low", "close", "volume")


def read_bar_table(
    url: str | Engine,
    *,
    symbol: str,
    start: datetime,
    end: datetime,
    bar_size: str = "1 min",
    schema: str | None = None,
) -> list[tuple[Any, ...]]:
    """Every ``bar_size`` bar of underlying ``symbol`` (stock and options) with ``start <=
    time < end``, as plain tuples in :data:`BAR_TABLE_COLUMNS` order, sorted by conId,
    kind, time: the bulk read of a replay (no per-value type conversion, several times
    faster than :func:`read_bars`). ``time`` is UTC epoch **seconds** (float); NULL
    prices come back as ``None``."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    rel = tables.qualified(BARS_TABLE)
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return []
            if conn.dialect.name == "sqlite":
                time_expr = "time / 1000000.0"
                lo, hi = to_epoch_us(as_utc(start)), to_epoch_us(as_utc(end))
            else:
                time_expr = "date_part('epoch', time)"
                lo, hi = as_utc(start), as_utc(end)
            sql = (
                f'SELECT {time_expr}, con_id, sec_type, expiry, strike, "right", kind, open, high, low, close, '
                f"volume FROM {rel} WHERE symbol = :symbol AND bar_size = :bar_size AND time >= :lo "
                "AND time < :hi ORDER BY con_id, kind, time"
            )
            from sqlalchemy import text as _text

            result = conn.execute(_text(sql), {"symbol": symbol.upper(), "bar_size": bar_size, "lo": lo, "hi": hi})
            return [tuple(r) for r in result]
    finally:
        if own:
            engine.dispose()


def stored_days(
    url: str | Engine, symbol: str, *, sec_type: str = "STK", bar_size: str = "1 min", schema: str | None = None
) -> list[date]:
    """Exchange dates (America/New_York) on which ``symbol`` has ``bar_size`` bars of
    ``sec_type`` in the store, ascending."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.bars
    q = select(func.min(t.c.time), func.max(t.c.time)).where(
        t.c.symbol == symbol.upper(), t.c.sec_type == sec_type, t.c.bar_size == bar_size
    )
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return []
            lo, hi = conn.execute(q).one()
            if lo is None:
                return []
            days = []
            d = as_utc(lo).astimezone(NEW_YORK).date()
            last = as_utc(hi).astimezone(NEW_YORK).date()
            while d <= last:
                s, e = day_window(d)
                hit = conn.execute(
                    select(t.c.time)
                    .where(
                        t.c.symbol == symbol.upper(),
                        t.c.sec_type == sec_type,
                        t.c.bar_size == bar_size,
                        t.c.time >= s,
                        t.c.time < e,
                    )
                    .limit(1)
                ).first()
                if hit is not None:
                    days.append(d)
                d += timedelta(days=1)
            return days
    finally:
        if own:
            engine.dispose()
