"""Our IV and Greeks for the window of one expiry of a chain, from its quotes: the forward
implied from put-call parity, then :func:`desk.pricing.chain_greeks` (mid IVs only), as
:class:`ChainAnalytics` of :class:`desk.domain.options.OptionGreeks`. Pure computation
(numpy); the broker's :class:`~desk.broker.chains.ChainManager` feeds it the quotes and
re-exports these names.

Units: prices in dollars per share; IV a fraction per year; vega per vol point; theta per
calendar day; ``T`` years ACT/365 to the expiry's close (exchange calendar)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from desk.domain.chain import ChainAnalytics
from desk.domain.options import OptionGreeks
from desk.pricing.chain import chain_greeks
from desk.pricing.expiry import time_to_expiry
from desk.pricing.forward import implied_forward
from desk.pricing.iv import IVReason

__all__ = ["ChainAnalytics", "compute_greeks", "iv_reason_text", "price_window", "years_to_expiry"]


def compute_greeks(
    is_call: np.ndarray,
    strikes: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    *,
    spot: float,
    T: float,
    r: float,
    exercise: str = "european",
) -> ChainAnalytics:
    """Our mid IV and Greeks for the options of one expiry, in one vectorized call.

    ``is_call``/``strikes``/``bids``/``asks`` are parallel arrays (dollars per share, ``nan``
    for a missing side). :func:`desk.pricing.chain_greeks` implies the forward from put-call
    parity near the money (``q = r - ln(F/S)/T``; ``q = 0`` with fewer than two two-sided
    pairs). Without a spot (``nan``) the parity forward alone is used (``S = F e^{-rT}``).
    Expired (``T <= 0``) or unpriceable inputs give ``nan`` Greeks with the IV reason code.
    ``exercise``: ``"american"`` (US equity and ETF options) or ``"european"`` (SPX, NDX, RUT):
    see :func:`desk.domain.options.exercise_style`; American mids below exercise value get
    ``BELOW_INTRINSIC``.
    """
    is_call = np.asarray(is_call, dtype=bool)
    strikes = np.asarray(strikes, dtype=float)
    bids = np.asarray(bids, dtype=float)
    asks = np.asarray(asks, dtype=float)
    n = len(strikes)
    T = max(float(T), 0.0)
    if not (spot == spot and spot > 0) and n and T > 0:
        with np.errstate(invalid="ignore"):
            mids = np.where((bids > 0) & (asks >= bids), 0.5 * (bids + asks), np.nan)
        ks = np.unique(strikes)
        calls, puts = np.full(ks.size, np.nan), np.full(ks.size, np.nan)
        calls[np.searchsorted(ks, strikes[is_call])] = mids[is_call]
        puts[np.searchsorted(ks, strikes[~is_call])] = mids[~is_call]
        forward = implied_forward(ks, calls, puts, T, r).F
        spot = forward * math.exp(-r * T) if forward == forward else math.nan
    if n == 0 or not (spot == spot and spot > 0):
        reason = int(IVReason.EXPIRED if T <= 0 else IVReason.NO_PRICE)
        return ChainAnalytics(spot, math.nan, math.nan, T, [OptionGreeks()] * n, [reason] * n)
    g = chain_greeks(is_call, strikes, bids, asks, spot, T, r, exercise=exercise, sides=False)
    prices = g.mid  # the model price at the mid IV is the mid itself
    greeks = [
        OptionGreeks(float(a), float(b), float(c), float(d), float(e), float(f) if a == a else math.nan, spot)
        for a, b, c, d, e, f in zip(g.iv, g.delta, g.gamma, g.vega, g.theta, prices)
    ]
    forward = float(g.forward[0]) if n else math.nan
    q = float(g.q[0]) if n else math.nan
    return ChainAnalytics(spot, forward, q, T, greeks, [int(x) for x in g.reason])


def iv_reason_text(code: int) -> str:
    """The name of an IV reason code (``OK``, ``NO_PRICE``, ``BELOW_INTRINSIC``...)."""
    try:
        return IVReason(code).name
    except ValueError:
        return str(code)


def years_to_expiry(expiry: str, now: datetime) -> float:
    """Years (ACT/365) from ``now`` (UTC) to the close of the ``expiry`` session.

    Uses :func:`desk.pricing.time_to_expiry` (exchange calendar, early closes); never
    negative.
    """
    return max(0.0, float(time_to_expiry(expiry, now)))


def price_window(
    expiry: str,
    now: datetime,
    is_call: np.ndarray,
    strikes: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    *,
    spot: float,
    r: float,
    exercise: str = "european",
) -> ChainAnalytics:
    """:func:`compute_greeks` for the options of ``expiry`` (``YYYYMMDD``) at ``now`` (aware
    datetime, UTC): ``T`` from :func:`years_to_expiry`. Arrays of shape ``(n,)``; ``bids``,
    ``asks`` and ``spot`` dollars per share; ``r`` continuously compounded, fraction per
    year; the Greeks come back per share (vega per vol point, theta per calendar day). This is the
    :class:`desk.domain.chain.ChainPricer` the engine gives the broker's chain. Raises
    ``ValueError`` for an expiry that is not a date."""
    return compute_greeks(is_call, strikes, bids, asks, spot=spot, T=years_to_expiry(expiry, now), r=r, exercise=exercise)
