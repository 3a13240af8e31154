"""Time to expiry on the exchange calendar (:mod:`desk.domain.calendar`).

Conventions (used for ``T`` everywhere in :mod:`desk.pricing`; defined once in
:mod:`desk.domain.calendar`, which this module only applies):

* **Expiry instant**: US listed options stop trading at the close of their last trading
  day: 16:00 America/New_York, or the early close (13:00) on half days such as
  2015-12-24 (OCC rules; pass ``early_close=False`` to always use 16:00). When the expiry
  date is not a session (an exchange holiday such as Good Friday, or the Saturday
  expiry dates of older OCC listings), the options expire on the previous session, as
  given by the exchange calendar (``exchange_calendars``, default ``XNYS``):
  :meth:`desk.domain.calendar.ExchangeCalendar.expiry_close`.
* **T for pricing**: calendar time, ``(expiry_instant - now) / 365 days`` (ACT/365, in
  years, :data:`desk.domain.calendar.SECONDS_PER_YEAR`), clipped at 0 after expiry. It
  matches theta per calendar day and continuously compounded rates quoted ACT/365.
* **Trading time** (:func:`trading_time_to_expiry`): the open-market time left until the
  expiry instant, in years of 252 sessions of 6.5 hours
  (:data:`desk.domain.calendar.SECONDS_PER_TRADING_YEAR`); useful when volatility is
  thought to accrue only while the market is open (weekends and holidays carry none).

``now`` is always a timezone-aware ``datetime`` (converted to UTC); naive datetimes raise
``ValueError``. The calendar loads on first use (about 1 s, once per process), covering
1990 to 12 years ahead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import SECONDS_PER_TRADING_YEAR, SECONDS_PER_YEAR, get_calendar, parse_expiry

__all__ = [
    "expiry_instant",
    "parse_expiry",
    "time_to_expiry",
    "times_to_expiry",
    "trading_time_to_expiry",
]


@lru_cache(maxsize=4096)
def _expiry_instant(day: date, calendar: str, early_close: bool) -> datetime:
    return get_calendar(calendar).expiry_close(day, early_close=early_close)


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


def time_to_expiry(expiry: str | date, now: datetime, *, calendar: str = "XNYS", early_close: bool = True) -> float:
    """Years (ACT/365 calendar time) from ``now`` (aware datetime, UTC or any zone) to the
    expiry instant (:func:`expiry_instant`); 0.0 at or after it. This is the ``T`` of
    :func:`desk.pricing.bsm_price` / :func:`desk.pricing.implied_vol`."""
    seconds = (expiry_instant(expiry, calendar=calendar, early_close=early_close) - _utc(now)).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR


def times_to_expiry(
    expiries: Iterable[str | date], now: datetime, *, calendar: str = "XNYS", early_close: bool = True
) -> NDArray[np.float64]:
    """:func:`time_to_expiry` for many expiries (e.g. one per option of a chain): float64
    array of years, one per expiry, in order. Expiry instants are cached per date."""
    at = _utc(now)
    out = [max((expiry_instant(e, calendar=calendar, early_close=early_close) - at).total_seconds(), 0.0) for e in expiries]
    return np.asarray(out, dtype=np.float64) / SECONDS_PER_YEAR


def trading_time_to_expiry(expiry: str | date, now: datetime, *, calendar: str = "XNYS", early_close: bool = True) -> float:
    """Open-market time from ``now`` to the expiry instant, in trading years of 252
    sessions x 6.5 hours (:data:`~desk.domain.calendar.SECONDS_PER_TRADING_YEAR`, so a
    full regular session is 1/252). Counts only the time inside each session's
    open..close (half days count their shorter session); 0.0 at or after expiry."""
    at = _utc(now)
    end = expiry_instant(expiry, calendar=calendar, early_close=early_close)
    if at >= end:
        return 0.0
    total = 0.0
    # a day of slack each side covers any calendar's zone; the clipping below does the rest
    for s in get_calendar(calendar).sessions(at.date() - timedelta(days=1), end.date() + timedelta(days=1)):
        lo = max(s.open, at)
        hi = min(s.close, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total / SECONDS_PER_TRADING_YEAR
