"""desk.broker: the IB worker on ib_async (connection, registry, tick translation)."""

from desk.broker.ib_worker import (
    Broker,
    BrokerError,
    BrokerEvent,
    DataLost,
    StateChanged,
    TickSink,
    WatchlistChanged,
    instrument_from_contract,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerEvent",
    "DataLost",
    "StateChanged",
    "TickSink",
    "WatchlistChanged",
    "instrument_from_contract",
]
