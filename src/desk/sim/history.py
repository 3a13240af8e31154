"""Historical bars of the simulated gateway: reqHistoricalData (20), keepUpToDate
updates (historicalDataUpdate 90), cancelHistoricalData (25) and reqHeadTimeStamp (87).

Where bars come from (a :class:`HistorySource`):

* :class:`ModelHistory` (default): the seeded market model. Before the gateway started
  (``T0``) the history is **synthetic and deterministic** (same seed and same start time,
  same bars); from ``T0`` on it is the model's own path, sampled after every market step.
  The two meet: the previous trading day's close is the model's previous close (tick 9),
  the day of ``T0`` opens at the model's open (tick 14) and its synthetic part ends at the
  model's price at ``T0``, so the history ends at the current price and keeps following it.
  The synthetic past: trading days and hours are the sessions of the desk's exchange
  calendar (:func:`desk.domain.calendar.nyse_calendar`: no bars on weekends and exchange
  holidays, 09:30-16:00 ET, 09:30-13:00 ET on half days); close-to-close log returns and intraday minute paths are
  Gaussian with the stock's annual volatility (a Brownian bridge from each day's open to
  its close), an overnight gap of 0.3 daily sigma, a U-shaped intraday volume profile
  around the stock's daily volume; quotes are the path rounded to the tick grid with the
  stock's usual spread. Up to :data:`MAX_SYNTHETIC_DAYS` trading days back.
* a replay source (:mod:`desk.sim.replay`): the recorded bars of the replayed day, and
  recorded daily bars before it.

Request rules (IB's, as far as the simulator needs them; TWS API "Historical Bar Data"):

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
  message:" prefix for bad bar size, duration, whatToShow, end time, too many bars, or
  no data in the range ("HMDS query returned no data").

keepUpToDate: after each market step the last (in-progress) bar of every live request is
recomputed and sent as historicalDataUpdate 90 when it changed; a new bar starts when
the clock crosses the bar boundary. cancelHistoricalData stops it.

All times are UTC epoch seconds internally; prices dollars per share.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from desk.domain.calendar import (
    EXCHANGE_TZ_ID,
    NEW_YORK,
    SECONDS_PER_TRADING_YEAR,
    exchange_date,
    nyse_calendar,
)
from desk.domain.calendar import Session as CalendarSession
from desk.domain.calendar import exchange_midnight as _midnight
from desk.sim import messages as m
from desk.sim.codec import encode_fields
from desk.sim.contracts import CONTRACT_FIELDS, ContractQuery, resolve
from desk.sim.market import SESSION_SECONDS
from desk.sim.messages import Code
from desk.sim.ports import Client, Host

__all__ = [
    "BAR_SECONDS",
    "MAX_SYNTHETIC_DAYS",
    "WHAT_TO_SHOW",
    "Bars",
    "HistoryError",
    "HistoryKey",
    "HistoryService",
    "HistorySource",
    "ModelHistory",
    "aggregate",
    "bid_ask_bars",
    "daily_from_minutes",
    "parse_duration",
    "parse_end",
]

log = logging.getLogger("desk.sim")

#: IB bar size texts the simulator serves, in seconds.
BAR_SECONDS: dict[str, int] = {
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 86400,
}
#: whatToShow values served.
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
#: Trading days of synthetic history before the gateway started (about 10 years).
MAX_SYNTHETIC_DAYS = 2520
#: Most 1-minute bars one request may cover (about two years of sessions).
MAX_MINUTES = 200_000
#: Minutes of a full regular session (09:30-16:00 ET): the width of a synthetic day.
SESSION_MINUTES = int(SESSION_SECONDS) // 60  # 390
_HMDS = "Historical Market Data Service error message:"


class HistoryError(Exception):
    """A historical request the simulator refuses: ``code`` (162 or 200) and IB-style text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# --------------------------------------------------------------------------------------
# bars
# --------------------------------------------------------------------------------------


class Bars:
    """Bars as parallel numpy arrays (sorted by time): ``time`` bar start, int64 UTC epoch
    seconds; ``open``/``high``/``low``/``close`` dollars per share; ``volume`` shares or
    contracts (TRADES; ``nan`` for quotes); ``wap`` dollars per share; ``count`` trades.
    ``len()`` is the number of bars; iterating yields the eight arrays in that order."""

    __slots__ = ("time", "open", "high", "low", "close", "volume", "wap", "count")

    def __init__(self, time: np.ndarray, open: np.ndarray, high: np.ndarray, low: np.ndarray,
                 close: np.ndarray, volume: np.ndarray, wap: np.ndarray, count: np.ndarray) -> None:
        self.time = time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.wap = wap
        self.count = count

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.time, self.open, self.high, self.low, self.close, self.volume, self.wap, self.count))

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def __repr__(self) -> str:
        return f"Bars({len(self)} bars)"

    @staticmethod
    def empty() -> Bars:
        f = np.empty(0)
        return Bars(np.empty(0, dtype=np.int64), f, f, f, f, f, f, np.empty(0, dtype=np.int64))

    def take(self, idx: Any) -> Bars:
        return Bars(*(a[idx] for a in self))

    def with_time(self, time: np.ndarray) -> Bars:
        return Bars(time, self.open, self.high, self.low, self.close, self.volume, self.wap, self.count)

    @staticmethod
    def concat(parts: list[Bars]) -> Bars:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Bars.empty()
        if len(parts) == 1:
            return parts[0]
        return Bars(*(np.concatenate(cols) for cols in zip(*parts)))

    def window(self, start: int, end: int) -> Bars:
        """Bars with ``start <= time < end``."""
        lo = int(np.searchsorted(self.time, start, "left"))
        hi = int(np.searchsorted(self.time, end, "left"))
        return self if lo == 0 and hi == len(self) else self.take(slice(lo, hi))


def exchange_offsets(t: np.ndarray) -> np.ndarray:
    """UTC offset of New York time (seconds, e.g. -18000) for each epoch second in ``t``,
    taken at noon UTC of the bar's UTC date (DST switches at 02:00 have no sessions)."""
    if not len(t):
        return np.empty(0, dtype=np.int64)
    days = t // 86400
    uniq, inv = np.unique(days, return_inverse=True)
    offs = np.array([int(datetime.fromtimestamp(int(d) * 86400 + 43200, NEW_YORK).utcoffset().total_seconds())
                     for d in uniq], dtype=np.int64)
    return offs[inv]


def rth_mask(t: np.ndarray) -> np.ndarray:
    """True for bars starting (UTC epoch seconds) inside a regular session of the
    exchange calendar (:meth:`desk.domain.calendar.ExchangeCalendar.regular_mask`)."""
    return nyse_calendar().regular_mask(t)


def aggregate(b: Bars, labels: np.ndarray, quote_mean: bool = False) -> Bars:
    """Merge consecutive rows with the same label: first open, max high, min low, last
    close, summed volume and count, volume-weighted WAP; the bar time is its first row's.
    ``quote_mean`` (BID_ASK) takes the mean of opens and of closes instead."""
    n = len(b)
    if n == 0:
        return b
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], n]
    sizes = ends - starts
    if quote_mean:
        open_ = np.add.reduceat(b.open, starts) / sizes
        close = np.add.reduceat(b.close, starts) / sizes
    else:
        open_ = b.open[starts]
        close = b.close[ends - 1]
    high = np.maximum.reduceat(b.high, starts)
    low = np.minimum.reduceat(b.low, starts)
    vol = np.add.reduceat(np.nan_to_num(b.volume), starts)
    count = np.add.reduceat(b.count, starts)
    notional = np.add.reduceat(np.nan_to_num(b.wap * b.volume), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        wap = np.where(vol > 0, notional / np.where(vol > 0, vol, 1), close)
    if np.isnan(b.volume).all():  # quote bars: no volume, WAP or count (IB sends -1)
        vol = np.full(len(starts), np.nan)
        wap = np.full(len(starts), np.nan)
        count = np.full(len(starts), -1, dtype=np.int64)
    return Bars(b.time[starts], open_, high, low, close, vol, wap, count)


def bucket_labels(t: np.ndarray, seconds: int) -> np.ndarray:
    """Bucket of each bar time for ``seconds``-long bars aligned to the exchange clock
    (New York midnight + k x seconds); daily: the exchange date."""
    local = t + exchange_offsets(t)
    return local // seconds


# --------------------------------------------------------------------------------------
# request parsing
# --------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> tuple[int, str]:
    """``"3 D"`` -> ``(3, "D")``; :class:`HistoryError` (162) for anything else."""
    mt = _DURATION_RE.match(text or "")
    if not mt or int(mt[1]) <= 0:
        raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{_HMDS}Invalid duration {text!r} (expected e.g. '1 D')")
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
        raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{_HMDS}Invalid end date/time {s!r}") from None
    return min(t.timestamp(), now)


def exchange_midnight(d: date) -> int:
    """UTC epoch seconds of 00:00 New York time on exchange date ``d``."""
    return int(_midnight(d).timestamp())


def sessions_back(end_day: date, n: int) -> date:
    """The ``n``-th session (exchange calendar) counting back from ``end_day`` (itself if
    it is a session, n=1)."""
    return np.busday_offset(end_day, -(n - 1), roll="backward",
                            busdaycal=nyse_calendar().busday_calendar()).astype(object)


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryKey:
    """What a historical request resolved to: ``key`` the source's own handle (a stock
    symbol or an option conId), ``decimals`` of prices on the wire."""

    key: Any
    decimals: int = 2


class HistorySource(Protocol):
    """Where :class:`HistoryService` gets bars."""

    def resolve(self, q: ContractQuery) -> HistoryKey | None:
        """The instrument of a request's contract, or ``None`` (error 200)."""

    def minute_bars(self, key: Any, what: str, start: int, end: int) -> Bars:
        """1-minute bars of ``what`` (TRADES, MIDPOINT, BID, ASK) with ``start <= time <
        end`` (UTC epoch seconds), including the bar in progress if the source has one."""

    def daily_bars(self, key: Any, what: str, first: date, last: date) -> Bars:
        """Daily bars for exchange dates ``first`` .. ``last`` (times: 00:00 New York time)."""

    def head_time(self, key: Any) -> float | None:
        """Earliest time with data (UTC epoch seconds), ``None`` if none."""

    def sample(self, now: float) -> None:
        """Called after every market step (live sources record the market here)."""


def daily_from_minutes(minutes: Bars, what: str) -> Bars:
    if not len(minutes):
        return minutes
    local = minutes.time + exchange_offsets(minutes.time)
    labels = local // 86400
    out = aggregate(minutes, labels, quote_mean=(what == "BID_ASK"))
    day_starts = np.array([exchange_midnight(date.fromordinal(int(d) + 719163)) for d in labels[
        np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])]], dtype=np.int64)
    return out.with_time(day_starts)


class _LiveSeries:
    """The model's own 1-minute bars since the gateway started (one symbol)."""

    __slots__ = ("time", "o", "h", "lo", "c", "vol", "count", "notional", "last_volume", "last_trades")

    def __init__(self) -> None:
        self.time: list[int] = []
        # per series (0 TRADES, 1 MIDPOINT, 2 BID, 3 ASK): parallel lists
        self.o: list[list[float]] = [[], [], [], []]
        self.h: list[list[float]] = [[], [], [], []]
        self.lo: list[list[float]] = [[], [], [], []]
        self.c: list[list[float]] = [[], [], [], []]
        self.vol: list[float] = []
        self.count: list[int] = []
        self.notional: list[float] = []
        self.last_volume = -1
        self.last_trades = -1

    def add(self, minute: int, prices: tuple[float, float, float, float], traded: int, trades: int) -> None:
        """Sample at ``minute``: ``prices`` = (last, mid, bid, ask); ``traded`` shares and
        ``trades`` prints since the previous sample (the TRADES bar moves only on prints)."""
        if not self.time or self.time[-1] != minute:
            self.time.append(minute)
            for k in range(4):
                p = prices[k]
                self.o[k].append(p)
                self.h[k].append(p)
                self.lo[k].append(p)
                self.c[k].append(p)
            self.vol.append(float(traded))
            self.count.append(trades)
            self.notional.append(traded * prices[0])
            return
        first_print = traded > 0 and self.vol[-1] == 0
        for k in range(4):
            p = prices[k]
            if k == 0 and not traded:
                continue
            if k == 0 and first_print:
                self.o[0][-1] = self.h[0][-1] = self.lo[0][-1] = self.c[0][-1] = p
                continue
            if p > self.h[k][-1]:
                self.h[k][-1] = p
            if p < self.lo[k][-1]:
                self.lo[k][-1] = p
            self.c[k][-1] = p
        self.vol[-1] += traded
        self.count[-1] += trades
        self.notional[-1] += traded * prices[0]

    def bars(self, series: int, start: int, end: int) -> Bars:
        lo = bisect.bisect_left(self.time, start)
        hi = bisect.bisect_left(self.time, end)
        if lo >= hi:
            return Bars.empty()
        t = np.array(self.time[lo:hi], dtype=np.int64)
        o = np.array(self.o[series][lo:hi])
        h = np.array(self.h[series][lo:hi])
        lw = np.array(self.lo[series][lo:hi])
        c = np.array(self.c[series][lo:hi])
        if series == 0:
            vol = np.array(self.vol[lo:hi])
            cnt = np.array(self.count[lo:hi], dtype=np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                wap = np.where(vol > 0, np.array(self.notional[lo:hi]) / np.where(vol > 0, vol, 1), c)
            keep = vol > 0  # minutes without a print have no TRADES bar
            return Bars(t, o, h, lw, c, vol, wap, cnt).take(keep)
        nan = np.full(hi - lo, np.nan)
        return Bars(t, o, h, lw, c, nan, nan, np.full(hi - lo, -1, dtype=np.int64))


_SERIES = {"TRADES": 0, "MIDPOINT": 1, "BID": 2, "ASK": 3}


@dataclass
class _Anchor:
    """The model's state when the gateway started (per symbol)."""

    t0: float
    open: float
    prev_close: float
    price: float
    volume: int
    tick: float
    spread: int
    vol: float
    daily_volume: int
    mean_print: float
    con_id: int
    decimals: int


class _Block:
    """Synthetic minutes of ``BLOCK_DAYS`` consecutive calendar days (rows; weekends,
    holidays and days outside the synthetic past are invalid rows): the mid path's minute
    OHLC (days x 390), volume and trade count, plus every valid day's daily bar per
    series. ``minutes``: the session's length per row (390, 210 on a half day, whose
    row is flat at the close with no volume after its ``minutes``)."""

    __slots__ = ("first", "valid", "minutes", "mo", "mh", "ml", "mc", "vol", "count", "daily")

    def __init__(self, first: int, valid: np.ndarray, minutes: np.ndarray, mo: np.ndarray, mh: np.ndarray,
                 ml: np.ndarray, mc: np.ndarray, vol: np.ndarray, count: np.ndarray, daily: dict[str, Bars]) -> None:
        self.first = first
        self.valid = valid
        self.minutes = minutes
        self.mo, self.mh, self.ml, self.mc = mo, mh, ml, mc
        self.vol = vol
        self.count = count
        self.daily = daily


#: Calendar days generated together (one seeded draw per block of days).
BLOCK_DAYS = 64


class ModelHistory:
    """History of the seeded market model (see the module docstring).

    ``ModelHistory(market, clock, seed)`` must be built before the market first steps
    (the gateway does it in its constructor): it anchors the synthetic past on the
    model's initial state at ``clock.time()``.

    Determinism: day ``d``'s minutes come from a generator seeded with ``(seed, conId, 2,
    block of d)`` and the close-to-close path from ``(seed, conId, 1)`` counted in trading
    days back from T0's date, so a request's bars do not depend on earlier requests.
    """

    def __init__(self, market: Any, clock: Any, seed: int) -> None:
        self.market = market
        self.clock = clock
        self.seed = int(seed)
        self.t0 = float(clock.time())
        self._anchor: dict[str, _Anchor] = {}
        for sym in market.symbols:
            st = market.state(sym)
            s = st.stock
            self._anchor[sym] = _Anchor(
                self.t0, st.open, st.close, (st.bid + st.ask) / 2.0, st.volume, s.min_tick, s.spread_ticks,
                s.annual_vol, s.daily_volume, max(1.0, s.daily_volume / (s.trade_rate * SESSION_SECONDS)),
                s.con_id, s.decimals)
        self._live: dict[str, _LiveSeries] = {sym: _LiveSeries() for sym in self._anchor}
        self._daily: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._blocks: OrderedDict[tuple[str, int], _Block] = OrderedDict()
        self._block_daily: dict[tuple[str, int], dict[str, Bars]] = {}
        self._today: dict[str, dict[str, Bars] | None] = {}
        self._t0_day = exchange_date(self.t0)

    # --- HistorySource ------------------------------------------------------------------

    def resolve(self, q: ContractQuery) -> HistoryKey | None:
        found = resolve(q)
        if found is None or found[0].symbol not in self._anchor:
            return None
        return HistoryKey(found[0].symbol, found[0].decimals)

    def head_time(self, key: Any) -> float | None:
        first = sessions_back(self._t0_day - timedelta(days=1), MAX_SYNTHETIC_DAYS)
        return nyse_calendar().session(first).open.timestamp()

    def sample(self, now: float) -> None:
        minute = int(now // 60 * 60)
        market = self.market
        for sym, live in self._live.items():
            st = market.state(sym)
            bid, ask = st.bid, st.ask
            trades = st.trades
            volume = st.volume
            traded = volume - live.last_volume if live.last_volume >= 0 else 0
            n = trades - live.last_trades if live.last_trades >= 0 else 0
            live.last_volume, live.last_trades = volume, trades
            live.add(minute, (st.last, round((bid + ask) / 2.0, 6), bid, ask), max(0, traded), max(0, n))

    def minute_bars(self, key: Any, what: str, start: int, end: int) -> Bars:
        parts = []
        t0_minute = int(self.t0 // 60 * 60)
        if start < t0_minute:
            stop = min(end, t0_minute)
            d = exchange_date(start)
            last = exchange_date(stop - 1)
            while d <= last:
                day = self._synthetic_day(key, d)
                if day is not None:
                    parts.append(day[what].window(start, stop))
                d += timedelta(days=1)
        if end > t0_minute:
            parts.append(self._live[key].bars(_SERIES[what], max(start, t0_minute), end))
        return Bars.concat(parts)

    def daily_bars(self, key: Any, what: str, first: date, last: date) -> Bars:
        parts = []
        past_end = min(last, self._t0_day - timedelta(days=1))
        if first <= past_end:  # the synthetic past: precomputed per block
            for b in range(first.toordinal() // BLOCK_DAYS, past_end.toordinal() // BLOCK_DAYS + 1):
                daily = self._block_daily_bars(key, b)
                if daily is None:
                    continue
                parts.append(daily[what].window(exchange_midnight(first), exchange_midnight(past_end) + 1))
        d = max(first, self._t0_day)
        while d <= last:  # T0's date and later: synthetic start of T0's day + live minutes
            lo = exchange_midnight(d)
            hi = exchange_midnight(d + timedelta(days=1))
            if what == "BID_ASK":
                mins = bid_ask_bars(self.minute_bars(key, "BID", lo, hi), self.minute_bars(key, "ASK", lo, hi))
            else:
                mins = self.minute_bars(key, what, lo, hi)
            parts.append(daily_from_minutes(mins, what))
            d += timedelta(days=1)
        return Bars.concat(parts)

    # --- synthetic past -------------------------------------------------------------------

    def _daily_path(self, key: str, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(open, close, volume) of the trading days ``k`` (>= 1) days back from T0's
        date: close-to-close Gaussian log returns from the previous close, an overnight
        gap of 0.3 daily sigma, volume lognormal around the daily volume."""
        a = self._anchor[key]
        arr = self._daily.get(key)
        need = int(k.max()) + 1 if len(k) else 1
        if arr is None or arr[0].shape[0] < need:
            size = 1 << (max(need, 256) - 1).bit_length()
            z = np.random.default_rng([self.seed, a.con_id, 1]).standard_normal((size, 3))
            sd = a.vol / math.sqrt(252.0)
            r = z[:, 0] * sd  # close-to-close log return of the day j = index + 1
            # log close of day j at index j - 1 (day 1 closes at the model's previous close)
            logc = math.log(a.prev_close) - np.concatenate([[0.0], np.cumsum(r[:-1])])
            gap = z[:, 1] * 0.3 * sd
            vols = a.daily_volume * np.exp(0.25 * z[:, 2] - 0.03125)
            arr = self._daily[key] = (logc, gap, vols)
        logc, gap, vols = arr
        close = np.exp(logc[k - 1])
        open_ = np.exp(logc[k]) * np.exp(gap[k - 1])
        return open_, close, vols[k - 1]

    def _draws(self, key: str, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = self._anchor[key]
        rng = np.random.default_rng([self.seed, a.con_id, 2, b])
        eps = rng.standard_normal((BLOCK_DAYS, SESSION_MINUTES))
        wick = np.abs(rng.standard_normal((2, BLOCK_DAYS, SESSION_MINUTES)))
        noise = rng.standard_normal((BLOCK_DAYS, SESSION_MINUTES))
        return eps, wick, noise

    def _block(self, key: str, b: int) -> _Block:
        ck = (key, b)
        hit = self._blocks.get(ck)
        if hit is not None:
            self._blocks.move_to_end(ck)
            return hit
        a = self._anchor[key]
        first = b * BLOCK_DAYS
        days = np.arange(first, first + BLOCK_DAYS)
        d64 = (days - 719163).astype("datetime64[D]")  # ordinal -> numpy date (1970-01-01 = 719163)
        t0 = np.datetime64(self._t0_day, "D")
        cal = nyse_calendar()
        minutes = np.zeros(BLOCK_DAYS, dtype=np.int64)
        for sess in cal.sessions(date.fromordinal(first), date.fromordinal(first + BLOCK_DAYS - 1)):
            minutes[sess.day.toordinal() - first] = _session_minutes(sess)
        # session index back from T0's date (1 = previous)
        k = np.busday_count(d64, t0, busdaycal=cal.busday_calendar())
        valid = (minutes > 0) & (d64 < t0) & (k <= MAX_SYNTHETIC_DAYS)
        kv = np.where(valid, k, 1)
        open_, close, volume = self._daily_path(key, kv)
        eps, wick, noise = self._draws(key, b)
        mo, mh, ml, mc, vol, count = _bridge(a, eps, wick, noise, open_, close, volume)
        for r in np.flatnonzero(valid & (minutes < SESSION_MINUTES)):  # half days: a shorter bridge
            n = int(minutes[r])
            short = _bridge(a, eps[r:r + 1, :n], wick[:, r:r + 1, :n], noise[r:r + 1, :n], open_[r:r + 1],
                            close[r:r + 1], volume[r:r + 1], n)
            for full, part in zip((mo, mh, ml, mc, vol, count), short, strict=True):
                full[r, :n] = part[0]
                full[r, n:] = 0
            for full in (mo, mh, ml, mc):  # flat at the close after it, so day highs/lows/closes hold
                full[r, n:] = mc[r, n - 1]
        block = _Block(first, valid, minutes, mo, mh, ml, mc, vol, count, {})
        self._blocks[ck] = block
        if len(self._blocks) > 16:
            self._blocks.popitem(last=False)
        return block

    def _block_daily_bars(self, key: str, b: int) -> dict[str, Bars] | None:
        ck = (key, b)
        daily = self._block_daily.get(ck)
        if daily is None:
            block = self._block(key, b)
            rows = np.flatnonzero(block.valid)
            if not len(rows):
                daily = {}
            else:
                a = self._anchor[key]
                t = np.array([exchange_midnight(date.fromordinal(block.first + int(r))) for r in rows], dtype=np.int64)
                mo = block.mo[rows, 0]
                mh = block.mh[rows].max(axis=1)
                ml = block.ml[rows].min(axis=1)
                mc = block.mc[rows, -1]
                vol = block.vol[rows]
                # WAP of the day from the minutes' trade prices (monotone maps commute with max/min)
                trade_wap = (_trade_px(a, block.mh[rows]) + _trade_px(a, block.ml[rows])
                             + _trade_px(a, block.mc[rows])) / 3.0
                day_vol = vol.sum(axis=1)
                wap = np.round((trade_wap * vol).sum(axis=1) / day_vol, a.decimals + 3)
                daily = _series(a, t, mo, mh, ml, mc, day_vol, wap, block.count[rows].sum(axis=1))
                daily["BID_ASK"] = _bid_ask_daily(a, t, block, rows)
            self._block_daily[ck] = daily
        return daily or None

    def _synthetic_day(self, key: str, d: date) -> dict[str, Bars] | None:
        if d > self._t0_day:
            return None
        cal = nyse_calendar()
        if not (cal.first_session <= d <= cal.last_session and cal.is_session(d)):
            return None  # weekend, holiday or before the calendar
        sess = cal.session(d)
        a = self._anchor[key]
        start = int(sess.open.timestamp())
        length = _session_minutes(sess)
        if d == self._t0_day:
            if key not in self._today:
                n = min(length, max(0, int((a.t0 - start) // 60)))
                if n <= 0:
                    self._today[key] = None
                else:
                    b, r = divmod(d.toordinal(), BLOCK_DAYS)
                    eps, wick, noise = self._draws(key, b)
                    mo, mh, ml, mc, vol, count = _bridge(
                        a, eps[r:r + 1, :n], wick[:, r:r + 1, :n], noise[r:r + 1, :n], np.array([a.open]),
                        np.array([a.price]), np.array([float(a.volume)]), length)
                    t = start + 60 * np.arange(n, dtype=np.int64)
                    self._today[key] = _minute_series(a, t, mo[0], mh[0], ml[0], mc[0], vol[0], count[0])
            return self._today[key]
        b, r = divmod(d.toordinal(), BLOCK_DAYS)
        block = self._block(key, b)
        if not block.valid[r]:
            return None
        t = start + 60 * np.arange(length, dtype=np.int64)
        return _minute_series(a, t, block.mo[r, :length], block.mh[r, :length], block.ml[r, :length],
                              block.mc[r, :length], block.vol[r, :length], block.count[r, :length])


def _session_minutes(sess: CalendarSession) -> int:
    """Minutes of a session's regular hours (390; 210 on a half day)."""
    return int((sess.close - sess.open).total_seconds()) // 60


def _bridge(a: _Anchor, eps: np.ndarray, wick: np.ndarray, noise: np.ndarray, open_: np.ndarray,
            close: np.ndarray, volume: np.ndarray, session_minutes: int = SESSION_MINUTES
            ) -> tuple[np.ndarray, ...]:
    """Minute OHLC of the mid (days x n), volume and trade counts: per day a Brownian
    bridge of minute log returns (the stock's volatility on the trading-time clock) from
    ``open_`` to ``close``; wicks of half a minute's sigma; a U-shaped volume profile
    over a session of ``session_minutes`` (heavier at the open and the close) summing to
    ``volume``."""
    n = eps.shape[1]
    sm = a.vol * math.sqrt(60.0 / SECONDS_PER_TRADING_YEAR)
    walk = np.cumsum(eps * sm, axis=1)
    target = np.log(np.maximum(close, a.tick) / np.maximum(open_, a.tick))
    frac = np.arange(1, n + 1) / n
    x = walk - frac[None, :] * (walk[:, -1] - target)[:, None]
    path = open_[:, None] * np.exp(np.concatenate([np.zeros((len(open_), 1)), x], axis=1))
    mo, mc = path[:, :-1], path[:, 1:]
    mh = np.maximum(mo, mc) * np.exp(wick[0] * sm * 0.5)
    ml = np.minimum(mo, mc) * np.exp(-wick[1] * sm * 0.5)
    pos = (np.arange(n) + 0.5) / session_minutes * 2.0 - 1.0
    weight = (1.0 + 2.0 * pos * pos)[None, :] * np.exp(0.5 * noise)
    vol = np.maximum(1.0, np.round(volume[:, None] * weight / weight.sum(axis=1, keepdims=True)))
    count = np.maximum(1, np.round(vol / a.mean_print)).astype(np.int64)
    return mo, mh, ml, mc, vol, count


def _bid_ticks(a: _Anchor, p: np.ndarray) -> np.ndarray:
    return np.maximum(1.0, np.floor(p / a.tick - a.spread / 2.0 + 0.5))


def _trade_px(a: _Anchor, p: np.ndarray) -> np.ndarray:
    return np.round(np.maximum(1.0, np.round(p / a.tick)) * a.tick, a.decimals + 1)


def _series(a: _Anchor, t: np.ndarray, mo: np.ndarray, mh: np.ndarray, ml: np.ndarray, mc: np.ndarray,
            vol: np.ndarray, wap: np.ndarray, count: np.ndarray) -> dict[str, Bars]:
    """TRADES / MIDPOINT / BID / ASK bars from the mid path's OHLC: quotes on the tick
    grid with the stock's spread, trades at the mid rounded to a tick (all monotone in
    the mid, so they commute with taking highs and lows)."""
    dec = a.decimals + 1
    bid = [np.round(_bid_ticks(a, p) * a.tick, dec) for p in (mo, mh, ml, mc)]
    ask = [np.round((_bid_ticks(a, p) + a.spread) * a.tick, dec) for p in (mo, mh, ml, mc)]
    mid = [np.round((x + y) / 2.0, dec + 1) for x, y in zip(bid, ask)]
    trade = [_trade_px(a, p) for p in (mo, mh, ml, mc)]
    nan = np.full(len(t), np.nan)
    none = np.full(len(t), -1, dtype=np.int64)
    return {
        "TRADES": Bars(t, *trade, vol, wap, count),
        "MIDPOINT": Bars(t, *mid, nan, nan, none),
        "BID": Bars(t, *bid, nan, nan, none),
        "ASK": Bars(t, *ask, nan, nan, none),
    }


def _minute_series(a: _Anchor, t: np.ndarray, mo: np.ndarray, mh: np.ndarray, ml: np.ndarray, mc: np.ndarray,
                   vol: np.ndarray, count: np.ndarray) -> dict[str, Bars]:
    wap = np.round((_trade_px(a, mh) + _trade_px(a, ml) + _trade_px(a, mc)) / 3.0, a.decimals + 3)
    return _series(a, t, mo, mh, ml, mc, vol, wap, count)


def _bid_ask_daily(a: _Anchor, t: np.ndarray, block: _Block, rows: np.ndarray) -> Bars:
    """Daily BID_ASK bars (IB: open = time-average bid, high = max ask, low = min bid,
    close = time-average ask) from a block's minutes."""
    dec = a.decimals + 1
    bid_o = _bid_ticks(a, block.mo[rows]) * a.tick
    bid_c = _bid_ticks(a, block.mc[rows]) * a.tick
    n = block.minutes[rows]
    live = np.arange(bid_o.shape[1])[None, :] < n[:, None]  # a half day's minutes only
    open_ = np.round(np.where(live, (bid_o + bid_c) / 2.0, 0.0).sum(axis=1) / n, dec + 3)
    close = np.round(open_ + a.spread * a.tick, dec + 3)
    high = np.round((_bid_ticks(a, block.mh[rows].max(axis=1)) + a.spread) * a.tick, dec)
    low = np.round(_bid_ticks(a, block.ml[rows].min(axis=1)) * a.tick, dec)
    nan = np.full(len(t), np.nan)
    return Bars(t, open_, high, low, close, nan, nan, np.full(len(t), -1, dtype=np.int64))


def bid_ask_bars(bid: Bars, ask: Bars) -> Bars:
    """Per-minute BID_ASK inputs: open/close = mid of the bid bar and of the ask bar
    (the time averages IB reports), high = ask high, low = bid low; minutes with both."""
    if not len(bid) or not len(ask):
        return Bars.empty()
    common, ib, ia = np.intersect1d(bid.time, ask.time, assume_unique=True, return_indices=True)
    b, a = bid.take(ib), ask.take(ia)
    ok = ~(np.isnan(b.open) | np.isnan(a.open))
    nan = np.full(len(common), np.nan)
    out = Bars(common, (b.open + b.close) / 2.0, a.high, b.low, (a.open + a.close) / 2.0, nan, nan,
               np.full(len(common), -1, dtype=np.int64))
    return out.take(ok)


# --------------------------------------------------------------------------------------
# the service
# --------------------------------------------------------------------------------------


@dataclass
class _Request:
    session: Client
    req_id: int
    key: HistoryKey
    what: str
    bar_seconds: int
    use_rth: bool
    format_date: int
    last_sent: tuple = field(default_factory=tuple)  # wire fields of the last bar sent
    last_time: int = 0  # its start, UTC epoch seconds


def _fmt(x: float, decimals: int) -> str:
    if x != x:
        return "-1"
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class HistoryService:
    """Answers the historical requests of every session of one gateway.

    ``HistoryService(gateway)`` serves the gateway's market model through
    :class:`ModelHistory`, or the market's own ``history_source()`` when it has one (the
    replay's :class:`~desk.sim.replay.ReplayHistory`); or pass ``source``.
    The gateway calls :meth:`on_step` after every market step.
    """

    def __init__(self, gateway: Host, source: HistorySource | None = None) -> None:
        self.gateway = gateway
        if source is None:  # a market with its own history (the replay) provides it
            make = getattr(gateway.market, "history_source", None)
            source = make() if make is not None else ModelHistory(gateway.market, gateway.clock, gateway.seed)
        self.source: HistorySource = source
        self._live: dict[tuple[int, int], _Request] = {}
        #: historical requests answered (bars sent) since start
        self.requests = 0

    # --- requests -----------------------------------------------------------------------

    def handle_request(self, session: Client, fields: list[str]) -> None:
        """reqHistoricalData (20): answer with historicalData 17, or error 162/200."""
        req_id = int(fields[1])
        try:
            self._answer(session, req_id, fields)
        except HistoryError as e:
            session.send(m.error(req_id, e.code, e.text))

    def handle_cancel(self, session: Client, fields: list[str]) -> None:
        """cancelHistoricalData (25, version 1, reqId): stop keepUpToDate updates."""
        req_id = int(fields[2]) if len(fields) > 2 else int(fields[-1])
        self._live.pop((id(session), req_id), None)

    def silence_updates(self) -> int:
        """Stop every keepUpToDate request without telling its client (the HMDS farm blip
        of :mod:`desk.sim.faults`); returns how many. A new request is updated again."""
        n = len(self._live)
        self._live.clear()
        return n

    def handle_head_timestamp(self, session: Client, fields: list[str]) -> None:
        """reqHeadTimeStamp (87): headTimestamp 88 with the earliest bar time."""
        req_id = int(fields[1])
        q = ContractQuery.from_fields(fields, 2)
        key = self.source.resolve(q)
        if key is None:
            session.send(m.error(req_id, Code.NO_SECURITY_DEFINITION))
            return
        t = self.source.head_time(key.key)
        if t is None:
            session.send(m.error(req_id, Code.HISTORICAL_DATA_ERROR, f"{_HMDS}HMDS query returned no data"))
            return
        text = f"{datetime.fromtimestamp(t, NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"
        session.send(encode_fields((88, req_id, text)))

    def _answer(self, session: Client, req_id: int, fields: list[str]) -> None:
        q = ContractQuery.from_fields(fields, 2)
        i = 2 + CONTRACT_FIELDS
        tail = fields[i:]
        if len(tail) < 7:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{_HMDS}malformed request ({len(fields)} fields)")
        end_text, bar_text, duration_text = tail[1], tail[2].strip(), tail[3]
        use_rth = tail[4].strip() == "1"
        what = tail[5].strip().upper()
        format_date = int(tail[6] or 1) if tail[6].strip().isdigit() else 1
        j = 7
        if q.sec_type == "BAG" and len(tail) > j:
            j += 1 + 4 * int(tail[j] or 0)
        keep = len(tail) > j and tail[j].strip() == "1"

        bar_seconds = BAR_SECONDS.get(bar_text)
        if bar_seconds is None:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR,
                               f"{_HMDS}Invalid bar size {bar_text!r}: the simulator serves "
                               f"{', '.join(BAR_SECONDS)}")
        if what not in WHAT_TO_SHOW:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR,
                               f"{_HMDS}whatToShow {what!r} is not served (use {', '.join(WHAT_TO_SHOW)})")
        n, unit = parse_duration(duration_text)
        if keep and end_text.strip():
            raise HistoryError(Code.HISTORICAL_DATA_ERROR,
                               f"{_HMDS}End date not supported with live updates (keepUpToDate needs an "
                               "empty endDateTime)")
        key = self.source.resolve(q)
        if key is None:
            raise HistoryError(Code.NO_SECURITY_DEFINITION, m.TEXT[Code.NO_SECURITY_DEFINITION])
        now = float(self.gateway.clock.time())
        end = parse_end(end_text, now)
        start = _duration_start(end, n, unit)
        # "now" includes the bar in progress (it starts at or before now)
        bar_end = end if end_text.strip() else end + 1e-3
        bars = self.bars(key.key, what, bar_seconds, start, bar_end, use_rth)
        if not len(bars):
            raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{_HMDS}HMDS query returned no data: {q.describe()} "
                               f"{what} {bar_text} {duration_text}")
        daily = bar_seconds >= 86400
        out = [17, req_id, _label(int(start), daily, format_date, True),
               _label(int(end), daily, format_date, True), len(bars)]
        for row in zip(*bars):
            out += _bar_fields(row, key.decimals, daily, format_date)
        session.send(encode_fields(out))
        self.requests += 1
        if keep:
            req = _Request(session, req_id, key, what, bar_seconds, use_rth, format_date)
            req.last_sent = tuple(out[-8:])
            req.last_time = int(bars.time[-1])
            self._live[(id(session), req_id)] = req

    def bars(self, key: Any, what: str, bar_seconds: int, start: float, end: float, use_rth: bool) -> Bars:
        """Bars of ``bar_seconds`` for ``start <= time < end`` (UTC epoch seconds)."""
        if bar_seconds >= 86400:
            first, last = exchange_date(start), exchange_date(end - 1e-6)
            if (last - first).days > 366 * 30:
                raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{_HMDS}too many daily bars requested")
            b = self.source.daily_bars(key, what, first, last)
            # a daily bar is in range if its session overlaps [start, end)
            keep = (b.time + 86400 > start) & (b.time < end)
            return b.take(keep)
        lo = int(start // 60 * 60)
        hi = int(math.ceil(end / 60) * 60) if end % 60 else int(end)
        if (hi - lo) // 60 > MAX_MINUTES * 7 // 2:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR,
                               f"{_HMDS}too many bars: narrow the duration or use a larger bar size")
        if what == "BID_ASK":
            mins = bid_ask_bars(self.source.minute_bars(key, "BID", lo, hi), self.source.minute_bars(key, "ASK", lo, hi))
        else:
            mins = self.source.minute_bars(key, what, lo, hi)
        if use_rth and len(mins):
            mins = mins.take(rth_mask(mins.time))
        if len(mins) > MAX_MINUTES:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR,
                               f"{_HMDS}too many bars: narrow the duration or use a larger bar size")
        if bar_seconds == 60 or not len(mins):
            return mins
        return aggregate(mins, bucket_labels(mins.time, bar_seconds), quote_mean=(what == "BID_ASK"))

    # --- keepUpToDate -------------------------------------------------------------------

    def on_step(self) -> None:
        """After a market step: let the source sample the market, then send changed
        last bars of keepUpToDate requests (historicalDataUpdate 90)."""
        now = float(self.gateway.clock.time())
        try:
            self.source.sample(now)
        except Exception:  # a broken source must not stop the market
            log.exception("history source failed to sample")
        if not self._live:
            return
        dead = []
        for k, req in self._live.items():
            if req.session.transport is None:
                dead.append(k)
                continue
            try:
                self._update(req, now)
            except HistoryError:
                pass
            except Exception:
                log.exception("historical update of request %d failed", req.req_id)
        for k in dead:
            del self._live[k]

    def _update(self, req: _Request, now: float) -> None:
        """Send the last bar again if it changed, then every bar completed or started
        since (a replay at speed can complete several per step)."""
        daily = req.bar_seconds >= 86400
        start = float(exchange_midnight(exchange_date(req.last_time))) if daily else float(req.last_time)
        bars = self.bars(req.key.key, req.what, req.bar_seconds, start, now + 1e-3, req.use_rth)
        out = []
        for row in zip(*bars):
            t = int(row[0])
            if t < req.last_time:
                continue
            fields = tuple(_bar_fields(row, req.key.decimals, daily, req.format_date))
            if t == req.last_time and fields == req.last_sent:
                continue
            req.last_time, req.last_sent = t, fields
            date_, o, h, lw, c, vol, wap, cnt = fields
            out.append(encode_fields((90, req.req_id, cnt, date_, o, c, h, lw, wap, vol)))
        if out:
            req.session.send(b"".join(out))

    @property
    def live_requests(self) -> int:
        """keepUpToDate requests being updated."""
        return len(self._live)


def _duration_start(end: float, n: int, unit: str) -> float:
    if unit == "S":
        return end - n
    if unit == "D":
        first = sessions_back(exchange_date(end - 1e-6), n)
        return float(exchange_midnight(first))
    days = {"W": 7, "M": 30, "Y": 365}[unit] * n
    return end - days * 86400.0


def _label(t: int, daily: bool, format_date: int, header: bool = False) -> str:
    if daily and not header:
        return datetime.fromtimestamp(t, NEW_YORK).strftime("%Y%m%d")
    if format_date == 2 and not header:
        return str(t)
    return f"{datetime.fromtimestamp(t, NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


def _bar_fields(row: tuple, decimals: int, daily: bool, format_date: int) -> list[str]:
    t, o, h, lw, c, vol, wap, cnt = row
    dec = max(decimals, 2) + 2
    if vol != vol:  # quote bars: IB sends -1 for volume, WAP and count
        return [_label(int(t), daily, format_date), _fmt(o, dec), _fmt(h, dec), _fmt(lw, dec), _fmt(c, dec),
                "-1", "-1", "-1"]
    return [_label(int(t), daily, format_date), _fmt(o, dec), _fmt(h, dec), _fmt(lw, dec), _fmt(c, dec),
            str(int(round(vol))), _fmt(wap, dec + 2), str(int(cnt))]

