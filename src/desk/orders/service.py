"""The order path of one desk, composed: what the ticket, the blotter, the kill-switch keys
and ``desk order`` call.

:class:`OrderService` owns the :class:`~desk.orders.router.OrderRouter` (gate -> checks ->
write-ahead audit -> send), the :class:`~desk.orders.book.OrderBook` (blotter rows), the
:class:`~desk.orders.ledger.FillLedger` and the audit rows of everything the gateway
reports. It listens to the gateway through :class:`~desk.orders.ports.OrderEvents` and
talks to it through :class:`~desk.orders.ports.OrderGateway`: no ib_async here.

After every connect (:meth:`OrderService.on_connected`), before any order can be sent:
the gateway's open and completed orders and the day's executions are fetched (bounded
waits, retried once, then a warning), the audit log's open intents are reconciled with
them (:func:`desk.orders.reconcile.reconcile`), executions missing from the audit log are
written (once each, by execId), and working rows the gateway no longer reports are marked
``Unknown``. While the audit log is down orders are refused; when it is back the service
reconciles again if it has to and says so (:meth:`add_notice_listener`).

Trading states: :meth:`halt` (kill switch: every open order cancelled, new ones blocked),
:meth:`reduce_only` (working orders that would add to a position are cancelled; only
reducing orders pass), :meth:`reset`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from desk.domain.clock import Clock
from desk.domain.orders import BrokerOrder, Fill, OrderError, OrderNotSent, OrderRow, price_str
from desk.orders.book import OrderBook
from desk.orders.gate import KillSwitchState, OrderGate
from desk.orders.ledger import FillLedger
from desk.orders.ports import OrderGateway
from desk.orders.reconcile import ReconcilePlan, reconcile
from desk.orders.router import OrderRouter, SubmitResult
from desk.orders.trail import AuditStatus, AuditTrail
from desk.risk import MarginImpact, MarketContext, OrderIntent, RiskInputError, RiskLimits, RiskReport
from desk.risk.checks import only_reduces
from desk.store.audit_records import AuditError, IntentState, new_correlation_id

__all__ = ["MarketSource", "OrderService"]

log = logging.getLogger(__name__)

#: ``market(intent, margin, working)``: the MarketContext of an order now (quotes of its
#: legs and of the legs of the ``working`` orders, which the working-notional check values
#: at their quotes; positions, P&L, account funds, IB's what-if ``margin`` if any); the
#: service sets ``open_orders`` itself.
MarketSource = Callable[[OrderIntent, MarginImpact | None, Sequence[OrderIntent]], MarketContext]
#: ``notice(level, text)``: something the trader should see (``info``, ``warning``, ``error``)
Notice = Callable[[str, str], None]


class OrderService:
    """One desk's order path (see the module doc).

    ``gate``, ``trail``, ``limits``, ``gateway``; ``market``: see :data:`MarketSource`;
    ``account``: IB account id on audit rows; ``clock``; ``fetch_timeout``: seconds to
    wait for the gateway's orders / executions after a connect (retried once).
    """

    def __init__(
        self,
        gate: OrderGate,
        trail: AuditTrail,
        limits: RiskLimits,
        gateway: OrderGateway,
        *,
        market: MarketSource,
        account: str = "",
        clock: Clock | None = None,
        fetch_timeout: float = 10.0,
    ) -> None:
        self.clock = clock or Clock()
        self.gate = gate
        self.trail = trail
        self.gateway = gateway
        self.market = market
        self.ledger = FillLedger()
        self.book = OrderBook(self.ledger, clock=self.clock)
        self.router = OrderRouter(gate, trail, limits, gateway, account=account, clock=self.clock, on_sent=self._on_sent)
        self.fetch_timeout = fetch_timeout
        #: True once the gateway's orders are known and reconciled with the audit log since
        #: the last connect: no order goes out before (an order is never sent twice)
        self.ready = False
        self.reconciles = 0
        self.last_plan: ReconcilePlan | None = None
        self._reconciled_audit = False
        self._notices: list[Notice] = []
        self._last_status: dict[str, tuple[str, float]] = {}
        self._refs_seen: set[str] = set()
        self._audit_healthy: bool | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._reconcile_lock = asyncio.Lock()
        gateway.set_listener(self)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> AuditStatus:
        """Start the audit trail (waits for its first attempt) and the audit watcher."""
        status = await self.trail.start_async()
        self._audit_healthy = status.healthy
        if not status.healthy:
            self._notice("error", status.line)
        if self._watch_task is None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(), name="desk-orders-audit-watch")
        return status

    async def close(self) -> None:
        """Stop the watcher, write what is queued, close the trail."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None
        await asyncio.to_thread(self.trail.close)

    async def _watch(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            status = self.trail.status()
            if status.healthy == self._audit_healthy:
                continue
            self._audit_healthy = status.healthy
            if status.healthy:
                self._notice("info", "audit log back: orders enabled")
                if self.gateway.connected and not self._reconciled_audit:
                    await self.on_connected()
            else:
                self._notice("error", status.line)

    # ------------------------------------------------------------------ notices

    def add_notice_listener(self, fn: Notice) -> None:
        self._notices.append(fn)

    def _notice(self, level: str, text: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.WARNING if level == "warning" else logging.INFO, text)
        for fn in list(self._notices):
            try:
                fn(level, text)
            except Exception:  # a listener must not break the order path
                log.exception("order notice listener failed")

    # ------------------------------------------------------------------ queries

    @property
    def rows(self) -> dict[str, OrderRow]:
        """Blotter rows by orderRef."""
        return self.book.rows

    @property
    def seq(self) -> int:
        """Changes so far (rows, fills): cheap redraw decisions."""
        return self.book.seq + self.ledger.seq

    def audit_status(self) -> AuditStatus:
        return self.trail.status()

    def context(self, intent: OrderIntent, margin: MarginImpact | None = None, *, replacing: str | None = None) -> MarketContext:
        """The MarketContext of ``intent``: the market source's, with the working orders
        (leaving out ``replacing``, the order being modified)."""
        working = self.book.open_intents(exclude=replacing)
        return dataclasses.replace(self.market(intent, margin, working), open_orders=working)

    def preview(self, intent: OrderIntent, margin: MarginImpact | None = None, *, replacing: str | None = None) -> RiskReport:
        """The risk preview (every check, as :meth:`place` would run them)."""
        return self.router.preview(intent, self.context(intent, margin, replacing=replacing))

    async def what_if(self, intent: OrderIntent) -> MarginImpact | None:
        """IB's what-if margin of ``intent``, or ``None``."""
        return await self.gateway.what_if(intent)

    def gate_line(self) -> tuple[str, bool]:
        """(one line for the ticket's gate row, orders possible now)."""
        status = self.gate.status()
        audit = self.trail.status()
        if not audit.healthy:
            return f"{status.mode.upper()}: orders off - {audit.line}", False
        if not self.ready:
            return f"{status.mode.upper()}: orders wait - reconciling with the gateway", False
        return status.summary, status.can_send

    # ------------------------------------------------------------------ orders

    def _not_ready(self, intent: OrderIntent) -> SubmitResult | None:
        if self.ready:
            return None
        corr = new_correlation_id()
        audit = self.trail.status()
        if not self.gateway.connected:
            why = "not connected to the gateway"
        elif not audit.healthy:
            why = audit.line
        else:
            why = "reconciling with the gateway after a connect; try again in a moment"
        self.router.record("blocked", "", corr, {"stage": "connection", "reason": why, "intent": intent.to_payload()})
        return SubmitResult("blocked", corr, reasons=(why,))

    async def place(
        self,
        intent: OrderIntent,
        confirmation: str | None = None,
        margin: MarginImpact | None = None,
        *,
        correlation_id: str | None = None,
    ) -> SubmitResult:
        """Send ``intent`` through the router (gate, checks, write-ahead audit, placeOrder)."""
        refused = self._not_ready(intent)
        if refused is not None:
            return refused
        return await self.router.submit(intent, self.context(intent, margin), confirmation, correlation_id=correlation_id)

    def _on_sent(self, order_ref: str, intent: OrderIntent, info: Any) -> None:
        self._refs_seen.add(order_ref)
        self.book.sent(order_ref, intent, int(info.get("order_id", 0)) if isinstance(info, dict) else 0)

    def _working_row(self, order_ref: str) -> OrderRow:
        row = self.book.rows.get(order_ref)
        if row is None:
            raise OrderNotSent(f"{order_ref}: unknown order")
        if row.gone:
            raise OrderNotSent(f"{order_ref}: not at the gateway after the reconnect; check it in TWS")
        if not row.working:
            raise OrderNotSent(f"{order_ref}: order is {row.status}")
        return row

    async def modify(
        self,
        order_ref: str,
        *,
        limit_price: float | None = None,
        stop_price: float | None = None,
        quantity: int | None = None,
        confirmation: str | None = None,
    ) -> SubmitResult:
        """Change a working order of this desk: its limit and / or stop price (dollars per
        share, net per combo unit) and / or its total quantity, through the gate and the
        checks (the order itself left out of the working orders). Raises
        :class:`OrderNotSent` for an order that cannot be modified (unknown, finished,
        gone, not this desk's) and :class:`RiskInputError` for terms the order type does
        not take."""
        row = self._working_row(order_ref)
        intent = self.book.intent_of(order_ref)
        if intent is None:
            raise OrderNotSent(f"{order_ref}: not sent by this desk; cancel it and enter a new order")
        if not self.ready:
            raise OrderNotSent("reconciling with the gateway after a connect; try again in a moment")
        changes: dict[str, Any] = {}
        if limit_price is not None:
            changes["limit_price"] = limit_price
        if stop_price is not None:
            changes["stop_price"] = stop_price
        if quantity is not None:
            if quantity <= row.filled:
                raise RiskInputError(f"quantity {quantity} must be more than the {row.filled:g} already filled")
            changes["quantity"] = quantity
        new = dataclasses.replace(intent, **changes)
        # checked as the remaining part, the order itself left out of the working orders
        remaining = int(new.quantity - row.filled)
        probe = dataclasses.replace(new, quantity=max(1, remaining))
        ctx = self.context(probe, None, replacing=order_ref)
        result = await self.router.modify(order_ref, new, ctx, perm_id=row.perm_id, confirmation=confirmation, checked=probe)
        if result.sent:
            self.book.adopt_intent(order_ref, new)
        return result

    async def cancel(self, order_ref: str) -> None:
        """Cancel one working order (a ``cancel_request`` row, then the gateway's cancel,
        addressed by orderRef and checked against its permId). Raises
        :class:`OrderNotSent` when it cannot be (unknown, finished, gone, not connected)."""
        row = self._working_row(order_ref)
        self.router.record("cancel_request", order_ref, "", {"perm_id": row.perm_id})
        await self.gateway.cancel(order_ref, row.perm_id)

    async def cancel_all(self) -> int:
        """Cancel every working order of this desk that is at the gateway; returns how
        many were asked."""
        n = 0
        for row in list(self.book.working()):
            if not row.mine:
                continue
            try:
                await self.cancel(row.order_ref)
            except OrderNotSent as exc:
                log.warning("cancel all: %s", exc)
                continue
            n += 1
        return n

    # ------------------------------------------------------------------ trading states

    async def halt(self, reason: str = "kill switch") -> KillSwitchState:
        """Engage the kill switch: block new orders (at once, in memory and on disk),
        reqGlobalCancel, audit row. Never raises: failures are in the state's ``error``."""
        state = self.gate.kill_switch.halt(reason)
        errors = [state.error] if state.error else []
        cancelled = False
        try:
            await self.gateway.global_cancel()
            cancelled = True
        except Exception as exc:  # noqa: BLE001 - the switch stays engaged regardless
            errors.append(f"global cancel failed: {exc}")
        self.router.record(
            "kill_switch", "", new_correlation_id(), {"reason": reason, "global_cancel": cancelled, "errors": errors}
        )
        return dataclasses.replace(state, error="; ".join(errors))

    async def reduce_only(self, reason: str = "reduce-only") -> KillSwitchState:
        """Let only position-reducing orders through; cancel this desk's working orders
        that would open or add to a position. Never raises."""
        state = self.gate.kill_switch.reduce_only(reason)
        errors = [state.error] if state.error else []
        cancelled = []
        for row in list(self.book.working()):
            intent = self.book.intent_of(row.order_ref)
            if intent is None or not row.mine:
                continue
            probe = dataclasses.replace(intent, quantity=max(1, int(row.remaining)))
            if only_reduces(probe, self.context(probe, None, replacing=row.order_ref)):
                continue
            try:
                await self.cancel(row.order_ref)
                cancelled.append(row.order_ref)
            except OrderNotSent as exc:
                errors.append(str(exc))
        self.router.record(
            "trading_state",
            "",
            new_correlation_id(),
            {"state": "reduce_only", "reason": reason, "cancelled": cancelled, "errors": errors},
        )
        return dataclasses.replace(state, error="; ".join(errors))

    async def reset(self, who: str = "") -> KillSwitchState:
        """Back to active (orders allowed). Raises ``OSError`` when the state file cannot
        be removed (the state then stays)."""
        state = self.gate.kill_switch.reset()
        self.router.record("kill_switch_reset", "", new_correlation_id(), {"by": who})
        return state

    # ------------------------------------------------------------------ reconnect

    async def _fetch(self, what: str, fn: Callable[[float], Any]) -> Any:
        for attempt in (1, 2):
            try:
                return await fn(self.fetch_timeout)
            except (TimeoutError, asyncio.TimeoutError, ConnectionError, OrderNotSent) as exc:
                if attempt == 2:
                    self._notice(
                        "warning",
                        f"the gateway did not answer {what} ({exc or 'timeout'}): "
                        "the blotter may miss orders or fills until the next connect",
                    )
                    return None
        return None

    async def on_connected(self) -> ReconcilePlan | None:
        """After a (re)connect: fetch, reconcile, recover fills, mark gone (see the module
        doc). Returns the plan, ``None`` when the audit log could not be read (orders stay
        disabled until it can)."""
        async with self._reconcile_lock:
            self.ready = False
            orders = await self._fetch("the open and completed orders", self.gateway.orders)
            fills = await self._fetch("the day's executions", self.gateway.executions)
            orders = orders or []
            fills = fills or []
            for o in orders:
                self.order_changed(o, record=False)
            plan = None
            try:
                plan = await self._reconcile(orders, fills)
                self._reconciled_audit = True
            except AuditError as exc:
                self._reconciled_audit = False
                self._notice("error", f"orders disabled until the audit log is back: {exc}")
            for f in fills:
                self.execution(f)
            if orders or self.reconciles:
                at_gateway = {o.order_ref for o in orders}
                gone = [ref for ref, row in self.book.rows.items() if row.working and ref not in at_gateway]
                if gone:
                    self.book.mark_gone(gone)
                    self._notice(
                        "warning",
                        f"{len(gone)} order(s) not at the gateway after the reconnect: marked "
                        "Unknown (" + ", ".join(gone[:3]) + ")",
                    )
            self.reconciles += 1
            self.last_plan = plan
            self.ready = self.gateway.connected and self._reconciled_audit
            return plan

    async def _reconcile(self, orders: list[BrokerOrder], fills: list[Fill]) -> ReconcilePlan:
        mode, account = self.router.mode, self.router.account
        intents: list[IntentState] = await self.trail.read(lambda lg: lg.open_intents(mode=mode, account=account))
        intents = [i for i in intents if i.client_order_id not in self.router.in_flight]
        since = self.clock.now().astimezone(UTC) - timedelta(days=4)
        recorded = await self.trail.read(lambda lg: lg.recorded_exec_ids(since=since))
        self.ledger.mark_recorded(recorded)
        plan = reconcile(intents, orders, fills, now=self.clock.now())
        by_ref = {i.client_order_id: i for i in intents}
        for d in plan.decisions:
            it = by_ref[d.client_order_id]
            self._refs_seen.add(d.client_order_id)
            if d.action in ("adopt", "close"):
                try:
                    self.book.adopt_intent(d.client_order_id, OrderIntent.from_payload(it.intent))
                except RiskInputError as exc:
                    log.warning("order %s: intent not readable from the audit log: %s", d.client_order_id, exc)
            if d.state == it.state:
                continue  # adopt of an order already recorded as working: nothing new
            payload: dict[str, Any] = {"state": d.state, "action": d.action, "reason": d.reason, "filled": d.filled}
            if d.order is not None:
                payload["order"] = dataclasses.asdict(d.order)
            self.router.record("reconcile", d.client_order_id, it.correlation_id, payload)
        resend, human = plan.by_action("resend"), plan.by_action("human")
        if resend:
            self._notice(
                "warning",
                f"{len(resend)} order(s) written but never sent before the restart: not resent; enter them again if still wanted",
            )
        if human:
            self._notice(
                "error",
                f"{len(human)} order(s) may have reached the gateway but are not visible there: "
                "check them in TWS (" + ", ".join(d.client_order_id for d in human[:3]) + ")",
            )
        return plan

    # ------------------------------------------------------------------ OrderEvents

    def _ours(self, ref: str) -> bool:
        return bool(ref) and (ref in self._refs_seen or self.book.intent_of(ref) is not None)

    def order_changed(self, order: BrokerOrder, *, record: bool = True) -> None:
        prev = self.book.rows.get(order.order_ref)
        row = self.book.update(order)
        if row is None:
            return
        ref = order.order_ref
        if record and self._ours(ref):
            key = (order.status, order.filled)  # what the gateway said, not what the book derived
            if self._last_status.get(ref) != key:
                self._last_status[ref] = key
                self.router.record("status", ref, "", dataclasses.asdict(order))
        self._status_notice(prev, row)

    def _status_notice(self, prev: OrderRow | None, row: OrderRow) -> None:
        """Say what became of one of this desk's orders: filled or rejected."""
        if prev is not None and prev.status == row.status:
            return
        if row.status == "Rejected":
            self._rejected(row)
        elif row.status == "Filled" and self._ours(row.order_ref):
            avg = f" at {price_str(row.avg_price)}" if math.isfinite(row.avg_price) else ""
            self._notice("info", f"filled: {row.describe}{avg}")

    def execution(self, fill: Fill) -> None:
        new = self.ledger.add(fill)
        ref = fill.order_ref
        prev = self.book.rows.get(ref) if ref else None
        row = self.book.fills_changed(ref) if ref else None
        if row is not None:
            self._status_notice(prev, row)
        # a repeat is recorded too if its first arrival was not (a fill that came in
        # before the reconciliation after a connect said the order is this desk's)
        kept = new if new is not None else self.ledger.get(fill.exec_id)
        if kept is None or not self._ours(ref) or not self.ledger.take_unrecorded(fill.exec_id):
            return
        payload: dict[str, Any] = {"fill": kept}
        if row is not None:
            payload["filled"] = row.filled
            payload["remaining"] = max(0.0, row.quantity - row.filled)
        self.router.record("fill", ref, "", payload)

    def commission(self, exec_id: str, commission: float, realized_pnl: float) -> None:
        fill = self.ledger.commission(exec_id, commission, realized_pnl)
        if fill is not None and self._ours(fill.order_ref):
            self.router.record(
                "commission",
                fill.order_ref,
                "",
                {
                    "exec_id": exec_id,
                    "commission": commission,
                    "realized_pnl": realized_pnl if math.isfinite(realized_pnl) else None,
                },
            )

    def _rejected(self, row: OrderRow) -> None:
        if not self._ours(row.order_ref):
            return
        self.router.record("reject", row.order_ref, "", {"stage": "gateway", "reason": row.error})
        self._notice("error", f"order rejected: {row.describe}: {row.error}")

    def order_error(self, order_ref: str, error: OrderError) -> None:
        prev = self.book.rows.get(order_ref)
        row = self.book.error(order_ref, error)
        if row is None or not self._ours(order_ref):
            return
        if row.status == "Rejected" and (prev is None or prev.status != "Rejected"):
            self._status_notice(prev, row)
        elif error.rejection:  # e.g. a modification refused while the order keeps working
            self._notice("warning", f"order {order_ref}: {error.code}: {error.text}")

    def disconnected(self) -> None:
        self.ready = False

    def fills_since(self, when: datetime) -> list[Fill]:
        """Executions of the ledger at or after ``when`` (UTC)."""
        return [f for f in self.ledger.fills() if f.time >= when]
