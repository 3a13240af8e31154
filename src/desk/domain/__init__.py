"""desk.domain: plain typed models, the quote store, the clock and the exchange calendar
(:mod:`desk.domain.calendar`, imported on its own: it loads exchange_calendars lazily); no
Textual, no IB."""

from desk.domain.clock import Clock, FrozenClock
from desk.domain.models import (
    ConnectionState,
    Instrument,
    Quote,
    RecorderStats,
    StatusEvent,
    TickKind,
    TickRecord,
)
from desk.domain.opportunity import Leg, LegAction, Opportunity, OpportunityKind, RiskFlag
from desk.domain.quotes import QuoteStore

__all__ = [
    "Clock",
    "ConnectionState",
    "FrozenClock",
    "Instrument",
    "Leg",
    "LegAction",
    "Opportunity",
    "OpportunityKind",
    "Quote",
    "QuoteStore",
    "RecorderStats",
    "RiskFlag",
    "StatusEvent",
    "TickKind",
    "TickRecord",
]
