"""implied_forward: put-call parity near the money recovers the forward and the yield."""

from __future__ import annotations

import math

import numpy as np
import pytest

from desk.pricing import bsm_price, implied_forward


def _chain(S: float, T: float, r: float, q: float, strikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # a smile, so that no single sigma fits the chain: parity must hold regardless
    sigma = 0.25 + 0.3 * np.log(strikes / S) ** 2
    return bsm_price(True, S, strikes, T, r, q, sigma), bsm_price(False, S, strikes, T, r, q, sigma)


def test_recovers_forward_and_dividend_yield_exactly_from_european_prices() -> None:
    S, T, r, q = 750.0, 0.25, 0.02, 0.035
    strikes = np.arange(500.0, 1001.0, 10.0)
    calls, puts = _chain(S, T, r, q, strikes)
    fwd = implied_forward(strikes, calls, puts, T, r, S)
    assert fwd.F == pytest.approx(S * math.exp((r - q) * T), rel=1e-13)
    assert fwd.q_implied == pytest.approx(q, abs=1e-11)
    assert fwd.n_used == 4


def test_one_bad_quote_near_the_money_is_outvoted_and_missing_sides_skipped() -> None:
    S, T, r, q = 100.0, 0.5, 0.03, 0.0
    strikes = np.arange(80.0, 121.0, 2.5)
    calls, puts = _chain(S, T, r, q, strikes)
    true_f = S * math.exp(r * T)
    calls[strikes == 100.0] += 0.40  # a stale call at the money
    puts[strikes == 102.5] = np.nan  # no put quote
    calls[strikes == 97.5] = 0.0  # bid/ask of zero -> mid 0: not a valid quote
    fwd = implied_forward(strikes, calls, puts, T, r, S, n_strikes=5)
    assert fwd.F == pytest.approx(true_f, rel=1e-12)
    # the mean would have been pulled by the bad quote: the test can tell the difference
    naive = float(np.mean((strikes + (calls - puts) * math.exp(r * T))[[7, 8, 10, 11, 12]]))
    assert abs(naive - true_f) > 0.05


def test_not_enough_quotes_gives_nan() -> None:
    fwd = implied_forward([100.0, 105.0], [5.0, np.nan], [4.0, 6.0], 0.5, 0.01, 100.0)
    assert math.isnan(fwd.F) and math.isnan(fwd.q_implied) and fwd.n_used == 1
    fwd = implied_forward([100.0], [5.0], [4.0], 0.5, 0.01, 100.0, min_pairs=1)
    assert fwd.F == pytest.approx(100.0 + 1.0 * math.exp(0.005))
    assert math.isnan(implied_forward([100.0, 105.0], [5.0, 2.0], [4.0, 6.0], 0.5, 0.01).q_implied)  # no S


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        implied_forward([100.0, 105.0], [5.0], [4.0, 6.0], 0.5, 0.01)
    with pytest.raises(ValueError, match="T must be finite"):
        implied_forward([100.0], [5.0], [4.0], -1.0, 0.01)
