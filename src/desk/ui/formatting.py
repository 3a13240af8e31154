"""Pure formatting helpers for the desk's grids and status bar (no Textual here).

Conventions: prices are dollars per share, formatted with as many decimals as the
instrument's minimum tick needs (``0.01`` -> 2, ``0.005`` -> 3, ``1`` -> 0); sizes and
volumes are shares or contracts. A missing value (``nan`` or ``None``) formats as
:data:`MISSING`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache

#: What a missing value (nan) looks like on screen.
MISSING = "—"


@lru_cache(maxsize=64)
def tick_decimals(min_tick: float) -> int:
    """Number of decimals needed to show prices on a ``min_tick`` grid (2 for 0.01).

    A non-positive or non-finite tick falls back to 2 decimals.
    """
    if not (min_tick > 0) or math.isinf(min_tick):
        return 2
    exponent = Decimal(repr(min_tick)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def fmt_price(value: float, min_tick: float = 0.01) -> str:
    """A price in dollars per share with the decimals of ``min_tick``; :data:`MISSING` for nan."""
    if value is None or value != value:
        return MISSING
    return f"{value:,.{tick_decimals(min_tick)}f}"


def fmt_change(value: float, min_tick: float = 0.01) -> str:
    """A signed price change (``+1.25`` / ``-0.40``) in dollars per share."""
    if value is None or value != value:
        return MISSING
    return f"{value:+,.{tick_decimals(min_tick)}f}"


def fmt_pct(value: float) -> str:
    """A signed percentage with two decimals (``+1.23%``)."""
    if value is None or value != value:
        return MISSING
    return f"{value:+.2f}%"


def fmt_size(value: float) -> str:
    """A size in shares or contracts with thousands separators (``1,200``); K/M above a million."""
    if value is None or value != value:
        return MISSING
    if abs(value) >= 1_000_000:
        return fmt_volume(value)
    return f"{value:,.0f}"


def fmt_volume(value: float) -> str:
    """A day volume: ``12,345`` below a million, then ``1.23M`` and ``4.56B``."""
    if value is None or value != value:
        return MISSING
    magnitude = abs(value)
    if magnitude >= 1_000_000_000:
        return f"{value / 1_000_000_000:.2f}B"
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    return f"{value:,.0f}"


def fmt_rate(per_second: float) -> str:
    """A rate such as ticks per second: ``950``, ``12.3k``, ``1.20M``."""
    if per_second != per_second or per_second < 0:
        return MISSING
    if per_second >= 1_000_000:
        return f"{per_second / 1_000_000:.2f}M"
    if per_second >= 10_000:
        return f"{per_second / 1_000:.1f}k"
    return f"{per_second:,.0f}"


def fmt_count(value: int) -> str:
    """An integer counter with thousands separators."""
    return f"{value:,d}"
