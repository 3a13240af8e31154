"""A small text chart of an option position's payoff at expiry (P&L in dollars against the
underlying price at expiry in dollars per share), with max loss, max gain and breakevens.

:func:`payoff_lines` is pure (tests read its lines); :class:`PayoffChart` shows them.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.widgets import Static

from desk.risk import PayoffProfile

__all__ = ["PayoffChart", "payoff_lines"]


def _money(x: float) -> str:
    if math.isinf(x):
        return "unlimited"
    return f"${x:,.0f}"


def payoff_lines(profile: PayoffProfile, width: int = 48, height: int = 7) -> list[str]:
    """The chart as ``height`` + 2 text lines of ``width`` columns: a headline (max loss,
    max gain, breakevens), the plot (``█`` above zero, ``▒`` below, ``─`` the zero line)
    and the price axis (low and high prices of the chart, dollars per share)."""
    width = max(10, width)
    height = max(3, height)
    prices = np.asarray(profile.prices, dtype=float)
    pnl = np.asarray(profile.pnl, dtype=float)
    cols = np.interp(np.linspace(prices[0], prices[-1], width), prices, pnl)
    lo, hi = float(min(cols.min(), 0.0)), float(max(cols.max(), 0.0))
    span = hi - lo or 1.0
    zero_row = int(round((hi - 0.0) / span * (height - 1)))
    grid = [[" "] * width for _ in range(height)]
    for x, v in enumerate(cols):
        row = int(round((hi - v) / span * (height - 1)))
        a, b = sorted((row, zero_row))
        for y in range(a, b + 1):
            grid[y][x] = "█" if v >= 0 else "▒"
    for x in range(width):
        if grid[zero_row][x] == " ":
            grid[zero_row][x] = "─"
    be = ", ".join(f"{b:,.2f}" for b in profile.breakevens) or "none"
    head = f"Payoff {profile.expiry}: max loss {_money(profile.max_loss)}  max gain {_money(profile.max_gain)}  breakevens {be}"
    axis = f"{prices[0]:,.2f}".ljust(width - 10) + f"{prices[-1]:,.2f}".rjust(10)
    return [head, *("".join(r) for r in grid), axis[:width]]


class PayoffChart(Static):
    """Shows :func:`payoff_lines` of a :class:`PayoffProfile` (or a note when there is none)."""

    DEFAULT_CSS = """
    PayoffChart { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.profile: PayoffProfile | None = None

    def show(self, profile: PayoffProfile | None, note: str = "") -> None:
        self.profile = profile
        if profile is None:
            self.update(Text(note, style="dim") if note else "")
            self.display = bool(note)
            return
        self.display = True
        width = max(20, (self.size.width or 50) - 2)
        self.update("\n".join(payoff_lines(profile, width=min(width, 60))))
