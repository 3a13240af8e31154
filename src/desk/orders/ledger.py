"""The fill ledger: every execution once, by execId, whichever way it arrived.

Executions reach the desk as they happen (``execDetails``) and again after every connect
(``reqExecutions``, which answers the day's executions): the ledger keeps each execId
once, so a fill whose live report was missed (a disconnect, a restart) is recovered from
the gateway, and a fill seen twice is counted once. Commission reports are matched by
execId, whether they arrive before or after their execution. An order's filled quantity
comes from here, never only from orderStatus, which can be late or lost.

Quantities in shares / contracts (combo units for a combo's own executions); prices in
dollars per share; commissions in dollars.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from desk.domain.orders import Fill
from desk.orders.reconcile import executed_quantity

__all__ = ["FillLedger"]


class FillLedger:
    """Executions by execId (see the module doc). Not thread-safe: use it on one loop."""

    def __init__(self) -> None:
        self._fills: dict[str, Fill] = {}
        self._by_ref: dict[str, list[str]] = {}
        self._commissions: dict[str, tuple[float, float]] = {}  # arrived before the execution
        self._recorded: set[str] = set()
        #: bumped on every change (cheap redraw decisions)
        self.seq = 0

    def __len__(self) -> int:
        return len(self._fills)

    def __contains__(self, exec_id: object) -> bool:
        return exec_id in self._fills

    # ------------------------------------------------------------------ updates

    def add(self, fill: Fill) -> Fill | None:
        """Keep ``fill``; returns it (with any commission already reported) if its execId
        is new, ``None`` if it was known (a repeat from reqExecutions)."""
        if not fill.exec_id:
            return None
        if fill.exec_id in self._fills:
            known = self._fills[fill.exec_id]
            if math.isnan(known.commission) and not math.isnan(fill.commission):
                self._fills[fill.exec_id] = dataclasses.replace(known, commission=fill.commission)
                self.seq += 1
            return None
        early = self._commissions.pop(fill.exec_id, None)
        if early is not None and math.isnan(fill.commission):
            fill = dataclasses.replace(fill, commission=early[0])
        self._fills[fill.exec_id] = fill
        if fill.order_ref:
            self._by_ref.setdefault(fill.order_ref, []).append(fill.exec_id)
        self.seq += 1
        return fill

    def commission(self, exec_id: str, commission: float, realized_pnl: float = math.nan) -> Fill | None:
        """Attach IB's commission (dollars) to execution ``exec_id``; returns the updated
        fill, or ``None`` when the execution has not arrived yet (kept until it does)."""
        fill = self._fills.get(exec_id)
        if fill is None:
            self._commissions[exec_id] = (commission, realized_pnl)
            return None
        fill = dataclasses.replace(fill, commission=commission)
        self._fills[exec_id] = fill
        self.seq += 1
        return fill

    def mark_recorded(self, exec_ids: Iterable[str]) -> None:
        """These executions already have their audit row (from an earlier run)."""
        self._recorded.update(exec_ids)

    def take_unrecorded(self, exec_id: str) -> bool:
        """True the first time for ``exec_id`` (its audit row is to be written now)."""
        if exec_id in self._recorded:
            return False
        self._recorded.add(exec_id)
        return True

    # ------------------------------------------------------------------ queries

    def get(self, exec_id: str) -> Fill | None:
        """The execution ``exec_id`` as kept (with its commission once reported), or None."""
        return self._fills.get(exec_id)

    def fills(self, order_ref: str | None = None) -> list[Fill]:
        """Executions of one order (orderRef), or all, in arrival order."""
        if order_ref is None:
            return list(self._fills.values())
        return [self._fills[e] for e in self._by_ref.get(order_ref, ())]

    def filled(self, order_ref: str, *, combo: bool = False) -> float:
        """Quantity executed for ``order_ref``: shares / contracts, combo units for a combo
        (see :func:`desk.orders.reconcile.executed_quantity`)."""
        return executed_quantity(self.fills(order_ref), combo)

    def avg_price(self, order_ref: str, *, combo: bool = False) -> float:
        """Average execution price of ``order_ref``, dollars per share (net per combo unit
        from the combo's own executions); ``nan`` before the first."""
        fills = [f for f in self.fills(order_ref) if (f.instrument.sec_type == "BAG") == combo]
        qty = sum(abs(f.shares) for f in fills)
        if qty <= 0:
            return math.nan
        return sum(abs(f.shares) * f.price for f in fills) / qty
