"""US equity market hours on the NYSE calendar (exchange_calendars ``XNYS``).

Phases of a trading day, in US/Eastern exchange time:

* ``pre``: 04:00 until the regular open (09:30);
* ``regular``: the session, open to close as the calendar gives it (16:00, 13:00 on early
  close days such as the day after Thanksgiving);
* ``post``: the close until four hours after it (20:00; 17:00 on early close days);
* ``closed``: otherwise, and all day on weekends and exchange holidays.

The extended phases follow IB's US stock outside-RTH hours (04:00-09:30 and 16:00-20:00
ET). Options trade in the regular session only.

The calendar (about 20 years back and one year ahead of today, as exchange_calendars
builds it) is loaded once, lazily, and turned into sorted lists of µs since the epoch: a
lookup is a binary search (a few µs, see ``bench/risk.py``). A time outside the
calendar's range gives phase ``unknown``.
"""

from __future__ import annotations

import threading
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["MarketHours", "MarketPhase", "nyse_hours"]

EASTERN = ZoneInfo("America/New_York")
_PRE_OPEN = time(4, 0)
_POST_HOURS = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class MarketPhase:
    """Where ``when`` falls. ``phase``: ``pre``, ``regular``, ``post``, ``closed`` or
    ``unknown`` (outside the calendar). ``session``: the trading day (exchange date) of
    the pre/regular/post phase, else ``None``. ``open``/``close``: that session's regular
    open and close (UTC)."""

    phase: str
    session: str | None = None
    open: datetime | None = None
    close: datetime | None = None

    @property
    def regular(self) -> bool:
        return self.phase == "regular"

    @property
    def extended(self) -> bool:
        """Pre- or post-market."""
        return self.phase in ("pre", "post")


class MarketHours:
    """Session lookups for one exchange_calendars calendar (default ``XNYS``)."""

    def __init__(self, calendar: str = "XNYS") -> None:
        self.calendar_name = calendar
        self._lock = threading.Lock()
        self._arrays: tuple[list[int], ...] | None = None
        self._sessions: list[str] = []

    def _load(self) -> tuple[list[int], ...]:
        arrays = self._arrays
        if arrays is not None:
            return arrays
        with self._lock:
            if self._arrays is None:
                import exchange_calendars as xc

                with warnings.catch_warnings():  # pandas deprecations inside exchange_calendars
                    warnings.simplefilter("ignore")
                    cal = xc.get_calendar(self.calendar_name)
                opens = cal.opens.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
                closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
                sessions = [d.strftime("%Y-%m-%d") for d in cal.sessions]
                pre = np.empty_like(opens)
                for i, day in enumerate(cal.sessions):
                    start = datetime.combine(day.date(), _PRE_OPEN, tzinfo=EASTERN).astimezone(UTC)
                    pre[i] = _to_us(start)
                post = closes + int(_POST_HOURS / timedelta(microseconds=1))
                self._sessions = sessions
                # plain lists of ints: bisect on a list beats numpy's searchsorted on one scalar
                self._arrays = (pre.tolist(), opens.tolist(), closes.tolist(), post.tolist())
            return self._arrays

    def phase(self, when: datetime) -> MarketPhase:
        """The phase at ``when`` (tz-aware; naive raises ``ValueError``)."""
        if when.utcoffset() is None:
            raise ValueError("MarketHours.phase needs a timezone-aware datetime")
        pre, opens, closes, post = self._load()
        t = _to_us(when)
        if t < pre[0] or t >= post[-1]:
            return MarketPhase("unknown")
        i = bisect_right(pre, t) - 1
        if t >= post[i]:
            return MarketPhase("closed")
        o, c = _from_us(opens[i]), _from_us(closes[i])
        if t < opens[i]:
            name = "pre"
        elif t < closes[i]:
            name = "regular"
        else:
            name = "post"
        return MarketPhase(name, self._sessions[i], o, c)


def _to_us(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


_NYSE: MarketHours | None = None


def nyse_hours() -> MarketHours:
    """The shared ``XNYS`` :class:`MarketHours` (calendar loaded on first lookup)."""
    global _NYSE
    if _NYSE is None:
        _NYSE = MarketHours("XNYS")
    return _NYSE
