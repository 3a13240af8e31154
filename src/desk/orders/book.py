"""The desk's order book: one :class:`~desk.domain.orders.OrderRow` per order (the blotter).

Built from what the gateway reports (:class:`~desk.domain.orders.BrokerOrder` updates and
:class:`~desk.domain.orders.OrderError`), what this desk sent (its
:class:`~desk.risk.OrderIntent`, which names a combo's legs) and the fill ledger, so:

* the filled quantity and the average price come from the executions when orderStatus is
  late or missing (an order whose executions cover its quantity is Filled);
* an order the gateway refused shows status ``Rejected`` with IB's text, not Cancelled;
  the confirmation of a cancel the trader asked for (202) is not an error;
* after a reconnect, an order the gateway no longer reports shows ``Unknown`` (``gone``):
  it is not working and cannot be cancelled or modified from here;
* a combo is one row with its legs.

Rows are keyed by orderRef. Quantities shares / contracts (combo units), prices dollars
per share (net per combo unit), times UTC.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from desk.domain.clock import Clock
from desk.domain.models import Instrument
from desk.domain.orders import TERMINAL_ORDER_STATUSES, BrokerOrder, OrderError, OrderLeg, OrderRow
from desk.orders.ledger import FillLedger
from desk.risk import OrderIntent

__all__ = ["OrderBook"]

#: statuses an order has before the gateway acknowledged it
_UNACKNOWLEDGED = frozenset({"", "PendingSubmit", "ApiPending"})


def _legs_of(intent: OrderIntent) -> tuple[OrderLeg, ...]:
    return tuple(OrderLeg(leg.instrument, leg.action.value, leg.ratio) for leg in intent.legs)


class OrderBook:
    """Blotter rows by orderRef (see the module doc). ``ledger``: the fill ledger the
    filled quantities come from. Not thread-safe: one event loop."""

    def __init__(self, ledger: FillLedger, *, clock: Clock | None = None) -> None:
        self.ledger = ledger
        self.clock = clock or Clock()
        self.rows: dict[str, OrderRow] = {}
        #: bumped on every change of a row
        self.seq = 0
        self._intents: dict[str, OrderIntent] = {}
        self._orders: dict[str, BrokerOrder] = {}
        self._errors: dict[str, OrderError] = {}
        self._gone: set[str] = set()

    # ------------------------------------------------------------------ queries

    def intent_of(self, order_ref: str) -> OrderIntent | None:
        """The intent this desk sent (or last modified) as ``order_ref``; ``None`` for
        orders of another desk or tool."""
        return self._intents.get(order_ref)

    def order_of(self, order_ref: str) -> BrokerOrder | None:
        """The gateway's last report of ``order_ref``."""
        return self._orders.get(order_ref)

    def working(self) -> list[OrderRow]:
        """Rows still working, oldest first."""
        return [r for r in self.rows.values() if r.working]

    def open_intents(self, *, exclude: str | None = None) -> tuple[OrderIntent, ...]:
        """Intents of the working orders with their *remaining* quantity (the risk
        engine's working orders), leaving out ``exclude`` (the order being modified).
        Orders of other tools count too, as far as the gateway described them."""
        out = []
        for ref, row in self.rows.items():
            if ref == exclude or not row.working or row.remaining < 1:
                continue
            intent = self._intents.get(ref)
            if intent is None:
                continue
            out.append(dataclasses.replace(intent, quantity=int(row.remaining)))
        return tuple(out)

    # ------------------------------------------------------------------ updates

    def adopt_intent(self, order_ref: str, intent: OrderIntent) -> None:
        """Remember the intent of ``order_ref`` (sent now, modified, or read back from the
        audit log after a restart)."""
        self._intents[order_ref] = intent
        if order_ref in self.rows or order_ref in self._orders:
            self._rebuild(order_ref)

    def sent(self, order_ref: str, intent: OrderIntent, order_id: int = 0) -> OrderRow:
        """A row for an order just handed to the gateway (PendingSubmit)."""
        self._intents[order_ref] = intent
        self._gone.discard(order_ref)
        self._errors.pop(order_ref, None)
        if order_ref not in self._orders:
            ins = intent.instrument
            self._orders[order_ref] = BrokerOrder(
                order_ref,
                "PendingSubmit",
                order_id=order_id,
                remaining=float(intent.quantity),
                instrument=ins,
                action=intent.action.value,
                quantity=float(intent.quantity),
                order_type=intent.order_type.value,
                limit_price=intent.limit_price if intent.limit_price is not None else math.nan,
                stop_price=intent.stop_price if intent.stop_price is not None else math.nan,
                tif=intent.tif.value,
                legs=_legs_of(intent),
            )
        return self._rebuild(order_ref)

    def update(self, order: BrokerOrder) -> OrderRow | None:
        """A report from the gateway (openOrder / orderStatus / completed order)."""
        ref = order.order_ref
        if not ref:
            return None
        old = self._orders.get(ref)
        if old is not None:
            # an orderStatus carries no terms: keep the ones we have
            order = dataclasses.replace(
                order,
                instrument=order.instrument or old.instrument,
                action=order.action or old.action,
                quantity=order.quantity or old.quantity,
                order_type=order.order_type or old.order_type,
                limit_price=order.limit_price if order.order_type else old.limit_price,
                stop_price=order.stop_price if order.order_type else old.stop_price,
                tif=order.tif or old.tif,
                legs=order.legs or old.legs,
                order_id=order.order_id or old.order_id,
                perm_id=order.perm_id or old.perm_id,
                avg_fill_price=order.avg_fill_price if math.isfinite(order.avg_fill_price) else old.avg_fill_price,
            )
        self._orders[ref] = order
        self._gone.discard(ref)
        return self._rebuild(ref)

    def error(self, order_ref: str, err: OrderError) -> OrderRow | None:
        """A gateway error about ``order_ref`` (kept when it rejects the order)."""
        if err.rejection:
            self._errors[order_ref] = err
        if order_ref in self._orders:
            return self._rebuild(order_ref)
        return None

    def fills_changed(self, order_ref: str) -> OrderRow | None:
        """Executions of ``order_ref`` changed in the ledger."""
        if order_ref in self._orders:
            return self._rebuild(order_ref)
        return None

    def mark_gone(self, order_refs: Iterable[str]) -> list[OrderRow]:
        """These working orders are not at the gateway any more (after a reconcile)."""
        out = []
        for ref in order_refs:
            row = self.rows.get(ref)
            if row is None or not row.working:
                continue
            self._gone.add(ref)
            out.append(self._rebuild(ref))
        return out

    # ------------------------------------------------------------------ building

    def _rebuild(self, ref: str) -> OrderRow:
        order = self._orders[ref]
        intent = self._intents.get(ref)
        ins: Instrument = intent.instrument if intent is not None else (order.instrument or Instrument("?", con_id=0))
        combo = ins.sec_type == "BAG"
        legs = _legs_of(intent) if intent is not None and intent.legs else order.legs
        qty = order.quantity or (float(intent.quantity) if intent is not None else 0.0)
        filled = max(order.filled, self.ledger.filled(ref, combo=combo))
        status = order.status or "PendingSubmit"
        if qty > 0 and filled >= qty - 1e-9:
            status = "Filled"
        err = self._errors.get(ref)
        error = f"{err.code}: {err.text}" if err is not None else ""
        if err is not None and filled == 0 and (status in _UNACKNOWLEDGED or status in ("Cancelled", "Inactive")):
            status = "Rejected"
        gone = ref in self._gone and status not in TERMINAL_ORDER_STATUSES and status != "Rejected"
        if gone:
            status = "Unknown"
            error = error or "not at the gateway after the reconnect: check it in TWS"
        avg = order.avg_fill_price
        if not (math.isfinite(avg) and avg != 0):
            avg = self.ledger.avg_price(ref, combo=combo)
        remaining = (
            max(0.0, qty - filled) if status not in TERMINAL_ORDER_STATUSES and status not in ("Rejected", "Unknown") else 0.0
        )
        if status in ("Cancelled", "ApiCancelled", "Inactive", "Rejected", "Unknown"):
            remaining = 0.0
        row = OrderRow(
            order_ref=ref,
            order_id=order.order_id,
            perm_id=order.perm_id,
            instrument=ins,
            action=order.action,
            quantity=qty,
            order_type=order.order_type,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            tif=order.tif or "DAY",
            status=status,
            filled=filled,
            remaining=remaining,
            avg_price=avg,
            updated=self.clock.now(),
            error=error,
            legs=legs,
            gone=gone,
            mine=intent is not None,
        )
        old = self.rows.get(ref)
        if old is None or dataclasses.replace(old, updated=row.updated) != row:
            self.rows[ref] = row
            self.seq += 1
            return row
        return old
