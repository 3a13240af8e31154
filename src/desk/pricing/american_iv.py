"""Implied volatility of American option prices, vectorized, with :class:`~desk.pricing.iv.IVReason` codes.

:func:`american_implied_vol` inverts :func:`desk.pricing.american.american_price`. Every
element either converges (``OK``) or gets ``NaN`` and a reason, as the European
:func:`desk.pricing.iv.implied_vol`; the checks use the American bounds:

* ``BELOW_INTRINSIC``: the price is below what exercising now pays, ``max(theta (S - K), 0)``,
  or below the European lower bound ``max(theta (S* e^{-qT} - K e^{-rT}), 0)`` (``S*`` the
  spot less the dividends' present value), whichever is higher. An American put quoted
  under ``K - S`` is an arbitrage (buy it and exercise), not a volatility.
* ``NO_TIME_VALUE``: the price equals that bound to within rounding;
* ``ABOVE_MAX``: at or above ``S`` (call) or ``K`` (put).

Method: contracts whose early exercise is never optimal (put with ``r <= 0 <= q``, call
with ``q <= 0`` and no cash dividend) are solved by the European solver exactly. The others
by a safeguarded secant iteration on ``American(sigma) - price``: it starts from the
European implied volatility of the price (an upper bound, since American >= European at
every volatility), takes the European vega as the first slope, keeps a bracket that always
contains the root and bisects whenever a step would leave it. It stops when the price is
matched to ``1e-9`` relative (or ``1e-10`` dollars) or the bracket is narrower than
``1e-9`` in volatility; at most :data:`MAX_ITER` engine calls, all options at once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from desk.pricing.american import SCHEME, Dividends, Scheme, _european_only, american_price, escrowed_spot
from desk.pricing import bsm as _bsm
from desk.pricing.bsm import _as_sign, bsm_greeks
from desk.pricing.iv import MIN_T, IVReason, IVResult, _broadcast, implied_vol

__all__ = ["MAX_ITER", "american_implied_vol"]

#: Most engine evaluations per option in the American solve.
MAX_ITER = 40
_EPS = np.finfo(np.float64).eps

FloatArray = NDArray[np.float64]


def _dividend_rows(dividends: Dividends | None, shape: tuple[int, ...], idx: np.ndarray) -> tuple[FloatArray, FloatArray] | None:
    """The dividend schedule of the flat elements ``idx`` (None stays None)."""
    if dividends is None:
        return None
    times, amounts = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in dividends)
    if times.ndim == 1:
        return times, amounts
    n = int(np.prod(shape)) if shape else 1
    t = np.broadcast_to(times, (*shape, times.shape[-1])).reshape(n, -1)
    a = np.broadcast_to(amounts, (*shape, amounts.shape[-1])).reshape(n, -1)
    return t[idx], a[idx]


def american_implied_vol(
    is_call: ArrayLike,
    price: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    dividends: Dividends | None = None,
    lo: float = 1e-4,
    hi: float = 5.0,
    tol: float = 1e-8,
    scheme: Scheme = SCHEME,
) -> IVResult:
    """Implied volatility of American option prices (annual fraction), vectorized.

    Arguments, units and result as :func:`desk.pricing.iv.implied_vol` (``price`` dollars per
    share, ``T`` years ACT/365, ``r``/``q`` continuous); ``dividends``: cash dividends
    ``(times, amounts)`` (:data:`desk.pricing.american.Dividends`). ``tol`` is the tolerance on
    sigma (absolute, annual fraction). Reasons: see the module docstring. Never raises on
    data; ``ValueError`` for arguments that do not broadcast, a bad ``lo``/``hi``/``tol`` or
    malformed dividends, ``TypeError`` for a non-boolean ``is_call``.
    """
    if not (0.0 < lo < hi < np.inf):
        raise ValueError(f"need 0 < lo < hi < inf, got lo={lo!r}, hi={hi!r}")
    if not (0.0 < tol < 1e-2):
        raise ValueError(f"tol must be in (0, 0.01), got {tol!r}")
    th, p, s_, k_, t_, r_, q_ = _broadcast(_as_sign(is_call), price, S, K, T, r, q)
    shape = th.shape
    th, p, s_, k_, t_, r_, q_ = (a.ravel() for a in (th, p, s_, k_, t_, r_, q_))
    n = th.size
    iv = np.full(n, np.nan)
    reason = np.full(n, IVReason.OK, dtype=np.int8)
    pending = np.ones(n, dtype=bool)

    def flag(mask: np.ndarray, code: IVReason) -> None:
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
        if idx.size == 0:
            return IVResult(iv.reshape(shape), reason.reshape(shape))
        s_star = np.full(n, np.nan)
        s_star[idx] = escrowed_spot(s_[idx], t_[idx], r_[idx], _dividend_rows(dividends, shape, idx))
        flag(~(s_star > 0), IVReason.BAD_INPUT)
        call = th > 0
        upper = np.where(call, s_, k_)
        now = np.maximum(th * (s_ - k_), 0.0)
        euro_lower = np.maximum(th * (s_star * np.exp(-q_ * t_) - k_ * np.exp(-r_ * t_)), 0.0)
        lower = np.maximum(now, euro_lower)
        atol = 8.0 * _EPS * (s_ + k_)
        flag(p >= upper, IVReason.ABOVE_MAX)
        flag(p < lower - atol, IVReason.BELOW_INTRINSIC)
        flag(p <= lower + atol, IVReason.NO_TIME_VALUE)

    has_div = np.zeros(n, dtype=bool)
    if dividends is not None:
        has_div = s_star < s_
    sigma_any = np.ones(n)
    euro = pending & _european_only(th, r_, q_, t_, sigma_any) & ~(has_div & call)
    if np.any(euro):
        e = np.flatnonzero(euro)
        res = implied_vol(call[e], p[e], s_star[e], k_[e], t_[e], r_[e], q_[e], lo=lo, hi=hi)
        iv[e], reason[e] = res.iv, res.reason
        pending[e] = False
    idx = np.flatnonzero(pending)
    if idx.size:
        sol, codes = _solve(
            call[idx],
            p[idx],
            s_[idx],
            s_star[idx],
            k_[idx],
            t_[idx],
            r_[idx],
            q_[idx],
            _dividend_rows(dividends, shape, idx),
            lo,
            hi,
            tol,
            scheme,
        )
        iv[idx] = sol
        reason[idx] = codes
    return IVResult(iv.reshape(shape), reason.reshape(shape))


def _solve(
    call: NDArray[np.bool_],
    price: FloatArray,
    S: FloatArray,
    s_star: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    q: FloatArray,
    dividends: tuple[FloatArray, FloatArray] | None,
    lo: float,
    hi: float,
    tol: float,
    scheme: Scheme,
) -> tuple[FloatArray, NDArray[np.int8]]:
    """Safeguarded secant on sigma for flat arrays; returns (iv, reason codes)."""
    m = price.size
    euro = implied_vol(call, price, s_star, K, T, r, q, lo=lo, hi=hi)
    a = np.full(m, lo)  # bracket: American(a) <= price <= American(b) once known
    b = np.full(m, hi)
    a_known = np.zeros(m, dtype=bool)
    b_known = np.zeros(m, dtype=bool)
    ok_e = euro.reason == IVReason.OK
    b[ok_e] = euro.iv[ok_e]  # American >= European at every sigma: the European IV is above
    b_known[ok_e] = True
    sigma = np.where(ok_e, euro.iv, np.minimum(0.25, hi))
    sigma = np.where(ok_e, sigma * (1.0 - 1e-3), sigma)  # inside the bracket
    slope = np.full(m, np.nan)
    prev_s = np.full(m, np.nan)
    prev_f = np.full(m, np.nan)
    out = np.full(m, np.nan)
    codes = np.full(m, IVReason.NOT_CONVERGED, dtype=np.int8)
    active = np.arange(m)
    divs = dividends
    for _ in range(MAX_ITER):
        if active.size == 0:
            break
        sub_div = None
        if divs is not None:
            t_d, a_d = divs
            sub_div = (t_d, a_d) if np.ndim(t_d) == 1 else (t_d[active], a_d[active])
        sa = sigma[active]
        pa = price[active]
        f = (
            american_price(
                call[active], S[active], K[active], T[active], r[active], q[active], sa, dividends=sub_div, scheme=scheme
            )
            - pa
        )
        above = f > 0
        b[active] = np.where(above, sa, b[active])
        a[active] = np.where(above, a[active], sa)
        b_known[active] |= above
        a_known[active] |= ~above
        ptol = np.maximum(1e-10 * pa, 1e-11)
        done = np.abs(f) <= ptol
        # secant slope (fall back to the European vega, per 1.00 of sigma)
        ps, pf = prev_s[active], prev_f[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            sec = (f - pf) / (sa - ps)
        ve = bsm_greeks(call[active], s_star[active], K[active], T[active], r[active], q[active], sa).vega * 100.0
        sl = np.where(np.isfinite(sec) & (sec > 0), sec, ve)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            nxt = sa - f / sl
        la, ua = a[active], b[active]
        bis = np.where(ua > 2.0 * la, np.sqrt(la * ua), 0.5 * (la + ua))
        bad = ~np.isfinite(nxt) | (nxt <= la) | (nxt >= ua)
        nxt = np.where(bad, bis, nxt)
        narrow = (ua - la) <= tol
        # a secant step this small after a secant step: converged (superlinear)
        tiny = ~bad & np.isfinite(sec) & (np.abs(nxt - sa) <= tol)
        done = done | tiny
        sa = np.where(tiny, nxt, sa)
        # the root sits below lo or above hi: the bracket collapsed on a search bound
        below = narrow & ~a_known[active] & above
        beyond = narrow & ~b_known[active] & ~above
        finished = done | narrow
        codes_a = np.where(below, IVReason.VOL_BELOW_LO, np.where(beyond, IVReason.VOL_ABOVE_HI, IVReason.OK))
        good = finished & (codes_a == IVReason.OK)
        fin = active[finished]
        codes[fin] = codes_a[finished]
        out[active[good]] = np.where(done[good], sa[good], 0.5 * (la[good] + ua[good]))
        prev_s[active] = sa
        prev_f[active] = f
        slope[active] = sl
        sigma[active] = nxt
        active = active[~finished]
    return out, codes


# implied_vol(..., exercise="american") hands over to this solver (see desk.pricing.bsm.AMERICAN)
_bsm.AMERICAN["implied_vol"] = american_implied_vol
