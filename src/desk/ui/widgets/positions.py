"""Positions and P&L: one row per position, the account's figures and portfolio Greeks.

Rows (a DataTable patched cell by cell, keyed by conId): quantity (shares / contracts),
average cost and market price (dollars per share), market value, unrealized, realized and
daily P&L (dollars; daily from ``reqPnLSingle``), delta (shares of the underlying). The
summary line: NetLiquidation, buying power, excess liquidity, daily P&L (``reqPnL``) and
the option positions' Greeks: delta (shares), dollar delta (dollars), gamma (shares per
$1), theta (dollars per calendar day), vega (dollars per vol point).

Enter on a position posts :class:`PositionsPane.CloseRequested` (the app opens a closing
ticket: the opposite side, the whole quantity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from desk.broker.account import AccountFigures, PortfolioGreeks, PositionRow

__all__ = ["PositionsPane", "position_cells", "summary_text"]

COLUMNS = ("Instrument", "Qty", "Avg cost", "Price", "Value", "Unreal", "Real", "Daily", "Delta")


def _n(x: float, fmt: str = ",.2f") -> str:
    return format(x, fmt) if math.isfinite(x) else "—"


def position_cells(row: PositionRow) -> tuple[str, ...]:
    return (
        row.instrument.key, f"{row.quantity:+g}", _n(row.avg_cost), _n(row.market_price), _n(row.market_value),
        _n(row.unrealized), _n(row.realized), _n(row.daily_pnl), _n(row.delta, ",.1f"),
    )


def summary_text(figures: AccountFigures, greeks: PortfolioGreeks) -> str:
    """Account figures and portfolio Greeks on two lines."""
    line1 = (
        f"NetLiq {_n(figures.net_liquidation)}  BuyingPower {_n(figures.buying_power)}  "
        f"ExcessLiq {_n(figures.excess_liquidity)}  Daily P&L {_n(figures.daily_pnl)}"
    )
    line2 = (
        f"Options Δ {greeks.delta:,.1f} sh  $Δ {greeks.dollar_delta:,.0f}  Γ {greeks.gamma:,.2f}  "
        f"Θ {greeks.theta:,.2f}/day  V {greeks.vega:,.2f}/vol pt  ({greeks.priced}/{greeks.options} priced)"
    )
    return f"{line1}\n{line2}"


class PositionTable(DataTable):
    """The positions table (Enter: closing ticket)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "close_position", "Close", id="positions.close",
                tooltip="Open a ticket that closes the position under the cursor"),
    ]

    def action_close_position(self) -> None:
        pane = self.parent
        if isinstance(pane, PositionsPane):
            pane.request_close()


class PositionsPane(Vertical, can_focus=False):
    """Positions table plus the account summary (see the module doc)."""

    DEFAULT_CSS = """
    PositionsPane > DataTable { height: 1fr; }
    PositionsPane > #positions-summary { height: 2; color: $text-muted; }
    """

    @dataclass
    class CloseRequested(Message):
        row: PositionRow

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.table = PositionTable(cursor_type="row", id="positions-table")
        self.summary = Static("", id="positions-summary", markup=False)
        self.rows: dict[int, PositionRow] = {}
        self.shown: dict[int, tuple[str, ...]] = {}

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.summary

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.table.add_column(name, key=name)

    def apply(self, rows: Sequence[PositionRow], figures: AccountFigures, greeks: PortfolioGreeks) -> None:
        """Show ``rows`` and the summary, changing only the cells that differ."""
        table = self.table
        wanted = {r.instrument.con_id: r for r in rows}
        with self.app.batch_update():
            for con_id in [k for k in self.shown if k not in wanted]:
                table.remove_row(str(con_id))
                del self.shown[con_id]
            for con_id, r in wanted.items():
                cells = position_cells(r)
                old = self.shown.get(con_id)
                if old is None:
                    table.add_row(*cells, key=str(con_id))
                else:
                    for name, a, b in zip(COLUMNS, old, cells):
                        if a != b:
                            table.update_cell(str(con_id), name, b)
                self.shown[con_id] = cells
            self.rows = wanted
            self.summary.update(summary_text(figures, greeks))

    def request_close(self) -> None:
        table = self.table
        if not table.row_count:
            return
        key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        row = self.rows.get(int(key.value))
        if row is not None and row.quantity:
            self.post_message(self.CloseRequested(row))
