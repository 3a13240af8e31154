"""Reg T / CBOE margin (desk.risk.margin): the rules' worked numbers, and property tests
against a brute-force model of the positions' payoff at expiry over a grid of underlying
prices: never below the worst loss for defined-risk positions, exact for boxes, iron
condors, conversions and reversals. Contracts are the desk's own ``Instrument``; the
simulator's ``Tradable`` goes through the same functions in tests/sim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.domain import Instrument
from desk.domain.orders import Position
from desk.risk import Action, ComboLeg, OrderIntent
from desk.risk.margin import (
    Requirement,
    initial_margin_change,
    margin_change,
    reg_t,
    short_option_requirement,
    stock_requirement,
)

EXPIRY = "20261218"
STRIKES = tuple(float(k) for k in range(40, 75, 5))
XYZ = Instrument("XYZ", con_id=1)


def opt(strike: float, right: str, expiry: str = EXPIRY, symbol: str = "XYZ") -> Instrument:
    """An option with a conId derived from its terms (so equal terms net)."""
    con_id = int(strike * 10) * 10 + (1 if right == "C" else 2) + (0 if expiry == EXPIRY else 5)
    con_id += 0 if symbol == "XYZ" else 100_000
    return Instrument(symbol, sec_type="OPT", con_id=con_id, expiry=expiry, strike=strike, right=right, multiplier=100)


# --- the brute-force model ---------------------------------------------------------------------


def payoff(holdings: list[tuple[Instrument, float]], s: np.ndarray) -> np.ndarray:
    """Dollars the holdings are worth at expiry with the underlying at ``s``."""
    total = np.zeros_like(s)
    for c, q in holdings:
        if c.sec_type == "STK":
            total += q * s
        elif c.right == "C":
            total += q * c.multiplier * np.maximum(s - c.strike, 0.0)
        else:
            total += q * c.multiplier * np.maximum(c.strike - s, 0.0)
    return total


def worst_loss(holdings: list[tuple[Instrument, float]]) -> float:
    """The most the holdings can owe at expiry: -min payoff over underlying prices from 0
    to twice the highest strike in steps of 0.25 (every strike is on the grid)."""
    grid = np.arange(0.0, 2 * max(STRIKES) + 0.25, 0.25)
    return max(0.0, -float(payoff(holdings, grid).min()))


def marks(holdings: list[tuple[Instrument, float]], s: float, option_price: float = 1.0) -> dict[int, float]:
    out = {XYZ.con_id: s}
    for c, _ in holdings:
        if c.sec_type == "OPT":
            out[c.con_id] = option_price
    return out


@st.composite
def defined_risk(draw) -> tuple[list[tuple[Instrument, float]], float, float]:
    """Option positions of one expiry whose every short can be covered: spreads (a short
    and a long of one right), extra longs, and short calls covered by long stock; an
    underlying price; and what the spreads as drawn need (the sum of their widths)."""
    holdings: list[tuple[Instrument, float]] = []
    widths = 0.0
    for _ in range(draw(st.integers(0, 4))):
        right = draw(st.sampled_from("CP"))
        n = draw(st.integers(1, 3))
        short, long = draw(st.sampled_from(STRIKES)), draw(st.sampled_from(STRIKES))
        holdings.append((opt(short, right), -n))
        holdings.append((opt(long, right), n))
        widths += max(0.0, long - short if right == "C" else short - long) * 100 * n
    for _ in range(draw(st.integers(0, 2))):
        holdings.append((opt(draw(st.sampled_from(STRIKES)), draw(st.sampled_from("CP"))), draw(st.integers(1, 2))))
    lots = draw(st.integers(0, 3))
    if lots:
        holdings.append((XYZ, 100.0 * lots + draw(st.sampled_from([0, 0, 50]))))
        for _ in range(draw(st.integers(0, lots))):
            holdings.append((opt(draw(st.sampled_from(STRIKES)), "C"), -1))
    return holdings, draw(st.floats(30.0, 80.0)), widths


def net(holdings: list[tuple[Instrument, float]]) -> list[tuple[Instrument, float]]:
    out: dict[int, tuple[Instrument, float]] = {}
    for c, q in holdings:
        out[c.con_id] = (c, out.get(c.con_id, (c, 0.0))[1] + q)
    return [(c, q) for c, q in out.values() if q]


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(defined_risk(), st.floats(0.01, 20.0))
def test_requirement_is_never_below_the_worst_loss_at_expiry(case, option_price) -> None:
    holdings, s, widths = case
    stock = sum(q for c, q in holdings if c.sec_type == "STK")
    req = reg_t(holdings, marks(holdings, s, option_price), {"XYZ": s})
    beyond_stock = req.initial - stock_requirement(stock, s).initial
    loss = worst_loss(net(holdings))
    assert beyond_stock >= loss - 1e-6
    assert req.maintenance - stock_requirement(stock, s).maintenance >= loss - 1e-6
    # and the pairing finds covers at least as good as the spreads as they were drawn
    assert beyond_stock <= widths + 1e-6


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STRIKES), st.sampled_from(STRIKES), st.integers(1, 20), st.floats(1.0, 200.0), st.floats(0.01, 30.0))
def test_a_short_box_needs_its_width_once_and_a_long_box_nothing(k1, k2, n, s, price) -> None:
    if k1 == k2:
        k2 = k1 + 5.0
    k1, k2 = min(k1, k2), max(k1, k2)
    short_box = [(opt(k1, "C"), -n), (opt(k2, "C"), n), (opt(k2, "P"), -n), (opt(k1, "P"), n)]
    width = (k2 - k1) * 100 * n
    assert worst_loss(short_box) == pytest.approx(width)  # it pays the width whatever happens
    assert reg_t(short_box, marks(short_box, s, price), {"XYZ": s}) == pytest.approx((width, width))
    long_box = [(c, -q) for c, q in short_box]
    assert worst_loss(long_box) == 0.0
    assert reg_t(long_box, marks(long_box, s, price), {"XYZ": s}) == (0.0, 0.0)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(STRIKES),
    st.sampled_from(STRIKES),
    st.sampled_from(STRIKES),
    st.sampled_from(STRIKES),
    st.integers(1, 5),
    st.floats(1.0, 200.0),
)
def test_a_call_credit_spread_and_a_put_credit_spread_need_their_worst_loss(a, b, c, d, n, s) -> None:
    """Boxes, iron condors, iron butterflies and overlapping ones: exactly the brute-force
    worst loss at expiry (the two spreads cannot both lose their width)."""
    call_short, call_long = min(a, b), max(a, b) + (5.0 if a == b else 0.0)
    put_long, put_short = min(c, d), max(c, d) + (5.0 if c == d else 0.0)
    legs = [(opt(call_short, "C"), -n), (opt(call_long, "C"), n), (opt(put_short, "P"), -n), (opt(put_long, "P"), n)]
    held = net(legs)
    loss = worst_loss(held)
    assert reg_t(held, marks(held, s), {"XYZ": s}).initial == pytest.approx(loss, abs=1e-6)
    # and never more than the two spreads charged apart
    assert loss <= ((call_long - call_short) + (put_short - put_long)) * 100 * n + 1e-9


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STRIKES), st.integers(1, 10), st.floats(1.0, 200.0), st.floats(0.01, 30.0))
def test_conversions_and_reversals_need_their_stock_leg_only(k, n, s, price) -> None:
    conversion = [(XYZ, 100.0 * n), (opt(k, "C"), -n), (opt(k, "P"), n)]
    reversal = [(XYZ, -100.0 * n), (opt(k, "C"), n), (opt(k, "P"), -n)]
    assert reg_t(conversion, marks(conversion, s, price)) == stock_requirement(100 * n, s)
    assert reg_t(reversal, marks(reversal, s, price)) == stock_requirement(-100 * n, s)
    # the payoff of either is fixed: K a share, owned (conversion) or owed (reversal)
    assert payoff(conversion, np.array([0.0, k, 200.0])) == pytest.approx([100 * n * k] * 3)
    assert payoff(reversal, np.array([0.0, k, 200.0])) == pytest.approx([-100 * n * k] * 3)


@settings(max_examples=200, deadline=None)
@given(
    defined_risk(),
    st.lists(st.tuples(st.sampled_from(STRIKES), st.sampled_from("CP"), st.integers(-3, 3)), min_size=1, max_size=4),
    st.floats(0.01, 20.0),
)
def test_margin_change_is_the_difference_on_the_traded_underlying_only(case, order, option_price) -> None:
    holdings, s, _widths = case
    other = [(Instrument("ABC", con_id=9), 300.0), (opt(50.0, "C", symbol="ABC"), -5)]
    legs = [(opt(k, r), q) for k, r, q in order]
    prices = {**marks(holdings + legs, s, option_price), 9: 20.0, opt(50.0, "C", symbol="ABC").con_id: 1.0}
    und = {"XYZ": s, "ABC": 20.0}
    change = margin_change(holdings + other, legs, prices, und)
    expected = reg_t(holdings + legs, prices, und) - reg_t(holdings, prices, und)
    assert change == pytest.approx(expected)
    assert initial_margin_change(holdings + other, legs, prices, und) == pytest.approx(expected.initial)


# --- worked numbers ---------------------------------------------------------------------------------


def test_stock_requirements() -> None:
    assert stock_requirement(100, 50.0) == (2500.0, 1250.0)  # 50 % / 25 %
    assert stock_requirement(-100, 50.0) == (2500.0, 1500.0)  # short: 30 %
    assert stock_requirement(-100, 10.0) == (500.0, 500.0)  # at least $5 a share
    assert stock_requirement(-100, 4.0) == (200.0, 400.0)  # below $5: 100 %, >= $2.50
    assert stock_requirement(100, math.nan) == (0.0, 0.0)


def test_naked_options_cboe() -> None:
    # short call, XYZ at 50, 55 strike (5 out of the money) at 1.00:
    # 100 + 20 % x 5000 - 500 = 600; minimum 100 + 10 % x 5000 = 600
    assert short_option_requirement(True, 55.0, 1.00, 50.0) == pytest.approx(600.0)
    # short put, XYZ at 50, 45 strike at 0.80: 80 + 1000 - 500 = 580; min 80 + 450 = 530
    assert short_option_requirement(False, 45.0, 0.80, 50.0) == pytest.approx(580.0)
    # far out of the money put: the minimum 10 % of the strike applies
    assert short_option_requirement(False, 30.0, 0.05, 50.0) == pytest.approx(5 + 300.0)
    # in the money call, broad-based index (15 %)
    assert short_option_requirement(True, 590.0, 15.0, 600.0, broad_based=True) == (pytest.approx(1500 + 9000))


def test_strategies() -> None:
    c50, c55, p50, p45, p55 = opt(50.0, "C"), opt(55.0, "C"), opt(50.0, "P"), opt(45.0, "P"), opt(55.0, "P")
    price = {1: 50.0, c50.con_id: 2.0, c55.con_id: 0.5, p50.con_id: 3.0, p45.con_id: 1.0, p55.con_id: 5.0}
    stock_only = stock_requirement(100, 50.0)
    # covered call: nothing beyond the stock
    assert reg_t([(XYZ, 100), (c50, -1)], price) == stock_only
    # bull call spread (debit): nothing; bear call spread (credit): the width
    assert reg_t([(c50, 1), (c55, -1)], price) == (0.0, 0.0)
    assert reg_t([(c50, -1), (c55, 1)], price) == (500.0, 500.0)
    # bear put spread (debit) and bull put spread (credit)
    assert reg_t([(p50, 1), (p45, -1)], price) == (0.0, 0.0)
    assert reg_t([(p50, -1), (p45, 1)], price) == (500.0, 500.0)
    # short box 50/55: the width once (two credit spreads that cannot both lose)
    assert reg_t([(c50, -1), (c55, 1), (p55, -1), (p50, 1)], price) == (500.0, 500.0)
    # iron condor: short 45/50 put spread + short 50/55 call spread -> the wider, 500
    p40 = opt(40.0, "P")
    assert reg_t([(p40, 1), (p45, -1), (c50, -1), (c55, 1)], {**price, p40.con_id: 0.2}) == (500.0, 500.0)
    # a long expiring before the short does not cover it
    early = opt(45.0, "C", expiry="20261120")
    naked = short_option_requirement(True, 50.0, 2.0, 50.0)
    assert reg_t([(c50, -1), (early, 1)], {**price, early.con_id: 5.0}, {"XYZ": 50.0}) == (naked, naked)
    # and a later long does (a diagonal: the width, 0 here)
    late = opt(45.0, "C", expiry="20270115")
    assert reg_t([(c50, -1), (late, 1)], {**price, late.con_id: 7.0}) == (0.0, 0.0)
    # the underlying's price comes from the held stock, or from ``underlying``
    assert reg_t([(c55, -1)], price, {"XYZ": 50.0}) == reg_t([(c55, -1), (XYZ, 1)], price) - (stock_requirement(1, 50.0))
    with pytest.raises(ValueError, match="no margin rule for secType 'BAG'"):
        reg_t([(Instrument("XYZ", sec_type="BAG", con_id=77), 1)], price)


def test_the_risk_engines_inputs_work_as_they_are() -> None:
    """Positions from the broker and an order's legs (OrderIntent.leg_deltas)."""
    c50, c55, p50, p55 = opt(50.0, "C"), opt(55.0, "C"), opt(50.0, "P"), opt(55.0, "P")
    positions = {c.con_id: Position(c, q) for c, q in ((c50, -2), (c55, 2), (p55, -2))}
    prices = {1: 52.0, c50.con_id: 3.0, c55.con_id: 0.8, p50.con_id: 0.9, p55.con_id: 3.4}
    # buying the 50 puts completes the short box: from a naked put to the width once
    buy_puts = OrderIntent(p50, Action.BUY, 2, limit_price=0.95)
    naked_put = short_option_requirement(False, 55.0, 3.4, 52.0)
    change = initial_margin_change(positions, buy_puts.leg_deltas(), prices, {"XYZ": 52.0})
    assert change == pytest.approx(2 * 500.0 - (2 * 500.0 + 2 * naked_put))
    # selling the short box from flat as one combo: the width once, 2 x 500
    box = OrderIntent(
        Instrument("XYZ", sec_type="BAG", multiplier=100),
        Action.SELL,
        2,
        limit_price=4.90,
        legs=(ComboLeg(c50, Action.BUY), ComboLeg(c55, Action.SELL), ComboLeg(p55, Action.BUY), ComboLeg(p50, Action.SELL)),
    )
    assert initial_margin_change({}, box.leg_deltas(), prices, {"XYZ": 52.0}) == pytest.approx(1000.0)
    # SELL 10 XYZ 50 P at 0.90 with XYZ at 52: the CBOE requirement, far above the premium
    short_puts = OrderIntent(p50, Action.SELL, 10, limit_price=0.90)
    expected = 10 * short_option_requirement(False, 50.0, 0.9, 52.0)
    assert initial_margin_change([], short_puts.leg_deltas(), prices, {"XYZ": 52.0}) == pytest.approx(expected)
    assert expected > 10 * 0.90 * 100
    assert margin_change([], short_puts.leg_deltas(), prices, {"XYZ": 52.0}) == pytest.approx(Requirement(expected, expected))


def test_margin_change_fails_closed_without_a_price() -> None:
    c50, p50 = opt(50.0, "C"), opt(50.0, "P")
    # no underlying price for a short option
    assert math.isnan(initial_margin_change([], [(p50, -1)], {p50.con_id: 1.0}))
    # no price for the short option itself
    assert math.isnan(initial_margin_change([], [(p50, -1)], {}, {"XYZ": 50.0}))
    # no price for a stock leg, or for a stock already held on the traded underlying
    assert math.isnan(initial_margin_change([], [(XYZ, 100)], {}))
    assert math.isnan(initial_margin_change([(XYZ, 100)], [(c50, 1)], {c50.con_id: 2.0}))
    # a long option needs none: paid in full, no requirement
    assert initial_margin_change([], [(c50, 1)], {}) == 0.0
    # the underlying's price may come separately, by symbol
    assert initial_margin_change([], [(p50, -1)], {p50.con_id: 1.0}, {"XYZ": 50.0}) == pytest.approx(
        short_option_requirement(False, 50.0, 1.0, 50.0)
    )
    assert initial_margin_change([], [], {}) == 0.0
