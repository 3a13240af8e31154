"""Properties of bsm_price / bsm_greeks: put-call parity of prices and every Greek,
finite-difference checks of every Greek, degenerate limits and broadcasting."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.pricing import bsm_greeks, bsm_price

spot = st.floats(10.0, 1000.0)
moneyness = st.floats(0.5, 2.0)  # K / S
expiry = st.floats(0.02, 3.0)  # years
vol = st.floats(0.05, 1.5)
rate = st.floats(-0.02, 0.10)
yld = st.floats(0.0, 0.08)

contract = st.tuples(spot, moneyness, expiry, rate, yld, vol)


@settings(max_examples=300, deadline=None)
@given(contract)
def test_put_call_parity_of_prices_and_greeks(c: tuple[float, ...]) -> None:
    S, m, T, r, q, sigma = c
    K = S * m
    call, put = (bsm_greeks(flag, S, K, T, r, q, sigma) for flag in (True, False))
    dq, dr = np.exp(-q * T), np.exp(-r * T)
    tol = 1e-12 * (S + K)
    # C - P = S e^{-qT} - K e^{-rT} (Hull eq. 17.3 with a dividend yield)
    assert abs((call.price - put.price) - (S * dq - K * dr)) <= tol
    assert abs((call.delta - put.delta) - dq) <= 1e-13
    assert abs(call.gamma - put.gamma) <= 1e-13 * max(call.gamma, 1e-300) + 1e-18
    assert abs(call.vega - put.vega) <= 1e-13 * max(call.vega, 1e-300) + 1e-16
    # theta per calendar day: -(d/dT)(S e^{-qT} - K e^{-rT}) / 365
    assert abs((call.theta - put.theta) - (q * S * dq - r * K * dr) / 365.0) <= tol
    # rho per 1%: (d/dr)(-K e^{-rT}) / 100
    assert abs((call.rho - put.rho) - K * T * dr / 100.0) <= tol


def _fd(f, x: float, h: float) -> float:
    """Central difference; O(h^2)."""
    return (f(x + h) - f(x - h)) / (2.0 * h)


@settings(max_examples=300, deadline=None)
@given(contract, st.booleans())
def test_every_greek_matches_central_finite_differences(c: tuple[float, ...], is_call: bool) -> None:
    S, m, T, r, q, sigma = c
    K = S * m
    g = bsm_greeks(is_call, S, K, T, r, q, sigma)

    def price(S=S, T=T, r=r, sigma=sigma) -> float:
        return float(bsm_price(is_call, S, K, T, r, q, sigma))

    def delta(S: float) -> float:
        return float(bsm_greeks(is_call, S, K, T, r, q, sigma).delta)

    # tolerances: truncation O(h^2) plus rounding eps * price / h, relative to the scale of each Greek
    h_spot = 1e-4 * S * sigma * np.sqrt(T)  # small against the width of the distribution
    checks = {
        "delta": (g.delta, _fd(lambda s: price(S=s), S, h_spot), 1e-7),
        "gamma": (g.gamma * S, _fd(delta, S, h_spot) * S, 1e-7),
        "vega": (g.vega, _fd(lambda v: price(sigma=v), sigma, 1e-5) * 0.01, 1e-7 * S),
        "theta": (g.theta, -_fd(lambda t: price(T=t), T, 1e-6) / 365.0, 1e-7 * S / 365.0 / min(T, 1.0)),
        "rho": (g.rho, _fd(lambda x: price(r=x), r, 1e-5) * 0.01, 1e-8 * S * T),
    }
    for name, (analytic, numeric, atol) in checks.items():
        assert abs(float(analytic) - numeric) <= atol + 1e-6 * abs(numeric), (name, float(analytic), numeric)


def test_finite_difference_check_can_fail() -> None:
    """Guard for the test above: a wrong unit (vega per 1.00 of sigma) is caught."""
    S, K, T, r, q, sigma = 100.0, 110.0, 0.5, 0.03, 0.01, 0.25
    g = bsm_greeks(True, S, K, T, r, q, sigma)
    numeric = _fd(lambda v: float(bsm_price(True, S, K, T, r, q, v)), sigma, 1e-5)
    assert abs(g.vega - numeric * 0.01) < 1e-8
    assert abs(g.vega * 100 - numeric * 0.01) > 1.0


def test_limits_at_expiry_and_zero_volatility() -> None:
    K = np.array([90.0, 100.0, 110.0])
    at_expiry = bsm_greeks(np.array([[True], [False]]), 100.0, K, 0.0, 0.05, 0.01, 0.2)
    np.testing.assert_array_equal(at_expiry.price, [[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    np.testing.assert_array_equal(at_expiry.delta, [[1.0, 0.5, 0.0], [0.0, -0.5, -1.0]])
    np.testing.assert_array_equal(at_expiry.gamma, 0.0)
    np.testing.assert_array_equal(at_expiry.vega, 0.0)
    # sigma = 0: the discounted payoff of the forward, max(S e^{-qT} - K e^{-rT}, 0)
    T, r, q = 1.0, 0.05, 0.01
    zero_vol = bsm_greeks(True, 100.0, K, T, r, q, 0.0)
    expected = np.maximum(100.0 * np.exp(-q * T) - K * np.exp(-r * T), 0.0)
    np.testing.assert_allclose(zero_vol.price, expected, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(zero_vol)), "no NaN at the degenerate point"
    # and continuity: a tiny volatility gives (almost) the same price
    np.testing.assert_allclose(bsm_price(True, 100.0, K, T, r, q, 1e-9), expected, atol=1e-9)


def test_nan_input_propagates_and_shapes_broadcast() -> None:
    out = bsm_price([[True], [False]], 100.0, [90.0, np.nan, 110.0], 0.5, 0.01, 0.0, 0.2)
    assert out.shape == (2, 3) and out.dtype == np.float64
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, [0, 2]]).all()
    g = bsm_greeks(True, 100.0, 100.0, 0.5, 0.01, 0.0, 0.2)
    assert all(np.shape(x) == () for x in g)
