"""The commission rule (desk.domain.commission) against IBKR's Fixed pricing pages: worked
examples, and property tests against a brute-force model written straight from the
pricing text, for one order at one price, for arrays (the scanners' path) and for an order
filled in several executions (the simulator's path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.domain.commission import IBKR_FIXED, CommissionRates, Traded
from desk.risk import RiskInputError, RiskLimits


# --- the model: IBKR Pro Fixed, US, as the pricing pages state it -----------------------------


def model_option_rate(premium: float) -> float:
    """USD per contract: 0.65 for a premium >= 0.10, 0.50 for 0.05 <= premium < 0.10,
    0.25 below 0.05 (unknown premium: 0.65)."""
    if math.isnan(premium):
        return 0.65
    premium = abs(premium)
    if premium >= 0.10:
        return 0.65
    if premium >= 0.05:
        return 0.50
    return 0.25


def model_option_order(fills: list[tuple[int, float]]) -> float:
    """One option order filled in ``fills`` (contracts, premium): each contract at its
    execution's tier, USD 1.00 minimum per order."""
    if not sum(n for n, _ in fills):
        return 0.0
    return max(sum(n * model_option_rate(p) for n, p in fills), 1.00)


def model_stock_order(fills: list[tuple[int, float]]) -> float:
    """One stock order filled in ``fills`` (shares, price): USD 0.005 a share, USD 1.00
    minimum per order, at most 1 % of the order's trade value (unknown price: no cap)."""
    shares = sum(n for n, _ in fills)
    if not shares:
        return 0.0
    fee = max(0.005 * shares, 1.00)
    value = sum(n * p for n, p in fills)
    return min(fee, 0.01 * value) if value > 0 else fee


# --- worked examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "price", "fee"),
    [
        (100, 25.0, 1.00),  # IBKR: 100 shares @ USD 25 = USD 1.00 (minimum)
        (1_000, 25.0, 5.00),  # 1,000 shares @ USD 25 = USD 5.00
        (1_000, 0.25, 2.50),  # 1,000 shares @ USD 0.25 = USD 2.50 (1% of trade value)
        (10, 5.0, 0.50),  # 1% cap wins over the minimum
        (300, math.nan, 1.50),  # unknown price: no cap
        (0, 25.0, 0.0),
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
        (10, 0.10, 6.50),  # the tier boundary belongs to the upper tier
        (10, 0.05, 5.00),
        (10, math.nan, 6.50),
        (0, 1.0, 0.0),
    ],
)
def test_option_fixed_examples(contracts: int, premium: float, fee: float) -> None:
    assert IBKR_FIXED.option(contracts, premium) == pytest.approx(fee, abs=1e-12)


# --- one rule, scalar and vectorized ------------------------------------------------------------

PREMIUMS = st.one_of(st.floats(0.0, 50.0), st.sampled_from([0.0, 0.049999, 0.05, 0.0999, 0.10, math.nan]))
PRICES = st.one_of(st.floats(0.01, 2000.0), st.just(math.nan))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), PREMIUMS, st.integers(0, 100_000), PRICES)
def test_scalar_rule_equals_the_model(contracts: int, premium: float, shares: int, price: float) -> None:
    assert IBKR_FIXED.option(contracts, premium) == pytest.approx(model_option_order([(contracts, premium)]), rel=1e-12)
    assert IBKR_FIXED.stock(shares, price) == pytest.approx(model_stock_order([(shares, price)]), rel=1e-12)
    assert IBKR_FIXED.for_instrument("OPT", contracts, premium) == IBKR_FIXED.option(contracts, premium)
    assert IBKR_FIXED.for_instrument("STK", shares, price) == IBKR_FIXED.stock(shares, price)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), PREMIUMS, st.integers(0, 100_000), PRICES), min_size=1, max_size=40))
def test_vectorized_rule_equals_the_scalar_rule_elementwise(rows) -> None:
    contracts, premium, shares, price = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    options = IBKR_FIXED.option_orders(contracts, premium)
    stocks = IBKR_FIXED.stock_orders(shares, price)
    assert options.shape == stocks.shape == (len(rows),)
    for i, (n, p, s, px) in enumerate(rows):
        assert options[i] == IBKR_FIXED.option(n, p)
        assert stocks[i] == IBKR_FIXED.stock(s, px)


# --- an order filled in several executions -----------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["STK", "OPT"]), st.lists(st.tuples(st.integers(1, 3000), st.floats(0.01, 700.0)), min_size=1, max_size=8))
def test_executions_pay_the_orders_commission_once(sec_type: str, fills: list[tuple[int, float]]) -> None:
    """Each execution pays commission(order so far) - commission(before): never negative,
    summing to the model's commission of the whole order (minimum once, cap on the whole
    value, each option contract at its own execution's tier)."""
    multiplier = 100 if sec_type == "OPT" else 1
    traded = Traded()
    fees = []
    for n, p in fills:
        traded, fee = IBKR_FIXED.execution(sec_type, traded, n, p, multiplier)
        fees.append(fee)
    assert min(fees) >= 0
    model = model_option_order(fills) if sec_type == "OPT" else model_stock_order(fills)
    assert sum(fees) == pytest.approx(model, rel=1e-9, abs=1e-9)
    assert IBKR_FIXED.order_total(sec_type, traded) == pytest.approx(model, rel=1e-9, abs=1e-9)
    assert traded.quantity == sum(n for n, _ in fills)
    assert traded.value == pytest.approx(sum(n * p * multiplier for n, p in fills))
    # all at one price: exactly the single-order rule the ticket estimates
    one = Traded()
    total = 0.0
    for n, _ in fills:
        one, fee = IBKR_FIXED.execution(sec_type, one, n, fills[0][1], multiplier)
        total += fee
    single = IBKR_FIXED.for_instrument(sec_type, traded.quantity, fills[0][1])
    assert total == pytest.approx(single, rel=1e-9, abs=1e-12)


def test_partial_fills_pay_the_minimum_once() -> None:
    traded, first = IBKR_FIXED.execution("OPT", Traded(), 1, 0.03, 100)  # 0.25, minimum 1.00
    traded, second = IBKR_FIXED.execution("OPT", traded, 2, 0.03, 100)  # 0.75 in all: still 1.00
    traded, third = IBKR_FIXED.execution("OPT", traded, 4, 0.07, 100)  # 0.75 + 4 x 0.50 = 2.75
    assert (first, second, third) == pytest.approx((1.00, 0.0, 1.75))
    traded, fee = IBKR_FIXED.execution("STK", Traded(), 30, 2.0, 1)  # 1 % of $60 = 0.60
    assert fee == pytest.approx(0.60)
    traded, fee = IBKR_FIXED.execution("STK", traded, 30, 2.0, 1)  # 1 % of $120 = 1.20 > 1.00
    assert fee == pytest.approx(0.40)


# --- plans, validation, dispatch ------------------------------------------------------------------


def test_rates_validation_and_dispatch() -> None:
    with pytest.raises(ValueError, match="commission stock_min must be a finite number >= 0, got -1"):
        CommissionRates(stock_min=-1)
    with pytest.raises(ValueError, match="commission option_min must be a finite number >= 0, got nan"):
        CommissionRates(option_min=math.nan)
    with pytest.raises(ValueError, match="no commission rule for secType 'FUT'"):
        IBKR_FIXED.for_instrument("FUT", 1, 1.0)
    with pytest.raises(ValueError, match="no commission rule for secType 'BAG'"):
        IBKR_FIXED.execution("BAG", Traded(), 1, 1.0)
    cheap = CommissionRates(option_per_contract=0.15, option_per_contract_low=0.15, option_per_contract_lowest=0.15)
    assert cheap.option(10, 0.03) == pytest.approx(1.50)
    assert RiskLimits(commission=cheap).commission is cheap
    with pytest.raises(RiskInputError, match="commission must be a desk.domain.commission.CommissionRates"):
        RiskLimits(commission="ibkr")  # type: ignore[arg-type]
