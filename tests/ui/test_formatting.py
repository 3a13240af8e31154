"""Pure formatting helpers and the rate meter (no Textual app needed)."""

import math

import pytest

from desk.ui.formatting import (
    MISSING,
    fmt_change,
    fmt_pct,
    fmt_price,
    fmt_rate,
    fmt_size,
    fmt_volume,
    tick_decimals,
)
from desk.ui.meters import RateMeter


@pytest.mark.parametrize(
    ("tick", "decimals"),
    [(0.01, 2), (0.05, 2), (0.25, 2), (0.005, 3), (0.0001, 4), (1.0, 0), (5, 0), (0.5, 1), (0, 2), (math.nan, 2)],
)
def test_tick_decimals(tick, decimals):
    assert tick_decimals(tick) == decimals


def test_prices_follow_the_tick():
    assert fmt_price(512.3, 0.01) == "512.30"
    assert fmt_price(1234.5, 0.01) == "1,234.50"
    assert fmt_price(1.2345, 0.0001) == "1.2345"
    assert fmt_price(4512.25, 0.25) == "4,512.25"
    assert fmt_price(math.nan) == MISSING
    assert fmt_change(2.5) == "+2.50"
    assert fmt_change(-0.4) == "-0.40"
    assert fmt_change(math.nan) == MISSING
    assert fmt_pct(1.234) == "+1.23%"
    assert fmt_pct(math.nan) == MISSING


def test_sizes_and_volumes():
    assert fmt_size(1200) == "1,200"
    assert fmt_size(math.nan) == MISSING
    assert fmt_size(2_500_000) == "2.50M"
    assert fmt_volume(999_999) == "999,999"
    assert fmt_volume(48_123_456) == "48.12M"
    assert fmt_volume(3_210_000_000) == "3.21B"
    assert fmt_volume(math.nan) == MISSING


def test_rates():
    assert fmt_rate(950) == "950"
    assert fmt_rate(12_345) == "12.3k"
    assert fmt_rate(1_200_000) == "1.20M"
    assert fmt_rate(math.nan) == MISSING


def test_rate_meter_smooths_counter_deltas():
    meter = RateMeter(alpha=0.5)
    assert meter.sample(0, 100.0) == 0.0
    assert meter.sample(1000, 101.0) == 1000.0
    assert meter.sample(4000, 102.0) == 2000.0  # 0.5 * 3000 + 0.5 * 1000
    assert meter.sample(4000, 102.0) == 2000.0  # no time passed: unchanged (frozen clock)
    assert meter.sample(10, 103.0) == 1000.0  # counter reset: a zero interval, not a negative rate


def test_rate_meter_rejects_bad_alpha():
    with pytest.raises(ValueError):
        RateMeter(alpha=0)
