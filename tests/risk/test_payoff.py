"""Payoff at expiry: textbook positions exactly, and hypothesis against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.risk import PayoffLeg, RiskInputError, payoff_at_expiry


def test_long_call() -> None:
    p = payoff_at_expiry([PayoffLeg("C", 1, 100, 100)], cash=-250.0)
    assert p.min_pnl == -250.0 and p.max_loss == 250.0
    assert p.max_pnl == math.inf and p.max_gain == math.inf
    assert p.breakevens == (102.5,)
    assert p.slope_above == 100


def test_short_put_is_bounded_both_ways() -> None:
    p = payoff_at_expiry([PayoffLeg("P", -2, 50, 100)], cash=2 * 100 * 1.5)
    assert p.max_pnl == 300.0
    assert p.min_pnl == pytest.approx(300.0 - 2 * 100 * 50)  # the stock goes to zero
    assert p.breakevens == (48.5,)


def test_bull_call_vertical() -> None:
    legs = [PayoffLeg("C", 1, 100, 100), PayoffLeg("C", -1, 110, 100)]
    p = payoff_at_expiry(legs, cash=-400.0)
    assert (p.min_pnl, p.max_pnl) == (-400.0, 600.0)
    assert p.breakevens == (104.0,)


def test_long_straddle_has_two_breakevens() -> None:
    p = payoff_at_expiry([PayoffLeg("C", 1, 100, 100), PayoffLeg("P", 1, 100, 100)], cash=-800.0)
    assert p.breakevens == (92.0, 108.0)
    assert p.min_pnl == -800.0 and p.max_pnl == math.inf


def test_conversion_and_box_are_locked() -> None:
    # conversion: long 100 shares at 101, short the 100 call at 3.00, long the 100 put at 1.90
    legs = [PayoffLeg("STK", 100, 0, 1), PayoffLeg("C", -1, 100, 100), PayoffLeg("P", 1, 100, 100)]
    p = payoff_at_expiry(legs, cash=-100 * 101 + 300 - 190, spot=101)
    assert p.locked and p.min_pnl == pytest.approx(100 * (100 - 101 + 3.00 - 1.90))
    assert np.allclose(p.pnl, p.min_pnl)
    # box: long 100/110 call spread + long 110/100 put spread for 9.80 -> locks 10 - 9.80
    box = [PayoffLeg("C", 1, 100, 100), PayoffLeg("C", -1, 110, 100), PayoffLeg("P", 1, 110, 100), PayoffLeg("P", -1, 100, 100)]
    b = payoff_at_expiry(box, cash=-980.0)
    assert b.locked and b.max_pnl == pytest.approx(20.0) and b.breakevens == ()


def test_chart_arrays_include_strikes_and_match_the_formula() -> None:
    legs = [PayoffLeg("P", 1, 95, 100), PayoffLeg("C", -1, 105, 100)]
    p = payoff_at_expiry(legs, cash=10.0, spot=100.0, points=50)
    assert p.prices.dtype == np.float64 and p.prices.shape == p.pnl.shape
    assert 95.0 in p.prices and 105.0 in p.prices and np.all(np.diff(p.prices) > 0)
    assert p.prices[0] <= 100.0 <= p.prices[-1]
    expect = 10 + 100 * np.maximum(95 - p.prices, 0) - 100 * np.maximum(p.prices - 105, 0)
    assert np.allclose(p.pnl, expect)


def test_bad_input() -> None:
    with pytest.raises(RiskInputError, match="kind must be STK, C or P"):
        PayoffLeg("X", 1, 100, 100)
    with pytest.raises(RiskInputError, match="strike must be > 0"):
        PayoffLeg("C", 1, 0, 100)
    with pytest.raises(RiskInputError, match="cash must be finite"):
        payoff_at_expiry([], cash=math.nan)


leg_st = st.one_of(
    st.builds(PayoffLeg, st.just("STK"), st.integers(-300, 300).map(float), st.just(0.0), st.just(1)),
    st.builds(
        PayoffLeg,
        st.sampled_from(["C", "P"]),
        st.integers(-5, 5).map(float),
        st.integers(1, 40).map(lambda k: k * 5.0),
        st.just(100),
    ),
)


def _brute(legs: list[PayoffLeg], cash: float, xs: np.ndarray) -> np.ndarray:
    out = np.full(xs.shape, cash)
    for leg in legs:
        v = xs if leg.kind == "STK" else np.maximum(xs - leg.strike, 0) if leg.kind == "C" else np.maximum(leg.strike - xs, 0)
        out = out + leg.quantity * leg.multiplier * v
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(leg_st, min_size=1, max_size=5), st.integers(-50_000, 50_000).map(float))
def test_extremes_and_breakevens_match_brute_force(legs: list[PayoffLeg], cash: float) -> None:
    p = payoff_at_expiry(legs, cash)
    xs = np.concatenate([np.linspace(0, 1000, 20001), [leg.strike for leg in legs], [5000.0]])
    ys = _brute(legs, cash, xs)
    scale = 1e-6 * (1 + np.abs(ys).max())
    # no sampled value beats the reported extremes
    assert ys.min() >= p.min_pnl - scale
    assert ys.max() <= p.max_pnl + scale
    # finite extremes are attained (at a knot, so exactly in the sample)
    if math.isfinite(p.min_pnl):
        assert ys.min() == pytest.approx(p.min_pnl, abs=scale)
    if math.isfinite(p.max_pnl):
        assert ys.max() == pytest.approx(p.max_pnl, abs=scale)
    # unbounded only when the slope beyond the last strike says so
    assert (p.max_pnl == math.inf) == (p.slope_above > 0)
    assert (p.min_pnl == -math.inf) == (p.slope_above < 0)
    # every breakeven is a zero, and sign changes in the sample lie next to one
    for be in p.breakevens:
        assert abs(_brute(legs, cash, np.array([be]))[0]) <= scale * 10
    grid = np.linspace(0, 1000, 20001)
    g = _brute(legs, cash, grid)
    sign = np.sign(np.where(np.abs(g) <= scale, 0, g))
    for i in np.nonzero(sign[:-1] * sign[1:] < 0)[0]:
        assert any(grid[i] - 1e-6 <= be <= grid[i + 1] + 1e-6 for be in p.breakevens), (grid[i], p.breakevens)
    # the chart agrees with the formula
    assert np.allclose(p.pnl, _brute(legs, cash, p.prices), atol=scale)
