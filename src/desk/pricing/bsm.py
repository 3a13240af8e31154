"""Black-Scholes-Merton European prices and analytic Greeks, vectorized over numpy arrays.

Model (Merton 1973; Hull, *Options, Futures and Other Derivatives*, 10th ed., ch. 17
"Options on stock indices and currencies", eq. 17.4-17.5 and ch. 19 "The Greek letters",
table 19.6; Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed., sec. 1.1.6
"Generalized Black-Scholes-Merton" and 2.1 Greeks)::

    F  = S exp((r - q) T)                       forward
    d1 = (ln(S/K) + (r - q + sigma^2/2) T) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    call = S e^{-qT} N(d1)  - K e^{-rT} N(d2)
    put  = K e^{-rT} N(-d2) - S e^{-qT} N(-d1)

Units and conventions used by every function here:

* ``S`` (underlying) and ``K`` (strike) in dollars per share; prices come out in dollars
  per share (multiply by the contract multiplier, 100 for US equity options, for dollars
  per contract);
* ``T`` in years of 365 calendar days (ACT/365; see :mod:`desk.pricing.expiry`);
* ``r`` continuously compounded annual risk-free rate, ``q`` continuous annual dividend
  yield (or stock borrow rate), both as fractions (0.05 = 5%);
* ``sigma`` annual volatility as a fraction (0.20 = 20%);
* ``is_call``: boolean, True for a call, False for a put.

All arguments broadcast against each other (numpy rules); results are float64 arrays of
the broadcast shape (0-d arrays for all-scalar input). NaN in any input gives NaN in the
matching outputs. Out-of-domain values raise ``ValueError`` naming the argument:
``S <= 0``, ``K <= 0``, ``T < 0``, ``sigma < 0``, or infinite ``S``/``K``/``r``/``q``/``sigma``.

Degenerate points are handled as limits, never NaN: at ``T == 0`` the price is the payoff
``max(S - K, 0)`` / ``max(K - S, 0)``; at ``sigma == 0`` (with ``T > 0``) it is the
discounted payoff of the forward, ``max(S e^{-qT} - K e^{-rT}, 0)`` for a call. There the
Greeks are the limits away from the kink: delta is a step (1/2 x discount factor exactly at
the money), gamma and vega are 0, theta and rho are those of the deterministic payoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from desk.pricing.normal import ndtr

from desk.domain.calendar import DAYS_PER_YEAR  # ACT/365: T and theta per calendar day
from desk.pricing.dividends import escrowed_spot

__all__ = ["Greeks", "bsm_greeks", "bsm_price", "DAYS_PER_YEAR"]

_INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2*pi)

FloatArray = NDArray[np.float64]


class Greeks(NamedTuple):
    """Price and analytic first-order Greeks of a European option, arrays of one shape.

    * ``price``: dollars per share.
    * ``delta``: dollars of option per $1 move of the underlying (per share), dV/dS.
    * ``gamma``: change of delta per $1 move of the underlying, d2V/dS2 (1/$).
    * ``vega``: dollars per share per 1 vol point, i.e. dV/dsigma x 0.01 (sigma 20% -> 21%).
    * ``theta``: dollars per share per calendar day, -dV/dT / 365 (time decay with spot,
      rate, dividend yield and volatility held fixed; usually negative for a long option).
    * ``rho``: dollars per share per 1 percentage point of ``r``, dV/dr x 0.01 (with ``q``
      held fixed, so the forward moves with ``r``).
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray


def _as_sign(is_call: ArrayLike) -> FloatArray:
    """+1.0 for calls, -1.0 for puts; rejects anything that is not boolean-like."""
    flags = np.asarray(is_call)
    if flags.dtype == np.bool_:
        return np.where(flags, 1.0, -1.0)
    if np.issubdtype(flags.dtype, np.integer):
        if flags.size and not np.all((flags == 0) | (flags == 1)):
            raise ValueError("is_call must be boolean (True for a call, False for a put); got integers other than 0/1")
        return np.where(flags.astype(bool), 1.0, -1.0)
    raise TypeError(
        f"is_call must be boolean (True for a call, False for a put), got dtype {flags.dtype}; "
        "convert rights with e.g. numpy.asarray(rights) == 'C'"
    )


def _float(name: str, value: ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {value!r:.80}") from exc
    return arr


def _check(name: str, bad: NDArray[np.bool_] | np.bool_, rule: str) -> None:
    if np.any(bad):
        count = int(np.count_nonzero(bad))
        raise ValueError(f"{name} must be {rule}; {count} element(s) are not")


def _inputs(
    is_call: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike
) -> tuple[FloatArray, ...]:
    theta = _as_sign(is_call)
    s, k, t, rr, qq, vol = (
        _float("S", S),
        _float("K", K),
        _float("T", T),
        _float("r", r),
        _float("q", q),
        _float("sigma", sigma),
    )
    with np.errstate(invalid="ignore"):
        _check("S (underlying price, $/share)", (s <= 0) | np.isinf(s), "finite and > 0")
        _check("K (strike, $/share)", (k <= 0) | np.isinf(k), "finite and > 0")
        _check("T (years to expiry)", t < 0, ">= 0")
        _check("sigma (annual volatility)", (vol < 0) | np.isinf(vol), "finite and >= 0")
        _check("r (annual rate)", np.isinf(rr), "finite")
        _check("q (dividend yield)", np.isinf(qq), "finite")
    try:
        return tuple(np.broadcast_arrays(theta, s, k, t, rr, qq, vol))
    except ValueError as exc:
        raise ValueError(
            "is_call, S, K, T, r, q, sigma must broadcast to one shape; got shapes "
            f"{[np.shape(a) for a in (theta, s, k, t, rr, qq, vol)]}"
        ) from exc


class _Core(NamedTuple):
    theta: FloatArray  # +1 call, -1 put
    S: FloatArray
    K: FloatArray
    T: FloatArray
    r: FloatArray
    q: FloatArray
    sigma: FloatArray
    sqrt_t: FloatArray
    total_vol: FloatArray  # sigma * sqrt(T)
    dq: FloatArray  # exp(-q T)
    dr: FloatArray  # exp(-r T)
    d1: FloatArray
    d2: FloatArray


def _core(*args: ArrayLike) -> _Core:
    theta, S, K, T, r, q, sigma = _inputs(*args)
    sqrt_t = np.sqrt(T)
    total_vol = sigma * sqrt_t
    dq = np.exp(-q * T)
    dr = np.exp(-r * T)
    # ln(F/K) where F = S exp((r - q) T)
    log_fk = np.log(S / K) + (r - q) * T
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = log_fk / total_vol + 0.5 * total_vol
    # sigma sqrt(T) == 0: d1 = d2 = +inf / -inf / 0 for F above / below / at K (the limit).
    degenerate = total_vol == 0
    if np.any(degenerate):
        limit = np.where(log_fk > 0, np.inf, np.where(log_fk < 0, -np.inf, 0.0))
        d1 = np.where(degenerate, limit, d1)
    d2 = d1 - total_vol
    return _Core(theta, S, K, T, r, q, sigma, sqrt_t, total_vol, dq, dr, d1, d2)


def bsm_price(
    is_call: ArrayLike, S: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, q: ArrayLike, sigma: ArrayLike
) -> FloatArray:
    """Black-Scholes-Merton price of European calls/puts, dollars per share.

    Shapes: every argument broadcasts (numpy rules); returns a float64 array of the
    broadcast shape. Units: see the module docstring (``T`` in years of 365 days, ``r``/``q``
    continuously compounded, ``sigma`` annual as a fraction). Raises ``ValueError`` for
    out-of-domain input (``S``/``K`` <= 0, ``T``/``sigma`` < 0, infinities) and ``TypeError``
    when ``is_call`` is not boolean. Formula: Hull (10th ed.) eq. 17.4/17.5; Haug (2nd ed.)
    sec. 1.1.6 with cost of carry b = r - q.
    """
    c = _core(is_call, S, K, T, r, q, sigma)
    th = c.theta
    # ndtr of float64 arrays is a float64 array (scipy has no type hints)
    n1: FloatArray = ndtr(th * c.d1)
    n2: FloatArray = ndtr(th * c.d2)
    # "+ 0.0" turns the -0.0 of a worthless put into 0.0
    return th * (c.S * c.dq * n1 - c.K * c.dr * n2) + 0.0


#: The American engine's entry points, installed by :mod:`desk.pricing.american` when it
#: loads (it builds on this module, so this module does not import it); the package
#: ``desk.pricing`` loads it, so they are present whenever this module is used.
AMERICAN: dict[str, Callable[..., Any]] = {}


def bsm_greeks(
    is_call: ArrayLike,
    S: ArrayLike,
    K: ArrayLike,
    T: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    sigma: ArrayLike,
    *,
    exercise: str = "european",
    dividends: tuple[ArrayLike, ArrayLike] | None = None,
) -> Greeks:
    """Price and analytic Greeks (:class:`Greeks`) of European calls/puts under BSM.

    Units (per share): price $, delta $/$, gamma 1/$, vega $ per vol point (0.01 of
    sigma), theta $ per calendar day (-dV/dT / 365), rho $ per 1% of ``r``. Shapes and
    errors as :func:`bsm_price`. Formulas: Hull (10th ed.) table 19.6 (Greeks with a
    dividend yield q); Haug (2nd ed.) sec. 2.1 (generalized BSM Greeks, b = r - q)::

        delta = theta_s e^{-qT} N(theta_s d1)           theta_s = +1 call, -1 put
        gamma = e^{-qT} n(d1) / (S sigma sqrt(T))
        vega  = S e^{-qT} n(d1) sqrt(T)                  (per 1.00 of sigma; / 100 here)
        theta = -S e^{-qT} n(d1) sigma / (2 sqrt(T))
                - theta_s r K e^{-rT} N(theta_s d2) + theta_s q S e^{-qT} N(theta_s d1)
                                                         (per year; / 365 here)
        rho   = theta_s K T e^{-rT} N(theta_s d2)        (per 1.00 of r; / 100 here)

    ``exercise="american"`` gives the American price and Greeks instead, in the same units
    (:func:`desk.pricing.american.american_greeks`); ``dividends=(times, amounts)`` adds cash
    dividends (years from now, dollars per share): European: escrowed-dividend model (their
    present value off the spot; delta and gamma per $1 of the spot itself). ``ValueError``
    for another ``exercise``.
    """
    if exercise == "american":
        return cast(Greeks, AMERICAN["greeks"](is_call, S, K, T, r, q, sigma, dividends=dividends))
    if exercise != "european":
        raise ValueError(f"exercise must be 'european' or 'american', got {exercise!r}")
    if dividends is not None:
        S = escrowed_spot(S, T, r, dividends)
    c = _core(is_call, S, K, T, r, q, sigma)
    th = c.theta
    n_d1 = np.exp(-0.5 * c.d1 * c.d1) * _INV_SQRT_2PI
    big_n1 = ndtr(th * c.d1)
    big_n2 = ndtr(th * c.d2)
    s_dq = c.S * c.dq
    k_dr = c.K * c.dr
    price = th * (s_dq * big_n1 - k_dr * big_n2) + 0.0
    delta = th * c.dq * big_n1 + 0.0
    degenerate = c.total_vol == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = c.dq * n_d1 / (c.S * c.total_vol)
        decay = s_dq * n_d1 * c.sigma / (2.0 * c.sqrt_t)
    if np.any(degenerate):
        gamma = np.where(degenerate, 0.0, gamma)
        decay = np.where(degenerate, 0.0, decay)
    vega = s_dq * n_d1 * c.sqrt_t
    theta_year = -decay - th * c.r * k_dr * big_n2 + th * c.q * s_dq * big_n1
    rho = th * k_dr * c.T * big_n2 + 0.0
    return Greeks(
        price=price,
        delta=delta,
        gamma=gamma,
        vega=vega * 0.01,
        theta=theta_year / DAYS_PER_YEAR,
        rho=rho * 0.01,
    )
