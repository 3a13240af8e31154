"""Implied volatility and Greeks for a whole option chain in one call (for the chain pane).

:func:`chain_greeks` takes the quotes of every option of one underlying (any mix of
strikes, rights and expiries), implies the forward of each expiry from put-call parity
(unless a dividend yield is given), computes bid/ask/mid implied volatilities with reason
codes and the Greeks at the mid IV. Each contract is priced with its exercise style
(``exercise``: European BSM, or the American engine of :mod:`desk.pricing.american`).
US equity and ETF options are American, SPX/NDX/RUT index options European
(:func:`desk.domain.options.exercise_style`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from desk.domain.options import Carry
from desk.pricing.bsm import _as_sign, bsm_greeks
from desk.pricing.forward import implied_forward
from desk.pricing.iv import implied_vol, implied_vol_quotes

__all__ = ["Carry", "ChainGreeks", "ContractGreeks", "chain_greeks", "contract_greeks"]

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
    exercise: str | ArrayLike = "european",
    dividends: tuple[ArrayLike, ArrayLike] | None = None,
    sides: bool = True,
) -> ChainGreeks:
    """Bid/ask/mid IV and mid-IV Greeks for every option of a chain.

    ``is_call`` (bool), ``K`` (strike $/share), ``bid``/``ask`` ($/share; NaN or <= 0 for no
    quote), ``T`` (years, ACT/365; see :func:`desk.pricing.expiry.times_to_expiry`), ``r``
    (continuous annual rate) are 1-D arrays of one length (``T``/``r`` may be scalars);
    ``S`` the underlying price ($/share). With ``q=None`` the dividend yield of each expiry
    is implied from put-call parity near the money (:func:`desk.pricing.forward.implied_forward`,
    per distinct ``T``) and ``q_fallback`` is used for expiries without two valid pairs;
    otherwise ``q`` (scalar or per option) is used as given.

    ``exercise``: ``"european"``, ``"american"`` or one of them per option (array of strings);
    American contracts get the American IV (quotes below exercise value: ``BELOW_INTRINSIC``)
    and Greeks. ``dividends=(times, amounts)`` (years, $/share; 1-D, the underlying's) adds
    cash dividends (see :func:`desk.pricing.iv.implied_vol`). The parity forward is implied
    from the mids as for European options: near the money the early-exercise premium of
    either side is small, and it is what makes ``q`` consistent with the chain.

    ``sides=False``: the mid IV and Greeks only (the bid and ask IVs are NaN with
    ``NOT_COMPUTED``): a third of the solver work, what the chain pane shows.

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
    style = np.broadcast_to(np.asarray(exercise), (n,))
    bad = ~np.isin(style, ("european", "american"))
    if np.any(bad):
        raise ValueError(f"exercise must be 'european' or 'american' per option, got {style[bad][0]!r}")
    fields = {name: np.full(n, np.nan) for name in ("bid_iv", "ask_iv", "iv", "delta", "gamma", "vega", "theta", "rho")}
    reasons = {name: np.zeros(n, dtype=np.int8) for name in ("bid", "ask", "mid")}
    for kind in ("european", "american"):
        sel = np.flatnonzero(style == kind)
        if sel.size == 0:
            continue
        quotes = implied_vol_quotes(
            call[sel],
            b[sel],
            a[sel],
            S,
            k[sel],
            t[sel],
            rr[sel],
            qq[sel],
            lo=lo,
            hi=hi,
            exercise=kind,
            dividends=dividends,
            sides=sides,
        )
        fields["bid_iv"][sel], fields["ask_iv"][sel], fields["iv"][sel] = quotes.bid.iv, quotes.ask.iv, quotes.mid.iv
        reasons["bid"][sel], reasons["ask"][sel], reasons["mid"][sel] = (quotes.bid.reason, quotes.ask.reason, quotes.mid.reason)
        live = sel[np.isfinite(quotes.mid.iv)]
        if live.size:
            g = bsm_greeks(
                call[live], S, k[live], t[live], rr[live], qq[live], fields["iv"][live], exercise=kind, dividends=dividends
            )
            for name in ("delta", "gamma", "vega", "theta", "rho"):
                fields[name][live] = getattr(g, name)
    iv = fields["iv"]
    delta, gamma, vega, theta, rho = (fields[name] for name in ("delta", "gamma", "vega", "theta", "rho"))
    forward = S * np.exp((rr - qq) * t)
    return ChainGreeks(
        mid=mid,
        iv=iv,
        reason=reasons["mid"],
        bid_iv=fields["bid_iv"],
        bid_reason=reasons["bid"],
        ask_iv=fields["ask_iv"],
        ask_reason=reasons["ask"],
        delta=delta,
        gamma=gamma,
        vega=vega,
        theta=theta,
        rho=rho,
        forward=forward,
        q=qq,
    )


class ContractGreeks(NamedTuple):
    """IV (annual fraction, NaN when it has no solution: see ``reason``) and BSM Greeks at
    that IV of one contract, per share: ``delta`` ($/$), ``gamma`` (1/$), ``vega`` ($ per
    vol point), ``theta`` ($ per calendar day); ``reason`` the :class:`desk.pricing.iv.IVReason`
    code (0 = OK)."""

    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float
    reason: int


def contract_greeks(
    is_call: bool,
    K: float,
    price: float,
    S: float,
    T: float,
    carry: Carry,
    *,
    lo: float = 1e-4,
    hi: float = 5.0,
    exercise: str = "european",
) -> ContractGreeks:
    """IV and Greeks of one contract at one ``price`` (dollars per share; the mid, as the
    chain uses) with a given ``carry``: the chain's solver and model (:func:`implied_vol`,
    :func:`bsm_greeks`, the same bounds as :func:`chain_greeks`), so a contract priced here
    at the chain's mid, spot ``S``, ``T`` (years, ACT/365) and carry has the chain's IV.
    Never raises for bad prices (NaN with a reason); ``ValueError`` for a non-finite or
    non-positive ``S`` or ``K``. ``exercise``: as the chain chooses it
    (:func:`desk.domain.options.exercise_style`), so the IV is the chain's model's too."""
    if not (math.isfinite(S) and S > 0 and math.isfinite(K) and K > 0):
        raise ValueError(f"S and K must be finite and > 0, got S={S!r}, K={K!r}")
    res = implied_vol(bool(is_call), price, S, K, max(T, 0.0), carry.rate, carry.q, lo=lo, hi=hi, exercise=exercise)
    iv = float(res.iv)
    reason = int(res.reason)
    if not math.isfinite(iv):
        return ContractGreeks(math.nan, math.nan, math.nan, math.nan, math.nan, reason)
    g = bsm_greeks(bool(is_call), S, K, T, carry.rate, carry.q, iv, exercise=exercise)
    return ContractGreeks(iv, float(g.delta), float(g.gamma), float(g.vega), float(g.theta), reason)
