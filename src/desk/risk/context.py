"""What the risk engine knows about the market and the account at one instant.

:class:`MarketContext` is a plain snapshot the caller (the order ticket) assembles from
the quote store, the broker's positions / P&L / account values and the order blotter,
then hands to :func:`desk.risk.evaluate`. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from desk.domain.models import Quote
from desk.domain.orders import Position
from desk.domain.intent import MarginImpact, OrderIntent, RiskInputError

__all__ = ["MarketContext", "RecentOrder"]


@dataclass(frozen=True, slots=True)
class RecentOrder:
    """An order this desk sent (or modified) at ``time`` (UTC): input of the duplicate and
    rate checks. ``order_ref``: its orderRef, so a modification is not a duplicate of the
    order's own earlier versions."""

    time: datetime
    intent: OrderIntent
    order_ref: str = ""


def _index_quotes(quotes: Mapping[int, Quote] | Iterable[Quote]) -> dict[int, Quote]:
    if isinstance(quotes, Mapping):
        out = dict(quotes)
    else:
        out = {}
        for q in quotes:
            if not isinstance(q, Quote):
                raise RiskInputError(f"quotes must be desk.domain.Quote objects, got {type(q).__name__}")
            out[q.instrument.con_id] = q
    return out


def _index_positions(positions: Mapping[int, Position] | Iterable[Position]) -> dict[int, Position]:
    if isinstance(positions, Mapping):
        return dict(positions)
    out: dict[int, Position] = {}
    for p in positions:
        if not isinstance(p, Position):
            raise RiskInputError(f"positions must be desk.domain.orders.Position objects, got {type(p).__name__}")
        out[p.instrument.con_id] = p
    return out


@dataclass(frozen=True)
class MarketContext:
    """Snapshot of market and account for one risk evaluation.

    ``now``: tz-aware UTC time of the evaluation (from the desk's Clock).
    ``quotes``: latest :class:`Quote` per conId (a mapping, or any iterable of quotes):
    the order's instrument, or every leg of a combo; ``quote.time`` is the UTC time of its
    last update. ``positions``: :class:`Position` per conId (mapping or iterable; missing
    means flat). ``daily_pnl``: today's realized + unrealized P&L of the account, dollars
    (negative is a loss; ``nan`` unknown). ``buying_power``: IB ``BuyingPower``, dollars
    (``nan`` unknown; shown, not checked). ``available_funds``: IB ``AvailableFunds``
    (equity with loan value - initial margin), dollars: what the buying-power check
    charges the order's cost against (``nan`` unknown: the check fails closed).
    ``open_orders``: intents of orders still working at the gateway,
    with their *remaining* quantity. ``recent_orders``: orders this desk sent, at least
    those of the last minute. ``margin``: IB's what-if answer for this order, if the
    broker has one. ``underlying_price``: last or mid of the underlying, dollars per share,
    only used to centre the payoff chart (``nan``: unknown).

    Raises :class:`RiskInputError` for a naive ``now``.
    """

    now: datetime
    quotes: Mapping[int, Quote] = field(default_factory=dict)
    positions: Mapping[int, Position] = field(default_factory=dict)
    daily_pnl: float = math.nan
    buying_power: float = math.nan
    available_funds: float = math.nan
    open_orders: tuple[OrderIntent, ...] = ()
    recent_orders: tuple[RecentOrder, ...] = ()
    margin: MarginImpact | None = None
    underlying_price: float = math.nan

    def __post_init__(self) -> None:
        if not isinstance(self.now, datetime) or self.now.utcoffset() is None:
            raise RiskInputError(f"MarketContext.now must be a timezone-aware datetime, got {self.now!r}")
        if self.now.tzinfo is not UTC:
            object.__setattr__(self, "now", self.now.astimezone(UTC))
        object.__setattr__(self, "quotes", _index_quotes(self.quotes))
        object.__setattr__(self, "positions", _index_positions(self.positions))
        object.__setattr__(self, "open_orders", tuple(self.open_orders))
        object.__setattr__(self, "recent_orders", tuple(self.recent_orders))
        for o in self.open_orders:
            if not isinstance(o, OrderIntent):
                raise RiskInputError(f"MarketContext.open_orders must be OrderIntent objects, got {type(o).__name__}")
        for r in self.recent_orders:
            if not isinstance(r, RecentOrder) or r.time.utcoffset() is None:
                raise RiskInputError(f"MarketContext.recent_orders must be RecentOrder with aware times, got {r!r}")
        for name in ("daily_pnl", "buying_power", "available_funds", "underlying_price"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RiskInputError(f"MarketContext.{name} must be a number (nan if unknown), got {value!r}")
            object.__setattr__(self, name, float(value))

    def position(self, con_id: int) -> float:
        """Signed position in shares / contracts of ``con_id`` (0 when flat or unknown)."""
        pos = self.positions.get(con_id)
        return float(pos.quantity) if pos is not None else 0.0
