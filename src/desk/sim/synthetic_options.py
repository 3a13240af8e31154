"""The simulator's default option source: seeded synthetic chains and quotes.

:class:`SyntheticOptions` lists the chains of :mod:`desk.sim.chain` and quotes them
for :class:`desk.sim.options.OptionEngine` through the
:class:`~desk.sim.option_source.OptionSource` interface.

Synthetic quote model (per contract; ``L`` is a liquidity score, highest near the money,
near term and on heavily traded underlyings):

* model price = ``bsm_price`` on the current underlying mid, the surface IV, the
  gateway's rate (default 4.5 %, continuously compounded) and the underlying's dividend
  yield (:data:`~desk.sim.volsurface.DIVIDEND_YIELD`), floored at the intrinsic value
  (the listed options are American: early exercise keeps them above it, so the ask is
  never below intrinsic value); otherwise European pricing and Greeks (documented
  simplification: deep in-the-money puts and dividend calls are a little off);
* spread = ``max(one tick, clip(0.4 % / L, 0.4 %, 5 %) x price)``, bid rounded down and
  ask up to the price increment at each side's level (:meth:`SimOption.tick_for`: $0.01
  below $3 and $0.05 above for the penny program, $0.01 everywhere for SPY / QQQ / IWM);
  a bid below half a tick is no bid (price 0, size 0);
* sizes (contracts) lognormal around ``10 + 200 L``, redrawn when the price moves and at
  random refreshes; trades Poisson at ``daily volume / 8 / 23,400 s``, at the bid or the
  ask, sizes ``1 + negative binomial``; the day's volume starts at 25-60 % of a seeded
  daily volume (contracts, ~``20,000 L``); open interest seeded (~``30,000 L``).

Static draws per contract come from a hash of ``(seed, conId)`` (the same contract gets
the same open interest in every session of a seed); dynamic draws from one seeded numpy
generator, so a run is reproducible for a seed and a sequence of requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import (
    DAYS_PER_YEAR,
    SECONDS_PER_YEAR,
    TRADING_HOURS_PER_DAY,
)
from desk.pricing import bsm_price
from desk.sim.chain import (
    OPTION_CON_ID_MAX,
    OPTION_CON_ID_MIN,
    OPTION_EXCHANGES,
    ChainListing,
    SimOption,
    expiry_epoch,
    listing_for,
)
from desk.sim.contracts import ContractQuery
from desk.sim.market import Changed
from desk.sim.option_source import OptionRows, SecDefParams
from desk.sim.universe import UNIVERSE
from desk.sim.volsurface import VolSurface, dividend_yield

__all__ = ["SyntheticOptions"]

#: Seconds of a full regular session (09:30-16:00), over which the day's volume trades.
SESSION_SECONDS = TRADING_HOURS_PER_DAY * 3600.0

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _hash_uniform(seed: int, con_ids: NDArray[np.int64], salt: int) -> NDArray[np.float64]:
    """Uniforms in (0, 1) from (seed, conId, salt) by the splitmix64 finalizer (Steele,
    Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)."""
    key = np.uint64((seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = con_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def _normal(u: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.special import ndtri

    return ndtri(u)


class SyntheticOptions:
    """The default :class:`OptionSource`: listed chains (:mod:`desk.sim.chain`) quoted on
    seeded vol surfaces (see the module docstring for the quote model).

    ``SyntheticOptions(seed, today)`` lists as of exchange date ``today``; ``surface``
    defaults to ``VolSurface.seeded(seed)``.
    """

    def __init__(self, seed: int, today: date, surface: VolSurface | None = None, listing: ChainListing | None = None) -> None:
        self.seed = int(seed)
        self.today = today
        self._listing = listing
        #: UTC epoch of the listing date's close (that of the session before if the date
        #: is not one; :func:`~desk.sim.chain.expiry_epoch`): the time origin of
        #: the static activity draws
        self._listing_close = expiry_epoch(today.strftime("%Y%m%d"))
        self.surface = surface if surface is not None else VolSurface.seeded(self.seed)
        self.rng = np.random.default_rng([self.seed, 0x0B7])
        self._surface_index = np.zeros(0, dtype=np.int64)

    @property
    def listing(self) -> ChainListing:
        """The chains listed as of ``today`` (built on first use, shared per process)."""
        if self._listing is None:
            self._listing = listing_for(self.today)
        return self._listing

    # --- definitions ---------------------------------------------------------------------

    def sec_def_params(self, symbol: str, con_id: int) -> list[SecDefParams] | None:
        stock = UNIVERSE.get(symbol.strip().upper()) if symbol else None
        if stock is None and con_id:
            stock = next((s for s in UNIVERSE.values() if s.con_id == con_id), None)
        if stock is None or (con_id and stock.con_id != con_id):
            return None
        chain = self.listing.chain(stock.symbol)
        if chain is None:
            return []
        exps = tuple(chain.expirations)
        strikes = tuple(chain.strikes)
        return [SecDefParams(ex, stock.con_id, chain.trading_class, "100", exps, strikes) for ex in OPTION_EXCHANGES]

    def find(self, q: ContractQuery) -> list[SimOption]:
        if q.con_id:
            opt = self.option(q.con_id)
            if opt is None:
                return []
            hits = [opt]
            if q.symbol or q.last_trade_date or q.strike or q.right or q.local_symbol or q.trading_class:
                hits = [
                    o
                    for o in self.listing.find(q.symbol, q.last_trade_date, q.strike, q.right, q.trading_class, q.local_symbol)
                    if o.con_id == q.con_id
                ]
        else:
            if not (q.symbol or q.local_symbol):
                return []
            hits = self.listing.find(q.symbol, q.last_trade_date, q.strike, q.right, q.trading_class, q.local_symbol)
        if q.multiplier not in ("", "0", "100"):
            return []
        if q.currency not in ("", "USD"):
            return []
        if q.exchange and q.exchange not in OPTION_EXCHANGES:
            return []
        return hits

    def option(self, con_id: int) -> SimOption | None:
        if not OPTION_CON_ID_MIN <= con_id < OPTION_CON_ID_MAX:
            return None  # a stock's or nobody's: no need to build the listing
        return self.listing.option(con_id)

    def dividend_yield(self, symbol: str) -> float:
        return dividend_yield(symbol)

    # --- quotes ----------------------------------------------------------------------------

    def _model(
        self, rows: OptionRows, i: slice | NDArray[np.integer], S: NDArray[np.float64], now: float, r: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        T = rows.years(now, i)
        sigma = self.surface.vol_rows(self._surface_index[rows.und[i]], rows.strike[i], T, S, r, rows.q[i])
        K = rows.strike[i]
        price = bsm_price(rows.is_call[i], S, K, T, r, rows.q[i], sigma)
        intrinsic = np.maximum(np.where(rows.is_call[i], S - K, K - S), 0.0)
        return np.maximum(price, intrinsic), sigma

    def bind(self, underlyings: Sequence[str]) -> None:
        """Called by the engine when its list of underlyings grows (row ``und`` indices
        refer to it)."""
        self._surface_index = np.array([self.surface.index_of(s) for s in underlyings], dtype=np.int64)

    def activity(
        self, con_ids: NDArray[np.int64], symbols: Sequence[str], K: NDArray[np.float64], expiry_ts: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Static activity of contracts: ``(open interest, typical daily volume, fraction
        of it already traded when the session starts)``, contracts.

        A function of the seed, the conId and the contract's terms only (liquidity from
        moneyness at the underlying's reference price and time to expiry from the
        listing date's close), so a contract's open interest is the same in every
        session of a seed, whenever it is asked for."""
        t0 = np.maximum((expiry_ts - self._listing_close) / SECONDS_PER_YEAR, 0.0)
        ref = np.array([UNIVERSE[u].price for u in symbols])
        und_liq = np.array([min(1.5, max(0.3, math.sqrt(UNIVERSE[u].daily_volume / 40e6))) for u in symbols])
        idx = np.array([self.surface.index_of(u) for u in symbols], dtype=np.int64)
        atm = self.surface.atm_rows(idx, np.maximum(t0, 1e-6), ref)
        z = np.log(K / ref) / (atm * np.sqrt(np.maximum(t0, 1.0 / DAYS_PER_YEAR)))
        liq = np.maximum(und_liq * np.exp(-0.5 * (z / 1.2) ** 2) / (1.0 + 2.0 * t0), 0.002)
        n1, n2 = (_normal(_hash_uniform(self.seed, con_ids, salt)) for salt in (1, 2))
        n1, n2 = np.clip(n1, -2.5, 2.5), np.clip(n2, -2.5, 2.5)  # no freak outliers
        oi = np.round(30000.0 * liq * np.exp(0.8 * n1)).astype(np.int64)
        day_volume = 20000.0 * liq * np.exp(0.6 * n2)
        done = 0.25 + 0.35 * _hash_uniform(self.seed, con_ids, 5)
        return oi, day_volume, done

    def open_rows(self, rows: OptionRows, new: slice, S: NDArray[np.float64], now: float, r: float) -> None:
        for name in ("rel", "base_size", "trade_rate", "refresh_rate", "lo_tick", "hi_tick"):
            rows.extra.setdefault(name, np.zeros(rows.n))
        ids = rows.con_id[new]
        s = S[new]
        K = rows.strike[new]
        T = rows.years(now, new)
        fresh = rows.options[new]
        oi, day_volume, done = self.activity(ids, [o.symbol for o in fresh], K, rows.expiry_ts[new])
        # liquidity now (moneyness at the current price): spreads, sizes, refreshes
        und_liq = np.array([min(1.5, max(0.3, math.sqrt(UNIVERSE[o.symbol].daily_volume / 40e6))) for o in fresh])
        atm = self.surface.atm_rows(self._surface_index[rows.und[new]], np.maximum(T, 1e-6), s)
        z = np.log(K / s) / (atm * np.sqrt(np.maximum(T, 1.0 / DAYS_PER_YEAR)))
        liq = np.maximum(und_liq * np.exp(-0.5 * (z / 1.2) ** 2) / (1.0 + 2.0 * T), 0.002)
        n1, n3, n4 = (_normal(_hash_uniform(self.seed, ids, salt)) for salt in (1, 3, 4))
        rows.extra["lo_tick"][new] = [o.tick_for(0.0) for o in fresh]
        rows.extra["hi_tick"][new] = [o.tick_for(3.0) for o in fresh]
        rows.extra["rel"][new] = np.clip(0.004 / liq, 0.004, 0.05)
        rows.extra["base_size"][new] = 10.0 + 200.0 * liq * np.exp(0.5 * n4)
        rows.extra["trade_rate"][new] = day_volume / 8.0 / SESSION_SECONDS
        rows.extra["refresh_rate"][new] = 0.2 + 0.5 * np.minimum(liq, 1.0)
        rows.open_interest[new] = oi
        rows.volume[new] = np.round(day_volume * done).astype(np.int64)
        price, sigma = self._model(rows, new, s, now, r)
        rows.model_iv[new] = sigma
        self._quote(rows, np.arange(new.start, new.stop), price, force=True)
        # last trade, previous close and today's open / high / low around the model price
        ticks = np.where(price < 3.0, rows.extra["lo_tick"][new], rows.extra["hi_tick"][new])
        last = np.maximum(np.round(price * np.exp(0.01 * n3) / ticks) * ticks, 0.01)
        rows.last[new] = np.where(rows.volume[new] > 0, last, np.nan)
        rows.last_size[new] = 1 + self.rng.negative_binomial(1, 1 / 8.0, size=len(ids))
        close = np.maximum(np.round(price * np.exp(0.05 * n4) / ticks) * ticks, 0.01)
        rows.close[new] = close
        rows.open[new] = np.maximum(np.round(price * np.exp(0.03 * n1) / ticks) * ticks, 0.01)
        rows.high[new] = np.fmax(np.maximum(rows.open[new], last), price * 1.02)
        rows.low[new] = np.fmin(np.minimum(rows.open[new], last), price * 0.98)
        rows.high[new] = np.round(rows.high[new] / ticks) * ticks
        rows.low[new] = np.maximum(np.round(rows.low[new] / ticks) * ticks, 0.01)

    def _quote(
        self, rows: OptionRows, i: NDArray[np.integer], price: NDArray[np.float64], force: bool = False
    ) -> NDArray[np.int64]:
        """Requote rows ``i`` around model ``price``; return Changed bits per row."""
        ex = rows.extra
        rel = ex["rel"][i]
        lo_tick = ex["lo_tick"][i]
        hi_tick = ex["hi_tick"][i]
        width = np.maximum(lo_tick, rel * price)
        b_raw = price - 0.5 * width
        a_raw = price + 0.5 * width
        tb = np.where(b_raw < 3.0, lo_tick, hi_tick)
        ta = np.where(a_raw < 3.0, lo_tick, hi_tick)
        bid = np.floor(b_raw / tb + 1e-9) * tb
        ask = np.ceil(a_raw / ta - 1e-9) * ta
        bid = np.where(bid < 0.5 * lo_tick, 0.0, np.round(bid, 2))
        ask = np.round(np.maximum(ask, np.maximum(bid + tb, lo_tick)), 2)
        old_bid, old_ask = rows.bid[i], rows.ask[i]
        bits = np.zeros(len(i), dtype=np.int64)
        bid_moved = bid != old_bid
        ask_moved = ask != old_ask
        bits |= np.where(bid_moved, int(Changed.BID), 0)
        bits |= np.where(ask_moved, int(Changed.ASK), 0)
        base = ex["base_size"][i]
        if force or bid_moved.any() or ask_moved.any():
            new_b = self._sizes(base)
            new_a = self._sizes(base)
            rows.bid_size[i] = np.where(bid_moved | force, new_b, rows.bid_size[i])
            rows.ask_size[i] = np.where(ask_moved | force, new_a, rows.ask_size[i])
        rows.bid[i] = bid
        rows.ask[i] = ask
        rows.bid_size[i] = np.where(bid > 0, np.maximum(rows.bid_size[i], 1), 0)
        return bits

    def _sizes(self, base: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.maximum(1, np.round(base * self.rng.lognormal(0.0, 0.5, size=len(base)))).astype(np.int64)

    def step_rows(self, rows: OptionRows, S: NDArray[np.float64], now: float, dt: float, r: float) -> NDArray[np.integer]:
        ok = np.flatnonzero(np.isfinite(S))
        bits = np.zeros(rows.n, dtype=np.int64)
        if ok.size == 0:
            return bits
        price, sigma = self._model(rows, ok, S[ok], now, r)
        rows.model_iv[ok] = sigma
        bits[ok] = self._quote(rows, ok, price)
        ex = rows.extra
        rng = self.rng
        # size refreshes without a price change
        p_refresh = 1.0 - np.exp(-ex["refresh_rate"][ok] * dt)
        hit = rng.random(ok.size) < p_refresh
        if hit.any():
            j = ok[hit]
            side = rng.random(j.size) < 0.5
            jb = j[side & (rows.bid[j] > 0) & ((bits[j] & int(Changed.BID)) == 0)]
            ja = j[~side & ((bits[j] & int(Changed.ASK)) == 0)]
            rows.bid_size[jb] = self._sizes(ex["base_size"][jb])
            rows.ask_size[ja] = self._sizes(ex["base_size"][ja])
            bits[jb] |= int(Changed.BID_SIZE)
            bits[ja] |= int(Changed.ASK_SIZE)
        # trades
        n = rng.poisson(ex["trade_rate"][ok] * dt)
        traded = n > 0
        if traded.any():
            j = ok[traded]
            k = n[traded]
            size = k + rng.negative_binomial(k, 1 / 8.0)
            buy = (rng.random(j.size) < 0.5) | (rows.bid[j] <= 0)
            px = np.where(buy, rows.ask[j], rows.bid[j])
            rows.last[j] = px
            rows.last_size[j] = size
            rows.volume[j] += size
            hi = px > rows.high[j]
            lo = px < rows.low[j]
            rows.high[j] = np.where(hi, px, rows.high[j])
            rows.low[j] = np.where(lo, px, rows.low[j])
            bits[j] |= int(Changed.TRADE)
            bits[j[hi]] |= int(Changed.HIGH)
            bits[j[lo]] |= int(Changed.LOW)
        return bits

    def underlying_stats(self, symbol: str, S: float, now: float, r: float) -> tuple[int, int, int, int, float] | None:
        chain = self.listing.chain(symbol)
        if chain is None:
            return None
        K_parts, T_parts, id_parts, call_parts = [], [], [], []
        for e in chain.expiries:
            k = np.array(e.strikes)
            for ids, is_call in ((e.call_ids, True), (e.put_ids, False)):
                K_parts.append(k)
                T_parts.append(np.full(k.size, expiry_epoch(e.expiry)))
                id_parts.append(np.array(ids, dtype=np.int64))
                call_parts.append(np.full(k.size, is_call))
        K = np.concatenate(K_parts)
        calls = np.concatenate(call_parts)
        oi, day_volume, done = self.activity(
            np.concatenate(id_parts), [chain.underlying.symbol] * K.size, K, np.concatenate(T_parts)
        )
        vol = np.round(day_volume * done)
        iv30 = float(self.surface.atm_vol(chain.underlying.symbol, 30 / DAYS_PER_YEAR, S))
        return (int(oi[calls].sum()), int(oi[~calls].sum()), int(vol[calls].sum()), int(vol[~calls].sum()), iv30)
