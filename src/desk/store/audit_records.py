"""The records of the order audit trail (:mod:`desk.store.audit`): event names, lifecycle
states, :class:`AuditEvent` (a row to append), :class:`AuditRecord` (a row read back),
:class:`IntentState`, the id generators and the JSON conversion of payloads.

Plain values and functions, no SQLAlchemy: the order path (:mod:`desk.orders`) builds
events with them, and importing it must not load the database layer, which the engine
opens after its first quote. The table, its triggers and :class:`~desk.store.audit.AuditLog`
are in :mod:`desk.store.audit`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.store.codec import as_utc
from desk.store.errors import StoreError

__all__ = [
    "AUDIT_TABLE",
    "EVENTS",
    "TERMINAL_STATES",
    "AuditError",
    "AuditEvent",
    "AuditRecord",
    "IB_STATUS_STATE",
    "IntentState",
    "jsonable",
    "new_client_order_id",
    "new_correlation_id",
    "state_for",
]

AUDIT_TABLE = "order_audit"

#: Event names an audit row may carry.
EVENTS: frozenset[str] = frozenset(
    {
        "preview",  # a risk preview shown to the trader (optional; state NULL)
        "blocked",  # a gate or a risk check refused the order: never sent
        "intent",  # write-ahead: the order is about to be transmitted
        "sent",  # placeOrder returned: the order is on its way to the gateway
        "send_error",  # transmission failed in a way that may have reached the gateway
        "reject",  # refused before working (gateway error, or provably not transmitted)
        "status",  # an orderStatus from the gateway (payload: status, filled, remaining ...)
        "fill",  # an execution (payload: exec_id, shares, price, remaining ...)
        "cancel_request",  # desk asked the gateway to cancel this order
        "kill_switch",  # kill switch engaged (reqGlobalCancel sent)
        "kill_switch_reset",  # kill switch reset by the trader
        "reconcile",  # reconciliation decided the state of an order (payload: state, reason)
        "commission",  # IB's commission report of an execution (payload: exec_id, commission, realized_pnl)
        "modify_request",  # desk asked the gateway to modify this order (payload: the new intent)
        "trading_state",  # the trading state changed to reduce-only (payload: state, reason)
    }
)

#: States after which an order never changes again.
TERMINAL_STATES: frozenset[str] = frozenset({"filled", "cancelled", "inactive", "rejected", "blocked", "abandoned"})
_STATES = TERMINAL_STATES | {"intent", "sent", "working", "unknown"}

#: IB order status -> lifecycle state (other statuses: ``working``)
IB_STATUS_STATE: dict[str, str] = {
    "Filled": "filled",
    "Cancelled": "cancelled",
    "ApiCancelled": "cancelled",
    "Inactive": "inactive",
}


class AuditError(StoreError):
    """The audit log cannot be written or read, or an event is malformed. One line."""


def new_client_order_id() -> str:
    """A fresh client order id for IB's ``orderRef``: ``desk-`` + 24 hex digits (a random
    UUID4 prefix: unique across restarts and desks without coordination)."""
    return "desk-" + uuid.uuid4().hex[:24]


def new_correlation_id() -> str:
    """A fresh correlation id (32 hex digits) linking preview, order, statuses and fills."""
    return uuid.uuid4().hex


def state_for(event_name: str, payload: Mapping[str, Any]) -> str | None:
    """The lifecycle state an event leads to (``None``: no change). ``status`` maps IB's
    order status (Filled, Cancelled/ApiCancelled, Inactive; anything else is ``working``);
    ``fill`` is ``filled`` when ``payload["remaining"] == 0``, else ``working``;
    ``reconcile`` takes ``payload["state"]``."""
    if event_name == "intent":
        return "intent"
    if event_name == "sent":
        return "sent"
    if event_name == "send_error":
        return "unknown"
    if event_name == "reject":
        return "rejected"
    if event_name == "blocked":
        return "blocked"
    if event_name == "status":
        return IB_STATUS_STATE.get(str(payload.get("status", "")), "working")
    if event_name == "fill":
        remaining = payload.get("remaining")
        return "filled" if isinstance(remaining, int | float) and remaining == 0 else "working"
    if event_name == "reconcile":
        state = payload.get("state")
        if state not in _STATES:
            raise AuditError(f"reconcile event needs payload state in {sorted(_STATES)}, got {state!r}")
        return str(state)
    return None


def jsonable(value: Any, path: str = "payload") -> Any:
    """JSON-ready copy of ``value``: non-finite floats -> None, datetimes -> ISO 8601 UTC,
    enums -> value, dataclasses -> dicts, tuples/sets -> lists. Raises AuditError for
    anything else (naming where)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value, path)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), f"{path}.{f.name}") for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise AuditError(f"{path}: keys must be strings, got {k!r}")
            out[k] = jsonable(v, f"{path}.{k}")
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v, f"{path}[{i}]") for i, v in enumerate(items)]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return jsonable(value.tolist(), path)
    raise AuditError(f"{path}: {type(value).__name__} is not JSON-serializable")


@dataclass(frozen=True)
class AuditEvent:
    """An event to append. ``event`` is one of :data:`EVENTS`; ``payload`` any JSON-ready
    mapping (see :func:`_jsonable` for what is converted); ``time`` defaults to the log's
    clock (UTC). Raises :class:`AuditError` for an unknown event name."""

    event: str
    client_order_id: str = ""
    correlation_id: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    mode: str = ""
    account: str = ""
    time: datetime | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise AuditError(f"unknown audit event {self.event!r}; one of {', '.join(sorted(EVENTS))}")
        for name in ("client_order_id", "correlation_id", "mode", "account"):
            if not isinstance(getattr(self, name), str):
                raise AuditError(f"audit event {name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.payload, Mapping):
            raise AuditError(f"audit event payload must be a mapping, got {type(self.payload).__name__}")
        if self.time is not None and not isinstance(self.time, datetime):
            raise AuditError(f"audit event time must be a datetime, got {self.time!r}")


@dataclass(frozen=True)
class AuditRecord:
    """A row of the audit table as read back (``time`` tz-aware UTC)."""

    id: int
    time: datetime
    correlation_id: str
    client_order_id: str
    event: str
    state: str | None
    payload: dict[str, Any]
    mode: str
    account: str


@dataclass(frozen=True)
class IntentState:
    """An order whose latest state is not terminal (input of :func:`reconcile`).

    ``state``: ``intent``, ``sent``, ``working`` or ``unknown``. ``intent``: the payload of
    its ``intent`` row (``OrderIntent.to_payload()`` under the key ``"intent"`` by the
    router's convention). ``intent_time``: UTC time of that row. ``filled``: shares or
    contracts filled according to the audit rows (largest ``filled`` seen in ``status``
    and ``fill`` payloads). ``last_id``: id of the row that set ``state``. ``perm_id``:
    IB's permId of the order as last recorded (0 unknown).
    """

    client_order_id: str
    correlation_id: str
    state: str
    intent: dict[str, Any]
    intent_time: datetime
    quantity: float
    mode: str = ""
    account: str = ""
    filled: float = 0.0
    last_id: int = 0
    perm_id: int = 0
