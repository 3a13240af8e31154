"""desk.domain.pnl against a brute-force model: average cost, unrealized, realized and daily
P&L (IB's definitions) over any sequence of fills across several days, and the split of a
position among the orders whose fills opened it.

The model (tests/pnl_model.py) keeps every lot (each opening fill, with its share of the
commission) and reduces the lots pro rata on a closing fill (what average cost means),
recomputing everything from the whole history at each check."""

from __future__ import annotations

import math
from collections import Counter, deque

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pnl_model import replay

from desk.domain.pnl import Lot, PnLFigures, PositionPnL, account_figures, attribute, cents, open_lots

# a day: fills (signed quantity, price in cents, commission in cents), then the close in cents
fill_st = st.tuples(st.integers(-40, 40).filter(bool), st.integers(1, 50_000), st.integers(0, 500))
day_st = st.tuples(st.lists(fill_st, max_size=6), st.integers(1, 50_000))
days_st = st.lists(day_st, min_size=1, max_size=4)


def brute_force(days, multiplier: float, price: float) -> dict[str, float]:
    """The lot-by-lot model (tests/pnl_model.py) on the generated days, figures at ``price``."""
    fills = [[(q, c / 100, f / 100) for q, c, f in day_fills] for day_fills, _ in days]
    closes = [close / 100 for _, close in days[:-1]]
    return replay(fills, closes, multiplier, price)


def incremental(days, multiplier: float) -> PositionPnL:
    book = PositionPnL(multiplier)
    for n, (fills, close_cents) in enumerate(days):
        for qty, cents_, fee_cents in fills:
            book, _ = book.fill(qty, cents_ / 100, fee_cents / 100)
        if n < len(days) - 1:
            book = book.new_day(close_cents / 100)
    return book


@settings(max_examples=300, deadline=None)
@given(days_st, st.sampled_from([1.0, 100.0]), st.integers(1, 50_000))
# 28 opened, 25 closed pro rata, then the last 3: the model's float dust must not open a lot
@example([([(1, 1, 0), (27, 1, 0), (-25, 1, 0), (-3, 1, 0)], 1)], 1.0, 1)
def test_position_pnl_matches_the_lot_by_lot_model(days, multiplier, price_cents) -> None:
    price = price_cents / 100
    book = incremental(days, multiplier)
    model = brute_force(days, multiplier, price)
    scale = 1e-9 * max(1.0, abs(model["cash"]), abs(book.market_value(price)))
    assert book.quantity == pytest.approx(model["quantity"], abs=1e-9)
    if model["quantity"]:
        assert book.avg_cost == pytest.approx(model["avg_cost"], rel=1e-9)
    assert book.unrealized(price) == pytest.approx(model["unrealized"], abs=1e-6 + scale)
    assert book.realized == pytest.approx(model["realized"], abs=1e-6 + scale)
    assert book.realized_total == pytest.approx(model["realized_total"], abs=1e-6 + scale)
    assert book.daily(price) == pytest.approx(model["daily"], abs=1e-6 + scale)
    # every dollar is accounted for: realized since the first fill + unrealized = cash + value
    assert book.realized_total + book.unrealized(price) == pytest.approx(
        model["cash"] + book.market_value(price), abs=1e-6 + scale
    )
    f = book.figures(price)
    assert f == PnLFigures(
        cents(book.daily(price)),
        cents(book.unrealized(price)),
        cents(book.realized),
        cents(book.market_value(price)),
        book.quantity,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 40), st.integers(1, 50_000), st.integers(0, 500)), min_size=1, max_size=6),
    st.booleans(),
    st.integers(1, 50_000),
)
def test_a_position_opened_today_has_daily_equal_to_unrealized(fills, short, price_cents) -> None:
    """Opened today (no position at the reset, only opening fills): daily == unrealized,
    and before commissions both are (price - fill price) x quantity x multiplier."""
    sign = -1 if short else 1
    book = PositionPnL(100.0).new_day(123.45)  # yesterday's close is irrelevant: nothing held
    for qty, cents_, fee in fills:
        book, realized = book.fill(sign * qty, cents_ / 100, fee / 100)
        assert realized is None
    price = price_cents / 100
    assert book.daily(price) == pytest.approx(book.unrealized(price), abs=1e-6)
    gross = sum(sign * q * (price - c / 100) * 100 for q, c, _ in fills)
    fees = sum(f / 100 for _, _, f in fills)
    assert book.unrealized(price) + fees == pytest.approx(gross, abs=1e-6)


def test_a_position_held_from_before_today_is_marked_from_the_prior_close() -> None:
    book, _ = PositionPnL(100.0).fill(2, 3.00, 1.30)
    book = book.new_day(3.40)
    assert book.daily(3.55) == pytest.approx(2 * (3.55 - 3.40) * 100)
    assert book.unrealized(3.55) == pytest.approx(2 * (3.55 - 3.00) * 100 - 1.30)
    # a partial close today: realized against the average cost, daily against the close
    book, realized = book.fill(-1, 3.60, 0.65)
    assert realized == pytest.approx((3.60 - 3.0065) * 100 - 0.65)
    assert book.daily(3.55) == pytest.approx(1 * (3.55 - 3.40) * 100 + (3.60 - 3.40) * 100 - 0.65)


def test_a_flip_closes_then_opens_at_the_fill_price() -> None:
    book, _ = PositionPnL(1.0).fill(100, 10.00, 1.00)
    book, realized = book.fill(-300, 12.00, 3.00)
    assert realized == pytest.approx(100 * (12.00 - 10.01) - 1.00)
    assert book.quantity == -200 and book.avg_cost == pytest.approx((200 * 12.00 - 2.00) / 200)
    with pytest.raises(ValueError, match="non-zero"):
        book.fill(0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        book.fill(1, math.nan)


def test_cents_and_the_account_is_the_sum_of_the_positions() -> None:
    assert cents(1.005) == 1.01 and cents(-1.005) == -1.01 and cents(2.675) == 2.68 and cents(-0.004) == 0.0
    assert math.isnan(cents(math.nan))
    rows = [PnLFigures(1.01, -2.02, 0.0, 101.0, 1), PnLFigures(0.1, 0.2, 0.3, 0.0, 0), PnLFigures(math.nan, 1, 1, 1)]
    assert account_figures(rows) == PnLFigures(1.11, -0.82, 1.3, 102.0, 0.0)


# --- lots by order ---------------------------------------------------------------------------

ref_fill_st = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(-30, 30).filter(bool)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(ref_fill_st, st.integers(-10, 10))
def test_open_lots_are_first_in_first_out_unit_by_unit(fills, extra) -> None:
    """Against a queue of single shares: the open lots hold, per order, what the queue holds;
    the split of the position adds up to it and gives what the lots cannot explain to ''."""
    queue: deque[tuple[str, int]] = deque()  # (order, +1/-1) one share each
    for ref, qty in fills:
        unit = 1 if qty > 0 else -1
        for _ in range(abs(qty)):
            if queue and queue[0][1] != unit:
                queue.popleft()
            else:
                queue.append((ref, unit))
    lots = open_lots((ref, qty, 1.0) for ref, qty in fills)
    by_ref: Counter[str] = Counter()
    for lot in lots:
        by_ref[lot.order_ref] += lot.quantity
    in_queue: Counter[str] = Counter()
    for ref, unit in queue:
        in_queue[ref] += unit
    assert {k: v for k, v in by_ref.items() if v} == dict(in_queue)
    position = sum(q for _, q in fills)
    split = attribute(position, lots)
    assert sum(split.values()) == position
    held = position + extra  # a position the fills do not fully explain
    split = attribute(held, lots)
    assert sum(split.values()) == held
    assert all((q > 0) == (held > 0) for q in split.values())


def test_attribute_takes_the_newest_lots_and_leaves_the_rest_ungrouped() -> None:
    lots = [Lot("a", 100, 1.0), Lot("b", 50, 1.0)]
    assert attribute(120, lots) == {"b": 50, "a": 70}
    assert attribute(200, lots) == {"b": 50, "a": 100, "": 50}
    assert attribute(-5, lots) == {"": -5}
    assert attribute(0, lots) == {}
    assert open_lots([("a", 100, 1.0), ("b", -150, 2.0), ("c", 20, 3.0)]) == [Lot("b", -30, 2.0)]
