"""The exchange calendar: New York time, NYSE sessions, holidays, half days, extended
hours, and the one time-to-expiry convention (ACT/365). Desk and simulator both use it.

Sources
    * Sessions, holidays and early closes ("half days", 13:00 ET, e.g. the day after
      Thanksgiving) come from ``exchange_calendars``' ``XNYS`` calendar (NYSE), built for
      1990-01-01 to the end of the year 12 years from today.
    * Extended hours are IB's outside-RTH hours for US stocks: pre-market from 04:00 ET
      to the open, post-market from the close until 4 hours after it (20:00 ET, 17:00 on
      a half day). US equity options trade in the regular session only.
    * The time zone is the tz database's ``America/New_York`` (:data:`NEW_YORK`); IB
      writes the same zone as ``US/Eastern`` (:data:`EXCHANGE_TZ_ID`).

Units
    Every instant a function takes or returns is a timezone-aware ``datetime`` in UTC
    (inputs may be in any zone; naive datetimes raise ``ValueError``); vectorized
    helpers take UTC epoch seconds. Dates (``datetime.date``) are exchange dates (New
    York). A :class:`Session` carries its instants in UTC.

Cost
    Importing this module is cheap (no pandas, no numpy): ``exchange_calendars`` (about
    0.5 s to import with pandas and build) is loaded on the first lookup that needs
    sessions, once per process, and its sessions turned into sorted lists of integers; a
    lookup is then a binary search (a few µs, see ``bench/risk.py``). Time conversions
    (:func:`exchange_date`, :func:`years_between`) never load it. Those lists are kept in
    a cache file (:func:`calendar_cache_dir`, one JSON file per calendar, range and
    ``exchange_calendars`` version, written atomically), so a later process reads them in
    milliseconds and never imports pandas; a missing, unreadable or inconsistent file is
    rebuilt from ``exchange_calendars``, which stays the one source.

Time to expiry
    ``T`` is calendar time ACT/365 in years: seconds / :data:`SECONDS_PER_YEAR`
    (:func:`years_between`), measured to the expiry's close (:meth:`ExchangeCalendar.
    expiry_close`: 16:00 ET, 13:00 ET on half days, on the last session on or before the
    expiry date). :data:`SECONDS_PER_TRADING_YEAR` (252 sessions of 6.5 hours) is the
    trading-time year, for volatility that accrues only while the market is open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DAYS_PER_YEAR",
    "EXCHANGE_TZ_ID",
    "NEW_YORK",
    "POST_MARKET_HOURS",
    "PRE_MARKET_OPEN",
    "SECONDS_PER_DAY",
    "SECONDS_PER_TRADING_YEAR",
    "SECONDS_PER_YEAR",
    "TRADING_DAYS_PER_YEAR",
    "TRADING_HOURS_PER_DAY",
    "ExchangeCalendar",
    "MarketPhase",
    "Session",
    "calendar_cache_dir",
    "exchange_date",
    "exchange_midnight",
    "get_calendar",
    "nyse_calendar",
    "parse_expiry",
    "years_between",
]

#: Exchange time of US stocks and options (NYSE, Nasdaq, CBOE): the tz database zone.
NEW_YORK = ZoneInfo("America/New_York")
#: IB's name of that zone, as TWS writes it in contract details (``timeZoneId``),
#: execution times and historical bar times (the tz database's legacy link to
#: America/New_York).
EXCHANGE_TZ_ID = "US/Eastern"

#: Start of IB's pre-market for US stocks, exchange time.
PRE_MARKET_OPEN = time(4, 0)
#: IB's post-market for US stocks lasts this long after the regular close.
POST_MARKET_HOURS = timedelta(hours=4)

#: Day count of the time-to-expiry convention: ACT/365 (theta per calendar day = per year / 365).
DAYS_PER_YEAR = 365.0
SECONDS_PER_DAY = 86400.0
#: Seconds in one year of calendar time (ACT/365): ``T = seconds / SECONDS_PER_YEAR``.
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY
#: Trading-time year: sessions per year and hours per full regular session (09:30-16:00).
TRADING_DAYS_PER_YEAR = 252.0
TRADING_HOURS_PER_DAY = 6.5
#: Seconds of open market in a trading-time year (252 x 6.5 h).
SECONDS_PER_TRADING_YEAR = TRADING_DAYS_PER_YEAR * TRADING_HOURS_PER_DAY * 3600.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_PER_MINUTE = 60_000_000
#: layout of the cache files; bump when :class:`_Arrays` or the file changes
_CACHE_FORMAT = 1

log = logging.getLogger(__name__)
_FIRST_DAY = "1990-01-01"
_YEARS_AHEAD = 12
_EXPIRY_RE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


# --- time conversions (no calendar needed) ------------------------------------------------


def _aware(when: datetime, what: str = "when") -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"{what} must be a timezone-aware datetime, got {type(when).__name__}")
    if when.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got a naive one")
    return when


def exchange_date(when: datetime | float) -> date:
    """The exchange (New York) date of an aware ``datetime`` or of UTC epoch seconds.
    Raises ``ValueError`` for a naive datetime."""
    if isinstance(when, datetime):
        return _aware(when).astimezone(NEW_YORK).date()
    return datetime.fromtimestamp(when, NEW_YORK).date()


def exchange_midnight(day: date) -> datetime:
    """00:00 New York time on exchange date ``day`` (aware, in NEW_YORK; 04:00 or 05:00 UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=NEW_YORK)


def years_between(start: datetime, end: datetime) -> float:
    """Years of calendar time (ACT/365: seconds / :data:`SECONDS_PER_YEAR`) from ``start``
    to ``end``, both aware; negative when ``end`` is earlier. This is the ``T`` of
    pricing (clip it at 0 for an expired option). Raises ``ValueError`` for a naive
    datetime."""
    return (_aware(end, "end") - _aware(start, "start")).total_seconds() / SECONDS_PER_YEAR


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


def _to_us(when: datetime) -> int:
    return (when - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day of the exchange. ``day``: its exchange date. Instants in UTC:
    ``pre_open`` (04:00 ET, IB's pre-market start), ``open`` and ``close`` of the regular
    session (09:30 and 16:00 ET, 13:00 ET when ``early_close``), ``post_close`` (the end
    of IB's post-market, 4 hours after the close)."""

    day: date
    pre_open: datetime
    open: datetime
    close: datetime
    post_close: datetime
    early_close: bool

    def start(self, outside_rth: bool = False) -> datetime:
        """When orders start working: the open, or the pre-market start with ``outside_rth``."""
        return self.pre_open if outside_rth else self.open

    def end(self, outside_rth: bool = False) -> datetime:
        """When orders stop working: the close, or the post-market end with ``outside_rth``."""
        return self.post_close if outside_rth else self.close


@dataclass(frozen=True, slots=True)
class MarketPhase:
    """Where an instant falls. ``phase``: ``pre``, ``regular``, ``post``, ``closed`` or
    ``unknown`` (outside the calendar's range). ``session``: the exchange date
    (``YYYY-MM-DD``) of the pre/regular/post phase, else ``None``. ``open``/``close``:
    that session's regular open and close (UTC)."""

    phase: str
    session: str | None = None
    open: datetime | None = None
    close: datetime | None = None

    @property
    def regular(self) -> bool:
        """In the regular session."""
        return self.phase == "regular"

    @property
    def extended(self) -> bool:
        """Pre- or post-market."""
        return self.phase in ("pre", "post")


@dataclass(frozen=True, slots=True)
class _Arrays:
    days: list[int]  # exchange dates of the sessions, proleptic ordinals, ascending
    pre: list[int]  # µs since the epoch (UTC), one per session
    opens: list[int]
    closes: list[int]
    post: list[int]
    early: list[bool]
    regular_close: time  # the calendar's ordinary close, exchange time (16:00 for XNYS)


# --- the calendar -------------------------------------------------------------------------


class ExchangeCalendar:
    """Sessions of one ``exchange_calendars`` calendar (default ``XNYS``, the NYSE), with
    IB's extended hours around them. Loaded on the first lookup (thread-safe); raises
    ``ValueError`` then for an unknown calendar name. Every method taking an instant
    raises ``ValueError`` for a naive datetime."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._arrays: _Arrays | None = None
        self._np: tuple[np.ndarray, np.ndarray] | None = None
        self._busday: np.busdaycalendar | None = None

    def __repr__(self) -> str:
        return f"ExchangeCalendar({self.name!r})"

    # --- loading ------------------------------------------------------------------

    def _load(self) -> _Arrays:
        arrays = self._arrays
        if arrays is not None:
            return arrays
        with self._lock:
            if self._arrays is None:
                self._arrays = _build(self.name)
            return self._arrays

    # --- sessions -----------------------------------------------------------------

    def _session(self, i: int) -> Session:
        a = self._load()
        return Session(
            date.fromordinal(a.days[i]),
            _from_us(a.pre[i]),
            _from_us(a.opens[i]),
            _from_us(a.closes[i]),
            _from_us(a.post[i]),
            a.early[i],
        )

    @property
    def first_session(self) -> date:
        """Exchange date of the first session the calendar knows."""
        return date.fromordinal(self._load().days[0])

    @property
    def last_session(self) -> date:
        """Exchange date of the last session the calendar knows."""
        return date.fromordinal(self._load().days[-1])

    def _check_day(self, day: date) -> int:
        a = self._load()
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"expected an exchange date (datetime.date), got {type(day).__name__}")
        n = day.toordinal()
        if not a.days[0] <= n <= a.days[-1]:
            raise ValueError(f"{day.isoformat()} is outside calendar {self.name} ({self.first_session} .. {self.last_session})")
        return n

    def is_session(self, day: date) -> bool:
        """Whether exchange date ``day`` is a trading day. ``ValueError`` outside the range."""
        n = self._check_day(day)
        days = self._load().days
        i = bisect_left(days, n)
        return days[i] == n

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` is a weekday without a session (an exchange holiday or an
        unscheduled closing). ``ValueError`` outside the range."""
        return day.weekday() < 5 and not self.is_session(day)

    def session(self, day: date) -> Session:
        """The session of exchange date ``day``; ``ValueError`` if it is not a trading day."""
        n = self._check_day(day)
        days = self._load().days
        i = bisect_left(days, n)
        if days[i] != n:
            raise ValueError(f"{day.isoformat()} is not a {self.name} session")
        return self._session(i)

    def next_session(self, day: date, *, inclusive: bool = False) -> Session:
        """The first session after ``day`` (on or after it with ``inclusive``);
        ``ValueError`` past the calendar's end."""
        days = self._load().days
        n = day.toordinal()
        i = bisect_left(days, n) if inclusive else bisect_right(days, n)
        if i >= len(days):
            raise ValueError(f"no {self.name} session after {day.isoformat()} in the calendar (ends {self.last_session})")
        return self._session(i)

    def previous_session(self, day: date, *, inclusive: bool = False) -> Session:
        """The last session before ``day`` (on or before it with ``inclusive``);
        ``ValueError`` before the calendar's start."""
        days = self._load().days
        n = day.toordinal()
        i = (bisect_right(days, n) if inclusive else bisect_left(days, n)) - 1
        if i < 0:
            raise ValueError(f"no {self.name} session before {day.isoformat()} in the calendar (starts {self.first_session})")
        return self._session(i)

    def sessions(self, first: date, last: date) -> list[Session]:
        """Sessions with exchange dates ``first`` .. ``last`` (inclusive), ascending; only
        the part inside the calendar's range."""
        days = self._load().days
        lo, hi = bisect_left(days, first.toordinal()), bisect_right(days, last.toordinal())
        return [self._session(i) for i in range(lo, hi)]

    def holidays(self, first: date, last: date) -> list[date]:
        """Weekdays ``first`` .. ``last`` (inclusive) without a session: exchange holidays
        (and unscheduled closings), ascending; only the part inside the calendar's range."""
        days = self._load().days
        lo = max(first.toordinal(), days[0])
        hi = min(last.toordinal(), days[-1])
        listed = set(days[bisect_left(days, lo) : bisect_right(days, hi)])
        return [date.fromordinal(n) for n in range(lo, hi + 1) if n not in listed and date.fromordinal(n).weekday() < 5]

    def busday_calendar(self) -> np.busdaycalendar:
        """A ``numpy.busdaycalendar`` of the sessions (Monday-Friday minus the holidays in
        the calendar's range), for ``np.busday_count`` / ``np.is_busday`` /
        ``np.busday_offset`` on arrays of exchange dates."""
        if self._busday is None:
            import numpy as np

            first, last = self.first_session, self.last_session
            hol = np.array(self.holidays(first, last), dtype="datetime64[D]")
            self._busday = np.busdaycalendar(weekmask="1111100", holidays=hol)
        return self._busday

    # --- instants -----------------------------------------------------------------

    def phase(self, when: datetime) -> MarketPhase:
        """The phase of the trading day at ``when`` (aware; see :class:`MarketPhase`)."""
        a = self._load()
        t = _to_us(_aware(when))
        if t < a.pre[0] or t >= a.post[-1]:
            return MarketPhase("unknown")
        i = bisect_right(a.pre, t) - 1
        if t >= a.post[i]:
            return MarketPhase("closed")
        if t < a.opens[i]:
            name = "pre"
        elif t < a.closes[i]:
            name = "regular"
        else:
            name = "post"
        day = date.fromordinal(a.days[i]).isoformat()
        return MarketPhase(name, day, _from_us(a.opens[i]), _from_us(a.closes[i]))

    def is_open(self, when: datetime, outside_rth: bool = False) -> bool:
        """Whether an order works at ``when`` (aware): in the regular session, or with
        ``outside_rth`` also in IB's pre- and post-market (04:00 ET to 4 hours after the
        close). False on weekends, holidays and outside the calendar's range."""
        a = self._load()
        t = _to_us(_aware(when))
        starts = a.pre if outside_rth else a.opens
        i = bisect_right(starts, t) - 1
        if i < 0:
            return False
        return t < (a.post if outside_rth else a.closes)[i]

    def session_of(self, when: datetime, outside_rth: bool = False) -> Session:
        """The session ``when`` belongs to for an order: the one in progress, else the
        next one (an order entered after the close, on a weekend or on a holiday waits
        for the next session). With ``outside_rth`` the session runs from 04:00 ET to the
        post-market's end. ``ValueError`` outside the calendar's range."""
        a = self._load()
        t = _to_us(_aware(when))
        ends = a.post if outside_rth else a.closes
        i = bisect_right(ends, t)
        if t < a.pre[0] or i >= len(ends):
            raise ValueError(f"{when.isoformat()} is outside calendar {self.name} ({self.first_session} .. {self.last_session})")
        return self._session(i)

    def session_close(self, when: datetime, outside_rth: bool = False) -> datetime:
        """The close (UTC) that ends the session ``when`` belongs to (:meth:`session_of`):
        when a DAY order entered at ``when`` expires. The regular close (16:00 ET, 13:00
        ET on a half day), or with ``outside_rth`` the end of the post-market (20:00 ET,
        17:00 ET). ``ValueError`` outside the calendar's range."""
        return self.session_of(when, outside_rth).end(outside_rth)

    def next_open(self, when: datetime, outside_rth: bool = False) -> datetime:
        """When orders next start working at or after ``when`` (UTC): ``when`` itself if
        the market is open for them, else the next open (pre-market start with
        ``outside_rth``). ``ValueError`` outside the calendar's range."""
        if self.is_open(when, outside_rth):
            return when.astimezone(UTC)
        return self.session_of(when, outside_rth).start(outside_rth)

    def expiry_close(self, expiry: str | date, *, early_close: bool = True) -> datetime:
        """The UTC instant options with this expiry (``YYYYMMDD`` or a date) stop trading:
        the close of the last session on or before the expiry date (16:00 ET, 13:00 ET on
        a half day unless ``early_close=False``); an expiry date on a holiday (Good
        Friday) or a Saturday (older OCC listings) moves to the previous session (OCC
        rules). Raises ``ValueError`` for a malformed expiry or a date outside the
        calendar's range."""
        day = parse_expiry(expiry)
        a = self._load()
        self._check_day(day)
        s = self.previous_session(day, inclusive=True)
        if early_close or not s.early_close:
            return s.close
        return datetime.combine(s.day, a.regular_close, NEW_YORK).astimezone(UTC)

    # --- vectorized ---------------------------------------------------------------

    def regular_mask(self, t: np.ndarray) -> np.ndarray:
        """For an array of UTC epoch seconds: True where the instant is inside a regular
        session (open <= t < close; holidays, weekends and half days' afternoons False)."""
        import numpy as np

        if self._np is None:
            a = self._load()
            self._np = (np.asarray(a.opens, dtype=np.int64) / 1e6, np.asarray(a.closes, dtype=np.int64) / 1e6)
        opens, closes = self._np
        t = np.asarray(t, dtype=np.float64)
        i = np.searchsorted(opens, t, side="right") - 1
        ok = i >= 0
        return ok & (t < closes[np.where(ok, i, 0)])


def calendar_cache_dir() -> str:
    """Where the calendars' cache files live: ``$DESK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/desk``, else ``~/.cache/desk``."""
    explicit = os.environ.get("DESK_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "desk")


def _exchange_calendars_version() -> str | None:
    """The installed exchange_calendars version, from its ``.dist-info`` folder's name (a
    directory listing: ``importlib.metadata`` costs about 40 ms on first use)."""
    from importlib.util import find_spec

    spec = find_spec("exchange_calendars")
    if spec is None or not spec.origin:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    with contextlib.suppress(OSError):
        for entry in os.listdir(site):
            if entry.startswith("exchange_calendars-") and entry.endswith(".dist-info"):
                return entry[len("exchange_calendars-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exchange_calendars")
    except PackageNotFoundError:
        return None


def _cache_path(name: str, end: date) -> str | None:
    xc_version = _exchange_calendars_version()
    if xc_version is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return os.path.join(calendar_cache_dir(), f"calendar-{safe}-{_FIRST_DAY}-{end.isoformat()}-xc{xc_version}.json")


def _read_cache(path: str) -> _Arrays | None:
    """The arrays of a cache file, or ``None`` when it is missing, unreadable or not
    consistent (then the calendar is built again)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if raw.get("format") != _CACHE_FORMAT:
            return None
        days = [int(x) for x in raw["days"]]
        pre, opens, closes, post = ([int(x) * _US_PER_MINUTE for x in raw[k]] for k in ("pre", "opens", "closes", "post"))
        early = [bool(x) for x in raw["early"]]
        hh, mm, ss = (int(x) for x in str(raw["regular_close"]).split(":"))
        arrays = _Arrays(days, pre, opens, closes, post, early, time(hh, mm, ss))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("calendar cache %s not used (%s): building it again", path, exc)
        return None
    n = len(days)
    ok = n > 0 and all(len(x) == n for x in (pre, opens, closes, post, early))
    ok = ok and all(a < b for a, b in zip(days, days[1:]))
    ok = ok and all(p <= o < c <= q for p, o, c, q in zip(pre, opens, closes, post))
    if not ok:
        log.info("calendar cache %s is not consistent: building it again", path)
        return None
    return arrays


def _write_cache(path: str, arrays: _Arrays) -> None:
    """Write ``arrays`` to ``path`` atomically (a temporary file, then a rename); a cache
    that cannot be written is skipped (logged), never an error."""
    instants = (arrays.pre, arrays.opens, arrays.closes, arrays.post)
    if any(x % _US_PER_MINUTE for xs in instants for x in xs):
        return  # not whole minutes: kept in memory only
    body = {
        "format": _CACHE_FORMAT,
        "days": arrays.days,
        "pre": [x // _US_PER_MINUTE for x in arrays.pre],
        "opens": [x // _US_PER_MINUTE for x in arrays.opens],
        "closes": [x // _US_PER_MINUTE for x in arrays.closes],
        "post": [x // _US_PER_MINUTE for x in arrays.post],
        "early": [int(x) for x in arrays.early],
        "regular_close": arrays.regular_close.isoformat(),
    }
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(body, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError as exc:
        log.info("calendar cache %s not written: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _build(name: str) -> _Arrays:
    """The sessions of calendar ``name``: from the cache file when there is a good one,
    else from exchange_calendars (then written to the cache)."""
    end = date(date.today().year + _YEARS_AHEAD, 12, 31)
    path = _cache_path(name, end)
    cached = _read_cache(path) if path is not None else None
    if cached is not None:
        return cached
    arrays = _build_from_exchange_calendars(name, end)
    if path is not None:
        _write_cache(path, arrays)
    return arrays


def _build_from_exchange_calendars(name: str, end: date) -> _Arrays:
    """Load calendar ``name`` from exchange_calendars and turn it into plain lists."""
    import warnings

    import exchange_calendars as xc
    import numpy as np
    import pandas as pd

    try:
        with warnings.catch_warnings():  # pandas deprecations inside exchange_calendars
            warnings.simplefilter("ignore")
            cal = xc.get_calendar(name, start=_FIRST_DAY, end=end.isoformat())
    except xc.errors.InvalidCalendarName as exc:
        raise ValueError(f"unknown exchange calendar {name!r} (e.g. 'XNYS', 'XCBO')") from exc
    sessions = pd.DatetimeIndex(cal.sessions)
    us = "datetime64[us]"
    opens = cal.opens.dt.tz_convert(None).to_numpy().astype(us).astype(np.int64)
    closes = cal.closes.dt.tz_convert(None).to_numpy().astype(us).astype(np.int64)
    local_pre = sessions + pd.Timedelta(hours=PRE_MARKET_OPEN.hour, minutes=PRE_MARKET_OPEN.minute)
    pre = local_pre.tz_localize(str(cal.tz)).tz_convert(None).to_numpy().astype(us).astype(np.int64)
    post = closes + int(POST_MARKET_HOURS / _US)
    early = sessions.isin(pd.DatetimeIndex(cal.early_closes))
    regular_close = cal.close_times[-1][1]
    days = [d.toordinal() for d in sessions.date]
    return _Arrays(days, pre.tolist(), opens.tolist(), closes.tolist(), post.tolist(), early.tolist(), regular_close)


_CALENDARS: dict[str, ExchangeCalendar] = {}
_CALENDARS_LOCK = threading.Lock()


def get_calendar(name: str = "XNYS") -> ExchangeCalendar:
    """The shared :class:`ExchangeCalendar` of ``name`` (one per name and process; its
    sessions load on first lookup, which raises ``ValueError`` for an unknown name)."""
    cal = _CALENDARS.get(name)
    if cal is None:
        with _CALENDARS_LOCK:
            cal = _CALENDARS.setdefault(name, ExchangeCalendar(name))
    return cal


def nyse_calendar() -> ExchangeCalendar:
    """The shared ``XNYS`` calendar: US stocks and equity options."""
    return get_calendar("XNYS")
