"""The help screen: every key binding of the desk, grouped by pane."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: A section of the help: a title and (keys, description) rows.
HelpSection = tuple[str, Sequence[tuple[str, str]]]

_KEY_NAMES = {
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "home": "Home",
    "end": "End",
    "enter": "Enter",
    "escape": "Esc",
    "delete": "Del",
    "insert": "Ins",
    "plus": "+",
    "question_mark": "?",
    "tab": "Tab",
    "minus": "-",
    "equals_sign": "=",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
}


def key_label(keys: str) -> str:
    """Human form of a binding's key list: ``"up,k"`` -> ``"↑ / k"``, ``"ctrl+p"`` -> ``"ctrl+p"``."""
    out = []
    for key in keys.split(","):
        key = key.strip()
        if key.startswith("f") and key[1:].isdigit():
            out.append(key.upper())
        else:
            out.append(_KEY_NAMES.get(key, key))
    return " / ".join(out)


def binding_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) for each :class:`Binding` (tuples are converted the Textual way)."""
    rows = []
    for item in bindings:
        for binding in Binding.make_bindings([item]):
            text = binding.tooltip or binding.description or binding.action
            rows.append((key_label(binding.key), text))
    # make_bindings splits "a,b" into one Binding per key: merge rows with the same text
    merged: dict[str, list[str]] = {}
    for keys, text in rows:
        merged.setdefault(text, []).append(keys)
    return [(" / ".join(keys), text) for text, keys in merged.items()]


class HelpScreen(ModalScreen[None]):
    """A modal listing ``sections`` of key bindings. Escape (or ``?``, F1, ``q``) closes it;
    ``↑`` ``↓`` / ``j`` ``k``, PgUp / PgDn / Space, Home / End scroll it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "close", "Close", id="help.close", tooltip="Close the help"),
        Binding("j", "scroll('down')", "Down", show=False, id="help.down", tooltip="Scroll down"),
        Binding("k", "scroll('up')", "Up", show=False, id="help.up", tooltip="Scroll up"),
        Binding("space", "scroll('page_down')", "Page down", show=False, id="help.page", tooltip="Scroll a page down"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > #help-body {
        width: 72;
        max-height: 90%;
        height: auto;
        padding: 0 1;
        background: $panel;
        border: round $primary;
        border-subtitle-color: $text-muted;
    }
    HelpScreen .help-title { color: $accent; text-style: bold; margin-top: 1; }
    """

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            body.border_subtitle = "↑↓ PgUp PgDn scroll · Esc to close"
            for title, rows in self.sections:
                table = Table.grid(padding=(0, 2))
                table.add_column(width=18, no_wrap=True, style="bold")
                table.add_column()
                for keys, text in rows:
                    table.add_row(Text(keys), Text(text))
                yield Static(Text(title), classes="help-title")
                yield Static(table, classes="help-table")

    def on_mount(self) -> None:
        self.query_one("#help-body", VerticalScroll).focus()  # the arrows and pages scroll it

    def on_screen_resume(self) -> None:
        """Reopened (the app keeps this screen): from the top, the body focused."""
        body = self.query_one("#help-body", VerticalScroll)
        body.scroll_home(animate=False)
        body.focus()

    def action_scroll(self, where: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        {"down": body.scroll_down, "up": body.scroll_up, "page_down": body.scroll_page_down}[where](animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
