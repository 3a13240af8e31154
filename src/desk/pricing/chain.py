"""Implied volatility and Greeks for a whole option chain in one call (for the chain pane).

:func:`chain_greeks` takes the quotes of every option of one underlying (any mix of
strikes, rights and expiries), implies the forward of each expiry from put-call parity
(unless a dividend yield is given), computes bid/ask/mid implied volatilities with reason
codes and the Greeks at the mid IV. European BSM throughout; see :mod:`desk.pricing.iv`
for what that means for American options.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from desk.pricing.bsm import _as_sign, bsm_greeks
from desk.pricing.forward import implied_forward
from desk.pricing.iv import implied_vol_quotes

__all__ = ["ChainGreeks", "chain_greeks"]

FloatArray = NDArray[np.float64]


class ChainGreeks(NamedTuple):
    """Per-option results of :func:`chain_greeks`, 1-D arrays in the input order.

    * ``mid``: (bid + ask) / 2, dollars per share (NaN without a two-sided quote).
    * ``iv``, ``bid_iv``, ``ask_iv``: implied volatilities (annual fraction) of the mid,
      bid and ask; NaN where the matching ``reason``/``bid_reason``/``ask_reason``
      (int8 :class:`desk.pricing.iv.IVReason`) is not ``OK``.
    * ``delta`` ($/$ per share), ``gamma`` (1/$), ``vega`` ($ per vol point), ``theta``
      ($ per calendar day), ``rho`` ($ per 1% of r): BSM Greeks at the mid IV, per share
      (multiply by the multiplier for per-contract figures); NaN where ``iv`` is NaN.
    * ``forward``: forward price used for the option's expiry, ``q``: the dividend yield
      used (given, or implied from parity: ``F = S e^{(r-q)T}``).
    """

    mid: FloatArray
    iv: FloatArray
    reason: NDArray[np.int8]
    bid_iv: FloatArray
    bid_reason: NDArray[np.int8]
    ask_iv: FloatArray
    ask_reason: NDArray[np.int8]
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray
    forward: FloatArray
    q: FloatArray


def _implied_yields(
    call: NDArray[np.bool_], K: FloatArray, mid: FloatArray, S: float, T: FloatArray, r: FloatArray, fallback: float
) -> FloatArray:
    q = np.full(K.shape, fallback, dtype=np.float64)
    for t in np.unique(T):
        if not t > 0:
            continue
        group = T == t
        rate = float(r[group][0])
        strikes = np.unique(K[group])
        calls = np.full(strikes.size, np.nan)
        puts = np.full(strikes.size, np.nan)
        gc = group & call
        gp = group & ~call
        calls[np.searchsorted(strikes, K[gc])] = mid[gc]
        puts[np.searchsorted(strikes, K[gp])] = mid[gp]
        fwd = implied_forward(strikes, calls, puts, float(t), rate, S)
        if math.isfinite(fwd.q_implied):
            q[group] = fwd.q_implied
    return q


def chain_greeks(
    is_call: ArrayLike,
    K: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    S: float,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike | None = None,
    *,
    q_fallback: float = 0.0,
    lo: float = 1e-4,
    hi: float = 5.0,
) -> ChainGreeks:
    """Bid/ask/mid IV and mid-IV Greeks for every option of a chain.

    ``is_call`` (bool), ``K`` (strike $/share), ``bid``/``ask`` ($/share; NaN or <= 0 for no
    quote), ``T`` (years, ACT/365; see :func:`desk.pricing.expiry.times_to_expiry`), ``r``
    (continuous annual rate) are 1-D arrays of one length (``T``/``r`` may be scalars);
    ``S`` the underlying price ($/share). With ``q=None`` the dividend yield of each expiry
    is implied from put-call parity near the money (:func:`desk.pricing.forward.implied_forward`,
    per distinct ``T``) and ``q_fallback`` is used for expiries without two valid pairs;
    otherwise ``q`` (scalar or per option) is used as given.

    Returns :class:`ChainGreeks`. Raises ``ValueError`` for arrays of different lengths,
    ``S`` not finite and positive, a strike not finite and positive, or ``T`` < 0 / not
    finite; quote problems never raise (they become reason codes).
    """
    call = _as_sign(is_call) > 0
    k = np.asarray(K, dtype=np.float64)
    if call.ndim != 1 or k.shape != call.shape:
        raise ValueError(f"is_call and K must be 1-D arrays of one length; got {call.shape}, {k.shape}")
    n = k.size
    try:
        b, a, t, rr = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in (bid, ask, T, r))
    except ValueError as exc:
        raise ValueError(f"bid, ask, T and r must have {n} elements (or be scalars for T, r)") from exc
    if not (math.isfinite(S) and S > 0):
        raise ValueError(f"S must be finite and > 0, got {S!r}")
    if not np.all(np.isfinite(k) & (k > 0)):
        raise ValueError("every strike K must be finite and > 0")
    if not np.all(np.isfinite(t) & (t >= 0)) or not np.all(np.isfinite(rr)):
        raise ValueError("T must be finite and >= 0 and r finite for every option")
    with np.errstate(invalid="ignore"):
        mid = np.where((b > 0) & (a > 0) & (a >= b), 0.5 * (b + a), np.nan)
    if q is None:
        qq = _implied_yields(call, k, mid, S, t, rr, q_fallback)
    else:
        qq = np.broadcast_to(np.asarray(q, dtype=np.float64), (n,)).copy()
    quotes = implied_vol_quotes(call, b, a, S, k, t, rr, qq, lo=lo, hi=hi)
    iv = quotes.mid.iv
    greeks = bsm_greeks(call, S, k, t, rr, qq, np.where(np.isfinite(iv), iv, np.nan))
    nan_mask = ~np.isfinite(iv)
    delta, gamma, vega, theta, rho = (np.where(nan_mask, np.nan, g) for g in greeks[1:])
    forward = S * np.exp((rr - qq) * t)
    return ChainGreeks(
        mid=mid,
        iv=iv,
        reason=quotes.mid.reason,
        bid_iv=quotes.bid.iv,
        bid_reason=quotes.bid.reason,
        ask_iv=quotes.ask.iv,
        ask_reason=quotes.ask.reason,
        delta=delta,
        gamma=gamma,
        vega=vega,
        theta=theta,
        rho=rho,
        forward=forward,
        q=qq,
    )
