"""Reconciliation after a (re)connect or a restart: what became of every open order.

:func:`reconcile` is a pure function of the audit log's open intents
(:meth:`desk.store.audit.AuditLog.open_intents`) and what the gateway reports: its open
and today's completed orders, and today's executions. An order is matched by its
``orderRef`` (desk's client order id), else by IB's ``permId`` recorded for it (an order
whose orderRef was lost, e.g. modified in TWS). It never decides to resend anything that
may have reached the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from desk.domain.orders import BrokerOrder, Fill
from desk.store.audit_records import IB_STATUS_STATE, IntentState

__all__ = ["ReconcileDecision", "ReconcilePlan", "executed_quantity", "reconcile"]


@dataclass(frozen=True)
class ReconcileDecision:
    """What to do with one open intent after a reconnect / restart.

    ``action``:

    * ``adopt`` — the gateway has the order working: rebind to it (``order``), keep
      listening for its statuses; ``state`` ``working``;
    * ``close`` — the gateway reports it finished (filled, cancelled, inactive), or the
      executions cover the whole quantity: record ``state`` and stop;
    * ``resend`` — never reached the gateway (written, not marked sent, not visible,
      no executions) and young enough: ``state`` ``abandoned`` for this client order id;
      the trader may send it again under a **new** client order id, through every gate;
    * ``abandon`` — as ``resend`` but older than the resend window: ``abandoned``;
    * ``human`` — may have reached the gateway but is not visible (state ``sent``,
      ``working`` or ``unknown``, or partly filled and gone): ``state`` ``unknown``; never
      resent automatically.

    ``filled``: shares / contracts (combo units) filled per the gateway; ``reason``: one
    line for the log.
    """

    client_order_id: str
    action: str
    state: str
    reason: str
    filled: float = 0.0
    order: BrokerOrder | None = None


@dataclass(frozen=True)
class ReconcilePlan:
    """Decisions per open intent (input order) and ``foreign``: orderRefs the gateway
    reported that are not among the intents (other tools, other desks, or orders already
    closed in the audit log), sorted."""

    decisions: tuple[ReconcileDecision, ...]
    foreign: tuple[str, ...]

    def by_action(self, action: str) -> list[ReconcileDecision]:
        return [d for d in self.decisions if d.action == action]


def executed_quantity(fills: Sequence[Fill], combo: bool) -> float:
    """Shares / contracts (combo units) executed by ``fills`` of one order. For a combo
    the BAG executions count (one per combo fill, as IB reports them); leg executions
    are for the positions."""
    if combo and any(f.instrument.sec_type == "BAG" for f in fills):
        return sum(abs(f.shares) for f in fills if f.instrument.sec_type == "BAG")
    if combo:
        return 0.0
    return sum(abs(f.shares) for f in fills)


def _is_combo(intent: IntentState) -> bool:
    ins = intent.intent.get("instrument", {}) if isinstance(intent.intent, dict) else {}
    return isinstance(ins, dict) and ins.get("sec_type") == "BAG"


def reconcile(
    intents: Iterable[IntentState],
    orders: Iterable[BrokerOrder],
    executions: Iterable[Fill],
    *,
    now: datetime | None = None,
    resend_window: float = 120.0,
) -> ReconcilePlan:
    """Decide, per open intent, whether the gateway has it, finished it, or never saw it.

    ``intents``: :meth:`AuditLog.open_intents`. ``orders``: what the gateway reports —
    its open orders (``reqAllOpenOrders``) **and** today's completed orders
    (``reqCompletedOrders``), so a finished order is recognised. ``executions``: today's
    executions (``reqExecutions``). ``now``: UTC time for the resend window (default:
    the wall clock). ``resend_window``: seconds after which an intent that never reached
    the gateway is abandoned rather than offered for resending.

    Pure and deterministic; see :class:`ReconcileDecision` for the rules.
    """
    intents = list(intents)
    orders = list(orders)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    window = timedelta(seconds=resend_window)
    by_ref = {o.order_ref: o for o in orders if o.order_ref}
    by_perm = {o.perm_id: o for o in orders if o.perm_id}
    fills_by_ref: dict[str, list[Fill]] = {}
    fills_by_perm: dict[int, list[Fill]] = {}
    for f in executions:
        if f.order_ref:
            fills_by_ref.setdefault(f.order_ref, []).append(f)
        if f.perm_id:
            fills_by_perm.setdefault(f.perm_id, []).append(f)
    decisions = []
    matched_refs: set[str] = set()
    for it in intents:
        ref = it.client_order_id
        order = by_ref.get(ref) or (by_perm.get(it.perm_id) if it.perm_id else None)
        fills = fills_by_ref.get(ref) or (fills_by_perm.get(it.perm_id, []) if it.perm_id else [])
        if order is not None:
            matched_refs.add(order.order_ref)
        executed = executed_quantity(fills, _is_combo(it))
        if order is not None:
            filled = max(order.filled, executed, it.filled)
            if not order.done:
                decisions.append(
                    ReconcileDecision(ref, "adopt", "working", f"working at the gateway ({order.status})", filled, order)
                )
            else:
                state = IB_STATUS_STATE[order.status]
                decisions.append(
                    ReconcileDecision(ref, "close", state, f"finished at the gateway ({order.status})", filled, order)
                )
            continue
        if executed > 0 or it.filled > 0:
            filled = max(executed, it.filled)
            if it.quantity > 0 and filled >= it.quantity:
                decisions.append(
                    ReconcileDecision(ref, "close", "filled", f"executions cover {filled:g} of {it.quantity:g}", filled)
                )
            else:
                decisions.append(
                    ReconcileDecision(
                        ref, "human", "unknown", f"partly filled ({filled:g} of {it.quantity:g}) and not visible", filled
                    )
                )
            continue
        if it.state == "intent":
            if now - it.intent_time.astimezone(UTC) <= window:
                decisions.append(ReconcileDecision(ref, "resend", "abandoned", "never reached the gateway: safe to send again"))
            else:
                decisions.append(
                    ReconcileDecision(ref, "abandon", "abandoned", f"never reached the gateway, older than {resend_window:g} s")
                )
            continue
        decisions.append(
            ReconcileDecision(ref, "human", "unknown", f"state {it.state} but not visible at the gateway: check it by hand")
        )
    known = {i.client_order_id for i in intents} | matched_refs
    seen = set(by_ref) | set(fills_by_ref)
    foreign = tuple(sorted(r for r in seen if r and r not in known))
    return ReconcilePlan(tuple(decisions), foreign)
