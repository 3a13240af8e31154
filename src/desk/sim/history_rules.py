"""Request rules of historical data in the simulated gateway (IB's, as far as the
simulator needs them; TWS API "Historical Bar Data"), and the parsing of a request's
duration and end time.

* bar sizes ``1 min`` .. ``1 day`` (:data:`BAR_SECONDS`); smaller ones get error 162;
* ``whatToShow`` ``TRADES``, ``MIDPOINT``, ``BID``, ``ASK``, ``BID_ASK`` (IB's BID_ASK bar:
  open = time-average bid, high = max ask, low = min bid, close = time-average ask);
* durations ``N S``, ``N D`` (N sessions), ``N W``, ``N M`` (30 days), ``N Y`` (365 days);
* ``endDateTime`` empty (now), ``yyyymmdd hh:mm:ss TZ``, ``yyyymmdd-hh:mm:ss`` (UTC) or
  ``yyyymmdd`` (end of that day); with ``keepUpToDate`` it must be empty;
* ``useRTH`` 1 keeps bars of the regular sessions only (09:30 to the close, ET);
* bars are aligned to the exchange clock (5-minute bars start at :00, :05, ...; the first
  hourly bar of a session starts at 09:30), labelled by their first minute; daily bars
  carry ``YYYYMMDD`` (exchange date); intraday ``yyyymmdd hh:mm:ss US/Eastern``
  (``formatDate`` 1) or epoch seconds (``formatDate`` 2);
* TRADES bars carry volume (shares or contracts), WAP (dollars per share) and the number
  of trades; the quote kinds send -1 for all three, as IB does;
* errors: 200 unknown contract; 162 with IB's "Historical Market Data Service error
  message:" prefix (:data:`HMDS`) for bad bar size, duration, whatToShow, end time, too
  many bars, or no data in the range ("HMDS query returned no data").

All times are UTC epoch seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from desk.domain.calendar import NEW_YORK, exchange_date
from desk.sim.history_bars import exchange_midnight, sessions_back
from desk.sim.messages import Code

__all__ = [
    "BAR_SECONDS",
    "HMDS",
    "MAX_MINUTES",
    "WHAT_TO_SHOW",
    "HistoryError",
    "duration_start",
    "parse_duration",
    "parse_end",
]


#: IB bar size texts the simulator serves, in seconds.
BAR_SECONDS: dict[str, int] = {
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10800,
    "4 hours": 14400,
    "8 hours": 28800,
    "1 day": 86400,
}
#: whatToShow values served.
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
#: Most 1-minute bars one request may cover (about two years of sessions).
MAX_MINUTES = 200_000
#: The prefix IB puts on the text of error 162.
HMDS = "Historical Market Data Service error message:"


class HistoryError(Exception):
    """A historical request the simulator refuses: ``code`` (162 or 200) and IB-style text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


_DURATION_RE = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> tuple[int, str]:
    """``"3 D"`` -> ``(3, "D")``; :class:`HistoryError` (162) for anything else."""
    mt = _DURATION_RE.match(text or "")
    if not mt or int(mt[1]) <= 0:
        raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}Invalid duration {text!r} (expected e.g. '1 D')")
    return int(mt[1]), mt[2].upper()


def parse_end(text: str, now: float) -> float:
    """The request's endDateTime as UTC epoch seconds (``now`` when empty, and never later
    than ``now``). Accepts ``yyyymmdd hh:mm:ss TZ``, ``yyyymmdd-hh:mm:ss`` (UTC),
    ``yyyymmdd hh:mm:ss`` (New York time) and ``yyyymmdd`` (23:59:59 New York time)."""
    s = (text or "").strip()
    if not s:
        return now
    try:
        if "-" in s and len(s) == 17:
            t = datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        elif len(s) == 8 and s.isdigit():
            t = datetime.strptime(s, "%Y%m%d").replace(hour=23, minute=59, second=59, tzinfo=NEW_YORK)
        else:
            parts = s.split()
            t = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
            tz = ZoneInfo(parts[2]) if len(parts) > 2 else NEW_YORK
            t = t.replace(tzinfo=tz)
    except (ValueError, KeyError, IndexError, OSError):
        raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}Invalid end date/time {s!r}") from None
    return min(t.timestamp(), now)


def duration_start(end: float, n: int, unit: str) -> float:
    """Start (UTC epoch seconds) of a request of duration ``n`` ``unit`` ending at ``end``:
    ``D`` counts sessions back (from 00:00 New York time of the first), ``W``/``M``/``Y``
    7/30/365 calendar days, ``S`` seconds."""
    if unit == "S":
        return end - n
    if unit == "D":
        first = sessions_back(exchange_date(end - 1e-6), n)
        return float(exchange_midnight(first))
    days = {"W": 7, "M": 30, "Y": 365}[unit] * n
    return end - days * 86400.0
