"""Recorded days for the replay (:mod:`desk.sim.replay`): loading and importing them.

:func:`load_replay` reads one day of the replayed symbols and their option chains from the
tick store into a :class:`ReplayData` (importing it first from a LEAN folder when the store
has none, :func:`run_import`); :class:`Series` holds one contract's minute bars of one kind
and :class:`Cursor` a position in them. Also :class:`ReplayError` and :func:`parse_day`.
Prices dollars per share, sizes shares or contracts, times UTC epoch seconds.
"""

from __future__ import annotations

import logging
import sys
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from desk.domain.calendar import NEW_YORK, nyse_calendar
from desk.domain.calendar import exchange_midnight as exchange_midnight_dt
from desk.sim.chain import SimOption
from desk.sim.history_bars import Bars, exchange_midnight
from desk.sim.universe import SimStock, lookup

__all__ = [
    "MINUTE",
    "Cursor",
    "Recorded",
    "ReplayData",
    "ReplayError",
    "Series",
    "load_replay",
    "parse_day",
    "quote_at",
    "run_import",
]

log = logging.getLogger("desk.sim")

#: Seconds per minute bar: a bar that starts at ``t`` is known at ``t + MINUTE``.
MINUTE = 60


class ReplayError(Exception):
    """The replay cannot start: no data for the day and no LEAN folder to import it from,
    a symbol outside the simulator's universe, a bad date. ``str()`` is one line."""


def parse_day(text: str) -> date:
    """``2015-12-24`` or ``20151224`` -> ``date``; :class:`ReplayError` otherwise."""
    s = text.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    raise ReplayError(f"bad date {text!r}: expected YYYY-MM-DD (e.g. 2015-12-24)")


class Series:
    """One contract's recorded minute bars of one kind, as arrays sorted by bar start
    (UTC epoch seconds); prices NaN where that side had no quote."""

    __slots__ = ("t", "o", "h", "l", "c", "v")

    def __init__(self, rows: list[tuple[float, float, float, float, float, float]]) -> None:
        a = np.array(rows, dtype=np.float64).reshape(-1, 6)
        self.t = a[:, 0].astype(np.int64)
        self.o, self.h, self.l, self.c, self.v = a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def known(self, now: float) -> int:
        """How many bars are complete at ``now`` (end = start + 60 <= now)."""
        return int(np.searchsorted(self.t, now - MINUTE, "right"))

    def bars(self, start: int, end: int, now: float, volume: bool) -> Bars:
        hi = min(int(np.searchsorted(self.t, end, "left")), self.known(now))
        lo = int(np.searchsorted(self.t, start, "left"))
        if lo >= hi:
            return Bars.empty()
        s = slice(lo, hi)
        n = hi - lo
        if volume:
            vol = self.v[s]
            wap = (self.h[s] + self.l[s] + self.c[s]) / 3.0
            count = np.maximum(1, np.ones(n, dtype=np.int64))
            return Bars(self.t[s], self.o[s], self.h[s], self.l[s], self.c[s], vol, wap, count)
        nan = np.full(n, np.nan)
        return Bars(self.t[s], self.o[s], self.h[s], self.l[s], self.c[s], nan, nan, np.full(n, -1, dtype=np.int64))


_EMPTY = Series([])


@dataclass
class Recorded:
    """Everything recorded for one contract on the day."""

    bid: Series = _EMPTY
    ask: Series = _EMPTY
    trades: Series = _EMPTY


@dataclass
class ReplayData:
    """A recorded day loaded from the store: per conId the BID / ASK / TRADES minute
    series, the option chain (:class:`~desk.sim.chain.SimOption` per recorded contract),
    open interest, the underlyings' daily bars before the day, and the replay start."""

    day: date
    start: datetime
    stocks: dict[str, SimStock]
    series: dict[int, Recorded]
    options: dict[int, SimOption]
    chains: dict[str, list[SimOption]]
    open_interest: dict[int, int]
    daily: dict[str, Bars]
    end: float = 0.0  # UTC epoch seconds when the last recorded bar completes
    load_seconds: float = 0.0
    imported: bool = False

    @property
    def symbols(self) -> list[str]:
        return list(self.stocks)


class Cursor:
    """Position of a contract in its recorded series (bars already applied)."""

    __slots__ = ("bid", "ask", "trades")

    def __init__(self) -> None:
        self.bid = 0
        self.ask = 0
        self.trades = 0


def quote_at(s: Series, i: int) -> tuple[float, int]:
    """Price and size of bar ``i`` of a BID or ASK series: its close and volume, or
    ``(0.0, 0)`` when that side had no quote during the minute."""
    c = s.c[i]
    if c != c:  # no quote on this side during the minute
        return 0.0, 0
    return float(c), int(s.v[i])


def run_import(
    url: str,
    lean_dir: str | Path,
    *,
    symbols: Iterable[str] | None = None,
    dates: Iterable[date] | None = None,
    schema: str | None = None,
    stream: TextIO | None = sys.stderr,
) -> Any:
    """Import LEAN data with the simulator's stock conIds (GOOG keeps 208813720) and a
    progress line on ``stream`` (``\\r``-updated, at most 10 per second; ``None``: quiet).
    Returns :class:`desk.store.lean.ImportResult`; raises what
    :func:`desk.store.lean.import_lean` raises."""
    from desk.sim.universe import UNIVERSE
    from desk.store.lean import ImportProgress, import_lean

    last = [0.0]
    shown = [False]
    tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def show(p: ImportProgress) -> None:
        if stream is None:
            return
        now = _time.monotonic()
        if p.phase == "import" and (not tty or now - last[0] < 0.1) and p.files_done < p.files_total:
            return  # a terminal gets a live line (10 per second); a log file only the end
        last[0] = now
        shown[0] = True
        what = "committing" if p.phase == "commit" else "importing"
        line = (
            f"{what} {p.fraction * 100:5.1f}%  {p.files_done:,}/{p.files_total:,} files  "
            f"{p.rows:,} rows  {p.bytes_done / 1e6:,.1f}/{p.bytes_total / 1e6:,.1f} MB"
        )
        stream.write(f"\r{line}\x1b[K" if tty else line + "\n")
        stream.flush()

    stocks = {s.symbol: s.to_instrument() for s in UNIVERSE.values()}
    try:
        return import_lean(url, lean_dir, symbols=symbols, dates=dates, schema=schema, stocks=stocks, progress=show)
    finally:
        if stream is not None and tty and shown[0]:
            stream.write("\n")
            stream.flush()


def load_replay(
    url: str,
    day: date,
    symbols: Sequence[str],
    *,
    schema: str | None = None,
    start: dtime | datetime | None = None,
    lean_dir: str | Path | None = None,
    import_missing: bool = True,
    stream: TextIO | None = sys.stderr,
) -> ReplayData:
    """Load ``day`` of ``symbols`` (and their option chains) from the store at ``url``.

    If the store has no minute bars of a symbol for the day and ``import_missing``, the
    day is imported first from ``lean_dir`` (default :func:`desk.store.lean.default_lean_dir`),
    showing progress on ``stream``. ``start``: time of day (New York time) or an aware
    datetime where the replay begins (default: the session's regular open, 09:30 ET, on the
    exchange calendar; :class:`ReplayError` if ``day`` is not a session).

    Raises :class:`ReplayError` (unknown symbol, no data and nothing to import) and what
    the store raises (:class:`~desk.store.StoreError`, :class:`~desk.store.lean.LeanFormatError`).
    """
    from desk.store import StoreError
    from desk.store.lean import default_lean_dir, has_day, read_bar_table, read_bars, read_open_interest

    t0 = _time.perf_counter()
    if not symbols:
        raise ReplayError("a replay needs at least one symbol (--symbols GOOG)")
    stocks: dict[str, SimStock] = {}
    for sym in symbols:
        stock = lookup(sym)
        if stock is None:
            raise ReplayError(
                f"{sym.upper()} is not in the simulator's universe; replayable symbols are the universe's (desk.sim.universe)"
            )
        stocks[stock.symbol] = stock
    missing = [s for s in stocks if not has_day(url, s, day, schema=schema)]
    imported = False
    if missing:
        if not import_missing:
            raise ReplayError(f"the store has no {day} data for {', '.join(missing)}; run desk import lean PATH")
        folder = Path(lean_dir) if lean_dir else default_lean_dir()
        if folder is None or not folder.exists():
            raise ReplayError(
                f"the store has no {day} data for {', '.join(missing)} and no LEAN folder to import "
                "it from: set DESK_LEAN_DIR or run desk import lean PATH"
            )
        if stream is not None:
            stream.write(f"desk: importing {day} of {', '.join(missing)} from {folder}\n")
        try:
            run_import(url, folder, symbols=missing, dates=[day], schema=schema, stream=stream)
        except StoreError as exc:
            if "no LEAN files to import" not in str(exc):
                raise
            raise ReplayError(f"{folder} has no {day} minute data for {', '.join(missing)}") from None
        imported = True
        still = [s for s in missing if not has_day(url, s, day, schema=schema)]
        if still:
            raise ReplayError(f"{folder} has no {day} minute data for {', '.join(still)}")

    tz = NEW_YORK
    day_start = exchange_midnight_dt(day)
    day_end = day_start + timedelta(days=1)
    if start is None:  # the regular open of the day's session (09:30 ET)
        try:
            start_at = nyse_calendar().session(day).open
        except ValueError:
            raise ReplayError(f"{day} is not a trading day on the exchange calendar (XNYS)") from None
    elif isinstance(start, datetime):
        start_at = start
    else:
        start_at = datetime.combine(day, start, tz)

    from desk.store import make_engine

    engine = make_engine(url, application_name="desk-replay")
    series: dict[int, Recorded] = {}
    options: dict[int, SimOption] = {}
    chains: dict[str, list[SimOption]] = {}
    oi: dict[int, int] = {}
    daily: dict[str, Bars] = {}
    last_end = 0.0
    try:
        for sym, stock in stocks.items():
            rows = read_bar_table(engine, symbol=sym, start=day_start, end=day_end, schema=schema)
            opts = []
            for group in _groups(rows):
                first = group[0]
                con_id, sec_type, expiry, strike, right, kind = first[1:7]
                key = stock.con_id if sec_type == "STK" else int(con_id)
                s = Series([(r[0], r[7], r[8], r[9], r[10], r[11]) for r in group])
                last_end = max(last_end, float(s.t[-1]) + MINUTE)
                rec = series.get(key)
                if rec is None:
                    rec = series[key] = Recorded()
                    if sec_type == "OPT":
                        from desk.store.lean import occ_symbol

                        opt = SimOption(
                            key,
                            sym,
                            expiry,
                            float(strike),
                            right,
                            stock.con_id,
                            sym,
                            occ_symbol(sym, expiry, right, float(strike)),
                            penny=False,
                        )
                        options[key] = opt
                        opts.append(opt)
                setattr(rec, {"BID": "bid", "ASK": "ask", "TRADES": "trades"}[kind], s)
            opts.sort(key=lambda o: (o.expiry, o.right, o.strike))
            chains[sym] = opts
            oi.update(read_open_interest(engine, sym, day, schema=schema))
            d = read_bars(engine, symbol=sym, sec_type="STK", bar_size="1 day", end=day_start, schema=schema)
            t = np.array([exchange_midnight(b.time.astimezone(tz).date()) for b in d], dtype=np.int64)
            vol = np.array([b.volume for b in d])
            daily[sym] = Bars(
                t,
                np.array([b.open for b in d]),
                np.array([b.high for b in d]),
                np.array([b.low for b in d]),
                np.array([b.close for b in d]),
                vol,
                np.array([(b.high + b.low + b.close) / 3.0 for b in d]),
                np.full(len(d), 1, dtype=np.int64),
            )
    finally:
        engine.dispose()
    data = ReplayData(day, start_at.astimezone(UTC), stocks, series, options, chains, oi, daily, end=last_end, imported=imported)
    data.load_seconds = _time.perf_counter() - t0
    log.info("replay of %s loaded: %d contracts, %d options in %.1f s", day, len(series), len(options), data.load_seconds)
    return data


def _groups(rows: list[tuple[Any, ...]]) -> Iterable[list[tuple[Any, ...]]]:
    """Consecutive runs of rows with the same (conId, kind) (the rows are sorted so)."""
    start = 0
    n = len(rows)
    for i in range(1, n + 1):
        if i == n or rows[i][1] != rows[start][1] or rows[i][6] != rows[start][6]:
            yield rows[start:i]
            start = i
