"""The one path an order takes to the gateway: gate -> checks -> write-ahead audit -> send.

Under one lock per router (submissions are serialised, so two quick keystrokes cannot
both pass the duplicate check), :meth:`OrderRouter.submit`:

1. asks the :class:`~desk.orders.gate.OrderGate` (trading state, mode, orders enabled,
   override file, confirmation) — refused: a ``blocked`` audit row, nothing sent;
2. refuses while the audit trail is down (rows of an outage are still queued: the order
   could not have its write-ahead row) — ``blocked``;
3. runs :func:`desk.risk.evaluate` with the router's own record of recent orders added to
   the context (so duplicate and rate checks cannot be bypassed by a caller that forgot
   them) — any failed check: ``blocked`` row, nothing sent;
4. writes the ``intent`` row with a new client order id (``orderRef``) and waits until it
   is committed (write-ahead) — if it cannot be written the order is refused;
5. asks the gate again (the kill switch may have been engaged, the override file
   removed, while the row was written);
6. calls the gateway's ``place`` (placeOrder with ``orderRef``); it raises
   :class:`~desk.domain.orders.OrderNotSent` when the order provably did not leave: a
   ``reject`` row; any other exception may have left: ``send_error`` (state ``unknown``,
   never resent automatically); then queues the ``sent`` row before anything else can
   run on the loop, so the gateway's status rows always follow it.

:meth:`OrderRouter.modify` takes the same path for a new version of a working order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from desk.domain.clock import Clock
from desk.domain.intent import Action, OrderType
from desk.domain.models import Instrument
from desk.domain.orders import OrderNotSent
from desk.orders.gate import GateDecision, OrderGate
from desk.orders.ports import OrderGateway
from desk.orders.trail import AuditTrail
from desk.risk import MarketContext, OrderIntent, RecentOrder, RiskLimits, RiskReport, evaluate
from desk.risk.checks import only_reduces
from desk.store.audit_records import AuditError, AuditEvent, new_client_order_id, new_correlation_id

__all__ = ["OrderRouter", "SubmitResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :meth:`OrderRouter.submit` (or ``modify``).

    ``status``: ``sent`` (transmitted and recorded), ``blocked`` (a gate or a risk check
    refused it; nothing sent), ``rejected`` (refused after the intent row: audit log down,
    gate closed meanwhile, or the gateway provably did not take it; nothing sent),
    ``unknown`` (the send failed in a way that may have reached the gateway). ``reasons``:
    one line each. ``client_order_id`` is empty when no intent row was written.
    """

    status: str
    correlation_id: str
    client_order_id: str = ""
    reasons: tuple[str, ...] = ()
    gate: GateDecision | None = None
    report: RiskReport | None = None
    transmit_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sent(self) -> bool:
        return self.status == "sent"


#: called with (orderRef, intent, transmit info) right after the gateway took the order
OnSent = Callable[[str, OrderIntent, Mapping[str, Any]], None]

#: stands in for an order's own earlier versions in the duplicate check of its modification
_NOTHING = OrderIntent(Instrument("-", con_id=1), Action.BUY, 1, OrderType.MKT)


class OrderRouter:
    """The single path from an order ticket to the gateway (see the module doc).

    ``gate``, ``trail`` (the audit writer), ``limits``, ``gateway``; ``account``: written on
    audit rows; ``clock``: time of recent orders and audit rows; ``on_sent``: the order
    book's hook, called before the loop can deliver the gateway's first report.
    """

    def __init__(
        self,
        gate: OrderGate,
        trail: AuditTrail,
        limits: RiskLimits,
        gateway: OrderGateway,
        *,
        account: str = "",
        clock: Clock | None = None,
        on_sent: OnSent | None = None,
    ) -> None:
        self.gate = gate
        self.trail = trail
        self.limits = limits
        self.gateway = gateway
        self.account = account
        self.clock = clock or Clock()
        self.on_sent = on_sent
        self.recent_window = max(60.0, limits.duplicate_window_s)
        #: orders refused since start, by what refused them: ``gate``, ``audit`` or the
        #: name of each failed pre-trade check (desk.risk CHECK_NAMES); read by metrics
        self.refusals: Counter[str] = Counter()
        self._recent: deque[RecentOrder] = deque()
        self._lock = asyncio.Lock()
        #: client order ids between their intent row and their sent/reject row: never
        #: touched by reconciliation
        self.in_flight: set[str] = set()

    @property
    def mode(self) -> str:
        return self.gate.mode

    # --- audit -------------------------------------------------------------------------

    def event(self, name: str, coid: str, corr: str, payload: Mapping[str, Any]) -> AuditEvent:
        """An audit event of this router's mode and account, timed now."""
        return AuditEvent(name, coid, corr, payload, mode=self.mode, account=self.account, time=self.clock.now())

    def record(self, name: str, coid: str, corr: str, payload: Mapping[str, Any]) -> None:
        """Queue an audit row (see :meth:`AuditTrail.record`)."""
        self.trail.record(self.event(name, coid, corr, payload))

    # --- recent orders -----------------------------------------------------------------

    def recent_orders(self) -> tuple[RecentOrder, ...]:
        """Orders this router sent within the recent window (oldest first)."""
        cutoff = self.clock.now() - timedelta(seconds=self.recent_window)
        while self._recent and self._recent[0].time < cutoff:
            self._recent.popleft()
        return tuple(self._recent)

    def _with_recent(self, ctx: MarketContext, *, modifying: str = "") -> MarketContext:
        own = self.recent_orders()
        if modifying:  # an order's own earlier versions are not duplicates of it (the rate counts them)
            own = tuple(r if r.order_ref != modifying else dataclasses.replace(r, intent=_NOTHING) for r in own)
        if not own:
            return ctx
        return dataclasses.replace(ctx, recent_orders=(*ctx.recent_orders, *own))

    # --- preview and submit ------------------------------------------------------------

    def preview(self, intent: OrderIntent, ctx: MarketContext) -> RiskReport:
        """The risk preview as :meth:`submit` would compute it (pure, no audit row)."""
        return evaluate(intent, self._with_recent(ctx), self.limits)

    def gate_check(self, intent: OrderIntent, ctx: MarketContext, confirmation: str | None) -> GateDecision:
        """The gate's decision for ``intent`` now (reduce-only judged on ``ctx``)."""
        return self.gate.check(intent, confirmation, reduces=only_reduces(intent, ctx))

    async def submit(
        self, intent: OrderIntent, ctx: MarketContext, confirmation: str | None = None, *, correlation_id: str | None = None
    ) -> SubmitResult:
        """Send ``intent`` through every gate (see the module doc). Never raises for a
        refusal: the :class:`SubmitResult` says what happened and why."""
        corr = correlation_id or new_correlation_id()
        async with self._lock:
            return await self._submit(intent, ctx, confirmation, corr)

    def _refusal(
        self, intent: OrderIntent, ctx: MarketContext, confirmation: str | None, corr: str, modifying: str = ""
    ) -> tuple[SubmitResult | None, GateDecision, RiskReport | None]:
        payload = intent.to_payload()
        decision = self.gate_check(intent, ctx, confirmation)
        if not decision.allowed:
            self.refusals["gate"] += 1
            self.record("blocked", "", corr, {"stage": "gate", "reason": decision.reason, "intent": payload})
            return SubmitResult("blocked", corr, reasons=(decision.reason,), gate=decision), decision, None
        audit = self.trail.status()
        if not audit.healthy:
            why = audit.line
            self.refusals["audit"] += 1
            self.record("blocked", "", corr, {"stage": "audit", "reason": why, "intent": payload})
            return SubmitResult("blocked", corr, reasons=(why,), gate=decision), decision, None
        report = evaluate(intent, self._with_recent(ctx, modifying=modifying), self.limits)
        if report.blocked:
            self.refusals.update(c.name for c in report.checks if not c.passed)
            self.record(
                "blocked",
                "",
                corr,
                {"stage": "risk", "intent": payload, "risk": report.summary(), **({"modifying": modifying} if modifying else {})},
            )
            return SubmitResult("blocked", corr, reasons=tuple(report.reasons), gate=decision, report=report), decision, report
        return None, decision, report

    async def _submit(self, intent: OrderIntent, ctx: MarketContext, confirmation: str | None, corr: str) -> SubmitResult:
        refused, decision, report = self._refusal(intent, ctx, confirmation, corr)
        if refused is not None or report is None:
            return refused or SubmitResult("blocked", corr, reasons=("no risk report",))
        coid = new_client_order_id()
        self.in_flight.add(coid)
        try:
            try:
                await self.trail.write(
                    self.event(
                        "intent", coid, corr, {"intent": intent.to_payload(), "risk": report.summary(), "gate": decision.reason}
                    )
                )
            except AuditError as exc:
                return SubmitResult("rejected", corr, "", (f"audit log unavailable, order not sent: {exc}",), decision, report)
            again = self.gate_check(intent, ctx, confirmation)
            if not again.allowed:
                self.record("reject", coid, corr, {"stage": "gate", "reason": again.reason})
                return SubmitResult("rejected", corr, coid, (again.reason,), again, report)
            try:
                info = dict(await self.gateway.place(intent, coid) or {})
            except OrderNotSent as exc:
                reason = f"not transmitted: {exc}"
                self.record("reject", coid, corr, {"stage": "transmit", "reason": reason})
                return SubmitResult("rejected", corr, coid, (reason,), decision, report)
            except Exception as exc:  # noqa: BLE001 - may have reached the gateway
                reason = f"transmit failed, the order may have been sent: {type(exc).__name__}: {exc}"
                self.record("send_error", coid, corr, {"reason": reason})
                self._recent.append(RecentOrder(self.clock.now(), intent))
                return SubmitResult("unknown", corr, coid, (reason,), decision, report)
            # no await from here to the end: the gateway's first report cannot overtake these
            self._recent.append(RecentOrder(self.clock.now(), intent, coid))
            self.record("sent", coid, corr, {"transmit": info})
            if self.on_sent is not None:
                self.on_sent(coid, intent, info)
            return SubmitResult("sent", corr, coid, (), decision, report, info)
        finally:
            self.in_flight.discard(coid)

    async def modify(
        self,
        order_ref: str,
        intent: OrderIntent,
        ctx: MarketContext,
        *,
        perm_id: int = 0,
        confirmation: str | None = None,
        checked: OrderIntent | None = None,
    ) -> SubmitResult:
        """Send a new version ``intent`` of the working order ``order_ref`` through the
        gate and the checks (``ctx`` must leave the order itself out of its working
        orders; ``checked``: what the checks judge, e.g. only the unfilled part, default
        ``intent``), with a write-ahead ``modify_request`` row, then the gateway's modify.
        Never raises for a refusal."""
        corr = new_correlation_id()
        async with self._lock:
            refused, decision, report = self._refusal(checked or intent, ctx, confirmation, corr, order_ref)
            if refused is not None or report is None:
                return refused or SubmitResult("blocked", corr, reasons=("no risk report",))
            try:
                await self.trail.write(
                    self.event("modify_request", order_ref, corr, {"intent": intent.to_payload(), "risk": report.summary()})
                )
            except AuditError as exc:
                return SubmitResult(
                    "rejected", corr, order_ref, (f"audit log unavailable, not modified: {exc}",), decision, report
                )
            try:
                await self.gateway.modify(order_ref, intent, perm_id)
            except OrderNotSent as exc:
                return SubmitResult("rejected", corr, order_ref, (f"not modified: {exc}",), decision, report)
            self._recent.append(RecentOrder(self.clock.now(), intent, order_ref))
            return SubmitResult("sent", corr, order_ref, (), decision, report)
