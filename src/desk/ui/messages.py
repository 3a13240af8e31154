"""Messages shared between the desk's panes (small dataclasses, posted once per user action)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from desk.domain import Instrument


@dataclass
class InstrumentSelected(Message):
    """The user moved the watchlist cursor to ``instrument`` (or pressed Enter on it).

    Later panes (option chain, order ticket) follow it. A newer selection supersedes one
    still in the queue (:meth:`can_replace`), so holding a cursor key posts no backlog.
    """

    instrument: Instrument

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, InstrumentSelected)
