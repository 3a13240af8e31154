"""desk.domain: plain typed models, the quote store and the clock (no Textual, no IB)."""

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
from desk.domain.quotes import QuoteStore

__all__ = [
    "Clock",
    "ConnectionState",
    "FrozenClock",
    "Instrument",
    "Quote",
    "QuoteStore",
    "RecorderStats",
    "StatusEvent",
    "TickKind",
    "TickRecord",
]
