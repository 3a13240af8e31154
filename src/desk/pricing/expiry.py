"""Time to expiry on the exchange calendar.

Conventions (used for ``T`` everywhere in :mod:`desk.pricing`):

* **Expiry instant**: US listed options stop trading at the close of their last trading
  day: 16:00 America/New_York, or the early close (13:00) on half days such as
  2015-12-24 (OCC rules; pass ``early_close=False`` to always use 16:00). When the expiry
  date is not a session (an exchange holiday such as Good Friday, or the Saturday
  expiry dates of older OCC listings), the options expire on the previous session, as
  given by the exchange calendar (``exchange_calendars``, default ``XNYS``).
* **T for pricing**: calendar time, ``(expiry_instant - now) / 365 days`` (ACT/365, in
  years), clipped at 0 after expiry. It matches theta per calendar day and continuously
  compounded rates quoted ACT/365.
* **Trading time** (:func:`trading_time_to_expiry`): the open-market time left until the
  expiry instant, in years of 252 sessions of 6.5 hours; useful when volatility is thought
  to accrue only while the market is open (weekends and holidays carry none).

``now`` is always a timezone-aware ``datetime`` (converted to UTC); naive datetimes raise
``ValueError``. Calendar objects are expensive to build (about 0.1 s), so one per name is
cached for the life of the process, covering 1990 to 12 years from first use.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
from numpy.typing import NDArray

from desk.pricing.bsm import DAYS_PER_YEAR

__all__ = [
    "NEW_YORK",
    "TRADING_DAYS_PER_YEAR",
    "TRADING_HOURS_PER_DAY",
    "exchange_calendar",
    "expiry_instant",
    "parse_expiry",
    "time_to_expiry",
    "times_to_expiry",
    "trading_time_to_expiry",
]

NEW_YORK = ZoneInfo("America/New_York")
#: Sessions per year and hours per regular session used by :func:`trading_time_to_expiry`.
TRADING_DAYS_PER_YEAR = 252.0
TRADING_HOURS_PER_DAY = 6.5

_SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400.0
_REGULAR_CLOSE = time(16, 0)
_EXPIRY_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


@lru_cache(maxsize=8)
def exchange_calendar(name: str = "XNYS") -> xcals.ExchangeCalendar:
    """The cached ``exchange_calendars`` calendar ``name`` (1990-01-01 to 12 years ahead).

    Raises ``ValueError`` for an unknown calendar name.
    """
    end = date.today().replace(month=12, day=31) + timedelta(days=365 * 12)
    try:
        with warnings.catch_warnings():
            # exchange_calendars 4.x trips a pandas deprecation warning while building itself
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return xcals.get_calendar(name, start="1990-01-01", end=end.isoformat())
    except xcals.errors.InvalidCalendarName as exc:
        raise ValueError(f"unknown exchange calendar {name!r} (e.g. 'XNYS', 'XCBO')") from exc


def parse_expiry(expiry: str | date) -> date:
    """An expiry as a ``date``: accepts ``'YYYYMMDD'`` (IB's lastTradeDateOrContractMonth),
    ``'YYYY-MM-DD'`` or a ``datetime.date``. Raises ``ValueError`` / ``TypeError`` otherwise
    (a ``datetime`` is rejected: pass its ``.date()`` in exchange time)."""
    if isinstance(expiry, datetime):
        raise TypeError("expiry must be a date or 'YYYYMMDD', not a datetime (use .date() in exchange time)")
    if isinstance(expiry, date):
        return expiry
    if isinstance(expiry, str):
        match = _EXPIRY_RE.match(expiry.strip())
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError as exc:
                raise ValueError(f"expiry {expiry!r} is not a valid date: {exc}") from None
        raise ValueError(f"expiry must look like 'YYYYMMDD', got {expiry!r}")
    raise TypeError(f"expiry must be a 'YYYYMMDD' string or a date, got {type(expiry).__name__}")


@lru_cache(maxsize=4096)
def _expiry_instant(day: date, calendar: str, early_close: bool) -> datetime:
    cal = exchange_calendar(calendar)
    first, last = cal.first_session.date(), cal.last_session.date()
    if not first <= day <= last:
        raise ValueError(f"expiry {day.isoformat()} is outside calendar {calendar} ({first} .. {last})")
    session = cal.date_to_session(day.isoformat(), direction="previous")
    if early_close:
        return cal.session_close(session).to_pydatetime().astimezone(UTC)
    local = datetime.combine(session.date(), _REGULAR_CLOSE, tzinfo=cal.tz)
    return local.astimezone(UTC)


def expiry_instant(expiry: str | date, *, calendar: str = "XNYS", early_close: bool = True) -> datetime:
    """The UTC instant options with this expiry stop trading: the close of the last session
    on or before the expiry date (16:00 America/New_York, 13:00 on early-close days unless
    ``early_close=False``). Raises ``ValueError`` for a malformed expiry, an unknown
    calendar or a date outside the calendar's range."""
    return _expiry_instant(parse_expiry(expiry), calendar, early_close)


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a timezone-aware datetime, got {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC), got a naive datetime")
    return now.astimezone(UTC)


def time_to_expiry(
    expiry: str | date, now: datetime, *, calendar: str = "XNYS", early_close: bool = True
) -> float:
    """Years (ACT/365 calendar time) from ``now`` (aware datetime, UTC or any zone) to the
    expiry instant (:func:`expiry_instant`); 0.0 at or after it. This is the ``T`` of
    :func:`desk.pricing.bsm_price` / :func:`desk.pricing.implied_vol`."""
    seconds = (expiry_instant(expiry, calendar=calendar, early_close=early_close) - _utc(now)).total_seconds()
    return max(seconds, 0.0) / _SECONDS_PER_YEAR


def times_to_expiry(
    expiries: Iterable[str | date], now: datetime, *, calendar: str = "XNYS", early_close: bool = True
) -> NDArray[np.float64]:
    """:func:`time_to_expiry` for many expiries (e.g. one per option of a chain): float64
    array of years, one per expiry, in order. Expiry instants are cached per date."""
    at = _utc(now)
    out = [
        max((expiry_instant(e, calendar=calendar, early_close=early_close) - at).total_seconds(), 0.0)
        for e in expiries
    ]
    return np.asarray(out, dtype=np.float64) / _SECONDS_PER_YEAR


def trading_time_to_expiry(
    expiry: str | date, now: datetime, *, calendar: str = "XNYS", early_close: bool = True
) -> float:
    """Open-market time from ``now`` to the expiry instant, in trading years of
    :data:`TRADING_DAYS_PER_YEAR` sessions x :data:`TRADING_HOURS_PER_DAY` hours (so a full
    regular session is 1/252). Counts only the time inside each session's open..close
    (half days count their shorter session); 0.0 at or after expiry."""
    at = _utc(now)
    end = expiry_instant(expiry, calendar=calendar, early_close=early_close)
    if at >= end:
        return 0.0
    cal = exchange_calendar(calendar)
    start_day = max(at.astimezone(cal.tz).date(), cal.first_session.date())
    end_day = end.astimezone(cal.tz).date()
    sessions = cal.sessions_in_range(start_day.isoformat(), end_day.isoformat())
    opens = cal.opens.loc[sessions]
    closes = cal.closes.loc[sessions]
    total = 0.0
    for open_ts, close_ts in zip(opens, closes, strict=True):
        lo = max(open_ts.to_pydatetime(), at)
        hi = min(close_ts.to_pydatetime(), end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total / (TRADING_DAYS_PER_YEAR * TRADING_HOURS_PER_DAY * 3600.0)
