"""Order-side domain models: positions, fills and the broker's view of an order.

These are the shapes the broker translates ib_async objects into (``Position`` from
``ib.positions()``, :class:`Fill` from ``Fill``/``Execution``, :class:`BrokerOrder` from
``Trade``) and that the risk engine, the audit log's reconciliation and the UI's blotter
and positions pane consume. Nothing here imports ib_async.

Units follow :mod:`desk.domain.models`: prices in dollars per share (per unit of the
underlying for options), quantities in shares (stocks) or contracts (options), signed
where a sign means long (+) / short (-), times tz-aware UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from desk.domain.models import Instrument

#: IB order statuses after which an order can no longer trade (``OrderStatus.DoneStates``
#: of ib_async: Filled, Cancelled, ApiCancelled, plus Inactive which IB uses for
#: rejected / expired orders).
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


def round_to_tick(price: float, tick: float, direction: str = "nearest") -> float:
    """``price`` (dollars per share, or per combo unit) on the ``tick`` grid: the nearest
    multiple (``direction="nearest"``, halves to even), or the next one ``"up"`` / ``"down"``
    (a price within 1e-6 of a tick of a grid point counts as on it). A non-finite price or
    a tick <= 0 is returned unchanged. Raises ``ValueError`` for another direction. Used by
    the order ticket and the simulated gateway's order types alike."""
    if not (math.isfinite(price) and tick > 0):
        return price
    n = price / tick
    if direction == "nearest":
        k = round(n)
    elif direction == "up":
        k = math.ceil(n - 1e-6)
    elif direction == "down":
        k = math.floor(n + 1e-6)
    else:
        raise ValueError(f"direction must be 'nearest', 'up' or 'down', got {direction!r}")
    return round(k * tick, 10)


class OrderNotSent(Exception):
    """The order (or the cancel / modify) provably did not leave the desk: not connected,
    not reconciled yet, or the order is not at the gateway. ``str()`` is one line for the
    trader."""


@dataclass(frozen=True, slots=True)
class Position:
    """A holding in one instrument.

    ``quantity``: signed, shares for stocks and contracts for options (negative = short).
    ``avg_cost``: average entry price in **dollars per share** (IB's ``avgCost`` for an
    option is per contract, i.e. multiplied by the multiplier: the broker divides it by the
    multiplier before building a Position). ``account`` is the IB account id.
    ``market_price``: the gateway's mark, dollars per share (``nan`` unknown; the risk
    engine's margin estimate of positions it has no quote for).
    """

    instrument: Instrument
    quantity: float
    avg_cost: float = 0.0
    account: str = ""
    market_price: float = float("nan")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order.

    ``side`` is ``BOT`` or ``SLD`` (IB's execution side); ``shares`` is the executed
    quantity of this execution (positive, shares or contracts); ``price`` dollars per
    share; ``order_ref`` the client order id desk put in ``orderRef``; ``exec_id`` IB's
    execution id (unique per execution, the key for idempotent recording); ``commission``
    dollars (``nan`` until IB's commission report arrives); ``time`` UTC.
    """

    exec_id: str
    order_ref: str
    time: datetime
    instrument: Instrument
    side: str
    shares: float
    price: float
    order_id: int = 0
    perm_id: int = 0
    commission: float = float("nan")
    account: str = ""


@dataclass(frozen=True, slots=True)
class OrderLeg:
    """One leg of a combo order as the gateway or the desk knows it: ``instrument`` (a
    conId-only Instrument when only the conId is known), ``action`` BUY / SELL per combo
    unit bought, ``ratio`` units per combo unit."""

    instrument: Instrument
    action: str
    ratio: int = 1


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the gateway reports it (open orders, completed orders, order status).

    ``order_ref`` is IB's ``orderRef`` (desk's client order id), ``order_id`` the API order
    id of the placing client, ``perm_id`` IB's permanent id. ``status`` is IB's order status
    string (``PendingSubmit``, ``PreSubmitted``, ``Submitted``, ``Filled``, ``Cancelled``,
    ``ApiCancelled``, ``Inactive`` ...). ``filled`` / ``remaining`` are shares or contracts
    (combo units for a combo). The order's terms when the gateway sent them (``openOrder``):
    ``instrument`` (secType BAG for a combo, with ``legs``), ``action``, ``quantity``,
    ``order_type``, ``limit_price`` / ``stop_price`` (dollars per share, net per combo
    unit; ``nan`` when the type has none), ``tif``; ``avg_fill_price`` dollars per share
    (``nan`` before a fill).
    """

    order_ref: str
    status: str
    order_id: int = 0
    perm_id: int = 0
    filled: float = 0.0
    remaining: float = 0.0
    client_id: int = 0
    instrument: Instrument | None = None
    action: str = ""
    quantity: float = 0.0
    order_type: str = ""
    limit_price: float = math.nan
    stop_price: float = math.nan
    tif: str = ""
    avg_fill_price: float = math.nan
    legs: tuple[OrderLeg, ...] = ()

    @property
    def done(self) -> bool:
        """True when the status is terminal (see :data:`TERMINAL_ORDER_STATUSES`)."""
        return self.status in TERMINAL_ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class OrderError:
    """A gateway error about one order: ``order_id`` (API order id of this client),
    ``code`` and ``text`` as IB sent them (e.g. 201 "Order rejected - reason: ...", 202
    "Order Canceled - reason:"). ``rejection``: the code rejects the order (not a notice
    and not the confirmation of a cancel the trader asked for)."""

    order_id: int
    code: int
    text: str

    @property
    def rejection(self) -> bool:
        return self.code not in ORDER_NOTICE_CODES


#: gateway codes about an order that are information, not rejections (TWS API error
#: codes): 202 order cancelled (the confirmation of a cancel), 399 order message
#: (warning), 404 shares locate pending, 2109 outside-RTH attribute ignored, 2148.
ORDER_NOTICE_CODES: frozenset[int] = frozenset({202, 399, 404, 2109, 2148})


def price_str(price: float) -> str:
    """A price in dollars per share as orders and fills are described: up to 4 decimals,
    no trailing zeros (``501.25``, ``499``, ``12345.67``, ``0.0525``); never rounded to
    significant digits."""
    return f"{price:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order of the blotter, as the desk's order book keeps it.

    ``order_ref``: desk's client order id (IB ``orderRef``); ``order_id`` / ``perm_id``:
    IB's ids. ``status``: IB's order status, or ``Rejected`` (the gateway refused it:
    ``error`` has IB's text), or ``Unknown`` (``gone``: the gateway no longer reports it
    after a reconnect; it cannot be cancelled or modified from here). ``filled`` /
    ``remaining``: shares or contracts (combo units), from the executions when the
    gateway's orderStatus lags. ``avg_price``: average fill price, dollars per share (net
    per combo unit; ``nan`` before the first fill). ``limit_price`` / ``stop_price``:
    dollars per share (``nan`` when the type has none). ``legs``: a combo's legs (empty
    for a single instrument). ``updated``: UTC time of the last change. ``error``: the
    gateway's text for a rejection, empty when none. ``mine``: sent by this desk (its
    intent is known: it can be modified).
    """

    order_ref: str
    order_id: int
    perm_id: int
    instrument: Instrument
    action: str
    quantity: float
    order_type: str
    limit_price: float
    stop_price: float
    tif: str
    status: str
    filled: float
    remaining: float
    avg_price: float
    updated: datetime
    error: str = ""
    legs: tuple[OrderLeg, ...] = ()
    gone: bool = False
    mine: bool = False

    @property
    def working(self) -> bool:
        """True while the order can still trade (status not terminal, still at the gateway)."""
        return self.status not in TERMINAL_ORDER_STATUSES and self.status not in ("Rejected", "Unknown")

    @property
    def is_combo(self) -> bool:
        return self.instrument.sec_type == "BAG"

    @property
    def price_text(self) -> str:
        """The order's price as the blotter shows it: ``501.25``, ``stop 499``,
        ``stop 499 501.25``, empty for MKT."""
        price = ""
        if self.order_type in ("LMT", "STP LMT") and math.isfinite(self.limit_price):
            price = price_str(self.limit_price)
        if self.order_type in ("STP", "STP LMT") and math.isfinite(self.stop_price):
            price = f"stop {price_str(self.stop_price)}" + (f" {price}" if price else "")
        return price

    @property
    def describe(self) -> str:
        """One line: ``BUY 10 SPY LMT 501.25 DAY``; a combo ``BUY 1 SPY combo(3) LMT 599.5 DAY``."""
        name = f"{self.instrument.symbol} combo({len(self.legs)})" if self.is_combo else self.instrument.key
        price = f" {self.price_text}" if self.price_text else ""
        return f"{self.action} {self.quantity:g} {name} {self.order_type}{price} {self.tif}"


# --- trading state (the kill switch) ---------------------------------------------------


class TradingState(str, Enum):
    """What new orders may do: ``active`` anything the checks allow, ``reduce_only``
    only reduce positions, ``halted`` nothing (kill switch)."""

    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """``state``: the :class:`TradingState`. ``since``: UTC time it was set (``None`` when
    active or unknown). ``reason``: why, as given. ``persisted``: the state file was
    written (False: set in memory only, the file could not be written — ``error`` says
    why)."""

    state: TradingState = TradingState.ACTIVE
    since: datetime | None = None
    reason: str = ""
    persisted: bool = True
    error: str = ""

    @property
    def engaged(self) -> bool:
        """True when the kill switch is engaged (``halted``)."""
        return self.state is TradingState.HALTED

    @property
    def restricted(self) -> bool:
        """True when new orders are restricted (``reduce_only`` or ``halted``)."""
        return self.state is not TradingState.ACTIVE
