"""Positions and P&L: one row per position (or per order, grouped), the account's figures
and the portfolio's Greeks.

Rows (a DataTable patched cell by cell, keyed by conId): quantity (shares / contracts; 0
for a position closed today), average cost and market price (dollars per share), market
value, unrealized, realized and daily P&L (dollars, IB's figures of one ``reqPnLSingle``
update: :mod:`desk.domain.pnl` has the definitions), IV, delta (shares of the
underlying; a stock's delta is its shares), gamma (shares per $1), theta (dollars per
calendar day) and vega (dollars per vol point) of the whole position.

``g`` groups the positions by the order (orderRef) whose fills opened them: a conversion
bought as one combo is one group line with the order, its summed P&L and Greeks, and its
legs beneath; positions no fill the desk saw explains go to a last group. ``g`` again
shows one row per position. ``z`` maximizes the pane (every column in view) and restores it.

The summary: NetLiquidation (moved on by the daily P&L since IB sent it), daily,
unrealized and realized P&L of the account (``reqPnL``: the sums of the positions), buying
power and excess liquidity; the portfolio Greeks summed over stock and options.

Enter on a position (or a leg of a group) posts :class:`PositionsPane.CloseRequested`
(the app opens a closing ticket: the opposite side, the whole quantity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from desk.domain.portfolio import UNGROUPED, AccountFigures, PortfolioGreeks, PositionGroup, PositionRow
from desk.ui.widgets.zoom import toggle_zoom

__all__ = ["PositionsPane", "group_cells", "position_cells", "summary_text"]

COLUMNS = ("Instrument", "Qty", "Avg cost", "Price", "Value", "Unreal", "Real", "Daily", "IV", "Delta", "Gamma", "Theta", "Vega")


def _n(x: float, fmt: str = ",.2f") -> str:
    if not math.isfinite(x):
        return "—"
    text = format(x, fmt)
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]  # -0.00: a zero
    return text


def _iv(x: float) -> str:
    return f"{x * 100:.1f}%" if math.isfinite(x) else "—"


def _greeks(delta: float, gamma: float, theta: float, vega: float) -> tuple[str, ...]:
    return _n(delta, ",.1f"), _n(gamma, ",.2f"), _n(theta, ",.2f"), _n(vega, ",.2f")


def position_cells(row: PositionRow, indent: str = "") -> tuple[str, ...]:
    """The cells of one position row (``indent`` before the instrument: a group's leg)."""
    return (
        indent + row.instrument.key,
        f"{row.quantity:+g}",
        _n(row.avg_cost),
        _n(row.market_price),
        _n(row.market_value),
        _n(row.unrealized),
        _n(row.realized),
        _n(row.daily_pnl),
        _iv(row.iv),
        *_greeks(row.delta, row.gamma, row.theta, row.vega),
    )


def group_label(group: PositionGroup, labels: Mapping[str, str] | None = None) -> str:
    """``▾ BUY 1 SPY combo(3) LMT 597.7 DAY`` (the order, from ``labels`` by orderRef, else
    the orderRef); the ungrouped: ``▾ held before / other orders``."""
    if group.order_ref == UNGROUPED:
        return "▾ held before / other orders"
    text = (labels or {}).get(group.order_ref) or group.order_ref
    return f"▾ {text}"


def group_cells(group: PositionGroup, labels: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The cells of a group's line: its order, summed value, P&L and Greeks."""
    g = group.greeks
    legs = len(group.legs)
    return (
        group_label(group, labels),
        f"{legs} leg{'s' if legs != 1 else ''}",
        "",
        "",
        _n(group.market_value),
        _n(group.unrealized),
        _n(group.realized),
        _n(group.daily_pnl),
        "",
        *_greeks(g.delta, g.gamma, g.theta, g.vega),
    )


def summary_text(figures: AccountFigures, greeks: PortfolioGreeks) -> str:
    """Account figures and portfolio Greeks on two lines."""
    line1 = (
        f"NetLiq {_n(figures.net_liquidation)}  Daily {_n(figures.daily_pnl)}  Unreal {_n(figures.unrealized)}  "
        f"Real {_n(figures.realized)}  BuyingPower {_n(figures.buying_power, ',.0f')}  "
        f"ExcessLiq {_n(figures.excess_liquidity, ',.0f')}"
    )
    line2 = (
        f"Portfolio Delta {_n(greeks.delta, ',.1f')} sh (stock {greeks.stock_shares:+,g})  "
        f"$Delta {_n(greeks.dollar_delta, ',.0f')}  Gamma {_n(greeks.gamma)}  Theta {_n(greeks.theta)}/day  "
        f"Vega {_n(greeks.vega)}/vol pt  "
        f"({greeks.priced}/{greeks.options} options priced)"
    )
    return f"{line1}\n{line2}"


class PositionTable(DataTable):
    """The positions table (Enter: closing ticket; g: group by order)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "close_position",
            "Close",
            id="positions.close",
            tooltip="Open a ticket that closes the position under the cursor",
        ),
        Binding(
            "g",
            "toggle_groups",
            "Group",
            id="positions.group",
            tooltip="Group the positions by the order they came from (again: one row per position)",
        ),
        Binding("z", "zoom", "Zoom", show=False, id="positions.zoom", tooltip="Maximize the positions pane (again: restore)"),
    ]

    def action_close_position(self) -> None:
        pane = self.parent
        if isinstance(pane, PositionsPane):
            pane.request_close()

    def action_toggle_groups(self) -> None:
        pane = self.parent
        if isinstance(pane, PositionsPane):
            pane.toggle_groups()

    def action_zoom(self) -> None:
        """Maximize the positions pane, every column in view (or restore it)."""
        pane = self.parent
        if isinstance(pane, PositionsPane):
            toggle_zoom(pane, focus=self)


class PositionsPane(Vertical, can_focus=False):
    """Positions table plus the account summary (see the module doc)."""

    ALLOW_MAXIMIZE = True

    DEFAULT_CSS = """
    PositionsPane > DataTable { height: 1fr; }
    PositionsPane > #positions-summary { height: 2; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    @dataclass
    class CloseRequested(Message):
        row: PositionRow

    @dataclass
    class GroupingChanged(Message):
        """The user toggled grouping by order (``grouped``)."""

        grouped: bool

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.table = PositionTable(cursor_type="row", id="positions-table")
        self.summary = Static("", id="positions-summary", markup=False)
        #: True: grouped by order (``g``)
        self.grouped = False
        #: row key -> the position (or leg) it shows; group lines are not in it
        self.rows: dict[str, PositionRow] = {}
        #: row key -> its cells as shown, in table order
        self.shown: dict[str, tuple[str, ...]] = {}
        self._last: tuple = ((), AccountFigures(), PortfolioGreeks(), None, None)

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.summary

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.table.add_column(name, key=name)

    def toggle_groups(self) -> None:
        """Switch between one row per position and groups by order."""
        self.grouped = not self.grouped
        self.border_subtitle = "by order (g)" if self.grouped else ""
        self.post_message(self.GroupingChanged(self.grouped))
        self.apply(*self._last)

    def apply(
        self,
        rows: Sequence[PositionRow],
        figures: AccountFigures,
        greeks: PortfolioGreeks,
        groups: Sequence[PositionGroup] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Show ``rows`` (or, while grouped, ``groups`` with their orders' ``labels`` by
        orderRef) and the summary, changing only the cells that differ."""
        self._last = (rows, figures, greeks, groups, labels)
        wanted: dict[str, tuple[str, ...]] = {}
        positions: dict[str, PositionRow] = {}
        if self.grouped and groups is not None:
            for group in groups:
                gkey = f"g:{group.order_ref}"
                wanted[gkey] = group_cells(group, labels)
                for leg in group.legs:
                    key = f"{gkey}:{leg.instrument.con_id}"
                    wanted[key] = position_cells(leg, "  └ ")
                    positions[key] = leg
        else:
            for r in rows:
                key = str(r.instrument.con_id)
                wanted[key] = position_cells(r)
                positions[key] = r
        table = self.table
        with self.app.batch_update():
            if list(wanted) != list(self.shown):  # rows came, went or moved: lay the table out again
                cursor = table.cursor_row
                table.clear()
                for key, cells in wanted.items():
                    table.add_row(*cells, key=key)
                if wanted:
                    table.move_cursor(row=min(max(cursor, 0), len(wanted) - 1))
            else:
                for key, cells in wanted.items():
                    old = self.shown[key]
                    for name, a, b in zip(COLUMNS, old, cells, strict=True):
                        if a != b:
                            table.update_cell(key, name, b)
            self.shown = wanted
            self.rows = positions
            self.summary.update(summary_text(figures, greeks))

    def request_close(self) -> None:
        table = self.table
        if not table.row_count:
            return
        key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        row = self.rows.get(str(key.value))
        if row is not None and row.quantity:
            self.post_message(self.CloseRequested(row))
