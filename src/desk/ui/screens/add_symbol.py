"""A small modal that asks for a symbol to add to the watchlist."""

from __future__ import annotations

import re
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

#: What a symbol may look like (same rule as ``DESK_WATCHLIST``): a letter, then up to
#: 11 letters, digits, dots or dashes (``BRK.B``, ``BF-B``).
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,11}$")


class AddSymbolScreen(ModalScreen[str | None]):
    """Ask for a symbol. Dismisses with the upper-cased symbol, or ``None`` on Escape.

    Only the format is checked here; whether the gateway knows the symbol is the
    broker's answer, shown by the app.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="add_symbol.cancel", tooltip="Close without adding"),
    ]

    DEFAULT_CSS = """
    AddSymbolScreen { align: center middle; }
    AddSymbolScreen > #add-symbol-dialog {
        width: 44;
        height: auto;
        padding: 1 2;
        background: $panel;
        border: round $primary;
    }
    AddSymbolScreen #add-symbol-hint { color: $text-muted; margin-top: 1; }
    AddSymbolScreen #add-symbol-hint.-error { color: $error; }
    """

    def __init__(self, *, cursor_blink: bool = True) -> None:
        super().__init__()
        self._cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(id="add-symbol-dialog") as dialog:
            dialog.border_title = "Add symbol"
            symbol_input = Input(
                placeholder="Symbol, e.g. AAPL",
                restrict=r"[A-Za-z0-9.\-]*",
                max_length=12,
                id="add-symbol-input",
            )
            symbol_input.cursor_blink = self._cursor_blink
            yield symbol_input
            yield Label("Enter to add · Escape to cancel", id="add-symbol-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        symbol = event.value.strip().upper()
        if not symbol:
            self.dismiss(None)
            return
        if not SYMBOL_RE.match(symbol):
            hint = self.query_one("#add-symbol-hint", Label)
            hint.update(f"{symbol!r} is not a symbol (letters, digits, '.', '-'; starts with a letter)")
            hint.add_class("-error")
            return
        self.dismiss(symbol)

    def action_cancel(self) -> None:
        self.dismiss(None)
