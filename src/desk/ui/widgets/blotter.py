"""The orders blotter: working and recent orders, patched cell by cell.

A :class:`~textual.widgets.DataTable` (a slow table: a few updates a second at most),
keyed by orderRef; :meth:`Blotter.apply` diffs the order book's rows against what is
shown and updates only the cells that changed, inside ``App.batch_update()`` (design.md).
Columns: time of the last update (exchange time), order, status, filled / remaining,
average fill price (dollars per share; net per combo unit for a combo), and the gateway's
text for a rejected order or one no longer at the gateway. A combo is one row (its net
price per combo unit) with one indented row per leg beneath it (ratio, action, contract).
The order and message columns share the width the terminal gives the pane.

Keys post messages the app acts on: ``x`` cancel the order under the cursor, ``e`` (or
Enter) modify it by typing its price or quantity, ``+`` / ``-`` move its limit one tick up /
down, ``X`` cancel every working order; ``Home`` / ``End`` (``g`` / ``G``), ``PgUp`` /
``PgDn`` move the cursor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from desk.domain.calendar import NEW_YORK
from desk.domain.orders import OrderRow
from desk.ui.widgets.zoom import toggle_zoom

__all__ = ["Blotter", "blotter_cells", "leg_cells"]

COLUMNS = ("Time", "Order", "Status", "Filled", "Left", "Avg", "Message")
#: fixed-width columns (everything but Order and Message), in cells
_FIXED = {"Time": 8, "Status": 13, "Filled": 6, "Left": 5, "Avg": 9}
_LEG = "#leg"


def _price(x: float) -> str:
    """Dollars per share: cents, or four decimals below a dollar (``—`` unknown)."""
    if not math.isfinite(x):
        return "—"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4f}".rstrip("0").rstrip(".") if x else "0.00"


def blotter_cells(row: OrderRow) -> tuple[str, ...]:
    """The row's cells as shown (see :data:`COLUMNS`)."""
    avg = _price(row.avg_price)
    return (
        row.updated.astimezone(NEW_YORK).strftime("%H:%M:%S"),
        row.describe,
        row.status,
        f"{row.filled:g}",
        f"{row.remaining:g}",
        avg,
        row.error,
    )


def leg_cells(row: OrderRow, i: int) -> tuple[str, ...]:
    """Cells of leg ``i`` of a combo row: ``  └ 100x BUY SPY`` under the order column."""
    leg = row.legs[i]
    corner = "└" if i == len(row.legs) - 1 else "├"
    return ("", f"  {corner} {leg.ratio}x {leg.action} {leg.instrument.key}", "", "", "", "", "")


class Blotter(DataTable):
    """Orders of this desk and those adopted after a reconnect (see the module doc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "cancel", "Cancel", id="blotter.cancel", tooltip="Cancel the order under the cursor"),
        Binding(
            "e,enter",
            "edit",
            "Modify",
            id="blotter.edit",
            tooltip="Modify the order under the cursor: type its new price or quantity",
        ),
        Binding(
            "plus,equals_sign", "modify(1)", "Price +tick", show=False, id="blotter.up", tooltip="Modify: limit price one tick up"
        ),
        Binding("minus", "modify(-1)", "Price -tick", show=False, id="blotter.down", tooltip="Modify: limit price one tick down"),
        Binding("X", "cancel_all", "Cancel all", id="blotter.cancel_all", tooltip="Cancel every working order"),
        Binding("home,g", "first", "First", show=False, id="blotter.first", tooltip="Cursor to the newest order"),
        Binding("end,G", "last", "Last", show=False, id="blotter.last", tooltip="Cursor to the oldest order"),
        Binding(
            "z",
            "zoom",
            "Zoom",
            show=False,
            id="blotter.zoom",
            tooltip="Maximize the orders pane: every order and leg in view (again: restore)",
        ),
    ]

    @dataclass
    class CancelRequested(Message):
        order_ref: str

    @dataclass
    class EditRequested(Message):
        """Open the modify dialog on ``order_ref``."""

        order_ref: str

    @dataclass
    class ModifyRequested(Message):
        """Move the limit price by ``ticks`` of the contract's tick."""

        order_ref: str
        ticks: int

    @dataclass
    class CancelAllRequested(Message):
        pass

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.shown: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name, width=_FIXED.get(name))
        self._fit_columns()

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Give the order and message columns the width left by the fixed ones: the order
        column its longest text when there is room (at least 16 cells), the message column
        the rest (at least 10; the table scrolls sideways when the pane is narrower)."""
        if not self.columns:
            return
        room = self.size.width - sum(_FIXED.values()) - 2 * len(COLUMNS) - 2
        longest = max((len(c[1]) for c in self.shown.values()), default=24)
        order = max(16, min(longest, room - 10))
        message = max(10, room - order)
        for key, width in (("Order", order), ("Message", message)):
            col = self.columns.get(key)  # type: ignore[call-overload]
            if col is not None and (col.width != width or col.auto_width):
                col.width = width
                col.auto_width = False
        self.refresh()

    def apply(self, rows: Iterable[OrderRow]) -> int:
        """Show ``rows`` (newest first, a combo's legs beneath it); returns the number of
        cells changed."""
        wanted: dict[str, tuple[str, ...]] = {}
        for r in sorted(rows, key=lambda r: (r.order_id or 10**12, r.order_ref), reverse=True):
            wanted[r.order_ref] = blotter_cells(r)
            for i in range(len(r.legs) if r.is_combo else 0):
                wanted[f"{r.order_ref}{_LEG}{i}"] = leg_cells(r, i)
        changed = 0
        order = list(wanted)
        with self.app.batch_update():
            if order[: len(self._order)] != self._order[: len(order)] or any(k not in wanted for k in self.shown):
                # a new order goes on top (or rows went away): rebuild in the new order
                keep = self.cursor_row
                self.clear()
                self.shown.clear()
                for key, cells in wanted.items():
                    self.add_row(*cells, key=key)
                    changed += len(cells)
                self.shown = dict(wanted)
                if self.row_count:
                    self.move_cursor(row=min(keep, self.row_count - 1))
            else:
                for key, cells in wanted.items():
                    old = self.shown.get(key)
                    if old is None:
                        self.add_row(*cells, key=key)
                        changed += len(cells)
                    else:
                        for name, a, b in zip(COLUMNS, old, cells):
                            if a != b:
                                self.update_cell(key, name, b)
                                changed += 1
                    self.shown[key] = cells
            self._order = order
        if changed:
            self._fit_columns()
        return changed

    def action_zoom(self) -> None:
        """Maximize the blotter (or restore it)."""
        toggle_zoom(self)

    @property
    def selected_ref(self) -> str | None:
        """orderRef of the order under the cursor (a leg row selects its combo); ``None``
        when empty."""
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        value = key.value or ""
        return value.split(_LEG, 1)[0]

    def action_cancel(self) -> None:
        if (ref := self.selected_ref) is not None:
            self.post_message(self.CancelRequested(ref))

    def action_edit(self) -> None:
        if (ref := self.selected_ref) is not None:
            self.post_message(self.EditRequested(ref))

    def action_modify(self, ticks: int) -> None:
        if (ref := self.selected_ref) is not None:
            self.post_message(self.ModifyRequested(ref, ticks))

    def action_cancel_all(self) -> None:
        self.post_message(self.CancelAllRequested())

    def action_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)
