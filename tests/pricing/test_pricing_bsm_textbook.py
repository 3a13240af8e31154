"""Published worked examples for bsm_price / bsm_greeks.

Sources (values as printed, compared to the printed precision):
* Hull, *Options, Futures and Other Derivatives*, 10th ed. (Pearson 2018):
  Example 15.6 (S=42, K=40, r=10%, sigma=20%, T=0.5: call 4.76, put 0.81) and the
  running Greeks example of ch. 19 (S=49, K=50, r=5%, sigma=20%, T=20 weeks=0.3846:
  call 2.40, delta 0.522, gamma 0.066, vega 12.1 per 1.00 of sigma, theta -4.31 per year,
  rho 8.91 per 1.00 of r; sections 19.4-19.9).
* Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed. (McGraw-Hill 2007):
  sec. 1.1.1 Black-Scholes (S=60, K=65, T=0.25, r=8%, sigma=30%: call 2.1334);
  sec. 1.1.6 generalized BSM / Merton 1973 (S=100, K=95, T=0.5, r=10%, q=5%, sigma=20%:
  put 2.4648); sec. 2.1 Greeks: delta of futures options (S=105, K=100, T=0.5, r=10%,
  b=0, sigma=36%: call 0.5946, put -0.3566), gamma (S=55, K=60, T=0.75, r=10%, b=10%,
  sigma=30%: 0.0278), theta (S=430, K=405, T=0.0833, r=7%, b=2%, sigma=20%: put -31.1924
  per year), rho (S=72, K=75, T=1, r=9%, b=9%, sigma=19%: call 38.7325 per 1.00 of r).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from desk.pricing import bsm_greeks, bsm_price


def test_hull_example_15_6_call_and_put() -> None:
    call, put = bsm_price([True, False], 42.0, 40.0, 0.5, 0.10, 0.0, 0.20)
    assert round(float(call), 2) == 4.76
    assert round(float(put), 2) == 0.81


def test_hull_chapter_19_greeks_of_the_running_example() -> None:
    g = bsm_greeks(True, 49.0, 50.0, 20 / 52, 0.05, 0.0, 0.20)
    assert round(float(g.price), 2) == 2.40
    assert round(float(g.delta), 3) == 0.522
    assert round(float(g.gamma), 3) == 0.066
    # Hull quotes vega per 1.00 of sigma, theta per year, rho per 1.00 of r
    assert round(float(g.vega) * 100, 1) == 12.1
    assert round(float(g.theta) * 365, 2) == -4.31
    assert round(float(g.rho) * 100, 2) == 8.91
    # and his per-unit conversions: theta per calendar day -4.31/365 = -0.0118
    assert round(float(g.theta), 4) == -0.0118


def test_haug_black_scholes_and_merton_prices() -> None:
    assert round(float(bsm_price(True, 60.0, 65.0, 0.25, 0.08, 0.0, 0.30)), 4) == 2.1334
    assert round(float(bsm_price(False, 100.0, 95.0, 0.5, 0.10, 0.05, 0.20)), 4) == 2.4648


def test_haug_greeks_examples() -> None:
    # cost of carry b = r - q in Haug's notation
    delta = bsm_greeks([True, False], 105.0, 100.0, 0.5, 0.10, 0.10, 0.36).delta
    np.testing.assert_array_equal(np.round(delta, 4), [0.5946, -0.3566])
    assert round(float(bsm_greeks(True, 55.0, 60.0, 0.75, 0.10, 0.0, 0.30).gamma), 4) == 0.0278
    theta = bsm_greeks(False, 430.0, 405.0, 0.0833, 0.07, 0.05, 0.20).theta
    assert round(float(theta) * 365, 4) == -31.1924
    assert round(float(bsm_greeks(True, 72.0, 75.0, 1.0, 0.09, 0.0, 0.19).rho) * 100, 4) == 38.7325


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"S": -1.0}, "S (underlying"),
        ({"K": 0.0}, "K (strike"),
        ({"T": -0.01}, "T (years"),
        ({"sigma": -0.2}, "sigma"),
        ({"r": np.inf}, "r (annual rate)"),
    ],
)
def test_out_of_domain_input_raises_naming_the_argument(kwargs: dict[str, float], message: str) -> None:
    args = {"S": 100.0, "K": 100.0, "T": 1.0, "r": 0.01, "q": 0.0, "sigma": 0.2} | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        bsm_price(True, **args)
    with pytest.raises(ValueError, match=re.escape(message)):
        bsm_greeks(True, **args)


def test_is_call_must_be_boolean() -> None:
    with pytest.raises(TypeError, match="is_call must be boolean"):
        bsm_price(np.array(["C", "P"]), 100.0, 100.0, 1.0, 0.0, 0.0, 0.2)
    with pytest.raises(ValueError, match="0/1"):
        bsm_price(np.array([2]), 100.0, 100.0, 1.0, 0.0, 0.0, 0.2)
