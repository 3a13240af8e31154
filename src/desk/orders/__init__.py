"""desk.orders: the order path, one package.

An order goes ticket -> :class:`OrderService` -> :class:`OrderRouter` (the
:class:`OrderGate`: trading state and mode rules; the pre-trade checks of
:mod:`desk.risk`; the write-ahead ``intent`` row of the :class:`AuditTrail`) -> the
gateway (:class:`~desk.orders.ports.OrderGateway`, implemented by the broker on
ib_async). What comes back (order statuses, executions, commission reports, errors) goes
into the :class:`OrderBook` (the blotter), the :class:`FillLedger` (every execution once,
by execId) and the audit trail. After every connect the service reconciles the audit
log with the gateway (:func:`reconcile`) before anything can be sent.

* :mod:`desk.orders.gate` — KillSwitch (active / reduce-only / halted), OrderGate
* :mod:`desk.orders.router` — OrderRouter, SubmitResult
* :mod:`desk.orders.service` — OrderService (composition; what views call)
* :mod:`desk.orders.book` — OrderBook (blotter rows)
* :mod:`desk.orders.ledger` — FillLedger
* :mod:`desk.orders.reconcile` — reconcile, ReconcilePlan, ReconcileDecision
* :mod:`desk.orders.trail` — AuditTrail (write-ahead rows; other rows queued durably
  through a database outage)
* :mod:`desk.orders.ports` — OrderGateway, OrderEvents

Imports desk.domain, desk.risk and desk.store (audit persistence); no ib_async, no Textual.
"""

from desk.orders.book import OrderBook
from desk.orders.gate import (
    GateDecision,
    GateStatus,
    KillSwitch,
    KillSwitchState,
    OrderGate,
    TradingState,
    confirmation_symbol,
)
from desk.orders.ledger import FillLedger
from desk.orders.ports import OrderEvents, OrderGateway
from desk.orders.reconcile import ReconcileDecision, ReconcilePlan, reconcile
from desk.orders.router import OrderRouter, SubmitResult
from desk.orders.service import OrderService
from desk.orders.trail import AuditStatus, AuditTrail, spool_path_for

__all__ = [
    "AuditStatus",
    "AuditTrail",
    "FillLedger",
    "GateDecision",
    "GateStatus",
    "KillSwitch",
    "KillSwitchState",
    "OrderBook",
    "OrderEvents",
    "OrderGate",
    "OrderGateway",
    "OrderRouter",
    "OrderService",
    "ReconcileDecision",
    "ReconcilePlan",
    "SubmitResult",
    "TradingState",
    "confirmation_symbol",
    "reconcile",
    "spool_path_for",
]
