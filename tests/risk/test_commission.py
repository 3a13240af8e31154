"""Commission estimates against the worked examples of IBKR's Fixed pricing pages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.risk import IBKR_FIXED, CommissionSchedule, RiskInputError


@pytest.mark.parametrize(
    ("shares", "price", "fee"),
    [
        (100, 25.0, 1.00),  # IBKR: 100 shares @ USD 25 = USD 1.00 (minimum)
        (1_000, 25.0, 5.00),  # 1,000 shares @ USD 25 = USD 5.00
        (1_000, 0.25, 2.50),  # 1,000 shares @ USD 0.25 = USD 2.50 (1% of trade value)
        (10, 5.0, 0.50),  # 1% cap wins over the minimum
        (300, math.nan, 1.50),  # unknown price: no cap
    ],
)
def test_stock_fixed_examples(shares: int, price: float, fee: float) -> None:
    assert IBKR_FIXED.stock(shares, price) == pytest.approx(fee, abs=1e-12)


@pytest.mark.parametrize(
    ("contracts", "premium", "fee"),
    [
        (1, 2.0, 1.00),  # IBKR: 1 contract @ USD 2 premium = USD 1.00
        (2, 5.0, 1.30),  # 2 contracts @ USD 5 = USD 1.30
        (3, 0.075, 1.50),  # 3 contracts @ USD 0.075 = USD 1.50
        (5, 0.03, 1.25),  # 5 contracts @ USD 0.03 = USD 1.25
        (10, math.nan, 6.50),
    ],
)
def test_option_fixed_examples(contracts: int, premium: float, fee: float) -> None:
    assert IBKR_FIXED.option(contracts, premium) == pytest.approx(fee, abs=1e-12)


@given(st.integers(1, 10**6), st.floats(0.0001, 10_000, allow_nan=False))
def test_stock_fee_bounds(shares: int, price: float) -> None:
    fee = IBKR_FIXED.stock(shares, price)
    assert fee <= shares * price * 0.01 + 1e-9
    assert fee <= max(shares * 0.005, 1.0) + 1e-12
    assert fee >= min(1.0, shares * price * 0.01) - 1e-12


@given(st.integers(1, 10_000), st.floats(0.0, 500, allow_nan=False))
def test_option_fee_is_at_least_the_minimum_and_monotonic_in_contracts(contracts: int, premium: float) -> None:
    fee = IBKR_FIXED.option(contracts, premium)
    assert fee >= 1.0
    assert IBKR_FIXED.option(contracts + 1, premium) >= fee


def test_schedule_validation_and_dispatch() -> None:
    with pytest.raises(RiskInputError, match="commission stock_min must be a finite number >= 0, got -1"):
        CommissionSchedule(stock_min=-1)
    assert CommissionSchedule().for_instrument("OPT", 1, 2.0) == 1.0
    with pytest.raises(RiskInputError, match="no commission rule for secType 'FUT'"):
        IBKR_FIXED.for_instrument("FUT", 1, 1.0)
