"""desk.domain.orders.round_to_tick against a brute-force walk along the tick grid."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk.domain.orders import round_to_tick


@given(st.integers(0, 2_000_000), st.sampled_from([0.01, 0.05, 0.25, 0.0001]))
def test_up_down_and_nearest_are_the_grid_points_around_the_price(hundred_thousandths, tick) -> None:
    price = hundred_thousandths / 100_000
    grid = [k * tick for k in range(int(price / tick) - 2, int(price / tick) + 3)]
    below = max(g for g in grid if g <= price + 1e-6 * tick)
    above = min(g for g in grid if g >= price - 1e-6 * tick)
    assert round_to_tick(price, tick, "down") == pytest.approx(below, abs=1e-9)
    assert round_to_tick(price, tick, "up") == pytest.approx(above, abs=1e-9)
    nearest = round_to_tick(price, tick)
    assert nearest in (pytest.approx(below, abs=1e-9), pytest.approx(above, abs=1e-9))
    assert abs(nearest - price) <= tick / 2 + 1e-9


def test_unroundable_input_is_returned_and_a_bad_direction_raises() -> None:
    assert math.isnan(round_to_tick(math.nan, 0.01))
    assert round_to_tick(1.234, 0.0) == 1.234
    assert round_to_tick(1.23, 0.05, "down") == 1.2 and round_to_tick(1.21, 0.05, "up") == 1.25
    with pytest.raises(ValueError, match="direction"):
        round_to_tick(1.0, 0.01, "sideways")


def test_order_prices_are_described_to_the_cent_not_to_significant_digits() -> None:
    """A fill at 230.06 is not "230.1", a $12,345.67 limit is not "12345.7"."""
    import math

    from desk.domain import Instrument
    from desk.domain.orders import OrderRow, price_str

    assert [price_str(p) for p in (230.06, 598.85, 12345.67, 499.0, 0.0525, 700000.25)] == [
        "230.06",
        "598.85",
        "12345.67",
        "499",
        "0.0525",
        "700000.25",
    ]
    row = OrderRow(
        "desk-1",
        1,
        0,
        Instrument("BRK A", con_id=1),
        "BUY",
        1,
        "STP LMT",
        700000.25,
        699999.5,
        "DAY",
        "Submitted",
        0,
        1,
        math.nan,
        None,
    )
    assert row.describe == "BUY 1 BRK A STP LMT stop 699999.5 700000.25 DAY"
