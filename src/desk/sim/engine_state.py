"""Persistence of the simulator's order engine (``desk sim --state FILE``): the state
image, its restore, and the write-ahead commit of every change (:mod:`desk.sim.journal`
says what the files hold and how a crash is recovered).

:class:`EnginePersistence` is a base of :class:`desk.sim.matching.OrderEngine`: it
works on the engine's order books (declared here by type), so that the matching
module keeps order entry and matching only.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from desk.sim import journal
from desk.sim.journal import Counters, IdSource, StateStore
from desk.sim.orders import Execution, SimOrder
from desk.sim.ports import Host
from desk.sim.resting import RestingOrders

log = logging.getLogger("desk.sim.orders")


class EnginePersistence:
    """State image, restore and journal of an order engine (see the module docstring)."""

    gateway: Host
    orders: dict[tuple[int, int], SimOrder]
    _by_perm: dict[int, SimOrder]
    _open: dict[int, SimOrder]
    _working: dict[int, RestingOrders]
    _combos: list[SimOrder]
    executions: list[Execution]
    completed: list[SimOrder]
    ids: IdSource
    journal: StateStore | None
    feed: Any  # desk.sim.account_feed.AccountFeed: its ``dirty`` accounts go in a commit

    def _index(self, order: SimOrder) -> None:  # the engine's: a working order into its books
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """A JSON-able image of everything the engine keeps: accounts, every order
        (working and done), the day's executions, and the id counters
        (:func:`desk.sim.journal.image`)."""
        return journal.image(self.gateway.accounts, self.orders.values(), self.completed, self.executions, self._counters())

    def restore(self, state: dict[str, Any]) -> None:
        """Replace accounts, orders, executions and counters by ``state`` (from
        :meth:`state`). Accounts are matched by id; the counters end above every permId
        and every order id of each client in ``state``. ``ValueError`` if the image is
        of another version or names an account this gateway does not manage; ``KeyError``
        / ``TypeError`` if it is malformed."""
        gw = self.gateway
        r = journal.parse_image(state, gw.account_ids)
        by_id = {a.account_id: a for a in r.accounts}
        gw.accounts[:] = [by_id.get(a.account_id, a) for a in gw.accounts]
        self.orders.clear()
        self._by_perm.clear()
        self._open.clear()
        self._working.clear()
        self._combos.clear()
        for o in r.orders:
            self.orders[(o.client_id, o.order_id)] = o
            self._by_perm[o.perm_id] = o
            if not o.is_done:
                self._index(o)
        self.completed = r.completed
        self.executions = r.executions
        c = r.counters
        self.ids.restore(c)
        gw.restore_order_ids(c.next_order_ids)

    def open_state(self, path: str | os.PathLike[str]) -> bool:
        """Read ``path`` (snapshot) and ``path.journal`` back, then journal every change
        there durably until :meth:`close_state` (see :mod:`desk.sim.journal`). Returns
        whether there was a state to restore. ``ValueError`` naming the file (and line)
        if it cannot be read back or written, or another simulator uses it."""
        store = StateStore(path)
        state = store.open(self.state)
        if state is not None:
            try:
                self.restore(state)
            except (ValueError, KeyError, TypeError) as e:
                store.close(snapshot=False)
                raise ValueError(f"{path}: not a simulator state file: {e}") from e
        store.start(self.state, len(self.executions), len(self.completed))
        self.journal = store
        if state is not None:
            log.info("simulator state loaded from %s (%d orders, %d working)", path, len(self.orders), len(self._open))
        return state is not None

    def close_state(self) -> None:
        """Commit what is pending, write a last snapshot and stop journaling."""
        store, self.journal = self.journal, None
        if store is not None:
            self._commit(store)
            store.close()

    def _commit(self, store: StateStore | None = None) -> None:
        """Journal (and fsync) what changed since the last commit: the orders touched,
        new executions and completed orders, the accounts fills changed, the counters.
        Runs before any reply about these changes is sent (:meth:`_flush`)."""
        store = store or self.journal
        if store is None:
            return
        gw = self.gateway
        accounts = [a for a in (gw.account(i) for i in self.feed.dirty if i) if a is not None]
        store.commit(self.executions, self.completed, accounts, self._counters())

    def _counters(self) -> Counters:
        return self.ids.counters(self.gateway.order_ids())
