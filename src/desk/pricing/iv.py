"""Robust vectorized Black-Scholes-Merton implied volatility with reason codes.

:func:`implied_vol` inverts :func:`desk.pricing.bsm.bsm_price` for whole arrays at once. It
never raises on data and never loops unbounded: every element either converges (reason
``OK``) or gets ``NaN`` and an :class:`IVReason` saying why no implied volatility exists
(no price, below intrinsic, no time value, expired, above the arbitrage bound, ...).
:func:`implied_vol_quotes` does the same from bid/ask quotes (crossed, locked, no bid).

Method
------
The price is reduced to Jaeckel's normalised out-of-the-money Black call (P. Jaeckel,
"Let's be rational", Wilmott 2015, sec. 2-3; "By implication", Wilmott 2006)::

    F = S e^{(r-q)T},  x = -|ln(F/K)| <= 0,  s = sigma sqrt(T)
    beta = (price e^{rT} - max(theta (F - K), 0)) / sqrt(F K)          (time value)
    b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2),  0 < b < e^{x/2}

(an in-the-money option has the time value of the out-of-the-money one at the same strike,
by put-call parity). ``b`` is increasing in ``s``, convex below the inflection point
``s_c = sqrt(2|x|)`` and concave above it. Following Jaeckel, the ``s`` axis is split at
the points where the tangent at ``s_c`` crosses 0 and ``b_max``; the root is found by
third-order Householder iterations on an objective chosen per region to be nearly linear:
``1/ln b(s) - 1/ln beta`` for the lowest prices, ``b(s) - beta`` in the middle and
``ln((b_max - beta) / (b_max - b(s)))`` close to the maximum. Each element keeps a bracket
``[s_lo, s_hi]`` that always contains the root; a step that leaves it, is not finite, or is
longer than half the step before last (the progress test of Numerical Recipes' ``rtsafe``)
is replaced by bisection (geometric while the bracket spans more than a factor 2), so every
element converges or stops at :data:`MAX_ITER` iterations, whatever its input. Typical
elements converge to ``tol`` in 2-3 iterations plus one to confirm. The Householder terms
are evaluated as ratios (``b'/b``, ``b'/(b_max - b)``) so that nothing overflows in the
wings.

American options
----------------
This solver is European (BSM). ``implied_vol(..., exercise="american")`` hands American-style
options (US single-stock and ETF options) to :mod:`desk.pricing.american_iv`, which inverts
the American engine of :mod:`desk.pricing.american` (the European IV of an American put is
biased upward in the money; one quoted below ``K - S`` gets ``BELOW_INTRINSIC`` there).
European-style index options (SPX, NDX, RUT) are priced exactly here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from desk.pricing.normal import ndtr

from desk.pricing.bsm import AMERICAN, _as_sign
from desk.pricing.dividends import Dividends, escrowed_spot

EXERCISES = ("european", "american")


def _exercise(exercise: str) -> str:
    if exercise not in EXERCISES:
        raise ValueError(f"exercise must be 'european' or 'american', got {exercise!r}")
    return exercise


__all__ = [
    "MAX_ITER",
    "MAX_LOG_MONEYNESS",
    "MIN_T",
    "IVReason",
    "IVResult",
    "QuoteIV",
    "implied_vol",
    "implied_vol_quotes",
]

#: Hard cap on solver iterations per call (pure bisection from [lo, hi] needs < 50).
MAX_ITER = 64
#: Shortest time to expiry solved, in years (about 3 ms); below it: ``EXPIRED``.
MIN_T = 1e-10
#: Largest |ln(F/K)| solved (F/K beyond e^300 is no option market); above it: ``BAD_INPUT``.
MAX_LOG_MONEYNESS = 300.0

_INV_SQRT_2PI = 0.3989422804014327
_EPS = np.finfo(np.float64).eps


class IVReason(IntEnum):
    """Why an implied volatility is (or is not) available; stored as int8 in arrays."""

    OK = 0
    """Converged: ``iv`` is finite and reprices the input."""
    NO_PRICE = 1
    """Price missing, zero or negative (e.g. a bid of zero)."""
    BELOW_INTRINSIC = 2
    """Price below the European lower bound ``max(theta (S e^{-qT} - K e^{-rT}), 0)``."""
    NO_TIME_VALUE = 3
    """Price equals the lower bound to within rounding: any small sigma fits."""
    ABOVE_MAX = 4
    """Price at or above the no-arbitrage maximum (call ``S e^{-qT}``, put ``K e^{-rT}``)."""
    EXPIRED = 5
    """``T < MIN_T`` (1e-10 years, ~3 ms): at or after the expiry instant there is no
    volatility to imply."""
    CROSSED = 6
    """Quote with bid above ask (from :func:`implied_vol_quotes`)."""
    LOCKED = 7
    """Quote with bid equal to ask (from :func:`implied_vol_quotes`)."""
    NO_BID = 8
    """No bid (missing or zero), so no mid (from :func:`implied_vol_quotes`)."""
    NO_ASK = 9
    """No ask (missing or zero), so no mid (from :func:`implied_vol_quotes`)."""
    VOL_BELOW_LO = 10
    """An IV exists but is below the ``lo`` bound of the search."""
    VOL_ABOVE_HI = 11
    """An IV exists but is above the ``hi`` bound of the search."""
    BAD_INPUT = 12
    """``S``/``K`` not finite and positive, ``T``/``r``/``q`` not finite, or the forward
    overflows or is absurdly far from the strike (``|ln(F/K)| > MAX_LOG_MONEYNESS``)."""
    NOT_CONVERGED = 13
    """Iteration cap reached without meeting ``tol`` (not expected; kept as a guard)."""
    NOT_COMPUTED = 14
    """Not asked for: the bid and ask IVs of :func:`implied_vol_quotes` with ``sides=False``."""


class IVResult(NamedTuple):
    """Implied volatilities and why each is or is not available.

    ``iv``: float64 array, annual volatility as a fraction (0.20 = 20%), NaN where no IV.
    ``reason``: int8 array of :class:`IVReason` values, same shape (``OK`` where finite).
    """

    iv: NDArray[np.float64]
    reason: NDArray[np.int8]


class QuoteIV(NamedTuple):
    """Implied volatilities of the bid, the ask and the mid of quotes (see :func:`implied_vol_quotes`)."""

    bid: IVResult
    ask: IVResult
    mid: IVResult


def _norm_call(x: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Normalised OTM Black call b(x, s) for x <= 0, s > 0."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    n1: NDArray[np.float64] = ndtr(d1)  # scipy has no type hints: float64 in, float64 out
    n2: NDArray[np.float64] = ndtr(d2)
    return np.exp(0.5 * x) * n1 - np.exp(-0.5 * x) * n2


def _norm_call_complement(x: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    """b_max - b(x, s) = e^{x/2} N(-d1) + e^{-x/2} N(d2), without cancellation."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    n1: NDArray[np.float64] = ndtr(-d1)  # scipy has no type hints: float64 in, float64 out
    n2: NDArray[np.float64] = ndtr(d2)
    return np.exp(0.5 * x) * n1 + np.exp(-0.5 * x) * n2


def _vega(x: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    """db/ds = exp(-(x^2/s^2 + s^2/4)/2) / sqrt(2 pi)."""
    return _INV_SQRT_2PI * np.exp(-0.5 * ((x / s) ** 2 + 0.25 * s * s))


_LOW, _MID, _HIGH = 0, 1, 2


def _solve(
    x: NDArray[np.float64],
    beta: NDArray[np.float64],
    head: NDArray[np.float64],
    s_lo: NDArray[np.float64],
    s_hi: NDArray[np.float64],
    tol: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Solve b(x, s) = beta for s in (s_lo, s_hi); ``head`` = b_max - beta (exact).

    Returns (s, converged). All arrays 1-D of one length; the root is known to be bracketed.
    """
    n = x.size
    b_max = np.exp(0.5 * x)
    s_c = np.sqrt(-2.0 * x)
    pos = s_c > 0
    b_c = np.zeros(n)
    b_c[pos] = _norm_call(x[pos], s_c[pos])
    v_c = np.full(n, _INV_SQRT_2PI)
    v_c[pos] = _vega(x[pos], s_c[pos])
    # Tangent at the inflection point crosses 0 at s_l and b_max at s_u (Jaeckel 2015, sec. 3).
    s_l = np.maximum(s_c - b_c / v_c, 0.0)
    s_u = s_c + (b_max - b_c) / v_c
    b_l = np.zeros(n)
    pos_l = s_l > 0
    b_l[pos_l] = _norm_call(x[pos_l], s_l[pos_l])
    head_u = _norm_call_complement(x, s_u)

    region = np.full(n, _MID, dtype=np.int8)
    low = beta < b_l
    high = head < head_u
    region[low] = _LOW
    region[high] = _HIGH

    # Initial guesses: tangent at s_c in the middle; in the outer regions the objective
    # behaves like s^2 (ln b ~ -x^2/(2 s^2) as s -> 0, ln(b_max - b) ~ -s^2/8 as s -> inf).
    s = s_c + (beta - b_c) / v_c
    with np.errstate(divide="ignore", invalid="ignore"):
        s_low = s_l * np.sqrt(np.log(b_l) / np.log(beta))
        s_high = s_u * np.sqrt(np.log(head / b_max) / np.log(head_u / b_max))
    s = np.where(low, s_low, s)
    s = np.where(high, s_high, s)

    lo = s_lo.copy()
    hi = s_hi.copy()
    below = beta < b_c
    hi = np.where(below & (s_c < hi) & (s_c > lo), s_c, hi)
    lo = np.where(~below & (s_c > lo) & (s_c < hi), s_c, lo)
    bad = ~np.isfinite(s) | (s <= lo) | (s >= hi)
    s = np.where(bad, np.where(hi > 2.0 * lo, np.sqrt(lo * hi), 0.5 * (lo + hi)), s)

    converged = np.zeros(n, dtype=bool)
    active = np.arange(n)
    # last two step lengths (Numerical Recipes' rtsafe progress test), start at the bracket width
    step_1 = hi - lo
    step_2 = step_1.copy()
    for _ in range(MAX_ITER):
        if active.size == 0:
            break
        xa, sa, ba, ha = x[active], s[active], beta[active], head[active]
        ra, la, ua = region[active], lo[active], hi[active]
        d1 = xa / sa + 0.5 * sa
        d2 = d1 - sa
        ex = np.exp(0.5 * xa)
        nd2 = ndtr(d2)
        b = ex * ndtr(d1) - nd2 / ex
        hm = ra == _HIGH
        lm = ra == _LOW
        too_low = b < ba
        if np.any(hm):
            comp = ex * ndtr(-d1) + nd2 / ex  # b_max - b without cancellation
            too_low = np.where(hm, comp > ha, too_low)
        # shrink the bracket with the sign of the residual
        la = np.where(too_low, sa, la)
        ua = np.where(too_low, ua, sa)
        # b' = v = e^{x/2} n(d1), b'' = v w, b''' = v w3 (x <= 0)
        v = _INV_SQRT_2PI * np.exp(0.5 * (xa - d1 * d1))
        x2s = xa * xa / (sa * sa)
        w = x2s / sa - 0.25 * sa
        w3 = w * w - 3.0 * x2s / (sa * sa) - 0.25
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            # objective g = phi(b) - phi(beta) per region; the Householder terms h2 = g''/g',
            # h3 = g'''/g' are written with ratios (v/b, v/(b_max - b)) so nothing overflows
            g = b - ba
            g1 = v
            h2 = w
            h3 = w3
            if np.any(lm):  # phi = 1/ln(b)
                lb = np.log(b)
                r1 = v / b
                g = np.where(lm, 1.0 / lb - 1.0 / np.log(ba), g)
                g1 = np.where(lm, -r1 / (lb * lb), g1)
                h2 = np.where(lm, w - (lb + 2.0) * r1 / lb, h2)
                h3 = np.where(
                    lm, w3 - 3.0 * (lb + 2.0) * r1 * w / lb + 2.0 * (lb * lb + 3.0 * lb + 3.0) * r1 * r1 / (lb * lb), h3
                )
            if np.any(hm):  # phi = -ln(b_max - b)
                u = v / comp
                g = np.where(hm, np.log(ha / comp), g)
                g1 = np.where(hm, u, g1)
                h2 = np.where(hm, u + w, h2)
                h3 = np.where(hm, 2.0 * u * u + 3.0 * u * w + w3, h3)
            nu = -g / g1  # Newton step
            step = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
            # fall back to Newton when the Householder correction misbehaves
            step = np.where(np.isfinite(step) & (np.abs(step) <= 2.0 * np.abs(nu)), step, nu)
            s_new = sa + step
            # a step below tolerance is accepted as is (the root may sit on a bracket end)
            small = (np.isfinite(nu) & (np.abs(nu) <= tol * sa) & (np.abs(step) <= tol * sa)) | (g == 0)
            # bisect when the step leaves the bracket or does not shrink fast enough
            out = ~small & (~np.isfinite(s_new) | (s_new <= la) | (s_new >= ua) | (np.abs(step) > 0.5 * step_2[active]))
        bis = np.where(ua > 2.0 * la, np.sqrt(la * ua), 0.5 * (la + ua))
        s_new = np.where(out, bis, np.where(g == 0, sa, s_new))
        done = small | (ua - la <= tol * la)
        step_2[active] = step_1[active]
        step_1[active] = np.abs(s_new - sa)
        s[active] = s_new
        lo[active] = la
        hi[active] = ua
        converged[active[done]] = True
        active = active[~done]
    return s, converged


def _broadcast(*arrays: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    try:
        return tuple(np.broadcast_arrays(*arrs))
    except ValueError as exc:
        raise ValueError(f"arguments must broadcast to one shape; got shapes {[a.shape for a in arrs]}") from exc


def implied_vol(
    is_call: ArrayLike,
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    lo: float = 1e-4,
    hi: float = 5.0,
    tol: float = 1e-12,
    exercise: str = "european",
    dividends: Dividends | None = None,
) -> IVResult:
    """Black-Scholes-Merton implied volatility of European option prices, vectorized.

    Arguments broadcast (numpy rules): ``is_call`` boolean (True call, False put), ``price``
    dollars per share, ``S`` underlying and ``K`` strike in dollars per share, ``T`` years
    of 365 days, ``r`` and ``q`` continuously compounded annual rate and dividend yield
    (or borrow). ``lo``/``hi`` bound the search (annual volatility fractions) and ``tol``
    is the relative tolerance on sigma (``|d sigma| <= tol sigma``).

    Returns :class:`IVResult` ``(iv, reason)``: float64 IV (annual fraction) and int8
    :class:`IVReason` codes of the broadcast shape; ``iv`` is NaN wherever ``reason`` is not
    ``OK``. Checks, in order: ``BAD_INPUT``, ``EXPIRED`` (``T < MIN_T``), ``NO_PRICE``
    (NaN or <= 0), ``ABOVE_MAX``, ``BELOW_INTRINSIC``, ``NO_TIME_VALUE`` (in the money, time value
    within 8 ulp of ``F + K``: rounding noise), ``VOL_BELOW_LO`` / ``VOL_ABOVE_HI``. Never raises on data; raises
    ``ValueError`` for arguments that do not broadcast or an invalid ``lo``/``hi``/``tol``,
    ``TypeError`` for a non-boolean ``is_call``. Method: see the module docstring.

    ``exercise="american"`` inverts the American engine instead
    (:func:`desk.pricing.american_iv.american_implied_vol`: American bounds, so a put quoted
    below ``K - S`` gets ``BELOW_INTRINSIC``; ``tol`` is then 1e-8 absolute on sigma).
    ``dividends=(times, amounts)`` adds cash dividends (years from now, dollars per share;
    :data:`desk.pricing.american.Dividends`): for European exercise their present value is
    taken off the spot (escrowed-dividend model, exact for it). Any other ``exercise``
    raises ``ValueError``.
    """
    exercise = _exercise(exercise)
    if exercise == "american":
        return cast(
            IVResult,
            AMERICAN["implied_vol"](is_call, price, S, K, T, r, q, dividends=dividends, lo=lo, hi=hi, tol=max(tol, 1e-8)),
        )
    if dividends is not None:
        S = escrowed_spot(S, T, r, dividends)
    if not (0.0 < lo < hi < np.inf):
        raise ValueError(f"need 0 < lo < hi < inf, got lo={lo!r}, hi={hi!r}")
    if not (0.0 < tol < 1e-2):
        raise ValueError(f"tol must be in (0, 0.01), got {tol!r}")
    sign = _as_sign(is_call)
    th, p, s_, k_, t_, r_, q_ = _broadcast(sign, price, S, K, T, r, q)
    shape = th.shape
    th, p, s_, k_, t_, r_, q_ = (a.ravel() for a in (th, p, s_, k_, t_, r_, q_))
    n = th.size
    iv = np.full(n, np.nan)
    reason = np.full(n, IVReason.OK, dtype=np.int8)
    pending = np.ones(n, dtype=bool)

    def flag(mask: NDArray[np.bool_], code: IVReason) -> None:
        hit = pending & mask
        reason[hit] = code
        pending[hit] = False

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        flag(
            ~(np.isfinite(s_) & (s_ > 0) & np.isfinite(k_) & (k_ > 0)) | ~np.isfinite(t_) | ~np.isfinite(r_) | ~np.isfinite(q_),
            IVReason.BAD_INPUT,
        )
        flag(t_ < MIN_T, IVReason.EXPIRED)
        flag(~(p > 0) | np.isinf(p), IVReason.NO_PRICE)
        idx = np.flatnonzero(pending)
        if idx.size:
            thi, pi, si, ki, ti, ri, qi = th[idx], p[idx], s_[idx], k_[idx], t_[idx], r_[idx], q_[idx]
            fwd = si * np.exp((ri - qi) * ti)
            undisc = pi * np.exp(ri * ti)  # undiscounted (forward) price
            call = thi > 0
            upper = np.where(call, fwd, ki)
            intrinsic = np.maximum(thi * (fwd - ki), 0.0)
            head = upper - undisc  # b_max - beta, unnormalised
            tv = undisc - intrinsic  # time value (same for the OTM option at this strike)
            # In the money, the time value is a difference of O(F + K) numbers: below a few
            # ulps of them it is rounding noise, not information about volatility.
            atol = np.where(intrinsic > 0, 8.0 * _EPS * (fwd + ki), 0.0)
            sub = np.zeros(idx.size, dtype=np.int8)
            root = np.sqrt(fwd) * np.sqrt(ki)  # no overflow for huge F K
            x = -np.abs(np.log(fwd / ki))
            sub[~np.isfinite(fwd) | ~np.isfinite(undisc) | (x < -MAX_LOG_MONEYNESS)] = IVReason.BAD_INPUT
            sub[(sub == 0) & (head <= 0)] = IVReason.ABOVE_MAX
            sub[(sub == 0) & (tv < -atol)] = IVReason.BELOW_INTRINSIC
            sub[(sub == 0) & (tv <= atol)] = IVReason.NO_TIME_VALUE
            beta = tv / root
            hn = head / root
            sqrt_t = np.sqrt(ti)
            s_lo = lo * sqrt_t
            s_hi = hi * sqrt_t
            ok = sub == 0
            # bounds of the search: below lo / above hi -> no IV in range
            b_at_lo = np.zeros(idx.size)
            b_at_lo[ok] = _norm_call(x[ok], s_lo[ok])
            comp_at_hi = np.ones(idx.size)
            comp_at_hi[ok] = _norm_call_complement(x[ok], s_hi[ok])
            b_at_hi = np.zeros(idx.size)
            b_at_hi[ok] = _norm_call(x[ok], s_hi[ok])
            sub[ok & (beta < b_at_lo)] = IVReason.VOL_BELOW_LO
            # compare on the side that is known accurately: the head room b_max - beta only
            # carries information when beta is a sizeable part of b_max
            near_max = beta > 0.5 * np.exp(0.5 * x)
            above = np.where(near_max, hn < comp_at_hi, beta > b_at_hi)
            sub[(sub == 0) & above] = IVReason.VOL_ABOVE_HI
            ok = sub == 0
            if np.any(ok):
                sol, conv = _solve(x[ok], beta[ok], hn[ok], s_lo[ok], s_hi[ok], tol)
                # the root is bracketed in [lo, hi] sqrt(T): clamp away the last rounding
                vol = np.clip(sol / sqrt_t[ok], lo, hi)
                codes = np.where(conv, IVReason.OK, IVReason.NOT_CONVERGED).astype(np.int8)
                sub_ok = np.flatnonzero(ok)
                sub[sub_ok] = codes
                iv[idx[sub_ok[conv]]] = vol[conv]
            reason[idx] = sub
    return IVResult(iv.reshape(shape), reason.reshape(shape))


def implied_vol_quotes(
    is_call: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    lo: float = 1e-4,
    hi: float = 5.0,
    tol: float = 1e-12,
    exercise: str = "european",
    dividends: Dividends | None = None,
    sides: bool = True,
) -> QuoteIV:
    """Implied volatilities of the bid, ask and mid ``(bid + ask) / 2`` of option quotes.

    Arguments and units as :func:`implied_vol` (``bid``/``ask`` in dollars per share; NaN or
    <= 0 means no quote on that side). Quote-level reasons come first: a crossed quote
    (bid > ask) gives ``CROSSED`` and a locked one (bid == ask) ``LOCKED`` for bid, ask and
    mid alike; a missing/zero bid gives ``NO_PRICE`` for the bid and ``NO_BID`` for the mid
    (the ask IV is still computed); a missing ask gives ``NO_PRICE`` for the ask and
    ``NO_ASK`` for the mid. ``exercise`` and ``dividends`` as :func:`implied_vol` (one dividend
    schedule for all, 1-D). ``sides=False`` solves the mid only (a third of the work, what a
    chain of mid Greeks needs): the bid and ask get NaN with ``NOT_COMPUTED``. Returns
    :class:`QuoteIV` of three :class:`IVResult`.
    """
    th, b, a, s_, k_, t_, r_, q_ = _broadcast(_as_sign(is_call), bid, ask, S, K, T, r, q)
    call = th > 0
    with np.errstate(invalid="ignore"):
        has_bid = b > 0
        has_ask = a > 0
        crossed = has_bid & has_ask & (b > a)
        locked = has_bid & has_ask & (b == a)
        mid = np.where(has_bid & has_ask, 0.5 * (b + a), np.nan)
    # one solver call for all the prices asked for
    if sides:
        prices = np.stack([np.where(has_bid, b, np.nan), np.where(has_ask, a, np.nan), mid])
    else:
        prices = mid[np.newaxis]
    res = implied_vol(call, prices, s_, k_, t_, r_, q_, lo=lo, hi=hi, tol=tol, exercise=exercise, dividends=dividends)
    ivs = res.iv.copy()
    reasons = res.reason.copy()
    if not sides:
        ivs = np.concatenate([np.full((2,) + mid.shape, np.nan), ivs])
        reasons = np.concatenate([np.full((2,) + mid.shape, IVReason.NOT_COMPUTED, dtype=reasons.dtype), reasons])
    reasons[2][~has_ask] = IVReason.NO_ASK
    reasons[2][~has_bid] = IVReason.NO_BID
    for row in range(0 if sides else 2, 3):
        reasons[row][locked] = IVReason.LOCKED
        reasons[row][crossed] = IVReason.CROSSED
        ivs[row][reasons[row] != IVReason.OK] = np.nan
    return QuoteIV(*(IVResult(ivs[i], reasons[i]) for i in range(3)))
