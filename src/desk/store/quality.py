"""Data quality of the recorded ticks, per symbol and exchange day (``desk data check``).

For each symbol with ticks on an exchange date (New York), within that day's regular
session from the exchange calendar (XNYS: half days close at 13:00):

* ``rth_minutes`` / ``covered_minutes``: minutes of the session, and those with at least
  one tick;
* ``gaps`` / ``longest_gap_s``: stretches of at least ``gap_seconds`` (120) without a tick,
  the session's open and close included as ends, and the longest in seconds;
* ``crossed`` / ``locked``: quote rows with bid > ask / bid == ask (both sides present);
* ``stale``: stretches of at least ``stale_seconds`` (300) in which quotes kept arriving
  but bid and ask never changed;
* ``outliers``: mid (or trade price) moves from one tick to the next larger than
  ``outlier_k`` (20) times the median absolute move of the day and at least 1 %;
* ``duplicates``: rows identical to another in every column;
* ``options_quoted`` / ``options_known``: for an underlying, option contracts with a
  two-sided quote that day among those the instruments table lists for it (0 / 0 when
  no chain was recorded).

Results are written to table ``data_quality`` (one row per symbol and day, replaced when
checked again). Times are UTC in the table, minutes are exchange time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import Column, Date, Double, Integer, MetaData, Table, Text, and_, delete, insert, select

from desk.domain.calendar import NEW_YORK, nyse_calendar
from desk.domain.models import TickRecord
from desk.store.reader import iter_ticks
from desk.store.schema import StoreSchema, UtcTime, make_engine

__all__ = ["QualityReport", "check_day", "check_store", "quality_table", "write_reports"]


@dataclass(frozen=True)
class QualityReport:
    """The figures of one symbol on one exchange day (see the module docstring)."""

    symbol: str
    day: date
    ticks: int
    rth_minutes: int
    covered_minutes: int
    gaps: int
    longest_gap_s: float
    crossed: int
    locked: int
    stale: int
    outliers: int
    duplicates: int
    options_quoted: int = 0
    options_known: int = 0
    problems: tuple[str, ...] = field(default=())

    @property
    def coverage(self) -> float:
        """Share of the session's minutes with a tick (0..1)."""
        return self.covered_minutes / self.rth_minutes if self.rth_minutes else 0.0

    def line(self) -> str:
        """One line for the terminal."""
        text = (
            f"{self.day} {self.symbol:<8} ticks {self.ticks:>8,}  RTH {self.covered_minutes}/{self.rth_minutes} min"
            f" ({self.coverage:.0%})  gaps {self.gaps} (longest {self.longest_gap_s:,.0f} s)  crossed {self.crossed}"
            f"  locked {self.locked}  stale {self.stale}  outliers {self.outliers}  duplicates {self.duplicates}"
        )
        if self.options_known:
            text += f"  options {self.options_quoted}/{self.options_known}"
        return text + ("  PROBLEMS: " + "; ".join(self.problems) if self.problems else "  ok")


def _stale_runs(times: np.ndarray, changed: np.ndarray, min_s: float, gap_s: float) -> int:
    """Runs of unchanged quotes (``changed`` False after the run's first) lasting at least
    ``min_s`` seconds while quotes kept arriving (no silence of ``gap_s`` inside: that is
    a gap, counted as one)."""
    runs, start = 0, 0
    n = len(times)
    for i in range(1, n + 1):
        if i == n or changed[i] or times[i] - times[i - 1] >= gap_s:
            if times[i - 1] - times[start] >= min_s:
                runs += 1
            start = i
    return runs


def check_day(
    symbol: str,
    day: date,
    ticks: Sequence[TickRecord],
    *,
    gap_seconds: float = 120.0,
    stale_seconds: float = 300.0,
    outlier_k: float = 20.0,
) -> QualityReport:
    """The :class:`QualityReport` of ``ticks`` (one symbol, any order) on exchange date
    ``day``. Raises ValueError if ``day`` is not a trading day."""
    session = nyse_calendar().session(day)
    t_open, t_close = session.open.timestamp(), session.close.timestamp()
    rows = sorted(ticks, key=lambda r: r.time)
    duplicates = len(rows) - len(set(tuple(x if x == x else None for x in r) for r in rows))
    t = np.array([r.time.timestamp() for r in rows], dtype=float)
    in_rth = (t >= t_open) & (t < t_close)
    rth_minutes = int(round((t_close - t_open) / 60))
    covered = len(np.unique(((t[in_rth] - t_open) // 60).astype(int))) if in_rth.any() else 0
    ends = np.concatenate(([t_open], t[in_rth], [t_close]))
    holes = np.diff(ends)
    gaps = int(np.count_nonzero(holes >= gap_seconds))
    longest = float(holes.max()) if len(holes) else t_close - t_open
    quotes = [r for r, ok in zip(rows, in_rth) if ok and r.kind == "Q"]
    bid = np.array([q.bid for q in quotes], dtype=float)
    ask = np.array([q.ask for q in quotes], dtype=float)
    both = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    crossed = int(np.count_nonzero(both & (bid > ask)))
    locked = int(np.count_nonzero(both & (bid == ask)))
    stale = 0
    if len(quotes) > 1:
        qt = np.array([q.time.timestamp() for q in quotes])
        changed = np.concatenate(([True], (bid[1:] != bid[:-1]) | (ask[1:] != ask[:-1])))
        stale = _stale_runs(qt, changed, stale_seconds, gap_seconds)
    prices = []
    for r, ok in zip(rows, in_rth):
        if not ok:
            continue
        p = (r.bid + r.ask) / 2 if r.kind == "Q" and r.bid > 0 and r.ask > 0 and r.bid <= r.ask else r.price
        if r.kind == "T" and not (r.price > 0):
            continue
        if p == p and p > 0:
            prices.append(p)
    outliers = 0
    if len(prices) > 2:
        moves = np.abs(np.diff(np.log(np.array(prices))))
        mad = float(np.median(moves))
        outliers = int(np.count_nonzero(moves > max(outlier_k * mad, math.log(1.01))))
    problems = []
    if covered < rth_minutes * 0.9:
        problems.append(f"{rth_minutes - covered} session minutes without a tick")
    if crossed:
        problems.append(f"{crossed} crossed quotes")
    if outliers:
        problems.append(f"{outliers} price outliers")
    if duplicates:
        problems.append(f"{duplicates} duplicate rows")
    return QualityReport(
        symbol,
        day,
        len(rows),
        rth_minutes,
        covered,
        gaps,
        longest,
        crossed,
        locked,
        stale,
        outliers,
        duplicates,
        problems=tuple(problems),
    )


def quality_table(schema: str | None = None) -> Table:
    """The ``data_quality`` table (one row per symbol and day)."""
    md = MetaData(schema=schema)
    return Table(
        "data_quality",
        md,
        Column("day", Date, primary_key=True, comment="exchange date (New York)"),
        Column("symbol", Text, primary_key=True),
        Column("ticks", Integer, nullable=False),
        Column("rth_minutes", Integer, nullable=False),
        Column("covered_minutes", Integer, nullable=False),
        Column("gaps", Integer, nullable=False),
        Column("longest_gap_s", Double, nullable=False),
        Column("crossed", Integer, nullable=False),
        Column("locked", Integer, nullable=False),
        Column("stale", Integer, nullable=False),
        Column("outliers", Integer, nullable=False),
        Column("duplicates", Integer, nullable=False),
        Column("options_quoted", Integer, nullable=False),
        Column("options_known", Integer, nullable=False),
        Column("problems", Text, nullable=False, comment="'; '-separated, empty when none"),
        Column("checked_at", UtcTime(), nullable=False),
    )


def write_reports(url: str, reports: Iterable[QualityReport], *, schema: str | None = None) -> int:
    """Replace the rows of ``reports`` (same symbol and day) in ``data_quality``,
    creating the table if needed; rows written."""
    table = quality_table(schema)
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
            n = 0
            for r in reports:
                row = {k: v for k, v in asdict(r).items() if k != "problems"}
                row["problems"] = "; ".join(r.problems)
                row["checked_at"] = now
                conn.execute(delete(table).where(and_(table.c.day == r.day, table.c.symbol == r.symbol)))
                conn.execute(insert(table).values(**row))
                n += 1
            return n
    finally:
        engine.dispose()


def _chain(url: str, schema: str | None, underlying: str, day: date) -> set[int]:
    inst = StoreSchema(schema=schema).instruments
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, inst.name, schema=schema):
                return set()
            q = select(inst.c.con_id).where(
                and_(inst.c.symbol == underlying, inst.c.sec_type == "OPT", inst.c.expiry >= day.strftime("%Y%m%d"))
            )
            return {int(row[0]) for row in conn.execute(q)}
    finally:
        engine.dispose()


def _is_option_name(symbol: str) -> bool:
    """An option's row name (its local symbol, ``GOOG  160115C00750000``, or the desk's
    key): a space and digits; a stock's class share (``BRK B``) has no digit."""
    name = symbol.strip()
    return " " in name and any(ch.isdigit() for ch in name)


def check_store(
    url: str, days: Iterable[date], symbols: Iterable[str] | None = None, *, schema: str | None = None, **limits: float
) -> list[QualityReport]:
    """Reports for every stock symbol with ticks on each of ``days`` (or only
    ``symbols``), with option chain completeness from the instruments table. Raises
    ValueError (one line) for a day that is not a trading day, StoreError for the URL."""
    wanted = {s.upper() for s in symbols} if symbols else None
    days = list(days)
    for day in days:
        nyse_calendar().session(day)  # ValueError, one line, for a day the exchange was shut
    out: list[QualityReport] = []
    for day in days:
        start = datetime.combine(day, datetime.min.time(), NEW_YORK).astimezone(UTC)
        by_con: dict[int, list[TickRecord]] = {}
        for r in iter_ticks(url, schema=schema, start=start, end=start + timedelta(days=1)):
            by_con.setdefault(r.con_id, []).append(r)
        by_symbol: dict[str, list[TickRecord]] = {}
        for rows in by_con.values():
            sym = rows[0].symbol.upper()
            if _is_option_name(sym):
                continue
            by_symbol.setdefault(sym, []).extend(rows)
        for sym in sorted(by_symbol):
            if wanted is not None and sym not in wanted:
                continue
            rep = check_day(sym, day, by_symbol[sym], **limits)
            chain = _chain(url, schema, sym, day)
            if chain:
                quoted = sum(1 for c in chain if any(r.kind == "Q" and r.bid > 0 and r.ask > 0 for r in by_con.get(c, ())))
                problems = rep.problems + (
                    (f"{len(chain) - quoted} of {len(chain)} options never quoted",) if quoted < len(chain) else ()
                )
                rep = QualityReport(
                    **{**asdict(rep), "options_quoted": quoted, "options_known": len(chain), "problems": problems}
                )
            out.append(rep)
    return out
