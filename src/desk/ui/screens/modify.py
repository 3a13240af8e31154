"""Modify a working order by typing its new price or quantity.

A small modal on the blotter's order: the limit (and stop, for the stop types) price in
dollars per share (net per combo unit) and the total quantity, edited with the order
ticket's keys (:class:`~desk.ui.widgets.ticket.TicketModel`: the value under the cursor
is selected, so the first digit replaces it; Up / Down step by the tick). Enter asks the
app to send the modification (through the gate and every check); Escape closes.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from desk.domain.orders import OrderRow
from desk.ui.widgets.ticket import TicketForm, TicketModel, _fmt_price

__all__ = ["ModifyModel", "ModifyScreen"]


class ModifyModel(TicketModel):
    """A :class:`TicketModel` of an existing order: only the quantity and the prices its
    type takes can change."""

    def __init__(self, row: OrderRow) -> None:
        # a combo's legs only matter here for allowing a net credit (a negative price)
        super().__init__(row.instrument, row.action if row.action in ("BUY", "SELL") else "BUY", int(row.quantity), legs=row.legs)
        if row.is_combo:
            self.tick = 0.01
        self.order_type = row.order_type if row.order_type in ("LMT", "MKT", "STP", "STP LMT") else "LMT"
        for name, price in (("limit", row.limit_price), ("stop", row.stop_price)):
            if math.isfinite(price):
                self.text[name] = _fmt_price(price, self.tick)
        self.field = "limit" if "limit" in self.fields else ("stop" if "stop" in self.fields else "quantity")
        self.selected = self.field
        self.row = row

    @property
    def fields(self) -> list[str]:
        out = []
        if self.order_type in ("LMT", "STP LMT"):
            out.append("limit")
        if self.order_type in ("STP", "STP LMT"):
            out.append("stop")
        out.append("quantity")
        return out

    def key(self, key: str, character: str | None = None) -> str | None:
        # the choices of a new order (type, TIF, side...) are not part of a modification
        if character in ("B", "A", "M", "t", "o", "r") or key == "space":
            return None
        return super().key(key, character)

    def errors(self) -> dict[str, str]:
        out = super().errors()
        q = self.text["quantity"]
        if "quantity" not in out and q.isdigit() and int(q) <= self.row.filled:
            out["quantity"] = f"quantity must be more than the {self.row.filled:g} already filled"
        return out

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the order: ``limit_price`` / ``stop_price`` (dollars
        per share), ``quantity``. Raises :class:`desk.risk.RiskInputError` for a bad field."""
        intent_errors = self.errors()
        if intent_errors:
            from desk.risk import RiskInputError

            raise RiskInputError(next(iter(intent_errors.values())))
        out: dict[str, Any] = {}
        for name, key, old in (("limit", "limit_price", self.row.limit_price), ("stop", "stop_price", self.row.stop_price)):
            if name in self.fields:
                value = float(self.text[name])
                if not (math.isfinite(old) and abs(value - old) < 1e-9):
                    out[key] = value
        qty = int(self.text["quantity"])
        if qty != int(self.row.quantity):
            out["quantity"] = qty
        return out


class ModifyScreen(ModalScreen[Any]):
    """The modify dialog of ``row``; dismisses with the changes (see
    :meth:`ModifyModel.changes`) or ``None``."""

    DEFAULT_CSS = """
    ModifyScreen { align: center middle; }
    ModifyScreen > #modify-box { width: 72; height: auto; border: thick $primary; background: $surface; padding: 0 1; }
    ModifyScreen #modify-result { color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, row: OrderRow) -> None:
        super().__init__()
        self.row = row
        self.model = ModifyModel(row)

    def compose(self) -> ComposeResult:
        with Vertical(id="modify-box") as box:
            box.border_title = f"Modify {self.row.order_ref}"
            yield Static(f"{self.row.describe}   {self.row.status}, filled {self.row.filled:g}", markup=False)
            yield TicketForm(self.model, id="modify-form")
            yield Static(
                "Enter: send the change (every check again)   Escape: keep the order as it is", id="modify-help", markup=False
            )
            yield Static("", id="modify-result", markup=False)

    def on_mount(self) -> None:
        self.query_one(TicketForm).focus()

    def on_ticket_form_changed(self, message: TicketForm.Changed) -> None:
        message.stop()
        if message.command == "close":
            self.dismiss(None)
            return
        if message.command != "submit":
            return
        from desk.risk import RiskInputError

        try:
            changes = self.model.changes()
        except RiskInputError as exc:
            self.query_one("#modify-result", Static).update(str(exc))
            return
        if not changes:
            self.query_one("#modify-result", Static).update("nothing changed")
            return
        self.dismiss(changes)
