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


@dataclass
class ComboSelected(Message):
    """The user chose an arbitrage opportunity to trade (opportunities pane, Enter).

    ``intent`` is a ready combo order (``desk.risk.OrderIntent``, secType BAG, its legs,
    LMT at the opportunity's net price per share of the combo's multiplier, 1 combo);
    ``opportunity`` the :class:`desk.domain.opportunity.Opportunity` it came from, and
    ``simulated`` whether it was found on the simulator. The order ticket opens with it
    (risk preview and what-if there); nothing is sent by posting this.
    """

    intent: object
    opportunity: object
    simulated: bool = False
