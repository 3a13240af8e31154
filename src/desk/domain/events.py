"""Events of the engine's services that views and other services hear about.

Plain values, posted a handful a minute (never per tick): the broker's connection state
(:class:`StateChanged`), a change of the watchlist (:class:`WatchlistChanged`) and a loss
of market data the line owners must recover from (:class:`DataLost`). The terminal view
receives them over the engine API.
"""

from __future__ import annotations

from dataclasses import dataclass

from desk.domain.models import ConnectionState

__all__ = ["DataLost", "StateChanged", "WatchlistChanged"]


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The connection state changed; ``detail`` says why (e.g. the error text)."""

    state: ConnectionState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WatchlistChanged:
    """Rows were added to or removed from :attr:`Broker.watchlist`."""

    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DataLost:
    """The gateway lost market data (1101, a market data farm back after a blip) or the
    feed went silent: the broker re-requested its lines; other line owners (the option
    chain, P&L subscriptions) should do the same. ``reason``: one line."""

    reason: str
