"""The replay's clock and market (:mod:`desk.sim.replay`): :class:`ReplayClock` (the recorded
time), :class:`ReplayMarket` (``SimGateway(market=...)``, the underlyings' recorded quotes
and trades, one :class:`ReplayState` each), :class:`ReplayHistory` (the recorded bars) and
:func:`replay_gateway_kwargs`, which loads a day and wires them into a gateway.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from desk.domain.clock import Clock
from desk.sim.contracts import ContractQuery, resolve
from desk.sim.history_bars import Bars, HistoryKey, bid_ask_bars, daily_from_minutes, exchange_midnight, rth_mask
from desk.sim.market import Changed, MarketChange, Snapshot
from desk.sim.replay_data import Cursor, Recorded, ReplayData, load_replay, parse_day, quote_at
from desk.sim.replay_options import ReplayOptions
from desk.sim.universe import SimStock

__all__ = ["ReplayClock", "ReplayHistory", "ReplayMarket", "ReplayState", "replay_gateway_kwargs"]


class ReplayClock(Clock):
    """The recorded time: starts at ``start`` (aware) and moves only by :meth:`advance`
    (the replay market calls it on every step). ``now()`` is UTC-aware, ``time()`` UTC
    epoch seconds."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ReplayClock needs a timezone-aware datetime")
        self._t = start.timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def time(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds


class ReplayState:
    """The replayed state of one underlying: what :meth:`MarketModel.state` returns for
    the synthetic market (the gateway, the option engine and the order engine read it).
    Prices dollars per share; ``bid``/``ask`` 0 with size 0 when that side has no quote."""

    def __init__(self, stock: SimStock, rec: Recorded, prev_close: float) -> None:
        self.stock = stock
        self.rec = rec
        self.cur = Cursor()
        self.bid = 0.0
        self.ask = 0.0
        self.bid_size = 0
        self.ask_size = 0
        self.last = prev_close
        self.last_size = 0
        self.volume = 0
        self.notional = 0.0
        self.trades = 0
        self.high = math.nan
        self.low = math.nan
        self.close = prev_close
        self.open = math.nan

    @property
    def vwap(self) -> float:
        return self.notional / self.volume if self.volume else self.last

    def snapshot(self) -> Snapshot:
        return Snapshot(self.bid, self.ask, self.last, self.bid_size, self.ask_size, self.last_size, self.volume, self.close)

    def change(self, fields: int, trades: int = 0) -> MarketChange:
        high = self.high if self.high == self.high else self.last
        low = self.low if self.low == self.low else self.last
        return MarketChange(
            self.stock.symbol,
            self.stock.con_id,
            fields,
            self.bid,
            self.ask,
            self.bid_size,
            self.ask_size,
            self.last,
            self.last_size,
            self.volume,
            high,
            low,
            round(self.vwap, 4),
            trades,
        )

    def advance(self, now: float) -> tuple[int, int]:
        """Apply every bar completed at ``now``; return (Changed bits, prints)."""
        fields = 0
        rec, cur = self.rec, self.cur
        k = rec.bid.known(now)
        if k > cur.bid:
            cur.bid = k
            price, size = quote_at(rec.bid, k - 1)
            if price != self.bid:
                fields |= Changed.BID
            elif size != self.bid_size:
                fields |= Changed.BID_SIZE
            self.bid, self.bid_size = price, size
        k = rec.ask.known(now)
        if k > cur.ask:
            cur.ask = k
            price, size = quote_at(rec.ask, k - 1)
            if price != self.ask:
                fields |= Changed.ASK
            elif size != self.ask_size:
                fields |= Changed.ASK_SIZE
            self.ask, self.ask_size = price, size
        k = rec.trades.known(now)
        prints = 0
        if k > cur.trades:
            tr = rec.trades
            for i in range(cur.trades, k):
                v = int(tr.v[i])
                self.volume += v
                self.notional += v * (tr.h[i] + tr.l[i] + tr.c[i]) / 3.0
                self.last, self.last_size = float(tr.c[i]), v
                if self.open != self.open and _in_rth(int(tr.t[i])):
                    self.open = float(tr.o[i])
                if not self.high >= tr.h[i]:
                    self.high = float(tr.h[i])
                    fields |= Changed.HIGH
                if not self.low <= tr.l[i]:
                    self.low = float(tr.l[i])
                    fields |= Changed.LOW
                prints += 1
            self.trades += prints
            cur.trades = k
            fields |= Changed.TRADE
        return int(fields), prints


def _in_rth(t: int) -> bool:
    return bool(rth_mask(np.array([t], dtype=np.int64))[0])


class ReplayMarket:
    """The market source of a replayed day (``SimGateway(market=...)``): same interface
    as :class:`~desk.sim.market.MarketModel`. :meth:`step` advances the
    :class:`ReplayClock` by ``dt`` and applies the bars completed by then.

    Build it with :func:`replay_gateway_kwargs` (which also wires the clock and the
    options), or ``ReplayMarket(data)``."""

    def __init__(self, data: ReplayData, clock: ReplayClock | None = None) -> None:
        self.data = data
        self.clock = clock or ReplayClock(data.start)
        self.options = ReplayOptions(data)
        self._states: dict[str, ReplayState] = {}
        for sym, stock in data.stocks.items():
            d = data.daily.get(sym)
            prev_close = float(d.close[-1]) if d is not None and len(d) else math.nan
            rec = data.series.get(stock.con_id, Recorded())
            st = ReplayState(stock, rec, prev_close)
            st.advance(self.clock.time())
            if prev_close != prev_close:  # no daily bars: the first quote's mid stands in
                st.close = st.last = (st.bid + st.ask) / 2.0 if st.bid and st.ask else 0.0
            self._states[sym] = st
        #: replay seconds since the start, and steps taken
        self.elapsed = 0.0
        self.steps = 0

    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    @property
    def finished(self) -> bool:
        """True once the clock is past the last recorded bar."""
        return self.clock.time() >= self.data.end

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._states

    def state(self, symbol: str) -> ReplayState:
        return self._states[symbol]

    def snapshot(self, symbol: str) -> Snapshot:
        return self._states[symbol].snapshot()

    def snapshots(self) -> dict[str, Snapshot]:
        return {s: st.snapshot() for s, st in self._states.items()}

    def changes(self) -> list[MarketChange]:
        full = int(Changed.BID | Changed.ASK | Changed.TRADE | Changed.HIGH | Changed.LOW)
        return [st.change(full) for st in self._states.values()]

    def step(self, dt: float) -> list[MarketChange]:
        """Advance the recorded time by ``dt`` seconds; the symbols whose quote or trades
        changed (bars completed meanwhile)."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt!r}")
        self.clock.advance(dt)
        self.elapsed += dt
        self.steps += 1
        now = self.clock.time()
        out = []
        for st in self._states.values():
            fields, prints = st.advance(now)
            if fields:
                out.append(st.change(fields, prints))
        return out

    def history_source(self) -> ReplayHistory:
        """The historical bars of this replay (the gateway's history service asks)."""
        return ReplayHistory(self.data, self.clock, self)


def replay_gateway_kwargs(
    url: str,
    day: date | str,
    symbols: Sequence[str],
    *,
    schema: str | None = None,
    start: dtime | datetime | None = None,
    lean_dir: str | Path | None = None,
    stream: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Load a replay (:func:`load_replay`) and return the :class:`~desk.sim.gateway.SimGateway`
    keyword arguments that run it: ``market``, ``clock``, ``option_source``,
    ``symbols``. Add ``speed`` (replay seconds per second) yourself::

        gw = SimGateway(port=4002, speed=60, **replay_gateway_kwargs(url, "2015-12-24", ["GOOG"]))
    """
    d = parse_day(day) if isinstance(day, str) else day
    data = load_replay(url, d, symbols, schema=schema, start=start, lean_dir=lean_dir, stream=stream)
    market = ReplayMarket(data)
    return {"market": market, "clock": market.clock, "option_source": market.options, "symbols": market.symbols}


class ReplayHistory:
    """Historical bars of a replay (:class:`~desk.sim.history.HistorySource`): the day's
    recorded minute bars completed by the replay clock (underlyings and options), and the
    underlyings' recorded daily bars before the day (TRADES only: LEAN keeps no daily
    quotes)."""

    def __init__(self, data: ReplayData, clock: ReplayClock, market: ReplayMarket) -> None:
        self.data = data
        self.clock = clock
        self.market = market

    def resolve(self, q: ContractQuery) -> HistoryKey | None:
        if q.sec_type in ("", "STK"):
            found = resolve(q)
            if found is not None and found[0].symbol in self.data.stocks:
                return HistoryKey(found[0].con_id, 2)
            if q.sec_type == "STK":
                return None
        hits = self.market.options.find(q) if (q.sec_type == "OPT" or q.con_id) else []
        if len(hits) == 1:
            return HistoryKey(hits[0].con_id, 2)
        return None

    def minute_bars(self, key: Any, what: str, start: int, end: int) -> Bars:
        rec = self.data.series.get(key)
        if rec is None:
            return Bars.empty()
        now = self.clock.time()
        if what == "TRADES":
            return rec.trades.bars(start, end, now, True)
        if what == "BID":
            return _quotes(rec.bid.bars(start, end, now, False))
        if what == "ASK":
            return _quotes(rec.ask.bars(start, end, now, False))
        # MIDPOINT: the mean of the bid and ask bars of the same minute
        bid = _quotes(rec.bid.bars(start, end, now, False))
        ask = _quotes(rec.ask.bars(start, end, now, False))
        common, ib, ia = np.intersect1d(bid.time, ask.time, assume_unique=True, return_indices=True)
        b, a = bid.take(ib), ask.take(ia)
        nan = np.full(len(common), np.nan)
        return Bars(
            common,
            (b.open + a.open) / 2,
            (b.high + a.high) / 2,
            (b.low + a.low) / 2,
            (b.close + a.close) / 2,
            nan,
            nan,
            np.full(len(common), -1, dtype=np.int64),
        )

    def daily_bars(self, key: Any, what: str, first: date, last: date) -> Bars:
        parts = []
        stock_sym = next((s for s, st in self.data.stocks.items() if st.con_id == key), None)
        if stock_sym is not None and what == "TRADES":
            d = self.data.daily.get(stock_sym)
            if d is not None and len(d):
                parts.append(d.window(exchange_midnight(first), exchange_midnight(last) + 1))
        if first <= self.data.day <= last:
            lo = exchange_midnight(self.data.day)
            hi = exchange_midnight(self.data.day + timedelta(days=1))
            if what == "BID_ASK":
                mins = bid_ask_bars(self.minute_bars(key, "BID", lo, hi), self.minute_bars(key, "ASK", lo, hi))
            else:
                mins = self.minute_bars(key, what, lo, hi)
            if len(mins):
                mins = mins.take(rth_mask(mins.time))
            parts.append(daily_from_minutes(mins, what))
        return Bars.concat(parts)

    def head_time(self, key: Any) -> float | None:
        stock_sym = next((s for s, st in self.data.stocks.items() if st.con_id == key), None)
        if stock_sym is not None:
            d = self.data.daily.get(stock_sym)
            if d is not None and len(d):
                return float(d.time[0])
        rec = self.data.series.get(key)
        if rec is None:
            return None
        firsts = [float(s.t[0]) for s in (rec.bid, rec.ask, rec.trades) if len(s)]
        return min(firsts) if firsts else None

    def sample(self, now: float) -> None:
        """Nothing to record: the bars are the recorded ones."""


def _quotes(b: Bars) -> Bars:
    """Drop minutes without a quote on the side (NaN prices)."""
    if not len(b):
        return b
    return b.take(~np.isnan(b.close))
