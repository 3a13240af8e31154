"""Payoff at expiry of a position in stock and European-style options on one underlying.

At expiry every option is worth its intrinsic value, so the P&L of a position as a
function of the underlying price S >= 0 is piecewise linear with kinks at the strikes::

    pnl(S) = cash + sum_stock q*m*S + sum_calls q*m*max(S-K, 0) + sum_puts q*m*max(K-S, 0)

where q is the signed quantity (shares or contracts), m the multiplier (1 per share, 100
per US equity option contract) and ``cash`` the dollars paid (-) or received (+) to build
the position (premiums, stock cost). The extremes over S in [0, +inf) are therefore at
S = 0, at a strike, or unbounded along the last ray (slope = stock shares + call
shares); breakevens are the zeros of the segments. Everything here is exact arithmetic
on those points, not a sampled grid; the arrays are only for drawing.

Only one expiry: legs expiring on different dates (calendars, diagonals) have time value
left at the first expiry, which needs a pricing model, not a payoff diagram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from desk.risk.errors import RiskInputError

__all__ = ["PayoffLeg", "PayoffProfile", "payoff_at_expiry"]


@dataclass(frozen=True, slots=True)
class PayoffLeg:
    """One component of a position. ``kind``: ``STK`` (the underlying), ``C`` or ``P``.
    ``quantity``: signed shares (STK) or contracts (options). ``strike``: dollars per
    share (options). ``multiplier``: shares per unit (1 for stock, 100 for US options)."""

    kind: str
    quantity: float
    strike: float = 0.0
    multiplier: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("STK", "C", "P"):
            raise RiskInputError(f"payoff leg kind must be STK, C or P, got {self.kind!r}")
        if not math.isfinite(self.quantity):
            raise RiskInputError(f"payoff leg quantity must be finite, got {self.quantity!r}")
        if self.kind != "STK" and not (math.isfinite(self.strike) and self.strike > 0):
            raise RiskInputError(f"payoff leg strike must be > 0, got {self.strike!r}")
        if self.multiplier <= 0:
            raise RiskInputError(f"payoff leg multiplier must be > 0, got {self.multiplier!r}")


@dataclass(frozen=True)
class PayoffProfile:
    """P&L at expiry of a position, dollars, as a function of the underlying price at
    expiry (dollars per share).

    ``prices`` / ``pnl``: float64 arrays of equal length for a chart (increasing prices,
    every strike included exactly). ``min_pnl`` / ``max_pnl``: extremes over all prices
    >= 0 (``-inf`` / ``+inf`` when unbounded). ``breakevens``: increasing prices where the
    P&L crosses or touches zero. ``expiry``: ``YYYYMMDD`` (empty for a stock-only position).
    ``slope_above``: dollars of P&L per $1 of underlying above the highest strike.
    """

    expiry: str
    prices: np.ndarray
    pnl: np.ndarray
    min_pnl: float
    max_pnl: float
    breakevens: tuple[float, ...]
    slope_above: float

    @property
    def max_loss(self) -> float:
        """Largest loss in dollars as a positive number (0 if the position cannot lose,
        ``inf`` if unbounded)."""
        return max(0.0, -self.min_pnl)

    @property
    def max_gain(self) -> float:
        """Largest gain in dollars (0 if it cannot gain, ``inf`` if unbounded)."""
        return max(0.0, self.max_pnl)

    @property
    def locked(self) -> bool:
        """True when the P&L does not depend on the underlying (conversion, box spread)."""
        return self.min_pnl == self.max_pnl


def _value(legs: Sequence[PayoffLeg], cash: float, s: float) -> float:
    total = cash
    for leg in legs:
        if leg.kind == "STK":
            v = s
        elif leg.kind == "C":
            v = max(s - leg.strike, 0.0)
        else:
            v = max(leg.strike - s, 0.0)
        total += leg.quantity * leg.multiplier * v
    return total


def payoff_at_expiry(
    legs: Sequence[PayoffLeg],
    cash: float,
    *,
    expiry: str = "",
    spot: float = math.nan,
    points: int = 121,
) -> PayoffProfile:
    """Exact payoff analysis of ``legs`` plus ``cash`` dollars (see the module doc).

    ``spot`` (dollars per share, optional) widens the chart to include the current price;
    ``points`` is the number of evenly spaced chart prices (strikes are added to them).
    Raises :class:`RiskInputError` for a non-finite ``cash`` or fewer than 2 points.
    """
    if not math.isfinite(cash):
        raise RiskInputError(f"payoff cash must be finite, got {cash!r}")
    if points < 2:
        raise RiskInputError(f"payoff chart needs at least 2 points, got {points}")
    strikes = sorted({leg.strike for leg in legs if leg.kind != "STK"})
    knots = [0.0, *[k for k in strikes if k > 0]]
    values = [_value(legs, cash, x) for x in knots]
    slope = sum(leg.quantity * leg.multiplier for leg in legs if leg.kind in ("STK", "C"))
    scale = sum(abs(leg.quantity) * leg.multiplier * max(leg.strike, 1.0) for leg in legs) + abs(cash) + 1.0
    tol = 1e-9 * scale

    def zero(v: float) -> bool:
        return abs(v) <= tol

    lo_v, hi_v = min(values), max(values)
    if abs(slope) <= 1e-12:
        slope = 0.0
    min_pnl = -math.inf if slope < 0 else lo_v
    max_pnl = math.inf if slope > 0 else hi_v
    if zero(max_pnl - min_pnl):
        min_pnl = max_pnl = values[-1]

    be: list[float] = []
    for (a, fa), (b, fb) in zip(zip(knots, values, strict=True), zip(knots[1:], values[1:], strict=True), strict=False):
        if zero(fa):
            be.append(a)
        elif not zero(fb) and (fa < 0) != (fb < 0):
            be.append(a + (0.0 - fa) * (b - a) / (fb - fa))
    last_x, last_v = knots[-1], values[-1]
    if zero(last_v):
        be.append(last_x)
    elif slope != 0 and (last_v < 0) == (slope > 0):
        be.append(last_x - last_v / slope)
    breakevens: list[float] = []
    for x in be:
        if not breakevens or abs(x - breakevens[-1]) > 1e-9 * max(1.0, abs(x)):
            breakevens.append(float(x))
    if zero(max_pnl - min_pnl) and zero(max_pnl):
        breakevens = []  # flat at zero: every price is a breakeven, none is informative

    pivots = [*strikes, *breakevens]
    if math.isfinite(spot) and spot > 0:
        pivots.append(spot)
    if not pivots:
        pivots = [1.0]
    lo = max(0.0, min(pivots) * 0.75)
    hi = max(pivots) * 1.25
    grid = np.linspace(lo, hi, points)
    prices = np.unique(np.concatenate([grid, np.asarray([k for k in strikes if lo <= k <= hi], dtype=np.float64)]))
    pnl = np.full(prices.shape, cash, dtype=np.float64)
    for leg in legs:
        if leg.kind == "STK":
            v = prices
        elif leg.kind == "C":
            v = np.maximum(prices - leg.strike, 0.0)
        else:
            v = np.maximum(leg.strike - prices, 0.0)
        pnl += leg.quantity * leg.multiplier * v
    return PayoffProfile(
        expiry=expiry,
        prices=prices,
        pnl=pnl,
        min_pnl=float(min_pnl),
        max_pnl=float(max_pnl),
        breakevens=tuple(breakevens),
        slope_above=float(slope),
    )
