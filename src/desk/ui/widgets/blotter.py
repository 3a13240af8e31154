"""The orders blotter: working and recent orders, patched cell by cell.

A :class:`~textual.widgets.DataTable` (a slow table: a few updates a second at most),
keyed by orderRef; :meth:`Blotter.apply` diffs the broker's rows against what is shown
and updates only the cells that changed, inside ``App.batch_update()`` (design.md).
Columns: time of the last update (exchange time), order, status, filled / remaining,
average fill price (dollars per share), and the gateway's error text for that order.

Keys post messages the app acts on: ``x`` cancel the order under the cursor, ``+`` /
``-`` move its limit price one tick up / down (modify), ``X`` cancel every working order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from desk.broker.orders import OrderRow
from desk.ui.widgets.status_bar import EXCHANGE_TZ

__all__ = ["Blotter", "blotter_cells"]

COLUMNS = ("Time", "Order", "Status", "Filled", "Left", "Avg", "Message")


def blotter_cells(row: OrderRow) -> tuple[str, ...]:
    """The row's cells as shown (see :data:`COLUMNS`)."""
    avg = f"{row.avg_price:,.4g}" if math.isfinite(row.avg_price) else "—"
    return (
        row.updated.astimezone(EXCHANGE_TZ).strftime("%H:%M:%S"),
        row.describe,
        row.status,
        f"{row.filled:g}",
        f"{row.remaining:g}",
        avg,
        row.error,
    )


class Blotter(DataTable):
    """Orders of this session and those adopted after a reconnect (see the module doc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "cancel", "Cancel", id="blotter.cancel", tooltip="Cancel the order under the cursor"),
        Binding("plus,equals_sign", "modify(1)", "Price +tick", show=False, id="blotter.up",
                tooltip="Modify: limit price one tick up"),
        Binding("minus", "modify(-1)", "Price -tick", show=False, id="blotter.down",
                tooltip="Modify: limit price one tick down"),
        Binding("X", "cancel_all", "Cancel all", id="blotter.cancel_all", tooltip="Cancel every working order"),
    ]

    @dataclass
    class CancelRequested(Message):
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

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def apply(self, rows: Iterable[OrderRow]) -> int:
        """Show ``rows`` (newest first); returns the number of cells changed."""
        wanted = {r.order_ref: blotter_cells(r) for r in sorted(rows, key=lambda r: r.order_id, reverse=True)}
        changed = 0
        with self.app.batch_update():
            for ref in [k for k in self.shown if k not in wanted]:
                self.remove_row(ref)
                del self.shown[ref]
                changed += 1
            for ref, cells in wanted.items():
                old = self.shown.get(ref)
                if old is None:
                    self.add_row(*cells, key=ref)
                    changed += len(cells)
                else:
                    for name, a, b in zip(COLUMNS, old, cells):
                        if a != b:
                            self.update_cell(ref, name, b)
                            changed += 1
                self.shown[ref] = cells
        return changed

    @property
    def selected_ref(self) -> str | None:
        """orderRef of the row under the cursor (``None`` when empty)."""
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        return key.value

    def action_cancel(self) -> None:
        if (ref := self.selected_ref) is not None:
            self.post_message(self.CancelRequested(ref))

    def action_modify(self, ticks: int) -> None:
        if (ref := self.selected_ref) is not None:
            self.post_message(self.ModifyRequested(ref, ticks))

    def action_cancel_all(self) -> None:
        self.post_message(self.CancelAllRequested())
