"""The interfaces between the order path and the gateway: what desk.orders needs of a
broker connection (:class:`OrderGateway`) and what the broker tells it
(:class:`OrderEvents`).

:class:`desk.broker.orders.IBOrderGateway` implements :class:`OrderGateway` on ib_async;
:class:`desk.orders.service.OrderService` implements :class:`OrderEvents`. Everything
crossing is a domain value (:mod:`desk.domain.orders`, :class:`desk.risk.OrderIntent`,
:class:`desk.risk.MarginImpact`): no ib_async object reaches the order path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from desk.domain.orders import BrokerOrder, Fill, OrderError
from desk.risk import MarginImpact, OrderIntent

__all__ = ["OrderEvents", "OrderGateway"]


class OrderEvents(Protocol):
    """What the gateway reports, as it happens (called on the event loop)."""

    def order_changed(self, order: BrokerOrder) -> None:
        """An openOrder / orderStatus / completed order of any client (with an orderRef)."""

    def execution(self, fill: Fill) -> None:
        """An execution (execDetails), commission ``nan`` until its report."""

    def commission(self, exec_id: str, commission: float, realized_pnl: float) -> None:
        """IB's commission report of execution ``exec_id``, dollars."""

    def order_error(self, order_ref: str, error: OrderError) -> None:
        """A gateway error about the order ``order_ref``."""

    def disconnected(self) -> None:
        """The connection to the gateway was lost."""


class OrderGateway(Protocol):
    """Orders at one gateway connection. Every method raises
    :class:`desk.domain.orders.OrderNotSent` when the request provably did not leave
    (not connected, unknown order), with one line saying why."""

    @property
    def connected(self) -> bool: ...

    def set_listener(self, events: OrderEvents) -> None:
        """Where the gateway's order events go."""

    async def place(self, intent: OrderIntent, order_ref: str) -> Mapping[str, Any]:
        """placeOrder with ``orderRef = order_ref``; returns details for the audit row
        (``order_id``, ``client_id``). Returns without yielding to the event loop once the
        order is written to the socket."""

    async def modify(self, order_ref: str, intent: OrderIntent, perm_id: int = 0) -> None:
        """Re-send working order ``order_ref`` (its permId ``perm_id`` when known) with the
        terms of ``intent`` (same orderId)."""

    async def cancel(self, order_ref: str, perm_id: int = 0) -> None:
        """Cancel working order ``order_ref`` (checked against ``perm_id`` when known)."""

    async def global_cancel(self) -> None:
        """reqGlobalCancel: every open order of the account, from any client."""

    async def what_if(self, intent: OrderIntent, timeout: float = 5.0) -> MarginImpact | None:
        """IB's margin preview, or ``None`` (not connected, refused, no answer in time)."""

    async def orders(self, timeout: float = 10.0) -> list[BrokerOrder]:
        """The gateway's open orders and today's completed orders (any client)."""

    async def executions(self, timeout: float = 10.0) -> list[Fill]:
        """Today's executions (reqExecutions), with commissions where reported."""
