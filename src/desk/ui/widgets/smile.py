"""The volatility smile drawn with characters: IV by strike for one expiry.

:func:`smile_lines` lays out a plot of ``width`` x ``height`` cells as rows of
``(text, kind)`` runs; the chain pane turns each run into a styled segment. Pure layout:
no Textual here, so it is tested on its own.

* x: strike, linear from the lowest to the highest strike given; y: implied volatility in
  percent, from the lowest to the highest IV plotted (padded by 5 % of the range, at least
  half a vol point each way).
* ``●`` the out-of-the-money option at each strike (puts below the forward, calls above:
  the quotes the smile is usually read from), ``·`` the in-the-money one;
* ``┊`` the at-the-money strike, ``│`` the strike under the chain's cursor;
* a y axis with three IV labels on the left, an x axis with strike labels at the bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SmilePoint", "smile_lines"]

#: Width of the y-axis labels (``25.0%``) plus the axis line.
Y_LABEL_WIDTH = 7


@dataclass(frozen=True, slots=True)
class SmilePoint:
    """One option on the plot: ``strike`` dollars per share, ``iv`` annual fraction, ``otm``
    True for the out-of-the-money side."""

    strike: float
    iv: float
    otm: bool


#: A run of text and its kind: "otm", "itm", "atm", "cursor", "axis", "label", "plot", "empty".
Run = tuple[str, str]


def _fmt_strike(k: float) -> str:
    return f"{k:g}"


def smile_lines(
    points: Sequence[SmilePoint],
    width: int,
    height: int,
    *,
    atm_strike: float = math.nan,
    cursor_strike: float = math.nan,
) -> list[list[Run]]:
    """``height`` lines of runs, each line exactly ``width`` cells wide.

    Points with a ``nan`` IV are left out. With fewer than two points (or a plot smaller
    than 3 x 12 cells) the lines say why instead of plotting.
    """
    width = max(0, width)
    height = max(0, height)
    usable = [p for p in points if p.iv == p.iv and p.iv > 0 and p.strike == p.strike]
    lines: list[list[Run]] = []

    def blank(text: str = "", kind: str = "empty") -> list[Run]:
        return [(text[:width].ljust(width), kind)]

    plot_w, plot_h = width - Y_LABEL_WIDTH, height - 1
    if len(usable) < 2 or plot_w < 12 or plot_h < 3:
        why = "no smile: fewer than two IVs in the window" if len(usable) < 2 else "no smile: the pane is too small"
        return [blank("  " + why if i == 0 else "") for i in range(height)]

    strikes = [p.strike for p in usable]
    k_lo, k_hi = min(strikes), max(strikes)
    if k_hi == k_lo:
        k_hi = k_lo + 1.0
    ivs = [p.iv * 100 for p in usable]
    v_lo, v_hi = min(ivs), max(ivs)
    pad = max(0.5, (v_hi - v_lo) * 0.05)
    v_lo, v_hi = max(0.0, v_lo - pad), v_hi + pad

    def col(k: float) -> int:
        return min(plot_w - 1, max(0, round((k - k_lo) / (k_hi - k_lo) * (plot_w - 1))))

    def row(v: float) -> int:  # 0 = top line
        return min(plot_h - 1, max(0, round((v_hi - v) / (v_hi - v_lo) * (plot_h - 1))))

    grid = [[" "] * plot_w for _ in range(plot_h)]
    kinds = [["plot"] * plot_w for _ in range(plot_h)]
    for k, kind, ch in ((atm_strike, "atm", "┊"), (cursor_strike, "cursor", "│")):
        if k == k and k_lo <= k <= k_hi:
            c = col(k)
            for r in range(plot_h):
                grid[r][c], kinds[r][c] = ch, kind
    # in-the-money first, so an out-of-the-money point wins a shared cell
    for p in sorted(usable, key=lambda p: p.otm):
        r, c = row(p.iv * 100), col(p.strike)
        grid[r][c], kinds[r][c] = ("●", "otm") if p.otm else ("·", "itm")

    labels = {0: v_hi, plot_h // 2: (v_hi + v_lo) / 2, plot_h - 1: v_lo}
    for r in range(plot_h):
        label = f"{labels[r]:5.1f}%" if r in labels else ""
        runs: list[Run] = [(label.rjust(Y_LABEL_WIDTH - 1), "label"), ("┤" if r in labels else "│", "axis")]
        # merge equal kinds into runs
        start = 0
        for c in range(1, plot_w + 1):
            if c == plot_w or kinds[r][c] != kinds[r][start]:
                runs.append(("".join(grid[r][start:c]), kinds[r][start]))
                start = c
        lines.append(runs)

    # x axis: labels at both ends and at the ATM strike when it fits
    axis = [" "] * plot_w
    marks = [(k_lo, 0), (k_hi, plot_w - 1)]
    if atm_strike == atm_strike and k_lo < atm_strike < k_hi:
        marks.append((atm_strike, col(atm_strike)))
    taken = [False] * plot_w
    for k, c in sorted(marks, key=lambda m: m[1]):
        text = _fmt_strike(k)
        start = max(0, min(plot_w - len(text), c - len(text) // 2))
        if any(taken[max(0, start - 1) : start + len(text) + 1]):
            continue
        for i, ch in enumerate(text):
            axis[start + i] = ch
            taken[start + i] = True
    lines.append([(" " * (Y_LABEL_WIDTH - 1) + "└", "axis"), ("".join(axis), "label")])
    return lines[:height]
