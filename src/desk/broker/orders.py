"""The broker's order path on ib_async: transmit, track, what-if, cancel, modify, reconcile.

:class:`OrderManager` is what :class:`desk.safety.OrderRouter` calls to send an order
(:meth:`OrderManager.transmit`: ``placeOrder`` with ``orderRef`` = desk's client order id)
and what the blotter reads (:attr:`OrderManager.rows`: one :class:`OrderRow` per order
of this client, keyed by orderRef, built from ib_async's ``Trade`` objects and the
gateway's error messages for that orderId).

After every (re)connect the broker calls :meth:`OrderManager.on_connected`, which asks
the gateway for every open order (``reqAllOpenOrders``), completed order and execution
(``reqExecutions``) and hands them, keyed by orderRef, to ``reconcile`` (the router's
:meth:`~desk.safety.OrderRouter.reconcile`) **before** anything can be sent again: an
order that reached the gateway is adopted, never resent.

The translation functions (:func:`contract_for`, :func:`ib_order`, :func:`broker_order`,
:func:`fill_from_ib`) are pure. Only ib_async's ``*Async`` methods are awaited; nothing
here blocks the event loop. Prices are dollars per share; quantities shares / contracts;
times UTC.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, ComboLeg, Contract, Order, Trade
from ib_async import Fill as IbFill

from desk.domain import Clock, Instrument
from desk.domain.orders import TERMINAL_ORDER_STATUSES, BrokerOrder, Fill
from desk.risk import MarginImpact, OrderIntent

__all__ = [
    "OrderManager",
    "OrderNotSent",
    "OrderRow",
    "broker_order",
    "contract_for",
    "fill_from_ib",
    "ib_order",
]

log = logging.getLogger(__name__)

#: gateway codes that are notices about an order, not rejections (TWS API error codes)
_ORDER_NOTICES = frozenset({399, 404, 2109, 2148})


class OrderNotSent(Exception):
    """The order provably did not leave (not connected, unknown order to cancel / modify).
    ``str()`` is one line for the trader."""


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order of the blotter.

    ``order_ref``: desk's client order id (IB ``orderRef``); ``order_id`` / ``perm_id``:
    IB's ids. ``describe``: one line (``BUY 10 SPY LMT 501.25 DAY``). ``status``: IB's
    order status. ``filled`` / ``remaining``: shares or contracts. ``avg_price``: average
    fill price, dollars per share (``nan`` before the first fill). ``limit_price`` /
    ``stop_price``: dollars per share (``nan`` when the type has none). ``updated``: UTC
    time of the last change. ``error``: the gateway's last error text for this order
    (``"201: Order rejected - ..."``), empty when none.
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

    @property
    def working(self) -> bool:
        """True while the order can still trade (status not terminal)."""
        return self.status not in TERMINAL_ORDER_STATUSES

    @property
    def describe(self) -> str:
        price = ""
        if self.order_type in ("LMT", "STP LMT") and math.isfinite(self.limit_price):
            price = f" {self.limit_price:g}"
        if self.order_type in ("STP", "STP LMT") and math.isfinite(self.stop_price):
            price = f" stop {self.stop_price:g}" + price
        return f"{self.action} {self.quantity:g} {self.instrument.key} {self.order_type}{price} {self.tif}"


# --------------------------------------------------------------------------------------
# pure translation
# --------------------------------------------------------------------------------------


def contract_for(instrument: Instrument, legs: Sequence[Any] = ()) -> Contract:
    """The ib_async ``Contract`` of a qualified instrument (by conId, SMART routed); for a
    combo (secType ``BAG``) pass the intent's :class:`desk.risk.ComboLeg` list."""
    if instrument.sec_type == "BAG":
        return Contract(
            secType="BAG", symbol=instrument.symbol, currency=instrument.currency, exchange="SMART",
            comboLegs=[ComboLeg(conId=leg.instrument.con_id, ratio=leg.ratio, action=leg.action.value, exchange="SMART")
                       for leg in legs],
        )
    return Contract(
        conId=instrument.con_id, symbol=instrument.symbol, secType=instrument.sec_type, exchange="SMART",
        currency=instrument.currency, lastTradeDateOrContractMonth=instrument.expiry, strike=instrument.strike,
        right=instrument.right, multiplier=str(instrument.multiplier) if instrument.sec_type == "OPT" else "",
    )


def ib_order(intent: OrderIntent, order_ref: str, *, what_if: bool = False) -> Order:
    """The ib_async ``Order`` for ``intent`` with ``orderRef = order_ref`` (IB fields:
    action, totalQuantity, orderType, lmtPrice, auxPrice = stop price, tif, outsideRth,
    account; ``whatIf`` for a margin preview)."""
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
    return order


def _ib_float(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and abs(x) < 1e300 else math.nan


def broker_order(trade: Trade) -> BrokerOrder:
    """The domain :class:`BrokerOrder` of an ib_async ``Trade`` (status, filled, remaining)."""
    o, s = trade.order, trade.orderStatus
    return BrokerOrder(
        o.orderRef, s.status, order_id=o.orderId, perm_id=o.permId or s.permId, filled=float(s.filled),
        remaining=float(s.remaining), client_id=o.clientId,
    )


def _instrument_of(contract: Contract, known: Instrument | None = None) -> Instrument:
    if known is not None and (known.con_id == contract.conId or known.sec_type == "BAG"):
        return known
    mult = int(float(contract.multiplier)) if contract.multiplier else (100 if contract.secType == "OPT" else 1)
    return Instrument(
        symbol=contract.symbol or "?", sec_type=contract.secType or "STK", currency=contract.currency or "USD",
        con_id=contract.conId, expiry=contract.lastTradeDateOrContractMonth or "", strike=float(contract.strike or 0),
        right=contract.right or "", multiplier=mult, local_symbol=contract.localSymbol or "",
    )


def fill_from_ib(fill: IbFill, instrument: Instrument | None = None) -> Fill:
    """The domain :class:`Fill` of an ib_async ``Fill`` (commission ``nan`` until IB's
    commission report arrived)."""
    ex = fill.execution
    report = fill.commissionReport
    commission = _ib_float(report.commission) if report is not None and report.execId else math.nan
    t = ex.time if isinstance(ex.time, datetime) else fill.time
    return Fill(
        ex.execId, ex.orderRef, t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC),
        _instrument_of(fill.contract, instrument), ex.side, float(ex.shares), float(ex.price), ex.orderId, ex.permId,
        commission, ex.acctNumber,
    )


# --------------------------------------------------------------------------------------
# manager
# --------------------------------------------------------------------------------------

Reconcile = Callable[[Mapping[str, BrokerOrder], Mapping[str, Sequence[Fill]]], Awaitable[Any]]
StatusRecorder = Callable[[BrokerOrder], Awaitable[None]]
FillRecorder = Callable[[Fill, float, float], Awaitable[None]]


class OrderManager:
    """Orders of one ib_async connection (see the module doc).

    ``ib``: the broker's ``IB``. ``clock``: time of row updates. ``reconcile``: called
    after each connect with (orders by orderRef, executions by orderRef) — the router's
    ``reconcile``. ``record_status`` / ``record_fill``: audit writers for status changes
    and executions of desk's orders (the router's ``record_status`` / ``record_fill``);
    each execution is recorded once (by execId). Listeners (:meth:`add_listener`) are
    called with the changed :class:`OrderRow` on the event loop; keep them cheap.
    """

    def __init__(
        self,
        ib: IB,
        *,
        clock: Clock | None = None,
        reconcile: Reconcile | None = None,
        record_status: StatusRecorder | None = None,
        record_fill: FillRecorder | None = None,
    ) -> None:
        self.ib = ib
        self.clock = clock or Clock()
        self.reconcile = reconcile
        self.record_status = record_status
        self.record_fill = record_fill
        #: blotter rows by orderRef (desk's orders and, read-only, others' with an orderRef)
        self.rows: dict[str, OrderRow] = {}
        self._trades: dict[str, Trade] = {}
        self._intents: dict[str, OrderIntent] = {}
        self._errors: dict[int, str] = {}  # orderId -> "code: text"
        self._recorded_execs: set[str] = set()
        self._last_status: dict[str, tuple[str, float]] = {}
        self._listeners: list[Callable[[OrderRow], None]] = []
        self._tasks: set[asyncio.Task] = set()
        #: the last reconciliation's result (the router's ReconcilePlan), for the UI
        self.last_plan: Any = None
        self.reconciles = 0
        #: False from a disconnect until the next reconciliation is done: no transmit
        #: before the gateway's orders are known (an order is never sent twice)
        self.ready = False
        ib.disconnectedEvent += self._on_disconnected
        ib.openOrderEvent += self._on_trade
        ib.orderStatusEvent += self._on_trade
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error

    # ------------------------------------------------------------------ queries

    def add_listener(self, fn: Callable[[OrderRow], None]) -> None:
        self._listeners.append(fn)

    def working(self) -> list[OrderRow]:
        """Rows still working, oldest first."""
        return [r for r in self.rows.values() if r.working]

    def intent_of(self, order_ref: str) -> OrderIntent | None:
        """The intent this session sent (or last modified) as ``order_ref``; ``None`` for
        orders of another session or client."""
        return self._intents.get(order_ref)

    def open_intents(self) -> tuple[OrderIntent, ...]:
        """Intents of desk's working orders with their *remaining* quantity (input of
        the risk engine's position check)."""
        out = []
        for ref, row in self.rows.items():
            intent = self._intents.get(ref)
            if intent is None or not row.working or row.remaining < 1:
                continue
            out.append(dataclasses.replace(intent, quantity=int(row.remaining)))
        return tuple(out)

    # ------------------------------------------------------------------ order path

    async def transmit(self, intent: OrderIntent, order_ref: str) -> dict[str, Any]:
        """``placeOrder`` of ``intent`` with ``orderRef = order_ref``. Returns
        ``{"order_id": ..., "client_id": ...}``. Raises :class:`OrderNotSent` when not
        connected (nothing was written to the socket)."""
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        if not self.ready:
            raise OrderNotSent("reconciling with the gateway after a connect; try again in a moment")
        contract = contract_for(intent.instrument, intent.legs)
        order = ib_order(intent, order_ref)
        self._intents[order_ref] = intent
        trade = self.ib.placeOrder(contract, order)
        self._trades[order_ref] = trade
        self._update(trade)
        return {"order_id": trade.order.orderId, "client_id": self.ib.client.clientId}

    async def what_if(self, intent: OrderIntent, timeout: float = 5.0) -> MarginImpact | None:
        """IB's margin preview of ``intent`` (``whatIfOrder``): :class:`MarginImpact`,
        or ``None`` when not connected, the gateway refused it or did not answer within
        ``timeout`` seconds."""
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

    def cancel(self, order_ref: str) -> None:
        """Cancel one working order. Raises :class:`OrderNotSent` for an unknown or finished
        order or when not connected."""
        trade = self._require(order_ref)
        self.ib.cancelOrder(trade.order)

    def modify(self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None) -> OrderIntent:
        """Re-send a working order of this session with a new limit (and / or stop) price,
        dollars per share (``placeOrder`` with the same orderId). Returns the modified
        intent. Raises :class:`OrderNotSent` (unknown, finished, not connected) or
        :class:`desk.risk.RiskInputError` (a price the order type does not take)."""
        trade = self._require(order_ref)
        intent = self._intents.get(order_ref)
        if intent is None:
            raise OrderNotSent(f"{order_ref}: not sent by this session, cancel it and enter a new order")
        changes: dict[str, Any] = {}
        if limit_price is not None:
            changes["limit_price"] = limit_price
        if stop_price is not None:
            changes["stop_price"] = stop_price
        new = dataclasses.replace(intent, **changes)
        order = trade.order
        if new.limit_price is not None:
            order.lmtPrice = new.limit_price
        if new.stop_price is not None:
            order.auxPrice = new.stop_price
        self._intents[order_ref] = new
        self.ib.placeOrder(trade.contract, order)
        return new

    def cancel_all(self) -> int:
        """Cancel every working order of this session; returns how many were asked."""
        n = 0
        for ref, row in list(self.rows.items()):
            if row.working and ref in self._trades:
                self.ib.cancelOrder(self._trades[ref].order)
                n += 1
        return n

    async def global_cancel(self) -> None:
        """``reqGlobalCancel``: every open order of the account, from any client. Raises
        :class:`OrderNotSent` when not connected."""
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway: global cancel not sent")
        self.ib.reqGlobalCancel()

    def _require(self, order_ref: str) -> Trade:
        if not self.ib.isConnected():
            raise OrderNotSent("not connected to the gateway")
        trade = self._trades.get(order_ref)
        if trade is None:
            raise OrderNotSent(f"{order_ref}: unknown order")
        if trade.orderStatus.status in TERMINAL_ORDER_STATUSES:
            raise OrderNotSent(f"{order_ref}: order is {trade.orderStatus.status}")
        return trade

    # ------------------------------------------------------------------ reconnect

    async def snapshot(self) -> tuple[dict[str, BrokerOrder], dict[str, list[Fill]]]:
        """The gateway's orders (open and completed, ``reqAllOpenOrders`` +
        ``reqCompletedOrders``) and executions (``reqExecutions``), by orderRef."""
        open_trades = await self.ib.reqAllOpenOrdersAsync()
        done = await self.ib.reqCompletedOrdersAsync(apiOnly=True)
        orders: dict[str, BrokerOrder] = {}
        for t in [*done, *open_trades]:
            if t.order.orderRef:
                orders[t.order.orderRef] = broker_order(t)
                self._adopt(t)
        fills: dict[str, list[Fill]] = {}
        for f in await self.ib.reqExecutionsAsync():
            if f.execution.orderRef:
                fills.setdefault(f.execution.orderRef, []).append(fill_from_ib(f))
        return orders, fills

    async def on_connected(self) -> Any:
        """After a (re)connect: snapshot the gateway and reconcile (see the module doc).
        Returns the reconcile result (``None`` without a reconcile callable)."""
        for trade in self.ib.trades():
            self._adopt(trade)
        orders, fills = await self.snapshot()
        for ref, seq in fills.items():
            self._recorded_execs.update(f.exec_id for f in seq)  # known at the gateway already
        plan = await self.reconcile(orders, fills) if self.reconcile is not None else None
        self.last_plan = plan
        self.reconciles += 1
        self.ready = self.ib.isConnected()
        return plan

    def _adopt(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if not ref:
            return
        mine = trade.order.clientId == self.ib.client.clientId
        if mine or ref not in self._trades:
            self._trades[ref] = trade
        self._update(trade, record=False)

    # ------------------------------------------------------------------ events

    def _on_trade(self, trade: Trade) -> None:
        if trade.order.orderRef:
            if trade.order.orderRef not in self._trades or trade.order.clientId == self.ib.client.clientId:
                self._trades[trade.order.orderRef] = trade
            self._update(trade)

    def _on_disconnected(self) -> None:
        self.ready = False

    def _on_exec(self, trade: Trade, fill: IbFill) -> None:
        self._on_trade(trade)

    def _on_commission(self, trade: Trade, fill: IbFill, report: Any) -> None:
        ref = fill.execution.orderRef
        if not ref or fill.execution.execId in self._recorded_execs or self.record_fill is None:
            return
        self._recorded_execs.add(fill.execution.execId)
        intent = self._intents.get(ref)
        domain = fill_from_ib(fill, intent.instrument if intent else None)
        self._spawn(self.record_fill(domain, float(trade.orderStatus.remaining), float(trade.orderStatus.filled)))

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        if req_id <= 0 or code in _ORDER_NOTICES or 2100 <= code < 2200:
            return
        for ref, trade in self._trades.items():
            if trade.order.orderId == req_id and trade.order.clientId in (0, self.ib.client.clientId):
                self._errors[req_id] = f"{code}: {text}"
                self._update(trade)
                return

    def _update(self, trade: Trade, *, record: bool = True) -> None:
        o, s = trade.order, trade.orderStatus
        ref = o.orderRef
        intent = self._intents.get(ref)
        status = s.status or "PendingSubmit"
        row = OrderRow(
            order_ref=ref,
            order_id=o.orderId,
            perm_id=o.permId or s.permId,
            instrument=intent.instrument if intent else _instrument_of(trade.contract),
            action=o.action,
            quantity=float(o.totalQuantity),
            order_type=o.orderType,
            limit_price=_ib_float(o.lmtPrice) if o.orderType in ("LMT", "STP LMT") else math.nan,
            stop_price=_ib_float(o.auxPrice) if o.orderType in ("STP", "STP LMT") else math.nan,
            tif=o.tif or "DAY",
            status=status,
            filled=float(s.filled),
            remaining=float(s.remaining) if s.remaining or s.filled or status in TERMINAL_ORDER_STATUSES else float(o.totalQuantity),
            avg_price=_ib_float(s.avgFillPrice) if s.filled else math.nan,
            updated=self.clock.now(),
            error=self._errors.get(o.orderId, ""),
        )
        old = self.rows.get(ref)
        if old is not None and dataclasses.replace(old, updated=row.updated) == row:
            return
        self.rows[ref] = row
        key = (status, row.filled)
        if record and self.record_status is not None and self._last_status.get(ref) != key and ref in self._intents:
            self._last_status[ref] = key
            self._spawn(self.record_status(broker_order(trade)))
        for fn in list(self._listeners):
            try:
                fn(row)
            except Exception:  # a listener must not break the broker
                log.exception("order listener failed")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:  # an audit row that could not be written is logged, never raised here
                log.exception("order audit write failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

