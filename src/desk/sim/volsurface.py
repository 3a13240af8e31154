"""Seeded implied-volatility surfaces of the simulated underlyings (SSVI smile, ATM term
structure, spot-vol correlation), vectorized with numpy.

Per underlying, with ``T`` in years (ACT/365), ``S`` the underlying price, ``F = S
exp((r - q) T)`` the forward and ``k = ln(K / F)`` the log-moneyness of strike ``K``:

* **ATM term structure**: ``atm(T) = long + (short - long) exp(-T / tau)``, scaled by the
  spot-vol factor ``m(S) = clip((S / ref) ** -beta, 0.5, 2)`` (volatility rises when the
  underlying falls: the leverage effect; ``ref`` is the universe's reference price).
* **Smile** (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative
  Finance 14(1), 2014, eq. 4.1 "SSVI" with the power-law phi of section 4.3)::

      theta(T) = atm(T)^2 T                                  (ATM total variance)
      phi      = eta / (theta^g (1 + theta)^(1 - g)),  g = 1/2
      w(k, T)  = theta / 2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))
      IV(k, T) = sqrt(w / T)

  ``rho < 0`` skews the smile toward puts (strongly for index ETFs, mildly for single
  stocks); ``eta (1 + |rho|) <= 2`` keeps each slice free of butterfly arbitrage
  (Gatheral & Jacquier, corollary 4.1), and every parameter set drawn here satisfies it.

Parameters are drawn from a ``random.Random`` seeded with ``("vol", seed, conId)``, so a
surface depends only on the seed and the underlying. Volatilities are annual fractions
(0.20 = 20 %).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from desk.sim.chain import INDEX_ETFS
from desk.sim.universe import UNIVERSE, SimStock

__all__ = ["DIVIDEND_YIELD", "SurfaceParams", "VolSurface", "dividend_yield"]

#: Continuous dividend yields used for the simulated underlyings (annual fractions,
#: rounded trailing yields); anything else has 0.
DIVIDEND_YIELD: dict[str, float] = {
    "SPY": 0.012,
    "QQQ": 0.006,
    "IWM": 0.012,
    "DIA": 0.016,
    "XLF": 0.015,
    "AAPL": 0.004,
    "MSFT": 0.007,
    "NVDA": 0.0003,
    "AMZN": 0.0,
    "GOOG": 0.004,
    "META": 0.003,
    "TSLA": 0.0,
    "AMD": 0.0,
    "JPM": 0.02,
}


def dividend_yield(symbol: str) -> float:
    """Continuous annual dividend yield of ``symbol`` (0.0 when unknown)."""
    return DIVIDEND_YIELD.get(symbol.upper(), 0.0)


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    """One underlying's surface (see the module docstring for the formulas).

    ``atm_short`` / ``atm_long``: ATM implied vol as ``T`` -> 0 / infinity (annual
    fractions); ``tau``: years over which the term structure moves from one to the other;
    ``rho``, ``eta``: SSVI skew and curvature; ``beta``: elasticity of ATM vol to the
    underlying price; ``ref_price``: the price (dollars per share) where the spot-vol
    factor is 1.
    """

    atm_short: float
    atm_long: float
    tau: float
    rho: float
    eta: float
    beta: float
    ref_price: float

    @classmethod
    def seeded(cls, stock: SimStock, seed: int) -> SurfaceParams:
        """Draw the parameters of ``stock`` for ``seed`` (deterministic)."""
        rng = random.Random(f"vol|{seed}|{stock.con_id}")
        atm_long = stock.annual_vol * rng.uniform(0.95, 1.05)
        atm_short = atm_long * rng.uniform(0.85, 1.20)
        tau = rng.uniform(0.15, 0.40)
        if stock.symbol in INDEX_ETFS:
            rho, eta, beta = rng.uniform(-0.75, -0.60), rng.uniform(0.9, 1.1), rng.uniform(3.0, 5.0)
        elif stock.stock_type == "ETF":
            rho, eta, beta = rng.uniform(-0.60, -0.45), rng.uniform(0.8, 1.0), rng.uniform(2.0, 3.5)
        else:
            rho, eta, beta = rng.uniform(-0.45, -0.20), rng.uniform(0.6, 0.9), rng.uniform(0.5, 1.5)
        return cls(atm_short, atm_long, tau, rho, eta, beta, stock.price)


class VolSurface:
    """Implied-vol surfaces of several underlyings, evaluated vectorized.

    ``VolSurface.seeded(seed)`` covers the whole universe; :meth:`vol` evaluates one
    underlying, :meth:`vol_rows` many contracts of mixed underlyings at once (row ``i``
    uses the parameters of underlying ``index[i]``, see :meth:`index_of`).
    """

    def __init__(self, params: dict[str, SurfaceParams]) -> None:
        self.symbols = list(params)
        self.params = dict(params)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        p = [params[s] for s in self.symbols]
        self._short = np.array([x.atm_short for x in p], dtype=np.float64)
        self._long = np.array([x.atm_long for x in p], dtype=np.float64)
        self._tau = np.array([x.tau for x in p], dtype=np.float64)
        self._rho = np.array([x.rho for x in p], dtype=np.float64)
        self._eta = np.array([x.eta for x in p], dtype=np.float64)
        self._beta = np.array([x.beta for x in p], dtype=np.float64)
        self._ref = np.array([x.ref_price for x in p], dtype=np.float64)

    @classmethod
    def seeded(cls, seed: int, stocks: Iterable[SimStock] | None = None) -> VolSurface:
        """Seeded surfaces for ``stocks`` (default: the whole universe)."""
        chosen = list(stocks) if stocks is not None else list(UNIVERSE.values())
        return cls({s.symbol: SurfaceParams.seeded(s, seed) for s in chosen})

    def index_of(self, symbol: str) -> int:
        """Row index of ``symbol``'s parameters; ``KeyError`` if it has no surface."""
        try:
            return self._index[symbol]
        except KeyError:
            raise KeyError(f"no volatility surface for {symbol!r}") from None

    def atm_vol(self, symbol: str, T: ArrayLike, S: ArrayLike | None = None) -> NDArray[np.float64]:
        """ATM implied vol of ``symbol`` at ``T`` years (annual fraction), at underlying
        price ``S`` (default: the reference price, spot-vol factor 1)."""
        i = self.index_of(symbol)
        idx = np.full(np.shape(T), i)
        s = self._ref[i] if S is None else S
        return self.atm_rows(idx, np.asarray(T, dtype=np.float64), np.asarray(s, dtype=np.float64))

    def vol(self, symbol: str, K: ArrayLike, T: ArrayLike, S: ArrayLike, r: float, q: float | None = None) -> NDArray[np.float64]:
        """Implied vol (annual fraction) of ``symbol`` at strike ``K`` (dollars per
        share), ``T`` years, underlying price ``S``, rate ``r`` and dividend yield ``q``
        (default :func:`dividend_yield`). Arguments broadcast."""
        i = self.index_of(symbol)
        qq = dividend_yield(symbol) if q is None else q
        K, T, S = np.broadcast_arrays(np.asarray(K, np.float64), np.asarray(T, np.float64), np.asarray(S, np.float64))
        return self.vol_rows(np.full(K.shape, i), K, T, S, r, qq)

    def vol_rows(
        self,
        index: NDArray[np.integer],
        K: NDArray[np.float64],
        T: NDArray[np.float64],
        S: NDArray[np.float64],
        r: float | NDArray[np.float64],
        q: float | NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Implied vols of many contracts: row ``i`` has underlying ``index[i]``, strike
        ``K[i]``, ``T[i]`` years (> 0), underlying price ``S[i]``; ``r``, ``q`` broadcast."""
        T = np.maximum(T, 1e-6)
        atm = self.atm_rows(index, T, S)
        theta = atm * atm * T
        rho = self._rho[index]
        phi = self._eta[index] / (np.sqrt(theta) * np.sqrt(1.0 + theta))
        k = np.log(K / S) - (r - q) * T
        pk = phi * k
        w = 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))
        return np.sqrt(w / T)

    def atm_rows(self, index: NDArray[np.integer], T: NDArray[np.float64], S: NDArray[np.float64]) -> NDArray[np.float64]:
        """ATM implied vols of many rows: underlying ``index[i]`` at ``T[i]`` years and
        underlying price ``S[i]`` (dollars per share)."""
        lng = self._long[index]
        base = lng + (self._short[index] - lng) * np.exp(-T / self._tau[index])
        factor = np.clip((S / self._ref[index]) ** (-self._beta[index]), 0.5, 2.0)
        return base * factor
