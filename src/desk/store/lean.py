"""LEAN-format market data: import into the tick store, and read it back for replay.

LEAN (QuantConnect's engine) keeps market data as zipped CSV files without headers in a
fixed folder layout (the sample shipped in ``desk/data/lean``, see its ``NOTICE.md``, is
one). :func:`import_lean` loads such a folder, or a single zip, into the tick
store; :func:`read_bars`, :func:`read_chain` and :func:`stored_days` read it back (the
simulator's replay and history do).

Supported layout (any LEAN ``Data/`` folder; ``{sym}`` lower case, ``{date}`` YYYYMMDD):

====================================================================  ===================
file                                                                  goes to
====================================================================  ===================
``equity/usa/{minute,second}/{sym}/{date}_{quote,trade}.zip``          ``bars`` (1 min / 1 secs)
``equity/usa/tick/{sym}/{date}_trade.zip``                             ``trade_ticks``
``equity/usa/{daily,hour}/{sym}.zip``                                  ``bars`` (1 day / 1 hour)
``option/usa/minute/{sym}/{date}_{quote,trade}_american.zip``          ``bars`` (per contract)
``option/usa/minute/{sym}/{date}_openinterest_american.zip``           ``open_interest``
====================================================================  ===================

Anything else (tick quotes, universes CSVs, other asset classes) is listed as skipped.

Units and times, as LEAN stores them and as desk stores them:

* prices in LEAN equity and option files are integers of 1/10,000 dollar (deci-cents):
  stored divided by 10,000, i.e. **dollars per share** (option premiums per share too:
  multiply by the multiplier, 100, for dollars per contract);
* minute / second / tick times are milliseconds since midnight **America/New_York** of
  the file's date (wall clock); daily and hour files carry ``YYYYMMDD HH:MM`` in the same
  zone. Everything is stored as a UTC instant (DST handled with :mod:`zoneinfo`). A bar's
  ``time`` is the **start** of the bar, as in LEAN and in IB's historical bars;
* sizes and volumes in shares (stocks) or contracts (options).

Tables (SQLAlchemy Core, same conventions as :mod:`desk.store.schema`: ``UtcTime`` for
times, SQL NULL for absent prices; everything in the optional PostgreSQL ``schema``):

``bars`` — one row per bar and side. ``kind`` is ``TRADES`` (open/high/low/close of trade
prices, ``volume`` traded), ``BID`` or ``ASK`` (open/high/low/close of that side's quote,
``volume`` = the last displayed size of that side). A quote bar with no quote on one
side (LEAN's empty group) is stored with NULL prices and size 0: IB's "no bid".
Primary key ``(con_id, bar_size, kind, time)``.

``open_interest`` — contracts open, per option and time. ``trade_ticks`` — every print of
a LEAN tick file, with exchange code, sale condition (hex text) and LEAN's suspicious flag.

``instruments`` (the store's own table, :func:`desk.store.schema.upsert_instruments`'s
layout) gets the underlyings and every option contract. Options get a deterministic
conId from their OCC symbol (:func:`option_con_id`); stocks take the conId given in
``stocks`` (desk passes the simulator's universe, so GOOG keeps IB's 208813720) or a
deterministic one (:func:`stock_con_id`).

Atomicity: every line of every selected file is validated (column count, numbers, times
inside the day and strictly increasing, low <= open/close <= high); the first bad line
raises :class:`LeanFormatError` naming ``file.zip:member.csv line N``. All writes of one
import happen in **one transaction**, so a failed import leaves the store exactly as it
was. Re-importing the same files replaces their rows (idempotent).

Synchronous (SQLAlchemy Core; psycopg binary COPY on PostgreSQL, ``executemany`` on
SQLite); call through :func:`asyncio.to_thread` from an event loop.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time as _time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

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
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateSchema

from desk.domain.calendar import NEW_YORK, exchange_midnight
from desk.domain.models import Instrument
from desk.store.codec import UNIX_EPOCH, as_utc, to_epoch_us
from desk.store.errors import StoreError
from desk.store.schema import NanFloat, StoreSchema, UtcTime, check_identifier, make_engine
from desk.store.urls import parse_database_url

__all__ = [
    "BARS_TABLE",
    "ImportProgress",
    "ImportResult",
    "LeanFile",
    "LeanFormatError",
    "LeanScan",
    "LeanTables",
    "OPEN_INTEREST_TABLE",
    "PRICE_SCALE",
    "StoredBar",
    "TRADE_TICKS_TABLE",
    "default_lean_dir",
    "ensure_lean_tables",
    "import_lean",
    "occ_symbol",
    "option_con_id",
    "parse_option_member",
    "read_bars",
    "read_chain",
    "read_open_interest",
    "scan_lean",
    "stock_con_id",
    "has_day",
    "read_bar_table",
    "stored_days",
]

#: LEAN equity/option prices are integers of 1/PRICE_SCALE dollar (deci-cents).
PRICE_SCALE = 10_000
#: US equity option multiplier (shares per contract).
OPTION_MULTIPLIER = 100

BARS_TABLE = "bars"
OPEN_INTEREST_TABLE = "open_interest"
TRADE_TICKS_TABLE = "trade_ticks"

#: LEAN resolution folder -> IB bar size text stored in ``bars.bar_size``.
BAR_SIZE_OF_RESOLUTION = {"second": "1 secs", "minute": "1 min", "hour": "1 hour", "daily": "1 day"}

_DAY_MS = 86_400_000
_OPTION_MEMBER_RE = re.compile(
    r"^(?P<date>\d{8})_(?P<sym>[a-z0-9.]+)_(?P<res>minute|second|hour|daily)_"
    r"(?P<type>quote|trade|openinterest)_(?P<style>american|european)_"
    r"(?P<right>call|put)_(?P<strike>\d+)_(?P<expiry>\d{8})\.csv$",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------
# errors, identifiers
# --------------------------------------------------------------------------------------


class LeanFormatError(StoreError):
    """A LEAN file does not have the expected format. ``str()`` names the place:
    ``option/usa/minute/goog/20151224_quote_american.zip:<member>.csv line 12: expected
    11 columns, got 3``. ``where`` is ``file.zip:member.csv`` and ``line`` the 1-based line
    number (0 when the problem is the file itself, not a line)."""

    def __init__(self, where: str, line: int, problem: str) -> None:
        self.where = where
        self.line = line
        self.problem = problem
        super().__init__(f"{where} line {line}: {problem}" if line else f"{where}: {problem}")


def occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """The OCC option symbol IB reports as an option's ``localSymbol``:
    ``GOOG  160115C00750000`` (root padded to 6, expiry YYMMDD, C/P, strike x 1000 in 8
    digits). ``expiry`` is ``YYYYMMDD``, ``right`` ``C`` or ``P``, ``strike`` dollars."""
    return f"{symbol.upper():<6}{expiry[2:]}{right.upper()}{round(strike * 1000):08d}"


def _hash_con_id(text: str, base: int, span: int) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return base + int.from_bytes(digest, "big") % span


def option_con_id(symbol: str, expiry: str, right: str, strike: float) -> int:
    """Deterministic conId of a replayed option: 1,000,000,000 + a 64-bit BLAKE2b hash of
    its OCC symbol modulo 10^9 (always a positive 32-bit integer, as IB's are, and the same
    on every machine). Real IB conIds of options differ; desk only needs them stable."""
    return _hash_con_id("OPT " + occ_symbol(symbol, expiry, right, strike), 1_000_000_000, 1_000_000_000)


def stock_con_id(symbol: str) -> int:
    """Deterministic conId of an imported stock that the caller gave no conId for:
    100,000,000 + a BLAKE2b hash of the symbol modulo 8 x 10^8 (below the options' range)."""
    return _hash_con_id("STK " + symbol.upper(), 100_000_000, 800_000_000)


class OptionKey(NamedTuple):
    """An option contract named by a LEAN member file: ``right`` ``C``/``P``, ``strike``
    dollars per share, ``expiry`` ``YYYYMMDD``."""

    symbol: str
    right: str
    strike: float
    expiry: str


def parse_option_member(name: str) -> tuple[str, str, OptionKey]:
    """Parse a LEAN option member name into ``(date YYYYMMDD, type, OptionKey)``, e.g.
    ``20151224_goog_minute_quote_american_call_7500000_20160115.csv`` ->
    ``("20151224", "quote", OptionKey("GOOG", "C", 750.0, "20160115"))``.
    ``ValueError`` if the name does not follow LEAN's pattern."""
    m = _OPTION_MEMBER_RE.match(name.rsplit("/", 1)[-1])
    if not m:
        raise ValueError(f"not a LEAN option file name: {name!r}")
    strike = int(m["strike"]) / PRICE_SCALE
    key = OptionKey(m["sym"].upper(), "C" if m["right"].lower() == "call" else "P", strike, m["expiry"])
    return m["date"], m["type"].lower(), key


#: The sample data shipped in the package (GOOG 2015-12-24, SPY 2013-10-07; see its NOTICE.md).
SAMPLE_LEAN_DIR = Path(__file__).resolve().parents[1] / "data" / "lean"


def default_lean_dir() -> Path | None:
    """Where LEAN data is looked for when none is given: ``$DESK_LEAN_DIR`` (``None`` if
    it names a folder that does not exist), else the sample data shipped in the package
    (:data:`SAMPLE_LEAN_DIR`: the GOOG 2015-12-24 day and the SPY 2013-10-07 ticks)."""
    env = os.environ.get("DESK_LEAN_DIR")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    return SAMPLE_LEAN_DIR if SAMPLE_LEAN_DIR.is_dir() else None


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------

BAR_COLUMNS = ("time", "con_id", "symbol", "sec_type", "expiry", "strike", "right", "bar_size", "kind",
               "open", "high", "low", "close", "volume")
OI_COLUMNS = ("time", "con_id", "symbol", "expiry", "strike", "right", "open_interest")
TICK_COLUMNS = ("time", "con_id", "symbol", "price", "size", "exchange", "condition", "suspicious")

_PG_TYPES = {
    BARS_TABLE: ["timestamptz", "int8", "text", "text", "text", "float8", "text", "text", "text",
                 "float8", "float8", "float8", "float8", "float8"],
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
            BARS_TABLE, md,
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
            OPEN_INTEREST_TABLE, md,
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
            TRADE_TICKS_TABLE, md,
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


# --------------------------------------------------------------------------------------
# scanning
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeanFile:
    """One importable LEAN zip.

    ``kind``: ``quote`` / ``trade`` (bars), ``openinterest``, ``tick_trade``; ``sec_type``
    ``STK`` or ``OPT``; ``resolution`` LEAN's folder (``minute`` ...); ``day`` the file's
    date (``None`` for daily/hour files, which hold many days). ``display`` is the path
    shown in messages (relative to the import root)."""

    path: Path
    display: str
    sec_type: str
    resolution: str
    kind: str
    symbol: str
    day: date | None

    @property
    def bar_size(self) -> str:
        return BAR_SIZE_OF_RESOLUTION.get(self.resolution, "")


@dataclass
class LeanScan:
    """What :func:`scan_lean` found: ``files`` to import (in a stable order) and
    ``skipped`` paths that are not in a supported layout."""

    root: Path
    files: list[LeanFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _parse_day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _classify(path: Path, display: str) -> LeanFile | None:
    parts = [p.lower() for p in path.parts]
    name = parts[-1]
    if not name.endswith(".zip"):
        return None
    stem = name[:-4]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("equity", "option"):
            break
    else:
        return None
    rest = parts[i + 1:]
    if len(rest) < 3:
        return None
    asset, resolution = parts[i], rest[1]
    sec_type = "STK" if asset == "equity" else "OPT"
    if resolution in ("daily", "hour") and len(rest) == 3 and asset == "equity":
        return LeanFile(path, display, sec_type, resolution, "trade", stem.upper(), None)
    if len(rest) != 4:
        return None
    symbol = rest[2].upper()
    pieces = stem.split("_")
    day = _parse_day(pieces[0])
    if day is None:
        return None
    if asset == "equity":
        if resolution in ("minute", "second") and len(pieces) == 2 and pieces[1] in ("quote", "trade"):
            return LeanFile(path, display, sec_type, resolution, pieces[1], symbol, day)
        if resolution == "tick" and len(pieces) == 2 and pieces[1] == "trade":
            return LeanFile(path, display, sec_type, resolution, "tick_trade", symbol, day)
        return None
    if resolution in ("minute", "second", "hour") and len(pieces) == 3 and pieces[2] == "american" \
            and pieces[1] in ("quote", "trade", "openinterest"):
        return LeanFile(path, display, sec_type, resolution, pieces[1], symbol, day)
    return None


def scan_lean(
    path: str | Path,
    *,
    symbols: Iterable[str] | None = None,
    dates: Iterable[date] | None = None,
) -> LeanScan:
    """Find the importable files under ``path`` (a LEAN data folder or one zip).

    ``symbols`` keeps only those underlyings (case-insensitive); ``dates`` keeps only files
    of those days (daily/hour files, which span many days, are always kept). Raises
    :class:`StoreError` if ``path`` does not exist.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise StoreError(f"LEAN data path {root} does not exist")
    want_syms = {s.strip().upper() for s in symbols} if symbols else None
    want_days = set(dates) if dates else None
    scan = LeanScan(root)
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in candidates:
        display = p.name if root.is_file() else p.relative_to(root).as_posix()
        if p.name.lower() == "readme.md":
            continue
        lf = _classify(p.resolve(), display)
        if lf is None:
            scan.skipped.append(display)
            continue
        if want_syms is not None and lf.symbol not in want_syms:
            continue
        if want_days is not None and lf.day is not None and lf.day not in want_days:
            continue
        scan.files.append(lf)
    # underlyings before options, so the chain's underlying exists first; then by name
    scan.files.sort(key=lambda f: (f.sec_type != "STK", f.display))
    return scan


# --------------------------------------------------------------------------------------
# line parsing
# --------------------------------------------------------------------------------------


class _Day:
    """Converts LEAN times of one file date (ms since midnight, exchange wall clock) to
    UTC epoch microseconds. Fast path: one UTC offset for the whole day."""

    __slots__ = ("day", "base_us", "uniform")

    def __init__(self, day: date) -> None:
        self.day = day
        midnight = exchange_midnight(day)
        end = midnight + timedelta(hours=23, minutes=59)
        self.uniform = midnight.utcoffset() == end.utcoffset()
        self.base_us = to_epoch_us(midnight)

    def us(self, ms: int) -> int:
        if self.uniform:
            return self.base_us + ms * 1000
        wall = datetime(self.day.year, self.day.month, self.day.day) + timedelta(milliseconds=ms)
        return to_epoch_us(wall.replace(tzinfo=NEW_YORK))


class _Lines:
    """Validation helpers bound to one member: every error names file, member and line."""

    __slots__ = ("where", "n")

    def __init__(self, where: str) -> None:
        self.where = where
        self.n = 0

    def fail(self, problem: str) -> LeanFormatError:
        return LeanFormatError(self.where, self.n, problem)

    def columns(self, line: str, want: int) -> list[str]:
        f = line.split(",")
        if len(f) != want:
            raise self.fail(f"expected {want} columns, got {len(f)}")
        return f

    def ms(self, text: str, prev: int, strict: bool = True) -> int:
        try:
            v = int(text)
        except ValueError:
            raise self.fail(f"column 1 (time): expected milliseconds since midnight, got {text!r}") from None
        if not 0 <= v < _DAY_MS:
            raise self.fail(f"column 1 (time): {v} ms is outside the day (0..86399999)")
        if v < prev or (strict and v == prev):
            raise self.fail(f"column 1 (time): {v} ms is not after the previous line's {prev} ms")
        return v

    def price(self, text: str, col: int, name: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise self.fail(f"column {col} ({name}): expected a price in 1/10000 dollar, got {text!r}") from None
        if not math.isfinite(v) or v < 0:
            raise self.fail(f"column {col} ({name}): price {text!r} is not a finite non-negative number")
        return v / PRICE_SCALE

    def count(self, text: str, col: int, name: str) -> int:
        try:
            v = int(text)
        except ValueError:
            try:
                fv = float(text)
            except ValueError:
                fv = math.nan
            if not (math.isfinite(fv) and fv == int(fv)):
                raise self.fail(f"column {col} ({name}): expected a whole number, got {text!r}") from None
            v = int(fv)
        if v < 0:
            raise self.fail(f"column {col} ({name}): {v} is negative")
        return v

    def ohlc(self, f: list[str], start: int, names: str = "") -> tuple[float, float, float, float]:
        labels = ("open", "high", "low", "close")
        o, h, lo, c = (self.price(f[start + k], start + k + 1, f"{names}{labels[k]}") for k in range(4))
        if not (lo <= o <= h and lo <= c <= h):
            raise self.fail(f"columns {start + 1}-{start + 4}: {names}low {lo:g} <= open {o:g}, "
                            f"close {c:g} <= high {h:g} does not hold")
        return o, h, lo, c


def _quote_side(v: _Lines, f: list[str], start: int, side: str) -> tuple[float, float, float, float] | None:
    group = f[start : start + 4]
    if all(x == "" for x in group):
        return None
    if any(x == "" for x in group):
        raise v.fail(f"columns {start + 1}-{start + 4}: {side} group is partly empty {','.join(group)!r}")
    return v.ohlc(f, start, f"{side}_")


_NAN4 = (math.nan, math.nan, math.nan, math.nan)


def _fast_side(f: list[str], k: int) -> tuple[float, float, float, float]:
    """One quote side or trade OHLC of integer deci-cents, or ``ValueError`` for anything
    unusual (the caller then re-parses the line slowly to name the problem)."""
    if f[k] == "":
        if f[k + 1] or f[k + 2] or f[k + 3]:
            raise ValueError
        return _NAN4
    o, h, lo, c = int(f[k]), int(f[k + 1]), int(f[k + 2]), int(f[k + 3])
    if not (0 <= lo <= o <= h and lo <= c <= h):
        raise ValueError
    return o / PRICE_SCALE, h / PRICE_SCALE, lo / PRICE_SCALE, c / PRICE_SCALE


def _fast_ms(text: str, prev: int) -> int:
    ms = int(text)
    if not prev < ms < _DAY_MS:
        raise ValueError
    return ms


def _parse_quote_bars(lines: Iterable[str], v: _Lines, day: _Day, head: tuple, bar_size: str) -> list[tuple]:
    # ms, bid o/h/l/c, last bid size, ask o/h/l/c, last ask size
    rows: list[tuple] = []
    append = rows.append
    prev = -1
    us = day.us
    for line in lines:
        v.n += 1
        f = line.split(",")
        try:  # fast path: well-formed integer line
            if len(f) != 11:
                raise ValueError
            ms = _fast_ms(f[0], prev)
            bid = _fast_side(f, 1)
            ask = _fast_side(f, 6)
            bid_size = int(f[5] or 0)
            ask_size = int(f[10] or 0)
            if bid_size < 0 or ask_size < 0:
                raise ValueError
        except ValueError:  # slow path: validate column by column, raise with details
            if not line:
                raise v.fail("empty line") from None
            f = v.columns(line, 11)
            ms = v.ms(f[0], prev)
            bid = _quote_side(v, f, 1, "bid") or _NAN4
            bid_size = v.count(f[5], 6, "bid_size") if f[5] != "" else 0
            ask = _quote_side(v, f, 6, "ask") or _NAN4
            ask_size = v.count(f[10], 11, "ask_size") if f[10] != "" else 0
        prev = ms
        t = us(ms)
        append((t, *head, bar_size, "BID", *bid, float(bid_size)))
        append((t, *head, bar_size, "ASK", *ask, float(ask_size)))
    return rows


def _parse_trade_bars(lines: Iterable[str], v: _Lines, day: _Day, head: tuple, bar_size: str) -> list[tuple]:
    # ms, open, high, low, close, volume
    rows: list[tuple] = []
    prev = -1
    us = day.us
    for line in lines:
        v.n += 1
        f = line.split(",")
        try:
            if len(f) != 6 or f[1] == "":
                raise ValueError
            ms = _fast_ms(f[0], prev)
            ohlc = _fast_side(f, 1)
            volume = int(f[5])
            if volume < 0:
                raise ValueError
        except ValueError:
            if not line:
                raise v.fail("empty line") from None
            f = v.columns(line, 6)
            ms = v.ms(f[0], prev)
            ohlc = v.ohlc(f, 1)
            volume = v.count(f[5], 6, "volume")
        prev = ms
        rows.append((us(ms), *head, bar_size, "TRADES", *ohlc, float(volume)))
    return rows


def _parse_dated_bars(lines: Iterable[str], v: _Lines, head: tuple, bar_size: str) -> list[tuple]:
    # "YYYYMMDD HH:MM", open, high, low, close, volume (daily / hour files)
    rows: list[tuple] = []
    prev = -1
    for line in lines:
        v.n += 1
        if not line:
            raise v.fail("empty line")
        f = v.columns(line, 6)
        try:
            wall = datetime.strptime(f[0], "%Y%m%d %H:%M")
        except ValueError:
            raise v.fail(f"column 1 (time): expected 'YYYYMMDD HH:MM', got {f[0]!r}") from None
        t = to_epoch_us(wall.replace(tzinfo=NEW_YORK))
        if t <= prev:
            raise v.fail(f"column 1 (time): {f[0]} is not after the previous line")
        prev = t
        o, h, lo, c = v.ohlc(f, 1)
        rows.append((t, *head, bar_size, "TRADES", o, h, lo, c, float(v.count(f[5], 6, "volume"))))
    return rows


def _parse_open_interest(lines: Iterable[str], v: _Lines, day: _Day, head: tuple) -> list[tuple]:
    # ms, open_interest
    rows: list[tuple] = []
    prev = -1
    for line in lines:
        v.n += 1
        if not line:
            raise v.fail("empty line")
        f = v.columns(line, 2)
        prev = ms = v.ms(f[0], prev)
        rows.append((day.us(ms), *head, v.count(f[1], 2, "open_interest")))
    return rows


def _parse_tick_trades(lines: Iterable[str], v: _Lines, day: _Day, head: tuple) -> list[tuple]:
    # ms, price, quantity, exchange, sale condition (hex), suspicious (0/1)
    rows: list[tuple] = []
    prev = -1
    us = day.us
    for line in lines:
        v.n += 1
        if not line:
            raise v.fail("empty line")
        f = v.columns(line, 6)
        prev = ms = v.ms(f[0], prev, strict=False)
        price = v.price(f[1], 2, "price")
        size = v.count(f[2], 3, "quantity")
        cond = f[4].strip()
        if cond and not all(ch in "0123456789abcdefABCDEF" for ch in cond):
            raise v.fail(f"column 5 (sale_condition): expected hex digits, got {cond!r}")
        if f[5] not in ("0", "1"):
            raise v.fail(f"column 6 (suspicious): expected 0 or 1, got {f[5]!r}")
        rows.append((us(ms), *head, price, float(size), f[3].strip(), cond, f[5] == "1"))
    return rows


def _lines_of(data: bytes, where: str) -> list[str]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LeanFormatError(where, text_line(data, exc.start), "not ASCII text") from None
    lines = text.splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def text_line(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------


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
        return (f"{self.bars:,} bars, {self.open_interest:,} open-interest rows, {self.trade_ticks:,} trade ticks, "
                f"{self.instruments:,} instruments from {self.files:,} files ({self.members:,} CSVs) "
                f"in {self.seconds:.1f} s")


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
                cp.set_types(_PG_TYPES[table])
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
                stock = stocks.get(lf.symbol) or Instrument(lf.symbol, con_id=stock_con_id(lf.symbol),
                                                            local_symbol=lf.symbol)
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


def _day_window(day: date) -> tuple[datetime, datetime]:
    start = exchange_midnight(day)
    end = exchange_midnight(day + timedelta(days=1))
    return start.astimezone(UTC), end.astimezone(UTC)


def _replace_rows(conn: Any, tables: LeanTables, lf: LeanFile, stock: Instrument) -> None:
    """Delete the rows a re-import of ``lf`` would write again (same symbol, table,
    bar size / kind and day), so importing twice gives the same store."""
    if lf.kind == "tick_trade":
        t = tables.trade_ticks
        start, end = _day_window(lf.day)  # type: ignore[arg-type]
        conn.execute(delete(t).where(and_(t.c.con_id == stock.con_id, t.c.time >= start, t.c.time < end)))
        return
    if lf.kind == "openinterest":
        t = tables.open_interest
        start, end = _day_window(lf.day)  # type: ignore[arg-type]
        conn.execute(delete(t).where(and_(t.c.symbol == lf.symbol, t.c.time >= start, t.c.time < end)))
        return
    t = tables.bars
    kinds = ["BID", "ASK"] if lf.kind == "quote" else ["TRADES"]
    cond = [t.c.symbol == lf.symbol, t.c.sec_type == lf.sec_type, t.c.bar_size == lf.bar_size, t.c.kind.in_(kinds)]
    if lf.day is not None:
        start, end = _day_window(lf.day)
        cond += [t.c.time >= start, t.c.time < end]
    conn.execute(delete(t).where(and_(*cond)))


def _import_member(writer: _Writer, lf: LeanFile, name: str, where: str, data: bytes, stock: Instrument,
                   instruments: dict[int, Instrument], result: ImportResult) -> int:
    lines = _lines_of(data, where)
    v = _Lines(where)
    if lf.sec_type == "OPT":
        try:
            file_day, file_type, key = parse_option_member(name)
        except ValueError:
            raise LeanFormatError(where, 0, "member name does not follow LEAN's "
                                  "{date}_{symbol}_{resolution}_{type}_american_{call|put}_{strike}_{expiry}.csv") from None
        if key.symbol != lf.symbol or file_type != lf.kind or file_day != lf.day.strftime("%Y%m%d"):  # type: ignore[union-attr]
            raise LeanFormatError(where, 0, f"member is for {key.symbol} {file_type} {file_day}, but the zip holds "
                                  f"{lf.symbol} {lf.kind} {lf.day:%Y%m%d}")
        con_id = option_con_id(key.symbol, key.expiry, key.right, key.strike)
        ins = Instrument(key.symbol, "OPT", "SMART", "USD", con_id, expiry=key.expiry, strike=key.strike,
                         right=key.right, multiplier=OPTION_MULTIPLIER,
                         local_symbol=occ_symbol(key.symbol, key.expiry, key.right, key.strike))
        _check_con_ids(instruments, ins)
        head: tuple = (con_id, key.symbol, "OPT", key.expiry, key.strike, key.right)
    else:
        head = (stock.con_id, lf.symbol, "STK", "", 0.0, "")
    if lf.kind == "openinterest":
        rows = _parse_open_interest(lines, v, _Day(lf.day), head[:2] + head[3:])  # type: ignore[arg-type]
        writer.write(OPEN_INTEREST_TABLE, OI_COLUMNS, rows)
        result.open_interest += len(rows)
        return len(rows)
    if lf.kind == "tick_trade":
        rows = _parse_tick_trades(lines, v, _Day(lf.day), head[:2])  # type: ignore[arg-type]
        writer.write(TRADE_TICKS_TABLE, TICK_COLUMNS, rows)
        result.trade_ticks += len(rows)
        return len(rows)
    if lf.day is None:
        rows = _parse_dated_bars(lines, v, head, lf.bar_size)
    elif lf.kind == "quote":
        rows = _parse_quote_bars(lines, v, _Day(lf.day), head, lf.bar_size)
    else:
        rows = _parse_trade_bars(lines, v, _Day(lf.day), head, lf.bar_size)
    writer.write(BARS_TABLE, BAR_COLUMNS, rows)
    result.bars += len(rows)
    return len(rows)


def _upsert_instruments(conn: Any, tables: LeanTables, instruments: Iterable[Instrument]) -> int:
    now = datetime.now(UTC)
    rows = [
        {
            "con_id": i.con_id, "symbol": i.symbol, "sec_type": i.sec_type, "exchange": i.exchange,
            "currency": i.currency, "primary_exchange": i.primary_exchange, "local_symbol": i.local_symbol,
            "expiry": i.expiry, "strike": float(i.strike), "right": i.right, "multiplier": int(i.multiplier),
            "first_seen": now, "last_seen": now,
        }
        for i in instruments
    ]
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(tables.instruments)
    updated = {c: insert.excluded[c] for c in rows[0] if c not in ("con_id", "first_seen")}
    stmt = insert.on_conflict_do_update(index_elements=["con_id"], set_=updated)
    for k in range(0, len(rows), 500):
        conn.execute(stmt, rows[k : k + 500])
    return len(rows)


# --------------------------------------------------------------------------------------
# reading back
# --------------------------------------------------------------------------------------


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
    q = select(t.c.time, t.c.con_id, t.c.kind, t.c.open, t.c.high, t.c.low, t.c.close, t.c.volume).where(
        t.c.bar_size == bar_size)
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
    start, end = _day_window(day)
    q = (select(t.c.con_id, t.c.expiry, t.c.strike, t.c.right).distinct()
         .where(t.c.symbol == symbol.upper(), t.c.sec_type == "OPT", t.c.bar_size == bar_size,
                t.c.time >= start, t.c.time < end))
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return []
            rows = conn.execute(q).all()
    finally:
        if own:
            engine.dispose()
    out = [Instrument(symbol.upper(), "OPT", "SMART", "USD", int(cid), expiry=exp, strike=float(k), right=r,
                      multiplier=OPTION_MULTIPLIER, local_symbol=occ_symbol(symbol, exp, r, float(k)))
           for cid, exp, k, r in rows]
    out.sort(key=lambda i: (i.expiry, i.right, i.strike))
    return out


def read_open_interest(
    url: str | Engine, symbol: str, day: date, *, schema: str | None = None
) -> dict[int, int]:
    """Open interest per option conId of ``symbol`` on ``day`` (the day's last value),
    contracts."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.open_interest
    start, end = _day_window(day)
    q = (select(t.c.con_id, t.c.open_interest).where(t.c.symbol == symbol.upper(), t.c.time >= start,
                                                      t.c.time < end).order_by(t.c.time))
    try:
        with engine.connect() as conn:
            if not _tables_exist(conn, tables):
                return {}
            return {int(c): int(n) for c, n in conn.execute(q)}
    finally:
        if own:
            engine.dispose()


def has_day(url: str | Engine, symbol: str, day: date, *, sec_type: str = "STK", bar_size: str = "1 min",
            schema: str | None = None) -> bool:
    """True if ``symbol`` has ``bar_size`` bars of ``sec_type`` on exchange date ``day``
    (one indexed lookup)."""
    engine, own = _engine_for(url)
    tables = LeanTables(schema)
    t = tables.bars
    start, end = _day_window(day)
    q = select(t.c.time).where(t.c.symbol == symbol.upper(), t.c.bar_size == bar_size, t.c.time >= start,
                               t.c.time < end, t.c.sec_type == sec_type).limit(1)
    try:
        with engine.connect() as conn:
            return _tables_exist(conn, tables) and conn.execute(q).first() is not None
    finally:
        if own:
            engine.dispose()


#: Columns of :func:`read_bar_table` rows.
BAR_TABLE_COLUMNS = ("time", "con_id", "sec_type", "expiry", "strike", "right", "kind",
                     "open", "high", "low", "close", "volume")


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
            sql = (f'SELECT {time_expr}, con_id, sec_type, expiry, strike, "right", kind, open, high, low, close, '
                   f'volume FROM {rel} WHERE symbol = :symbol AND bar_size = :bar_size AND time >= :lo '
                   "AND time < :hi ORDER BY con_id, kind, time")
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
        t.c.symbol == symbol.upper(), t.c.sec_type == sec_type, t.c.bar_size == bar_size)
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
                s, e = _day_window(d)
                hit = conn.execute(select(t.c.time).where(
                    t.c.symbol == symbol.upper(), t.c.sec_type == sec_type, t.c.bar_size == bar_size,
                    t.c.time >= s, t.c.time < e).limit(1)).first()
                if hit is not None:
                    days.append(d)
                d += timedelta(days=1)
            return days
    finally:
        if own:
            engine.dispose()


