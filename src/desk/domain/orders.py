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

from dataclasses import dataclass
from datetime import datetime

from desk.domain.models import Instrument

#: IB order statuses after which an order can no longer trade (``OrderStatus.DoneStates``
#: of ib_async: Filled, Cancelled, ApiCancelled, plus Inactive which IB uses for
#: rejected / expired orders).
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True, slots=True)
class Position:
    """A holding in one instrument.

    ``quantity``: signed, shares for stocks and contracts for options (negative = short).
    ``avg_cost``: average entry price in **dollars per share** (IB's ``avgCost`` for an
    option is per contract, i.e. multiplied by the multiplier: the broker divides it by the
    multiplier before building a Position). ``account`` is the IB account id.
    """

    instrument: Instrument
    quantity: float
    avg_cost: float = 0.0
    account: str = ""


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
class BrokerOrder:
    """An order as the gateway reports it (open orders, completed orders, order status).

    ``order_ref`` is IB's ``orderRef`` (desk's client order id), ``order_id`` the API order
    id of the placing client, ``perm_id`` IB's permanent id. ``status`` is IB's order status
    string (``PendingSubmit``, ``PreSubmitted``, ``Submitted``, ``Filled``, ``Cancelled``,
    ``ApiCancelled``, ``Inactive`` ...). ``filled`` / ``remaining`` are shares or contracts.
    """

    order_ref: str
    status: str
    order_id: int = 0
    perm_id: int = 0
    filled: float = 0.0
    remaining: float = 0.0
    client_id: int = 0

    @property
    def done(self) -> bool:
        """True when the status is terminal (see :data:`TERMINAL_ORDER_STATUSES`)."""
        return self.status in TERMINAL_ORDER_STATUSES
