"""Orders on ib_async: the broker's side of :class:`desk.orders.ports.OrderGateway`.

:class:`IBOrderGateway` places, modifies and cancels orders on the broker's ``IB``
connection, asks for what-if margins, the open / completed orders and the day's
executions, and forwards what the gateway reports to the order path
(:class:`desk.orders.ports.OrderEvents`) as domain values. It keeps no order state of its
own beyond the ib_async ``Trade`` objects it needs to address an order: the order book,
the fill ledger and the audit rows are :mod:`desk.orders`.

An order is addressed by its orderRef and checked against its permId, and only among the
trades this connection has seen since it connected, so a cancel or modify of an order the
gateway no longer has (a simulator restart, another session) can never reach another
order that happens to carry the same API order id.

The translation functions (:func:`contract_for`, :func:`ib_order`, :func:`broker_order`,
:func:`fill_from_ib`, :func:`order_error`) are pure. Only ib_async's ``*Async`` methods
are awaited; nothing here blocks the event loop. Prices are dollars per share (net per
combo unit); quantities shares / contracts; times UTC.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, ComboLeg, Contract, Order, TagValue, Trade
from ib_async import Fill as IbFill

from desk.domain import Instrument
from desk.domain.orders import BrokerOrder, Fill, OrderError, OrderLeg, OrderNotSent
from desk.domain.intent import MarginImpact, OrderIntent

__all__ = [
    "IBOrderGateway",
    "OrderNotSent",
    "broker_order",
    "contract_for",
    "fill_from_ib",
    "ib_order",
    "order_error",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# pure translation
# --------------------------------------------------------------------------------------


def contract_for(instrument: Instrument, legs: Sequence[Any] = ()) -> Contract:
    """The ib_async ``Contract`` of a qualified instrument (by conId, SMART routed); for a
    combo (secType ``BAG``) pass the intent's :class:`desk.risk.ComboLeg` list."""
    if instrument.sec_type == "BAG":
        return Contract(
            secType="BAG",
            symbol=instrument.symbol,
            currency=instrument.currency,
            exchange="SMART",
            comboLegs=[
                ComboLeg(conId=leg.instrument.con_id, ratio=leg.ratio, action=leg.action.value, exchange="SMART") for leg in legs
            ],
        )
    return Contract(
        conId=instrument.con_id,
        symbol=instrument.symbol,
        secType=instrument.sec_type,
        exchange="SMART",
        currency=instrument.currency,
        lastTradeDateOrContractMonth=instrument.expiry,
        strike=instrument.strike,
        right=instrument.right,
        multiplier=str(instrument.multiplier) if instrument.sec_type == "OPT" else "",
    )


def ib_order(intent: OrderIntent, order_ref: str, *, what_if: bool = False) -> Order:
    """The ib_async ``Order`` for ``intent`` with ``orderRef = order_ref`` (IB fields:
    action, totalQuantity, orderType, lmtPrice, auxPrice = stop price, tif, outsideRth,
    account; ``whatIf`` for a margin preview). A combo is SMART-routed as a guaranteed
    combo (``smartComboRoutingParams NonGuaranteed=0``: every leg fills or none)."""
    order = Order(
        action=intent.action.value,
        totalQuantity=float(intent.quantity),
        orderType=intent.order_type.value,
        tif=intent.tif.value,
        outsideRth=intent.outside_rth,
        orderRef=order_ref,
        account=intent.account,
        whatIf=what_if,
    )
    if intent.limit_price is not None:
        order.lmtPrice = intent.limit_price
    if intent.stop_price is not None:
        order.auxPrice = intent.stop_price
    if intent.is_combo:
        order.smartComboRoutingParams = [TagValue("NonGuaranteed", "0")]
    return order


def _ib_float(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and abs(x) < 1e300 else math.nan


def instrument_of(contract: Contract) -> Instrument:
    """The domain :class:`Instrument` of a contract the gateway reported."""
    mult = 1
    if contract.multiplier:
        try:
            mult = int(float(contract.multiplier))
        except ValueError:
            mult = 100 if contract.secType == "OPT" else 1
    elif contract.secType in ("OPT", "BAG"):
        mult = 100
    return Instrument(
        symbol=contract.symbol or "?",
        sec_type=contract.secType or "STK",
        currency=contract.currency or "USD",
        con_id=contract.conId,
        expiry=contract.lastTradeDateOrContractMonth or "",
        strike=float(contract.strike or 0),
        right=contract.right or "",
        multiplier=mult,
        local_symbol=contract.localSymbol or "",
    )


def broker_order(trade: Trade) -> BrokerOrder:
    """The domain :class:`BrokerOrder` of an ib_async ``Trade``: status, filled, remaining
    and the order's terms (a combo's legs by conId)."""
    o, s, c = trade.order, trade.orderStatus, trade.contract
    legs = (
        tuple(OrderLeg(Instrument(c.symbol or "?", con_id=leg.conId), leg.action, int(leg.ratio)) for leg in (c.comboLegs or ()))
        if c.secType == "BAG"
        else ()
    )
    kind = o.orderType or ""
    return BrokerOrder(
        o.orderRef,
        s.status,
        order_id=o.orderId,
        perm_id=o.permId or s.permId,
        filled=float(s.filled),
        remaining=float(s.remaining),
        client_id=o.clientId,
        instrument=instrument_of(c),
        action=o.action,
        quantity=float(o.totalQuantity),
        order_type=kind,
        limit_price=_ib_float(o.lmtPrice) if kind in ("LMT", "STP LMT") else math.nan,
        stop_price=_ib_float(o.auxPrice) if kind in ("STP", "STP LMT") else math.nan,
        tif=o.tif or "DAY",
        avg_fill_price=_ib_float(s.avgFillPrice) if s.filled else math.nan,
        legs=legs,
    )


def fill_from_ib(fill: IbFill) -> Fill:
    """The domain :class:`Fill` of an ib_async ``Fill`` (commission ``nan`` until IB's
    commission report arrived). A combo's own execution has secType BAG."""
    ex = fill.execution
    report = fill.commissionReport
    commission = _ib_float(report.commission) if report is not None and report.execId else math.nan
    t = ex.time if isinstance(ex.time, datetime) else fill.time
    return Fill(
        ex.execId,
        ex.orderRef,
        t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC),
        instrument_of(fill.contract),
        ex.side,
        float(ex.shares),
        float(ex.price),
        ex.orderId,
        ex.permId,
        commission,
        ex.acctNumber,
    )


def order_error(order_id: int, code: int, text: str) -> OrderError:
    """The domain :class:`OrderError` of a gateway error about an order."""
    return OrderError(order_id, int(code), str(text))


# --------------------------------------------------------------------------------------
# gateway
# --------------------------------------------------------------------------------------


class IBOrderGateway:
    """:class:`desk.orders.ports.OrderGateway` on the broker's ``IB`` (see the module doc)."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._events: Any = None
        #: trades of this connection by orderRef (rebuilt after every connect)
        self._trades: dict[str, Trade] = {}
        ib.disconnectedEvent += self._on_disconnected
        ib.openOrderEvent += self._on_trade
        ib.orderStatusEvent += self._on_trade
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error

    def set_listener(self, events: Any) -> None:
        self._events = events

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    # ------------------------------------------------------------------ requests

    async def place(self, intent: OrderIntent, order_ref: str) -> dict[str, Any]:
        """placeOrder; ``{"order_id", "client_id"}``. Raises :class:`OrderNotSent` when not
        connected (nothing written to the socket). Does not yield to the loop."""
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        trade = self.ib.placeOrder(contract_for(intent.instrument, intent.legs), ib_order(intent, order_ref))
        self._trades[order_ref] = trade
        return {"order_id": trade.order.orderId, "client_id": self.ib.client.clientId}

    def _require(self, order_ref: str, perm_id: int) -> Trade:
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        trade = self._trades.get(order_ref)
        if trade is None:
            raise OrderNotSent(f"{order_ref}: not at the gateway on this connection")
        have = trade.order.permId or trade.orderStatus.permId
        if perm_id and have and have != perm_id:
            raise OrderNotSent(f"{order_ref}: the gateway's order has permId {have}, not {perm_id}: nothing sent")
        if trade.order.clientId not in (0, self.ib.client.clientId):
            raise OrderNotSent(f"{order_ref}: placed by client {trade.order.clientId}; cancel it there or in TWS")
        return trade

    async def modify(self, order_ref: str, intent: OrderIntent, perm_id: int = 0) -> None:
        """Re-send the working order with the terms of ``intent`` (price, stop, quantity)."""
        trade = self._require(order_ref, perm_id)
        order = trade.order
        order.totalQuantity = float(intent.quantity)
        if intent.limit_price is not None:
            order.lmtPrice = intent.limit_price
        if intent.stop_price is not None:
            order.auxPrice = intent.stop_price
        self.ib.placeOrder(trade.contract, order)

    async def cancel(self, order_ref: str, perm_id: int = 0) -> None:
        self.ib.cancelOrder(self._require(order_ref, perm_id).order)

    async def global_cancel(self) -> None:
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway: global cancel not sent")
        self.ib.reqGlobalCancel()

    async def what_if(self, intent: OrderIntent, timeout: float = 5.0) -> MarginImpact | None:
        if not self.ib.isConnected():
            return None
        try:
            state = await asyncio.wait_for(
                self.ib.whatIfOrderAsync(contract_for(intent.instrument, intent.legs), ib_order(intent, "", what_if=True)),
                timeout,
            )
        except (TimeoutError, asyncio.TimeoutError, ConnectionError):
            return None
        if not state or isinstance(state, list):
            return None
        return MarginImpact.from_ib(vars(state))

    async def orders(self, timeout: float = 10.0) -> list[BrokerOrder]:
        """Open orders of every client (reqAllOpenOrders) and today's completed API
        orders (reqCompletedOrders), completed first so a working report wins."""
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        open_trades = await asyncio.wait_for(self.ib.reqAllOpenOrdersAsync(), timeout)
        done = await asyncio.wait_for(self.ib.reqCompletedOrdersAsync(apiOnly=True), timeout)
        out: dict[str, BrokerOrder] = {}
        for t in [*done, *open_trades]:
            ref = t.order.orderRef
            if not ref:
                continue
            mine = t.order.clientId == self.ib.client.clientId
            if mine or ref not in self._trades:
                self._trades[ref] = t
            out[ref] = broker_order(t)
        return list(out.values())

    async def executions(self, timeout: float = 10.0) -> list[Fill]:
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        fills = await asyncio.wait_for(self.ib.reqExecutionsAsync(), timeout)
        return [fill_from_ib(f) for f in fills]

    # ------------------------------------------------------------------ events

    def _on_disconnected(self) -> None:
        self._trades.clear()
        if self._events is not None:
            self._events.disconnected()

    def _on_trade(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if not ref:
            return
        if ref not in self._trades or trade.order.clientId == self.ib.client.clientId:
            self._trades[ref] = trade
        if self._events is not None:
            self._events.order_changed(broker_order(trade))

    def _on_exec(self, trade: Trade, fill: IbFill) -> None:
        self._on_trade(trade)
        if self._events is not None:
            self._events.execution(fill_from_ib(fill))

    def _on_commission(self, trade: Trade, fill: IbFill, report: Any) -> None:
        if self._events is not None and report is not None and report.execId:
            self._events.commission(report.execId, _ib_float(report.commission), _ib_float(report.realizedPNL))

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        if req_id <= 0 or 2100 <= code < 2200 or self._events is None:
            return
        for ref, trade in self._trades.items():
            if trade.order.orderId == req_id and trade.order.clientId in (0, self.ib.client.clientId):
                self._events.order_error(ref, order_error(req_id, code, text))
                return
