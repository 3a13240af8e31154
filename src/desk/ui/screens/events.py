"""The event log: what the gateway, the feed and the order path said, newest last.

Every message the status bar shows (gateway notices and errors, data lost and lines
requested again, stale lines given up, orders filled or rejected, the audit log going down
and coming back) is kept here with its exchange time, so a message that was replaced in
the status bar a second later can still be read. ``Ctrl+L`` opens it; it scrolls with the
arrow keys, PgUp / PgDn, Home / End; Escape closes it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import RichLog

from desk.domain.calendar import NEW_YORK

__all__ = ["EventLog", "EventLogScreen", "LoggedEvent"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": ""}


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One message: ``time`` UTC, ``level`` info / warning / error, ``text`` one line."""

    time: datetime
    level: str
    text: str

    def line(self) -> Text:
        stamp = self.time.astimezone(NEW_YORK).strftime("%H:%M:%S")
        text = Text(f"{stamp}  ")
        text.append(f"{self.level:<7} ", style=_STYLE.get(self.level, ""))
        text.append(self.text, style=_STYLE.get(self.level, ""))
        return text


class EventLog:
    """The last ``size`` messages of the desk (a ring: the oldest go first)."""

    def __init__(self, size: int = 500) -> None:
        self.events: deque[LoggedEvent] = deque(maxlen=size)

    def add(self, when: datetime, level: str, text: str) -> None:
        if self.events and self.events[-1].text == text and self.events[-1].level == level:
            return  # a message repeated at once is shown once
        self.events.append(LoggedEvent(when, level, text))


class EventLogScreen(ModalScreen[None]):
    """A modal with the desk's event log (see the module doc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,ctrl+l,q", "close", "Close", id="events.close", tooltip="Close the event log"),
    ]

    DEFAULT_CSS = """
    EventLogScreen { align: center middle; }
    EventLogScreen > RichLog {
        width: 90%; height: 80%; background: $panel; border: round $primary; padding: 0 1;
        border-subtitle-color: $text-muted;
    }
    """

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.log_ = log

    def compose(self) -> ComposeResult:
        view = RichLog(wrap=True, markup=False, highlight=False, id="events-log")
        view.border_title = f"Event log ({len(self.log_.events)})"
        view.border_subtitle = "↑ ↓ PgUp PgDn Home End scroll · Esc close"
        yield view

    def on_mount(self) -> None:
        view = self.query_one(RichLog)
        if not self.log_.events:
            view.write(Text("nothing yet", style="dim"))
        for event in self.log_.events:
            view.write(event.line())
        view.focus()
        view.scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
