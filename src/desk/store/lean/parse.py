"""Parsing and validation of LEAN CSV lines (the members of LEAN's zip files) into the
rows the importer writes.

Every line is validated (column count, numbers, times inside the day and strictly
increasing, low <= open/close <= high); the first bad line raises
:class:`LeanFormatError` naming ``file.zip:member.csv line N``. Prices become dollars per
share (LEAN's integers of 1/10,000 dollar divided by
:data:`~desk.store.lean.identifiers.PRICE_SCALE`); minute / second / tick times,
milliseconds since midnight America/New_York of the file's date, become UTC epoch
microseconds (:class:`DayClock`, DST handled with :mod:`zoneinfo`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from desk.domain.calendar import NEW_YORK, exchange_midnight
from desk.store.codec import to_epoch_us
from desk.store.errors import StoreError
from desk.store.lean.identifiers import PRICE_SCALE

__all__ = [
    "DayClock",
    "LeanFormatError",
    "MemberLines",
    "member_lines",
    "parse_dated_bars",
    "parse_open_interest",
    "parse_quote_bars",
    "parse_tick_trades",
    "parse_trade_bars",
    "text_line",
]

_DAY_MS = 86_400_000


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


class DayClock:
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


class MemberLines:
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
            raise self.fail(
                f"columns {start + 1}-{start + 4}: {names}low {lo:g} <= open {o:g}, close {c:g} <= high {h:g} does not hold"
            )
        return o, h, lo, c


def _quote_side(v: MemberLines, f: list[str], start: int, side: str) -> tuple[float, float, float, float] | None:
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


def parse_quote_bars(lines: Iterable[str], v: MemberLines, day: DayClock, head: tuple, bar_size: str) -> list[tuple]:
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


def parse_trade_bars(lines: Iterable[str], v: MemberLines, day: DayClock, head: tuple, bar_size: str) -> list[tuple]:
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


def parse_dated_bars(lines: Iterable[str], v: MemberLines, head: tuple, bar_size: str) -> list[tuple]:
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


def parse_open_interest(lines: Iterable[str], v: MemberLines, day: DayClock, head: tuple) -> list[tuple]:
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


def parse_tick_trades(lines: Iterable[str], v: MemberLines, day: DayClock, head: tuple) -> list[tuple]:
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


def member_lines(data: bytes, where: str) -> list[str]:
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
