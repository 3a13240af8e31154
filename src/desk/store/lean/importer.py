"""Import of LEAN files into the store (``desk import lean PATH``): :func:`import_lean`.

The files :func:`~desk.store.lean.layout.scan_lean` selects are parsed
(:mod:`desk.store.lean.parse`) and written to the tables of
:mod:`desk.store.lean.tables`; the underlyings and every option contract are upserted into
``instruments`` (options with the deterministic conIds of
:mod:`desk.store.lean.identifiers`, stocks with the conId given in ``stocks`` or a
deterministic one).

Atomicity: every line of every selected file is validated before the import commits; the
first bad line raises :class:`~desk.store.lean.parse.LeanFormatError` naming
``file.zip:member.csv line N``. All writes of one import happen in **one transaction**, so
a failed import leaves the store exactly as it was. Re-importing the same files replaces
their rows (idempotent).

Synchronous (SQLAlchemy Core; psycopg binary COPY on PostgreSQL, ``executemany`` on
SQLite); call through :func:`asyncio.to_thread` from an event loop.
"""

from __future__ import annotations

import time as _time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete
from sqlalchemy.dialects import postgresql, sqlite

from desk.domain.models import Instrument
from desk.store.codec import UNIX_EPOCH
from desk.store.errors import StoreError
from desk.store.lean.identifiers import OPTION_MULTIPLIER, occ_symbol, option_con_id, parse_option_member, stock_con_id
from desk.store.lean.layout import LeanFile, scan_lean
from desk.store.lean.parse import (
    DayClock,
    LeanFormatError,
    MemberLines,
    member_lines,
    parse_dated_bars,
    parse_open_interest,
    parse_quote_bars,
    parse_tick_trades,
    parse_trade_bars,
)
from desk.store.lean.tables import (
    BAR_COLUMNS,
    BARS_TABLE,
    OI_COLUMNS,
    OPEN_INTEREST_TABLE,
    PG_TYPES,
    TICK_COLUMNS,
    TRADE_TICKS_TABLE,
    LeanTables,
    day_window,
    ensure_lean_tables,
)
from desk.store.schema import make_engine
from desk.store.urls import parse_database_url

__all__ = ["ImportProgress", "ImportResult", "import_lean"]


@dataclass
class ImportProgress:
    """Progress of an import, passed to the ``progress`` callback after every member file.

    ``bytes_done`` / ``bytes_total`` count uncompressed CSV bytes of the selected files
    (``fraction`` is their ratio); ``rows`` is rows parsed so far; ``phase`` is
    ``"import"`` while reading and writing, ``"commit"`` at the end."""

    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    rows: int = 0
    current: str = ""
    phase: str = "import"

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


@dataclass
class ImportResult:
    """What :func:`import_lean` wrote: row counts per table, instruments upserted,
    files (zips) and members (CSVs) read, files skipped (not a supported layout), days
    covered per symbol, wall-clock seconds."""

    bars: int = 0
    open_interest: int = 0
    trade_ticks: int = 0
    instruments: int = 0
    files: int = 0
    members: int = 0
    skipped: list[str] = field(default_factory=list)
    days: dict[str, list[date]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.bars + self.open_interest + self.trade_ticks

    def summary(self) -> str:
        """One line: ``553,440 bars, 2,058 open-interest rows, 0 trade ticks, 2,193
        instruments from 5 files (4,420 CSVs) in 4.1 s``."""
        return (
            f"{self.bars:,} bars, {self.open_interest:,} open-interest rows, {self.trade_ticks:,} trade ticks, "
            f"{self.instruments:,} instruments from {self.files:,} files ({self.members:,} CSVs) "
            f"in {self.seconds:.1f} s"
        )


class _Writer:
    """Bulk writes inside the import's one transaction: binary COPY on PostgreSQL,
    ``executemany`` on SQLite (times already in epoch microseconds)."""

    def __init__(self, conn: Any, tables: LeanTables) -> None:
        self.conn = conn
        self.tables = tables
        self.dialect = conn.dialect.name
        self.raw = conn.connection.driver_connection
        self._sql: dict[str, str] = {}

    def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.dialect == "sqlite":
            sql = self._sql.get(table)
            if sql is None:
                cols = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join("?" for _ in columns)
                sql = self._sql[table] = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'
            cur = self.raw.cursor()
            try:
                cur.executemany(sql, rows)
            finally:
                cur.close()
            return
        cols = ", ".join(f'"{c}"' for c in columns)
        with self.raw.cursor() as cur:
            with cur.copy(f"COPY {self.tables.qualified(table)} ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(PG_TYPES[table])
                for r in rows:
                    cp.write_row((UNIX_EPOCH + timedelta(microseconds=r[0]), *r[1:]))


def _check_con_ids(instruments: dict[int, Instrument], ins: Instrument) -> None:
    old = instruments.get(ins.con_id)
    if old is not None and old.key != ins.key:
        raise StoreError(f"conId {ins.con_id} would be shared by {old.key} and {ins.key}; rename one")
    instruments[ins.con_id] = ins


def import_lean(
    url: str | Engine,
    path: str | Path,
    *,
    symbols: Iterable[str] | None = None,
    dates: Iterable[date] | None = None,
    schema: str | None = None,
    stocks: Mapping[str, Instrument] | None = None,
    progress: Callable[[ImportProgress], None] | None = None,
) -> ImportResult:
    """Import the LEAN files under ``path`` into the store at ``url`` (a database URL or
    an engine) in one transaction, and return what was written.

    ``symbols`` / ``dates`` filter as in :func:`scan_lean`. ``stocks`` maps an underlying
    symbol to its qualified :class:`Instrument` (conId, primary exchange...): the stock's
    rows and its ``instruments`` row use it; symbols not in it get :func:`stock_con_id`.
    ``progress`` is called after every CSV member with an :class:`ImportProgress`
    (shared object, updated in place). ``schema`` is a PostgreSQL schema (not for SQLite).

    Raises :class:`LeanFormatError` for the first malformed line or file name (nothing is
    written), :class:`StoreError` for a missing path, an empty selection, a bad URL or
    schema, or a conId collision; SQLAlchemy / driver errors for database failures (the
    transaction is rolled back).
    """
    t0 = _time.perf_counter()
    scan = scan_lean(path, symbols=symbols, dates=dates)
    if not scan.files:
        what = []
        if symbols:
            what.append("symbols " + ",".join(sorted({s.upper() for s in symbols})))
        if dates:
            what.append("dates " + ",".join(sorted(d.isoformat() for d in dates)))
        raise StoreError(f"no LEAN files to import under {scan.root}" + (f" for {' and '.join(what)}" if what else ""))
    own_engine = isinstance(url, str)
    if isinstance(url, str):
        target = parse_database_url(url)
        if target.dialect == "sqlite" and schema is not None:
            raise StoreError("a schema can only be given for PostgreSQL, not for SQLite")
        engine = make_engine(target, application_name="desk-import")
    else:
        engine = url
    stocks = {k.upper(): v for k, v in (stocks or {}).items()}
    tables = LeanTables(schema)
    result = ImportResult(skipped=list(scan.skipped))
    prog = ImportProgress(files_total=0)
    zips: list[tuple[LeanFile, zipfile.ZipFile, list[zipfile.ZipInfo]]] = []
    try:
        for lf in scan.files:
            try:
                zf = zipfile.ZipFile(lf.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise LeanFormatError(lf.display, 0, f"cannot open as a zip file: {exc}") from None
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if not infos:
                raise LeanFormatError(lf.display, 0, "the zip file is empty")
            zips.append((lf, zf, infos))
            prog.files_total += len(infos)
            prog.bytes_total += sum(i.file_size for i in infos)
        ensure_lean_tables(engine, tables)
        instruments: dict[int, Instrument] = {}
        days: dict[str, set[date]] = {}
        with engine.begin() as conn:
            writer = _Writer(conn, tables)
            for lf, zf, infos in zips:
                result.files += 1
                stock = stocks.get(lf.symbol) or Instrument(lf.symbol, con_id=stock_con_id(lf.symbol), local_symbol=lf.symbol)
                if lf.day is not None:
                    days.setdefault(lf.symbol, set()).add(lf.day)
                _check_con_ids(instruments, stock)
                _replace_rows(conn, tables, lf, stock)
                for info in infos:
                    where = f"{lf.display}:{info.filename}"
                    prog.current = where
                    try:
                        data = zf.read(info)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise LeanFormatError(where, 0, f"cannot read: {exc}") from None
                    n = _import_member(writer, lf, info.filename, where, data, stock, instruments, result)
                    result.members += 1
                    prog.files_done += 1
                    prog.bytes_done += info.file_size
                    prog.rows += n
                    if progress is not None:
                        progress(prog)
            if instruments:
                result.instruments = _upsert_instruments(conn, tables, instruments.values())
            prog.phase = "commit"
            if progress is not None:
                progress(prog)
        result.days = {k: sorted(v) for k, v in days.items()}
    finally:
        for _lf, zf, _infos in zips:
            zf.close()
        if own_engine:
            engine.dispose()
    result.seconds = _time.perf_counter() - t0
    return result


def _replace_rows(conn: Any, tables: LeanTables, lf: LeanFile, stock: Instrument) -> None:
    """Delete the rows a re-import of ``lf`` would write again (same symbol, table,
    bar size / kind and day), so importing twice gives the same store."""
    if lf.kind == "tick_trade":
        t = tables.trade_ticks
        start, end = day_window(lf.day)  # type: ignore[arg-type]
        conn.execute(delete(t).where(and_(t.c.con_id == stock.con_id, t.c.time >= start, t.c.time < end)))
        return
    if lf.kind == "openinterest":
        t = tables.open_interest
        start, end = day_window(lf.day)  # type: ignore[arg-type]
        conn.execute(delete(t).where(and_(t.c.symbol == lf.symbol, t.c.time >= start, t.c.time < end)))
        return
    t = tables.bars
    kinds = ["BID", "ASK"] if lf.kind == "quote" else ["TRADES"]
    cond = [t.c.symbol == lf.symbol, t.c.sec_type == lf.sec_type, t.c.bar_size == lf.bar_size, t.c.kind.in_(kinds)]
    if lf.day is not None:
        start, end = day_window(lf.day)
        cond += [t.c.time >= start, t.c.time < end]
    conn.execute(delete(t).where(and_(*cond)))


def _import_member(
    writer: _Writer,
    lf: LeanFile,
    name: str,
    where: str,
    data: bytes,
    stock: Instrument,
    instruments: dict[int, Instrument],
    result: ImportResult,
) -> int:
    lines = member_lines(data, where)
    v = MemberLines(where)
    if lf.sec_type == "OPT":
        try:
            file_day, file_type, key = parse_option_member(name)
        except ValueError:
            raise LeanFormatError(
                where,
                0,
                "member name does not follow LEAN's "
                "{date}_{symbol}_{resolution}_{type}_american_{call|put}_{strike}_{expiry}.csv",
            ) from None
        if key.symbol != lf.symbol or file_type != lf.kind or file_day != lf.day.strftime("%Y%m%d"):  # type: ignore[union-attr]
            raise LeanFormatError(
                where,
                0,
                f"member is for {key.symbol} {file_type} {file_day}, but the zip holds {lf.symbol} {lf.kind} {lf.day:%Y%m%d}",
            )
        con_id = option_con_id(key.symbol, key.expiry, key.right, key.strike)
        ins = Instrument(
            key.symbol,
            "OPT",
            "SMART",
            "USD",
            con_id,
            expiry=key.expiry,
            strike=key.strike,
            right=key.right,
            multiplier=OPTION_MULTIPLIER,
            local_symbol=occ_symbol(key.symbol, key.expiry, key.right, key.strike),
        )
        _check_con_ids(instruments, ins)
        head: tuple = (con_id, key.symbol, "OPT", key.expiry, key.strike, key.right)
    else:
        head = (stock.con_id, lf.symbol, "STK", "", 0.0, "")
    if lf.kind == "openinterest":
        rows = parse_open_interest(lines, v, DayClock(lf.day), head[:2] + head[3:])  # type: ignore[arg-type]
        writer.write(OPEN_INTEREST_TABLE, OI_COLUMNS, rows)
        result.open_interest += len(rows)
        return len(rows)
    if lf.kind == "tick_trade":
        rows = parse_tick_trades(lines, v, DayClock(lf.day), head[:2])  # type: ignore[arg-type]
        writer.write(TRADE_TICKS_TABLE, TICK_COLUMNS, rows)
        result.trade_ticks += len(rows)
        return len(rows)
    if lf.day is None:
        rows = parse_dated_bars(lines, v, head, lf.bar_size)
    elif lf.kind == "quote":
        rows = parse_quote_bars(lines, v, DayClock(lf.day), head, lf.bar_size)
    else:
        rows = parse_trade_bars(lines, v, DayClock(lf.day), head, lf.bar_size)
    writer.write(BARS_TABLE, BAR_COLUMNS, rows)
    result.bars += len(rows)
    return len(rows)


def _upsert_instruments(conn: Any, tables: LeanTables, instruments: Iterable[Instrument]) -> int:
    now = datetime.now(UTC)
    rows = [
        {
            "con_id": i.con_id,
            "symbol": i.symbol,
            "sec_type": i.sec_type,
            "exchange": i.exchange,
            "currency": i.currency,
            "primary_exchange": i.primary_exchange,
            "local_symbol": i.local_symbol,
            "expiry": i.expiry,
            "strike": float(i.strike),
            "right": i.right,
            "multiplier": int(i.multiplier),
            "first_seen": now,
            "last_seen": now,
        }
        for i in instruments
    ]
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(tables.instruments)
    updated = {c: insert.excluded[c] for c in rows[0] if c not in ("con_id", "first_seen")}
    stmt = insert.on_conflict_do_update(index_elements=["con_id"], set_=updated)
    for k in range(0, len(rows), 500):
        conn.execute(stmt, rows[k : k + 500])
    return len(rows)
