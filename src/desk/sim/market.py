"""Seeded synthetic market: top of book and trades for the simulator's stocks.

The model knows nothing about sockets or wall time: callers advance it with
:meth:`MarketModel.step` (``dt`` in seconds of market time) and read the result, so the
gateway drives it from its timer and the UI or tests can drive it by hand for
deterministic data.

What it models, per symbol, on the stock's tick grid (prices are integers of
``min_tick`` internally, exposed as dollars per share rounded to the grid):

* a "true" price following geometric Brownian motion with the stock's annual
  volatility, measured on a trading-time clock of 252 days x 6.5 h per year;
* a quote (bid/ask) refreshed at the stock's ``quote_rate`` (Poisson), spread of
  ``spread_ticks`` (sometimes one or two ticks wider), never less than one tick;
* displayed sizes in shares (lots of 100) around ``display_size``, shrinking when trades
  hit them and redrawn when the price level changes;
* trade prints at the bid or the ask (Poisson at ``trade_rate``), odd lots included, sizes
  scaled so that a full session gives about ``daily_volume`` shares;
* cumulative volume, VWAP, session open/high/low and the previous close (the universe's
  reference price).

IB streams stock top of book as aggregated snapshots about every 250 ms; stepping with
``dt=0.25`` reproduces that cadence: a liquid symbol changes something in most steps, and
several prints in one step are reported as one last price/size with the volume of all of
them (as IB does).

Determinism: each symbol has its own ``random.Random`` stream seeded from
``(seed, conId)``, so a symbol's path depends only on the seed and the sequence of ``dt``
values, not on which other symbols are in the model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag
from typing import NamedTuple

from desk.domain.calendar import SECONDS_PER_TRADING_YEAR, TRADING_HOURS_PER_DAY
from desk.sim.universe import UNIVERSE, SimStock, lookup

__all__ = [
    "Changed",
    "MarketChange",
    "MarketModel",
    "Snapshot",
    "SymbolState",
]

#: Length of a full regular session in seconds (09:30-16:00 ET).
SESSION_SECONDS = TRADING_HOURS_PER_DAY * 3600.0
#: Prints played out one by one per step; more (large ``dt``) are booked in bulk.
_MAX_PRINTS = 32


class Changed(IntFlag):
    """Which parts of a symbol's state a step changed (bits of :attr:`MarketChange.fields`)."""

    BID = 1  # bid price (the bid size is reported with it)
    ASK = 2  # ask price (the ask size is reported with it)
    BID_SIZE = 4  # bid size only, price unchanged
    ASK_SIZE = 8  # ask size only, price unchanged
    TRADE = 16  # at least one print: last, last_size, volume, vwap changed
    HIGH = 32  # session high
    LOW = 64  # session low


class MarketChange(NamedTuple):
    """The state of one symbol after a step that changed it.

    ``fields`` is a :class:`Changed` bit mask telling what changed; every other field holds
    the current value whether it changed or not. Prices are dollars per share on the tick
    grid, sizes and volume in shares. ``trades`` is the number of prints aggregated into
    this step (0 without a trade); ``last``/``last_size`` are those of the final print.
    ``vwap`` is the session volume-weighted average price.
    """

    symbol: str
    con_id: int
    fields: int
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float
    last_size: int
    volume: int
    high: float
    low: float
    vwap: float
    trades: int


class Snapshot(NamedTuple):
    """Top of book and trade state of one symbol.

    Prices in dollars per share (on the tick grid), sizes and volume in shares; ``close``
    is the previous session's close.
    """

    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: float


@dataclass(slots=True)
class SymbolState:
    """Mutable market state of one symbol. Prices ending in ``_t`` are integer ticks
    (multiply by ``stock.min_tick`` for dollars); sizes and volume are shares."""

    stock: SimStock
    rng: random.Random
    mid: float  # "true" price, dollars per share, off the grid
    bid_t: int
    ask_t: int
    bid_size: int
    ask_size: int
    last_t: int
    last_size: int
    volume: int
    open_t: int
    high_t: int
    low_t: int
    close_t: int
    notional: float  # sum of price * size of the session's prints, dollars
    trades: int = 0  # prints since the model started

    def price(self, ticks: int) -> float:
        """Dollars per share of a tick count, rounded to the grid."""
        return round(ticks * self.stock.min_tick, self.stock.decimals)

    @property
    def bid(self) -> float:
        return self.price(self.bid_t)

    @property
    def ask(self) -> float:
        return self.price(self.ask_t)

    @property
    def last(self) -> float:
        return self.price(self.last_t)

    @property
    def open(self) -> float:
        return self.price(self.open_t)

    @property
    def high(self) -> float:
        return self.price(self.high_t)

    @property
    def low(self) -> float:
        return self.price(self.low_t)

    @property
    def close(self) -> float:
        """Previous session's close, dollars per share."""
        return self.price(self.close_t)

    @property
    def vwap(self) -> float:
        """Session volume-weighted average price, dollars per share (not on the grid)."""
        return self.notional / self.volume if self.volume else self.last

    def snapshot(self) -> Snapshot:
        return Snapshot(self.bid, self.ask, self.last, self.bid_size, self.ask_size, self.last_size, self.volume, self.close)

    def change(self, fields: int, trades: int = 0) -> MarketChange:
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
            self.high,
            self.low,
            round(self.vwap, 4),
            trades,
        )


class MarketModel:
    """A deterministic synthetic market for some of the universe's symbols.

    ``MarketModel(seed=7)`` simulates the whole :data:`~desk.sim.universe.UNIVERSE`;
    ``symbols`` restricts it (unknown symbols raise ``KeyError``). The initial state is a
    session already under way: open gapped from the previous close, some volume traded,
    a high and low around the current price.

    Not thread-safe: drive it from one thread (the gateway's event loop, or the caller's).

    Example (deterministic data for a snapshot test or a UI without a gateway)::

        model = MarketModel(seed=7, symbols=["SPY", "AAPL"])
        for change in model.step(0.25):      # 0.25 s of market time
            print(change.symbol, change.bid, change.ask, change.volume)
        bid, ask, last, bid_size, ask_size, last_size, volume, close = model.snapshot("SPY")
    """

    def __init__(self, seed: int = 7, symbols: Iterable[str] | None = None) -> None:
        self.seed = int(seed)
        names = list(UNIVERSE) if symbols is None else [s.strip().upper() for s in symbols]
        self._states: dict[str, SymbolState] = {}
        for name in names:
            stock = lookup(name)
            if stock is None:
                raise KeyError(f"{name!r} is not in the simulator's universe")
            if name not in self._states:
                self._states[name] = _initial_state(stock, self.seed)
        #: market seconds simulated so far (sum of the ``dt`` passed to :meth:`step`)
        self.elapsed = 0.0
        #: number of :meth:`step` calls so far
        self.steps = 0

    @property
    def symbols(self) -> list[str]:
        """The simulated symbols, in universe order as given."""
        return list(self._states)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._states

    def state(self, symbol: str) -> SymbolState:
        """The live (mutable) state of ``symbol``; ``KeyError`` if it is not simulated."""
        return self._states[symbol]

    def snapshot(self, symbol: str) -> Snapshot:
        """``(bid, ask, last, bid_size, ask_size, last_size, volume, close)`` of ``symbol``:
        dollars per share and shares. ``KeyError`` if it is not simulated."""
        return self._states[symbol].snapshot()

    def snapshots(self) -> dict[str, Snapshot]:
        """Snapshot of every simulated symbol."""
        return {name: st.snapshot() for name, st in self._states.items()}

    def changes(self) -> list[MarketChange]:
        """Current state of every symbol as a full :class:`MarketChange` (all bits set),
        for a consumer that starts listening after the model started."""
        full = int(Changed.BID | Changed.ASK | Changed.TRADE | Changed.HIGH | Changed.LOW)
        return [st.change(full) for st in self._states.values()]

    def step(self, dt: float) -> list[MarketChange]:
        """Advance the market by ``dt`` seconds and return the symbols that changed.

        ``dt`` must be positive; 0.25 s matches IB's stock ticking cadence. Returns one
        :class:`MarketChange` per changed symbol, in the model's symbol order.
        """
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt!r}")
        self.elapsed += dt
        self.steps += 1
        out: list[MarketChange] = []
        for st in self._states.values():
            fields, trades = _step_symbol(st, dt)
            if fields:
                out.append(st.change(fields, trades))
        return out


# --- the per-symbol process ------------------------------------------------------------


def _rng_for(stock: SimStock, seed: int) -> random.Random:
    # One independent stream per (seed, conId); ints seed Mersenne Twister portably.
    return random.Random(seed * 1_000_000_007 + stock.con_id)


def _draw_display_size(st: SymbolState) -> int:
    """A displayed size: lognormal around the typical size, whole lots of 100 shares."""
    raw = st.stock.display_size * st.rng.lognormvariate(0.0, 0.6)
    return max(100, int(round(raw / 100.0)) * 100)


def _mean_print_size(stock: SimStock) -> float:
    return max(1.0, stock.daily_volume / (stock.trade_rate * SESSION_SECONDS))


def _draw_print_size(st: SymbolState) -> int:
    """A print size in shares: exponential around the mean that yields ``daily_volume``;
    most prints are whole lots, about a quarter are odd lots."""
    rng = st.rng
    size = max(1, int(round(_mean_print_size(st.stock) * rng.expovariate(1.0))))
    if size >= 50 and rng.random() < 0.75:
        size = max(100, int(round(size / 100.0)) * 100)
    return size


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw: multiplication of uniforms for small rates (the usual case), a
    rounded normal approximation above 30 (large ``dt`` fast-forwards)."""
    if lam <= 0:
        return 0
    if lam > 30.0:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit = math.exp(-lam)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _quote_ticks(mid: float, tick: float, spread: int) -> tuple[int, int]:
    """Bid and ask ticks centred on ``mid`` with ``spread`` ticks between them."""
    bid_t = int(math.floor(mid / tick - spread / 2.0 + 0.5))
    bid_t = max(1, bid_t)
    return bid_t, bid_t + spread


def _initial_state(stock: SimStock, seed: int) -> SymbolState:
    rng = _rng_for(stock, seed)
    tick = stock.min_tick
    day_sigma = stock.annual_vol / math.sqrt(252.0)
    close_t = int(round(stock.price / tick))
    close = close_t * tick
    open_ = close * math.exp(rng.gauss(0.0, 0.3 * day_sigma))
    mid = open_ * math.exp(rng.gauss(0.0, 0.5 * day_sigma))
    high = max(open_, mid) * (1.0 + abs(rng.gauss(0.0, 0.2 * day_sigma)))
    low = min(open_, mid) * (1.0 - abs(rng.gauss(0.0, 0.2 * day_sigma)))
    bid_t, ask_t = _quote_ticks(mid, tick, stock.spread_ticks)
    st = SymbolState(
        stock=stock,
        rng=rng,
        mid=mid,
        bid_t=bid_t,
        ask_t=ask_t,
        bid_size=0,
        ask_size=0,
        last_t=bid_t,
        last_size=0,
        volume=0,
        open_t=int(round(open_ / tick)),
        high_t=0,
        low_t=0,
        close_t=close_t,
        notional=0.0,
    )
    st.bid_size = _draw_display_size(st)
    st.ask_size = _draw_display_size(st)
    st.last_t = ask_t if rng.random() < 0.5 else bid_t
    st.last_size = _draw_print_size(st)
    st.high_t = max(int(round(high / tick)), st.open_t, st.last_t)
    st.low_t = min(int(round(low / tick)), st.open_t, st.last_t)
    session_done = 0.25 + 0.35 * rng.random()  # fraction of the day already traded
    st.volume = int(stock.daily_volume * session_done)
    st.notional = st.volume * (st.open_t + st.last_t) * 0.5 * tick
    return st


def _step_symbol(st: SymbolState, dt: float) -> tuple[int, int]:
    """Advance one symbol by ``dt`` seconds; return (Changed bits, number of prints)."""
    stock = st.stock
    rng = st.rng
    tick = stock.min_tick
    fields = 0

    # 1. the true price: GBM on the trading-time clock
    sigma = stock.annual_vol * math.sqrt(dt / SECONDS_PER_TRADING_YEAR)
    st.mid *= math.exp(sigma * rng.gauss(0.0, 1.0) - 0.5 * sigma * sigma)

    # 2. quote refresh
    if rng.random() < 1.0 - math.exp(-stock.quote_rate * dt):
        u = rng.random()
        spread = stock.spread_ticks + (1 if u < 0.15 else 0) + (1 if u < 0.03 else 0)
        bid_t, ask_t = _quote_ticks(st.mid, tick, spread)
        if bid_t != st.bid_t:
            st.bid_t = bid_t
            st.bid_size = _draw_display_size(st)
            fields |= Changed.BID
        elif rng.random() < 0.6:
            size = _draw_display_size(st)
            if size != st.bid_size:
                st.bid_size = size
                fields |= Changed.BID_SIZE
        if ask_t != st.ask_t:
            st.ask_t = ask_t
            st.ask_size = _draw_display_size(st)
            fields |= Changed.ASK
        elif rng.random() < 0.6:
            size = _draw_display_size(st)
            if size != st.ask_size:
                st.ask_size = size
                fields |= Changed.ASK_SIZE

    # 3. prints at the bid or the ask, leaning toward the side the true price moved to
    n = _poisson(rng, stock.trade_rate * dt)
    if n:
        spread_t = st.ask_t - st.bid_t
        lean = (st.mid / tick - (st.bid_t + st.ask_t) * 0.5) / spread_t
        p_buy = 0.5 + 0.4 * max(-1.0, min(1.0, lean))
        if n > _MAX_PRINTS:  # large dt: book the bulk at the mid, play the last few out
            bulk = n - _MAX_PRINTS
            size = int(round(bulk * _mean_print_size(stock)))
            mid_t = (st.bid_t + st.ask_t) * 0.5
            st.volume += size
            st.notional += mid_t * tick * size
        for _ in range(min(n, _MAX_PRINTS)):
            size = _draw_print_size(st)
            if rng.random() < p_buy:
                price_t = st.ask_t
                st.ask_size -= size
                if st.ask_size < 100:  # level taken out: a fresh size at the same price
                    st.ask_size = _draw_display_size(st)
                if not fields & Changed.ASK:
                    fields |= Changed.ASK_SIZE
            else:
                price_t = st.bid_t
                st.bid_size -= size
                if st.bid_size < 100:
                    st.bid_size = _draw_display_size(st)
                if not fields & Changed.BID:
                    fields |= Changed.BID_SIZE
            st.ask_size = max(100, st.ask_size // 100 * 100)
            st.bid_size = max(100, st.bid_size // 100 * 100)
            st.last_t = price_t
            st.last_size = size
            st.volume += size
            st.notional += price_t * tick * size
            if price_t > st.high_t:
                st.high_t = price_t
                fields |= Changed.HIGH
            if price_t < st.low_t:
                st.low_t = price_t
                fields |= Changed.LOW
        st.trades += n
        fields |= Changed.TRADE
    return fields, n
