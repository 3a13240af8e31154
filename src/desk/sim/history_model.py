"""The simulated gateway's default source of historical bars: :class:`ModelHistory`, the
seeded market model.

Before the gateway started (``T0``) the history is **synthetic and deterministic** (same
seed and same start time, same bars); from ``T0`` on it is the model's own path, sampled
after every market step. The two meet: the previous trading day's close is the model's
previous close (tick 9), the day of ``T0`` opens at the model's open (tick 14) and its
synthetic part ends at the model's price at ``T0``, so the history ends at the current
price and keeps following it.

The synthetic past: trading days and hours are the sessions of the desk's exchange
calendar (:func:`desk.domain.calendar.nyse_calendar`: no bars on weekends and exchange
holidays, 09:30-16:00 ET, 09:30-13:00 ET on half days); close-to-close log returns and
intraday minute paths are Gaussian with the stock's annual volatility (a Brownian bridge
from each day's open to its close), an overnight gap of 0.3 daily sigma, a U-shaped
intraday volume profile around the stock's daily volume; quotes are the path rounded to
the tick grid with the stock's usual spread. Up to :data:`MAX_SYNTHETIC_DAYS` trading
days back.

All times are UTC epoch seconds; prices dollars per share; volume in shares.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from desk.domain.calendar import SECONDS_PER_TRADING_YEAR, exchange_date, nyse_calendar
from desk.domain.calendar import Session as CalendarSession
from desk.sim.contracts import ContractQuery, resolve
from desk.sim.history_bars import Bars, HistoryKey, bid_ask_bars, daily_from_minutes, exchange_midnight, sessions_back
from desk.sim.market import SESSION_SECONDS

__all__ = ["BLOCK_DAYS", "MAX_SYNTHETIC_DAYS", "SESSION_MINUTES", "ModelHistory"]

#: Trading days of synthetic history before the gateway started (about 10 years).
MAX_SYNTHETIC_DAYS = 2520
#: Minutes of a full regular session (09:30-16:00 ET): the width of a synthetic day.
SESSION_MINUTES = int(SESSION_SECONDS) // 60  # 390


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

    def __init__(
        self,
        first: int,
        valid: np.ndarray,
        minutes: np.ndarray,
        mo: np.ndarray,
        mh: np.ndarray,
        ml: np.ndarray,
        mc: np.ndarray,
        vol: np.ndarray,
        count: np.ndarray,
        daily: dict[str, Bars],
    ) -> None:
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
                self.t0,
                st.open,
                st.close,
                (st.bid + st.ask) / 2.0,
                st.volume,
                s.min_tick,
                s.spread_ticks,
                s.annual_vol,
                s.daily_volume,
                max(1.0, s.daily_volume / (s.trade_rate * SESSION_SECONDS)),
                s.con_id,
                s.decimals,
            )
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
            short = _bridge(
                a,
                eps[r : r + 1, :n],
                wick[:, r : r + 1, :n],
                noise[r : r + 1, :n],
                open_[r : r + 1],
                close[r : r + 1],
                volume[r : r + 1],
                n,
            )
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
                trade_wap = (_trade_px(a, block.mh[rows]) + _trade_px(a, block.ml[rows]) + _trade_px(a, block.mc[rows])) / 3.0
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
                        a,
                        eps[r : r + 1, :n],
                        wick[:, r : r + 1, :n],
                        noise[r : r + 1, :n],
                        np.array([a.open]),
                        np.array([a.price]),
                        np.array([float(a.volume)]),
                        length,
                    )
                    t = start + 60 * np.arange(n, dtype=np.int64)
                    self._today[key] = _minute_series(a, t, mo[0], mh[0], ml[0], mc[0], vol[0], count[0])
            return self._today[key]
        b, r = divmod(d.toordinal(), BLOCK_DAYS)
        block = self._block(key, b)
        if not block.valid[r]:
            return None
        t = start + 60 * np.arange(length, dtype=np.int64)
        return _minute_series(
            a,
            t,
            block.mo[r, :length],
            block.mh[r, :length],
            block.ml[r, :length],
            block.mc[r, :length],
            block.vol[r, :length],
            block.count[r, :length],
        )


def _session_minutes(sess: CalendarSession) -> int:
    """Minutes of a session's regular hours (390; 210 on a half day)."""
    return int((sess.close - sess.open).total_seconds()) // 60


def _bridge(
    a: _Anchor,
    eps: np.ndarray,
    wick: np.ndarray,
    noise: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    session_minutes: int = SESSION_MINUTES,
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


def _series(
    a: _Anchor,
    t: np.ndarray,
    mo: np.ndarray,
    mh: np.ndarray,
    ml: np.ndarray,
    mc: np.ndarray,
    vol: np.ndarray,
    wap: np.ndarray,
    count: np.ndarray,
) -> dict[str, Bars]:
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


def _minute_series(
    a: _Anchor, t: np.ndarray, mo: np.ndarray, mh: np.ndarray, ml: np.ndarray, mc: np.ndarray, vol: np.ndarray, count: np.ndarray
) -> dict[str, Bars]:
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
