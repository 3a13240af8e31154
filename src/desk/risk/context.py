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
from desk.risk.errors import RiskInputError
from desk.risk.intent import OrderIntent

__all__ = ["MarginImpact", "MarketContext", "RecentOrder"]

#: IB's "unset" double (``Double.MAX_VALUE``), which what-if fields carry when unknown.
_IB_UNSET = 1.7976931348623157e308


@dataclass(frozen=True, slots=True)
class RecentOrder:
    """An order this desk sent at ``time`` (UTC): input of the duplicate and rate checks."""

    time: datetime
    intent: OrderIntent


def _ib_number(value: object) -> float:
    if value is None or value == "":
        return math.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    if not math.isfinite(number) or abs(number) >= _IB_UNSET:
        return math.nan
    return number


@dataclass(frozen=True, slots=True)
class MarginImpact:
    """IB's what-if answer for an order (``whatIfOrder``: ``OrderState`` fields), dollars.

    Initial margin, maintenance margin and equity with loan value before the order, the
    change it makes, and after. ``commission`` / ``min_commission`` / ``max_commission``
    are IB's own estimate. Unknown values are ``nan``.
    """

    init_margin_before: float = math.nan
    init_margin_change: float = math.nan
    init_margin_after: float = math.nan
    maint_margin_before: float = math.nan
    maint_margin_change: float = math.nan
    maint_margin_after: float = math.nan
    equity_with_loan_before: float = math.nan
    equity_with_loan_change: float = math.nan
    equity_with_loan_after: float = math.nan
    commission: float = math.nan
    min_commission: float = math.nan
    max_commission: float = math.nan

    _IB_NAMES = {
        "initMarginBefore": "init_margin_before",
        "initMarginChange": "init_margin_change",
        "initMarginAfter": "init_margin_after",
        "maintMarginBefore": "maint_margin_before",
        "maintMarginChange": "maint_margin_change",
        "maintMarginAfter": "maint_margin_after",
        "equityWithLoanBefore": "equity_with_loan_before",
        "equityWithLoanChange": "equity_with_loan_change",
        "equityWithLoanAfter": "equity_with_loan_after",
        "commission": "commission",
        "minCommission": "min_commission",
        "maxCommission": "max_commission",
    }

    @classmethod
    def from_ib(cls, fields: Mapping[str, object]) -> MarginImpact:
        """Build from IB's ``OrderState`` field names (``initMarginBefore`` ... as strings or
        numbers, e.g. ``vars(order_state)`` of ib_async). Empty strings, IB's unset value
        (1.797e308) and unparsable values become ``nan``; unknown keys are ignored."""
        values = {ours: _ib_number(fields.get(theirs)) for theirs, ours in cls._IB_NAMES.items()}
        return cls(**values)


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
    (``nan`` unknown). ``open_orders``: intents of orders still working at the gateway,
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
        for name in ("daily_pnl", "buying_power", "underlying_price"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RiskInputError(f"MarketContext.{name} must be a number (nan if unknown), got {value!r}")
            object.__setattr__(self, name, float(value))

    def position(self, con_id: int) -> float:
        """Signed position in shares / contracts of ``con_id`` (0 when flat or unknown)."""
        pos = self.positions.get(con_id)
        return float(pos.quantity) if pos is not None else 0.0
