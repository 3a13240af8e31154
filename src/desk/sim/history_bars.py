"""Historical bars of the simulated gateway as numpy arrays, and where they come from.

* :class:`Bars`: bars as parallel arrays (bar start, OHLC, volume, WAP, trade count);
* the exchange clock of bars: New York UTC offsets, regular-session mask, exchange
  midnights and sessions counted back (:func:`desk.domain.calendar.nyse_calendar`);
* aggregation: :func:`aggregate` merges 1-minute bars into larger ones aligned to the
  exchange clock (:func:`bucket_labels`), :func:`daily_from_minutes` into daily bars,
  :func:`bid_ask_bars` builds IB's BID_ASK bar inputs (open = time-average bid, high =
  max ask, low = min bid, close = time-average ask);
* :class:`HistorySource`, the interface of a source of bars (:class:`HistoryKey` what a
  request resolved to): :class:`~desk.sim.history_model.ModelHistory` or a replay
  (:mod:`desk.sim.replay`).

All times are UTC epoch seconds; prices dollars per share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np

from desk.domain.calendar import NEW_YORK, nyse_calendar
from desk.domain.calendar import exchange_midnight as _midnight
from desk.sim.contracts import ContractQuery

__all__ = [
    "Bars",
    "HistoryKey",
    "HistorySource",
    "aggregate",
    "bid_ask_bars",
    "bucket_labels",
    "daily_from_minutes",
    "exchange_midnight",
    "exchange_offsets",
    "rth_mask",
    "sessions_back",
]


class Bars:
    """Bars as parallel numpy arrays (sorted by time): ``time`` bar start, int64 UTC epoch
    seconds; ``open``/``high``/``low``/``close`` dollars per share; ``volume`` shares or
    contracts (TRADES; ``nan`` for quotes); ``wap`` dollars per share; ``count`` trades.
    ``len()`` is the number of bars; iterating yields the eight arrays in that order."""

    __slots__ = ("time", "open", "high", "low", "close", "volume", "wap", "count")

    def __init__(
        self,
        time: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        wap: np.ndarray,
        count: np.ndarray,
    ) -> None:
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
    offs = np.array(
        [int(datetime.fromtimestamp(int(d) * 86400 + 43200, NEW_YORK).utcoffset().total_seconds()) for d in uniq], dtype=np.int64
    )
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


def exchange_midnight(d: date) -> int:
    """UTC epoch seconds of 00:00 New York time on exchange date ``d``."""
    return int(_midnight(d).timestamp())


def sessions_back(end_day: date, n: int) -> date:
    """The ``n``-th session (exchange calendar) counting back from ``end_day`` (itself if
    it is a session, n=1)."""
    return np.busday_offset(end_day, -(n - 1), roll="backward", busdaycal=nyse_calendar().busday_calendar()).astype(object)


def daily_from_minutes(minutes: Bars, what: str) -> Bars:
    if not len(minutes):
        return minutes
    local = minutes.time + exchange_offsets(minutes.time)
    labels = local // 86400
    out = aggregate(minutes, labels, quote_mean=(what == "BID_ASK"))
    day_starts = np.array(
        [
            exchange_midnight(date.fromordinal(int(d) + 719163))
            for d in labels[np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])]
        ],
        dtype=np.int64,
    )
    return out.with_time(day_starts)


def bid_ask_bars(bid: Bars, ask: Bars) -> Bars:
    """Per-minute BID_ASK inputs: open/close = mid of the bid bar and of the ask bar
    (the time averages IB reports), high = ask high, low = bid low; minutes with both."""
    if not len(bid) or not len(ask):
        return Bars.empty()
    common, ib, ia = np.intersect1d(bid.time, ask.time, assume_unique=True, return_indices=True)
    b, a = bid.take(ib), ask.take(ia)
    ok = ~(np.isnan(b.open) | np.isnan(a.open))
    nan = np.full(len(common), np.nan)
    out = Bars(
        common,
        (b.open + b.close) / 2.0,
        a.high,
        b.low,
        (a.open + a.close) / 2.0,
        nan,
        nan,
        np.full(len(common), -1, dtype=np.int64),
    )
    return out.take(ok)


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
    """Where :class:`~desk.sim.history.HistoryService` gets bars."""

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
