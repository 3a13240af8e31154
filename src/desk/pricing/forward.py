"""Forward price implied by put-call parity near the money.

For European options on one underlying and one expiry, put-call parity gives
``C - P = DF (F - K)`` with ``DF = e^{-rT}`` (Hull 10th ed. eq. 11.6 and sec. 17.4 with a
dividend yield: ``C - P = S e^{-qT} - K e^{-rT}``). Every strike quoted on both sides gives
one estimate ``F_i = K_i + (C_i - P_i) / DF``. The forward absorbs dividends and stock
borrow, so pricing with ``S`` and ``q_implied = r - ln(F/S)/T`` (equivalently the forward
itself) is consistent with the chain, without a dividend forecast.

The estimate uses the few strikes nearest the money (where ``|C - P|`` is smallest: the
options there have the most time value, the tightest relative spreads and the smallest
early-exercise premium for American options) and takes the median of their ``F_i``, which
ignores one bad quote among three or more.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ImpliedForward", "implied_forward"]


class ImpliedForward(NamedTuple):
    """Result of :func:`implied_forward`.

    ``F``: forward price for the expiry, dollars per share (NaN when not enough quotes).
    ``q_implied``: continuous annual yield (dividends + borrow) such that
    ``F = S e^{(r - q) T}``; NaN without ``S``, with ``T <= 0`` or when ``F`` is NaN.
    ``n_used``: number of strikes whose estimates were combined.
    """

    F: float
    q_implied: float
    n_used: int


def implied_forward(
    strikes: ArrayLike,
    call_mid: ArrayLike,
    put_mid: ArrayLike,
    T: float,
    r: float,
    S: float | None = None,
    *,
    n_strikes: int = 4,
    min_pairs: int = 2,
) -> ImpliedForward:
    """Forward price of one expiry from put-call parity over the strikes nearest the money.

    ``strikes``, ``call_mid``, ``put_mid``: 1-D arrays of one length, dollars per share, the
    call and put mid at each strike (NaN or <= 0 where a side has no valid quote; duplicated
    strikes are fine). ``T``: years to expiry (ACT/365), ``r``: continuously compounded rate.
    ``S``: spot, only needed for ``q_implied``. Uses the ``n_strikes`` strikes with both
    mids valid and the smallest ``|C - P|`` and returns the median of their
    ``K + (C - P) e^{rT}``; needs at least ``min_pairs`` such strikes, else ``F`` is NaN.

    Returns :class:`ImpliedForward`. Raises ``ValueError`` for arrays of different shapes or
    not 1-D, non-finite ``T``/``r``, ``T < 0``, or ``n_strikes``/``min_pairs`` < 1.
    """
    k = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(call_mid, dtype=np.float64)
    p = np.asarray(put_mid, dtype=np.float64)
    if k.ndim != 1 or c.shape != k.shape or p.shape != k.shape:
        raise ValueError(f"strikes, call_mid and put_mid must be 1-D arrays of one length; got {k.shape}, {c.shape}, {p.shape}")
    if not (math.isfinite(T) and math.isfinite(r)) or T < 0:
        raise ValueError(f"T must be finite and >= 0 and r finite; got T={T!r}, r={r!r}")
    if n_strikes < 1 or min_pairs < 1:
        raise ValueError(f"n_strikes and min_pairs must be >= 1; got {n_strikes}, {min_pairs}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(k) & (k > 0) & np.isfinite(c) & (c > 0) & np.isfinite(p) & (p > 0)
    if np.count_nonzero(valid) < min_pairs:
        return ImpliedForward(math.nan, math.nan, int(np.count_nonzero(valid)))
    kv, diff = k[valid], (c - p)[valid]
    nearest = np.argsort(np.abs(diff), kind="stable")[:n_strikes]
    estimates = kv[nearest] + diff[nearest] * math.exp(r * T)
    fwd = float(np.median(estimates))
    if fwd <= 0:
        return ImpliedForward(math.nan, math.nan, int(nearest.size))
    q = math.nan
    if S is not None and math.isfinite(S) and S > 0 and T > 0:
        q = r - math.log(fwd / S) / T
    return ImpliedForward(fwd, q, int(nearest.size))
