"""The simulated gateway's order engine: order entry, matching, executions, accounts.

One :class:`OrderEngine` lives on each :class:`~desk.sim.gateway.SimGateway` (as
``gateway.orders``) and outlives client connections: orders, executions and accounts
survive a client's disconnect and reconnect, and a gateway restart or crash when the
gateway has a ``state_file``: every change is journaled durably before it is reported
(:meth:`OrderEngine.open_state`, :mod:`desk.sim.journal`). It answers the order and
account requests of every session (:meth:`OrderEngine.handlers`) and runs matching on
every market step (:meth:`OrderEngine.on_step`).

Order entry (placeOrder 3)
    LMT, MKT, STP, STP LMT, and the types of :mod:`desk.sim.order_types` (TRAIL,
    TRAIL LIMIT, MIT, LIT, MOC, LOC, REL; brackets by parentId / transmit, OCA groups
    types 1-3); TIF DAY, GTC, IOC, GTD, FOK, OPG; single stocks and options, and BAG
    combos of 2-4 legs (stocks and options). exerciseOptions (21) and expiry
    settlement are :mod:`desk.sim.exercise`. A new order is answered with openOrder +
    orderStatus ``PreSubmitted`` then ``Submitted`` (stops stay ``PreSubmitted`` until
    elected, as IB's simulated stops do). A placeOrder with the id of a working order of
    the same client modifies it (same permId; openOrder + orderStatus again). Rejections
    are error 201 ``Order rejected - reason:...``: quantity <= 0 or fractional, price
    missing, negative or off the tick grid, unknown contract, unknown account,
    unsupported order type / TIF / feature, short sale of a hard-to-borrow stock,
    insufficient equity (Reg T initial margin above equity with loan after the trade),
    expired option, bad combo legs. An order id already used by that client (or lower
    than its highest id) is error 103 ``Duplicate order id``. Order ids (nextValidId, per
    client), permIds and execIds never repeat across restarts: from the journal with a
    state file, else seeded from the wall clock (:func:`desk.sim.journal.clock_id`).
    What-if orders (``order.whatIf``) are answered with one openOrder carrying the
    margins and the commission and are not kept (their ids count as used).

Matching (at placement, at modification and on every market step; only instruments
with working orders are looked at)
    Quotes come from ``gateway.quote_for(conId) -> (bid, ask, bid_size, ask_size, last)``
    (stocks and options).
    A marketable order (BUY at or above the ask, SELL at or below the bid, MKT, an
    elected STP) fills at the opposite side up to its displayed size, the rest rests;
    each step it takes up to the displayed size again while it stays marketable. A
    resting limit order that the market reaches (the ask falls to or below a BUY limit,
    the bid rises to or above a SELL limit) fills at its limit price. Orders on the same
    instrument share the displayed size within a step. IOC cancels what did not fill at
    once. Stops are elected by the last price for stocks and the bid/ask for options
    (IB's default trigger method 0); trigger methods 1/4 (bid/ask), 2/3 (last), 7 (last
    or bid/ask) and 8 (midpoint) are honoured, "double" variants as single.
    A combo fills all-or-nothing, every leg at once at its quote (the ask of a leg bought,
    the bid of a leg sold), when every leg shows the size needed and the net price is at
    or better than the limit. **Net price convention** (dollars per share):
    ``sum(+/- ratio x leg price x leg multiplier) / M`` with + for legs bought by a BUY of
    the combo, and M = 100 (the option multiplier) when a leg is an option, else 1: a
    conversion (BUY 100 stock, SELL 1 call, BUY 1 put) is priced ``S - C + P`` and a box
    ``C(K1) - C(K2) + P(K2) - P(K1)``; one combo unit costs M x the net price.

Executions
    execDetails (11) and commissionReport (59) go to the placing client as they happen:
    execId unique (``xxxxxxxx.xxxxxxxx.01.01``), the order's permId and orderRef, time in
    exchange time (``yyyymmdd hh:mm:ss US/Eastern``), exchange (ISLAND, NYSE, ARCA;
    CBOE for options), side BOT/SLD, cumQty and avgPrice. A combo reports one execution
    for the BAG (net price, no commission report) and one per leg, as IB does.
    Commissions: IBKR Pro Fixed (:mod:`desk.domain.commission`, the desk ticket's rule):
    each execution pays the order's commission so far minus what it had paid, so the
    minimum is paid once per order (per leg of a combo). Then openOrder
    (when the order is done) and orderStatus. Cancels answer orderStatus ``Cancelled``
    and error 202; reqGlobalCancel cancels every working order of every client.

Accounts (:mod:`desk.sim.account`, streamed by :mod:`desk.sim.account_feed`)
    reqPositions streams position (61) rows and reqAccountUpdates updatePortfolio (7)
    rows of the traded contracts with every fill; account values (6), account summary
    rows (63) and pnl / pnlSingle (94/95) follow ``feed.coalesce_interval`` (50 ms) after a
    fill, once for a burst of fills. Periodically, account values and the portfolio go
    out every ``account_interval`` seconds (3 s; IB: 3 minutes) and P&L every
    ``pnl_interval`` (1 s, as IB) while subscribed. P&L goes out first and with every
    batch of account values, computed at the same marks (so NetLiq and the daily P&L a
    client holds are of one instant when the account values arrive). During an outage
    (1100) no account data goes out; after a 1101 the account subscriptions are gone
    (:meth:`OrderEngine.drop_account_subscriptions`).

Market hours
    The simulated market is always open (orders work around the clock) unless the
    gateway is created with ``market_hours=True``: then orders work in the sessions of
    the desk's exchange calendar (:func:`desk.domain.calendar.nyse_calendar`: NYSE
    sessions, holidays and 13:00 ET half days) at the gateway's clock, 09:30 ET to the
    close, or with ``outsideRth`` 04:00 ET to 4 hours after the close (IB's extended
    hours). Orders entered outside (after the close, on a weekend or a holiday) stay
    ``PreSubmitted`` until the next open, IOC orders are cancelled, and DAY orders are
    cancelled at the close of the session they belong to (the next one when entered
    while closed). :meth:`OrderEngine.end_of_day` cancels DAY orders and starts a new
    P&L day by hand.
"""

from __future__ import annotations

import bisect
import copy
import logging
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from desk.domain.calendar import NEW_YORK, exchange_date, nyse_calendar
from desk.domain.commission import IBKR_FIXED, Traded
from desk.sim import journal
from desk.sim import messages as m
from desk.sim.account import SimAccount
from desk.sim.contracts import ContractQuery, resolve
from desk.sim.exercise import EXERCISE_OPTIONS, Exercises
from desk.sim.messages import Code, In
from desk.sim.order_types import LIMIT_TYPES, TRIGGERED_TYPES, OrderTypeError, OrderTypes
from desk.sim.orders import (
    COMBO_TICK,
    ORDER_TYPES,
    TIFS,
    Execution,
    Leg,
    OrderRequest,
    SimOrder,
    Status,
    Tradable,
    WhatIfState,
    commission_report,
    completed_order,
    exec_details,
    on_grid,
    open_order,
    order_status,
    parse_place_order,
)
from desk.sim.account_feed import AccountFeed
from desk.sim.ports import Client, Host, Quote5

__all__ = ["OrderEngine", "Instruments", "Quote5"]

log = logging.getLogger("desk.sim.orders")

DUPLICATE_ORDER_ID = 103
ORDER_CANCELLED = 202
CANNOT_CANCEL = 10148
_EPS = 1e-9


class Reject(Exception):
    """An order the gateway refuses; the message is IB's ``reason`` text."""


# --- instruments and quotes -------------------------------------------------------------


class Instruments:
    """The engine's view of instruments: definitions and quotes by conId, from
    ``gateway.contract_for(conId)`` and ``gateway.quote_for(conId)`` (stocks and options;
    a replayed day plugs in there too)."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        self._cache: dict[int, Tradable | None] = {}

    def contract(self, con_id: int) -> Tradable | None:
        """The tradable contract with this conId, or ``None`` if unknown."""
        try:
            return self._cache[con_id]
        except KeyError:
            pass
        gw = self.gateway
        d: Any = gw.contract_for(con_id)
        t = Tradable.from_definition(d) if d is not None else None
        if t is not None and t.symbol not in gw.market:  # stock or option's underlying
            t = None
        if t is not None:  # unknown ids are not cached: a source may list them later
            self._cache[con_id] = t
        return t

    def resolve(self, q: ContractQuery) -> Tradable | None:
        """The contract an order's contract fields designate (conId wins; stocks also by
        symbol), or ``None``. Other non-empty fields must agree with the definition."""
        if q.con_id:
            t = self.contract(q.con_id)
            if t is None:
                return None
            if q.symbol and q.symbol.upper() != t.symbol:
                return None
            if q.sec_type and q.sec_type != t.sec_type:
                return None
            if t.is_option and q.right and q.right[0].upper() != t.right:
                return None
            if t.is_option and q.strike and abs(q.strike - t.strike) > 1e-6:
                return None
            return t
        if q.sec_type in ("", "STK"):
            found = resolve(q)
            if found is not None:
                return self.contract(found[0].con_id)
        if q.sec_type == "OPT":  # by terms: must designate exactly one listed option
            options = self.gateway.options.find(q) or []
            if len(options) == 1:
                return self.contract(options[0].con_id)
        return None

    def quote(self, con_id: int) -> Quote5 | None:
        """``(bid, ask, bid_size, ask_size, last)`` now, or ``None`` (``last`` may be
        NaN, a side without a quote 0)."""
        return self.gateway.quote_for(con_id)

    def mark(self, con_id: int) -> float | None:
        """Mark price, dollars per share: a stock's last trade (else its mid), an
        option's mid (else its last); ``None`` without a price."""
        q = self.quote(con_id)
        if q is None:
            return None
        bid, ask, _bs, _as, last = q
        mid = (bid + ask) / 2.0 if bid > 0 and ask > 0 else math.nan
        t = self.contract(con_id)
        if t is not None and t.is_option:
            return mid if mid == mid else (last if last > 0 else None)
        if last > 0:
            return last
        return mid if mid == mid else None


class _Book:
    """The working single-leg orders of one instrument: limit orders by price then time
    (BUY limits highest first, SELL limits lowest first), so a market step only visits
    the orders its quote can reach; every other type (MKT, stops, held orders) is
    checked each step. ``hot`` holds the orders marketable at their last check."""

    __slots__ = ("buys", "sells", "other", "hot")

    def __init__(self) -> None:
        self.buys: list[SimOrder] = []
        self.sells: list[SimOrder] = []
        self.other: list[SimOrder] = []
        self.hot: set[SimOrder] = set()

    def _list(self, order: SimOrder) -> list[SimOrder]:
        if order.order_type != "LMT":
            return self.other
        return self.buys if order.action == "BUY" else self.sells

    def add(self, order: SimOrder) -> None:
        lst = self._list(order)
        if lst is self.other:
            lst.append(order)
            return
        limit = order.lmt_price
        assert limit is not None
        sign = -1.0 if lst is self.buys else 1.0
        bisect.insort(lst, order, key=lambda o: (sign * (o.lmt_price or 0.0), o.perm_id))

    def remove(self, order: SimOrder) -> None:
        self.hot.discard(order)
        for lst in (self.buys, self.sells, self.other):
            if order in lst:
                lst.remove(order)
                return

    def __bool__(self) -> bool:
        return bool(self.buys or self.sells or self.other)

    def reachable(self, bid: float, ask: float) -> list[SimOrder]:
        """Orders the quote may fill, in priority order (limits then the others)."""
        out: list[SimOrder] = []
        if ask > 0:
            for o in self.buys:
                if o.lmt_price is None or o.lmt_price < ask - _EPS:
                    break
                out.append(o)
        if bid > 0:
            for o in self.sells:
                if o.lmt_price is None or o.lmt_price > bid + _EPS:
                    break
                out.append(o)
        if self.hot:  # orders that were marketable and no longer are
            reach = set(out)
            for o in [o for o in self.hot if o not in reach and o.order_type == "LMT"]:
                o.marketable = False
                self.hot.discard(o)
        out.extend(self.other)
        return out


# --- the engine -------------------------------------------------------------------------


class OrderEngine:
    """Orders, matching, executions and account streaming of one gateway.

    ``market_hours``: see the module docstring (default False: always open).
    ``pnl_interval`` / ``account_interval``: seconds between periodic reqPnL(Single)
    and account update pushes (fills push at once).
    """

    def __init__(self, gateway: Host, *, market_hours: bool = False,
                 pnl_interval: float = 1.0, account_interval: float = 3.0) -> None:
        self.gateway = gateway
        self.instruments = Instruments(gateway)
        #: brackets, OCA groups, trailing / touched / pegged / auction types, GTD, FOK
        self.types = OrderTypes(self)
        #: exerciseOptions and expiry settlement
        self.exercises = Exercises(self)
        self.market_hours = market_hours
        #: every order ever accepted, by (clientId, orderId)
        self.orders: dict[tuple[int, int], SimOrder] = {}
        self._by_perm: dict[int, SimOrder] = {}
        #: working orders by permId, in placement order
        self._open: dict[int, SimOrder] = {}
        #: working single-leg orders by conId; working combos
        self._working: dict[int, _Book] = {}
        self._combos: list[SimOrder] = []
        #: executions of the day, in order
        self.executions: list[Execution] = []
        #: orders done (filled or cancelled), in completion order
        self.completed: list[SimOrder] = []
        self._out: dict[Client, list[bytes]] = {}
        #: positions, account values and P&L streamed to the sessions
        self.feed = AccountFeed(gateway, self.instruments, self.send_session, self._flush,
                                pnl_interval=pnl_interval, account_interval=account_interval)
        # ids grow with the wall clock, not the gateway's (a replay's) clock, so that a
        # restart without a state file does not repeat them (desk.sim.journal.clock_id)
        seed = journal.clock_id()
        self._next_perm = seed
        self._exec_prefix = f"{seed:08x}"
        self._exec_seq = 0
        #: the --state journal (open_state), else None
        self.journal: journal.StateStore | None = None
        self._was_open: bool | None = None
        #: counters since start
        self.fills = 0
        self.rejections = 0

    # --- public API ----------------------------------------------------------------------

    def handlers(self, session: Client) -> dict[int, Callable[[list[str]], None]]:
        """The session's handlers of order, execution and account requests."""
        table: dict[int, Callable[[Client, list[str]], None]] = {
            In.PLACE_ORDER: self._place_order,
            In.CANCEL_ORDER: self._cancel_order,
            In.REQ_GLOBAL_CANCEL: self._global_cancel,
            In.REQ_OPEN_ORDERS: self._req_open_orders,
            In.REQ_ALL_OPEN_ORDERS: self._req_all_open_orders,
            In.REQ_COMPLETED_ORDERS: self._req_completed_orders,
            In.REQ_EXECUTIONS: self._req_executions,
            EXERCISE_OPTIONS: self.exercises.handle,
            **self.feed.handlers(),
        }

        def bind(fn: Callable[[Client, list[str]], None]) -> Callable[[list[str]], None]:
            def handler(fields: list[str]) -> None:
                try:
                    fn(session, fields)
                finally:
                    self._flush()
            return handler

        return {int(k): bind(fn) for k, fn in table.items()}

    def session_closed(self, session: Client) -> None:
        """Forget a closed connection's subscriptions (its orders stay)."""
        self.feed.session_closed(session)
        self._out.pop(session, None)

    def on_step(self) -> None:
        """Run after every market step: expire/open by market hours, match working
        orders against the new quotes, push periodic P&L and account updates."""
        try:
            if self.market_hours:
                self._check_hours()
            if self._open:
                self.types.on_step()
            self.exercises.on_step()
            if self._working or self._combos:
                self._match_all()
            if self.feed.subscribed:
                self.feed.periodic()
        finally:
            if self._out or self.feed.dirty or (self.journal is not None
                                            and self.journal.pending):
                self._flush()

    def drop_account_subscriptions(self) -> int:
        """IB's 1101: every client's account subscriptions are gone
        (:meth:`desk.sim.account_feed.AccountFeed.drop_account_subscriptions`)."""
        return self.feed.drop_account_subscriptions()

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Working orders (of one client, or all), in placement order."""
        return [o for o in self._open.values()
                if client_id is None or o.client_id == client_id]

    def cancel_all(self) -> int:
        """Cancel every working order of every client (reqGlobalCancel); returns how many."""
        n = 0
        for o in self.open_orders():
            self.cancel(o, "")
            n += 1
        self._flush()
        return n

    # --- persistence (desk.sim.journal) ---------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-able image of everything the engine keeps: accounts, every order
        (working and done), the day's executions, and the id counters
        (:func:`desk.sim.journal.image`)."""
        return journal.image(self.gateway.accounts, self.orders.values(), self.completed,
                             self.executions, self._counters())

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
        self._next_perm = c.next_perm
        self._exec_prefix = c.exec_prefix
        self._exec_seq = c.exec_seq
        gw.restore_order_ids(c.next_order_ids)

    def open_state(self, path: str | os.PathLike[str]) -> bool:
        """Read ``path`` (snapshot) and ``path.journal`` back, then journal every change
        there durably until :meth:`close_state` (see :mod:`desk.sim.journal`). Returns
        whether there was a state to restore. ``ValueError`` naming the file (and line)
        if it cannot be read back or written, or another simulator uses it."""
        store = journal.StateStore(path)
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
            log.info("simulator state loaded from %s (%d orders, %d working)", path,
                     len(self.orders), len(self._open))
        return state is not None

    def close_state(self) -> None:
        """Commit what is pending, write a last snapshot and stop journaling."""
        store, self.journal = self.journal, None
        if store is not None:
            self._commit(store)
            store.close()

    def mark_dirty(self, account_id: str, *con_ids: int) -> None:
        """These positions of ``account_id`` changed: their portfolio and P&L updates go
        out at the end of the step."""
        self.feed.dirty.setdefault(account_id, set()).update(con_ids)

    def touch(self, order: SimOrder) -> None:
        """``order`` changed: it goes into the next journal batch (with ``--state``)."""
        if self.journal is not None:
            self.journal.touch(order)

    def _commit(self, store: journal.StateStore | None = None) -> None:
        """Journal (and fsync) what changed since the last commit: the orders touched,
        new executions and completed orders, the accounts fills changed, the counters.
        Runs before any reply about these changes is sent (:meth:`_flush`)."""
        store = store or self.journal
        if store is None:
            return
        gw = self.gateway
        accounts = [a for a in (gw.account(i) for i in self.feed.dirty if i) if a is not None]
        store.commit(self.executions, self.completed, accounts, self._counters())

    def _counters(self) -> journal.Counters:
        return journal.Counters(self._next_perm, self._exec_prefix, self._exec_seq,
                                self.gateway.order_ids())

    def end_of_day(self) -> int:
        """Close the trading day: cancel DAY orders, forget the day's executions and
        completed orders, start a new P&L day for every account. Returns how many orders
        were cancelled."""
        n = 0
        for o in self.open_orders():
            if o.tif == "DAY":
                self.cancel(o, "Cancelled by System: end of day", system=True)
                n += 1
        if self.journal is not None:  # the cancels belong to the day that ends
            self._commit()
            self.journal.new_day()
        self.executions.clear()
        self.completed.clear()
        mark = self.instruments.mark
        for acc in self.gateway.accounts:
            acc.start_day(mark)
            self.feed.dirty.setdefault(acc.account_id, set())
        self._flush()
        return n

    # --- placeOrder --------------------------------------------------------------------

    def _place_order(self, session: Client, fields: list[str]) -> None:
        client_id = session.client_id or 0
        try:
            req = parse_place_order(fields, session.version)
        except (ValueError, IndexError) as e:
            try:
                oid = int(fields[1])
            except (IndexError, ValueError):
                oid = -1
            self._reject_msg(session, oid, f"malformed placeOrder: {e}")
            return
        gw = self.gateway
        key = (client_id, req.order_id)
        existing = self.orders.get(key)
        if req.what_if:
            gw.note_order_id(client_id, req.order_id)
            self._what_if(session, req)
            return
        if existing is not None:
            if existing.is_done:
                self._duplicate(session, req.order_id)
            else:
                self._modify(session, existing, req)
            return
        if req.order_id <= 0 or req.order_id < gw.next_order_id(client_id):
            self._duplicate(session, req.order_id)
            return
        gw.note_order_id(client_id, req.order_id)
        try:
            account, contract, legs = self._validate(req, client_id)
            self._check_risk(account, req, contract, legs, None)
        except Reject as e:
            self._reject_msg(session, req.order_id, str(e))
            return
        now = gw.clock.now()
        order = SimOrder(client_id=client_id, order_id=req.order_id,
                         perm_id=self._new_perm(), account=account.account_id, request=req,
                         contract=contract, legs=legs, placed_at=now)
        if self.market_hours and order.tif == "DAY":
            try:  # the close of the session the order belongs to (the next one if closed)
                order.expires_at = nyse_calendar().session_close(now, req.outside_rth)
            except ValueError as e:  # the clock is outside the exchange calendar's years
                self._reject_msg(session, req.order_id, str(e))
                return
        self.orders[key] = order
        self._by_perm[order.perm_id] = order
        self.touch(order)
        log.info("order %d/%d accepted: %s (permId %d, ref %r)", client_id, req.order_id,
                 order.describe(), order.perm_id, req.order_ref)
        self.send_client(client_id, open_order(order) + order_status(order))
        self._index(order)
        if self.types.accept(order):
            self.activate(order)

    def activate(self, order: SimOrder) -> None:
        """After placement or modification: submit if the market is open, match once
        (aggressively), cancel the rest of an IOC."""
        if order.held or order.is_done:
            return
        open_now = self._open_for(order)
        if order.tif == "FOK" and (not open_now or not self.types.fok_fillable(order)):
            self.cancel(order, "", system=True, notify_error=False)
            return
        if open_now:
            if self.types.waits(order):
                self._try_trigger(order)
            elif order.status == Status.PRE_SUBMITTED:
                self.set_status(order, Status.SUBMITTED)
            if (not order.is_done and order.status == Status.SUBMITTED
                    and self.types.continuous(order)):
                self._match_one(order, aggressive=True, consumed={})
            self.types.settle()
        if order.tif in ("IOC", "FOK") and not order.is_done:
            self.cancel(order, "", system=True, notify_error=False)

    def _duplicate(self, session: Client, order_id: int) -> None:
        self.rejections += 1
        log.info("order id %d of client %s rejected: duplicate", order_id, session.client_id)
        self.send_session(session, m.error(order_id, DUPLICATE_ORDER_ID, "Duplicate order id"))

    def _reject_msg(self, session: Client, order_id: int, reason: str) -> None:
        self.rejections += 1
        log.info("order %s/%d rejected: %s", session.client_id, order_id, reason)
        self.send_session(session, m.error(order_id, Code.ORDER_REJECTED, None, reason))

    def _validate(self, req: OrderRequest, client_id: int = 0
                  ) -> tuple[SimAccount, Tradable | None, tuple[Leg, ...]]:
        """Check a request; return (account, contract or None, combo legs) or raise
        :class:`Reject` with the reason."""
        if req.unsupported:
            raise Reject("the simulator does not support " + ", ".join(req.unsupported))
        if req.action not in ("BUY", "SELL"):
            raise Reject(f"action must be BUY or SELL, got {req.action!r}")
        q = req.quantity
        if not (q > 0) or math.isinf(q):
            raise Reject(f"order quantity must be positive, got {q:g}")
        if q != int(q):
            raise Reject(f"fractional quantity {q:g} is not supported")
        if req.order_type not in ORDER_TYPES:
            raise Reject(f"order type {req.order_type!r} is not supported "
                         f"({', '.join(sorted(ORDER_TYPES))})")
        tif = req.tif or "DAY"
        if tif not in TIFS:
            raise Reject(f"time in force {tif!r} is not supported "
                         f"({', '.join(sorted(TIFS))})")
        if req.order_type in ("LMT", "STP LMT") and req.lmt_price is None:
            raise Reject(f"{req.order_type} order needs a limit price")
        if req.order_type in ("STP", "STP LMT") and req.aux_price is None:
            raise Reject(f"{req.order_type} order needs a stop price (auxPrice)")
        account = self.gateway.account(req.account)
        if account is None:
            raise Reject(f"account {req.account!r} is not managed by this gateway")
        try:
            self.types.check(req, None, client_id)
        except OrderTypeError as e:
            raise Reject(str(e)) from None
        today = exchange_date(self.gateway.clock.now()).strftime("%Y%m%d")
        if req.is_combo:
            legs = self._combo_legs(req, today)
            if req.order_type not in ("LMT", "MKT"):
                raise Reject("combo orders must be LMT (net limit price) or MKT")
            if req.lmt_price is not None and req.order_type == "LMT":
                if not math.isfinite(req.lmt_price) or not on_grid(req.lmt_price, COMBO_TICK):
                    raise Reject(f"combo limit price {req.lmt_price:g} is not a multiple "
                                 f"of the minimum tick {COMBO_TICK:g}")
            return account, None, legs
        contract = self.instruments.resolve(req.contract)
        if contract is None:
            raise Reject(f"unknown contract: {req.contract.describe()} (no security "
                         "definition in the simulator)")
        if contract.is_option and contract.expiry < today:
            raise Reject(f"option {contract.describe()} has expired")
        for name, price in self.types.priced(req):
            if not math.isfinite(price) or price <= 0:
                raise Reject(f"{name} price must be positive, got {price:g}")
            if not contract.on_grid(price):
                raise Reject(f"{name} price {price:g} does not conform to the minimum "
                             f"price variation {contract.tick_for(price):g} of "
                             f"{contract.describe()}")
        return account, contract, ()

    def _combo_legs(self, req: OrderRequest, today: str) -> tuple[Leg, ...]:
        n = len(req.legs)
        if not 2 <= n <= 4:
            raise Reject(f"combo orders need 2 to 4 legs, got {n}")
        legs = []
        seen: set[int] = set()
        for i, leg in enumerate(req.legs, 1):
            t = self.instruments.contract(leg.con_id)
            if t is None:
                raise Reject(f"unknown contract in combo leg {i}: conId {leg.con_id}")
            if t.is_option and t.expiry < today:
                raise Reject(f"combo leg {i}: option {t.describe()} has expired")
            if leg.ratio <= 0:
                raise Reject(f"combo leg {i}: ratio must be positive, got {leg.ratio}")
            if leg.action not in ("BUY", "SELL"):
                raise Reject(f"combo leg {i}: action must be BUY or SELL, got {leg.action!r}")
            if leg.con_id in seen:
                raise Reject(f"combo leg {i}: conId {leg.con_id} appears twice")
            seen.add(leg.con_id)
            legs.append(Leg(t, leg.ratio, leg.action))
        return tuple(legs)

    def _trade_legs(self, req: OrderRequest, contract: Tradable | None,
                    legs: tuple[Leg, ...], quantity: float
                    ) -> list[tuple[Tradable, float, float]] | None:
        """``(contract, signed quantity, estimated price)`` of each instrument an order
        of ``quantity`` would trade, priced at the limit (single LMT), else the quote
        side it would take, else the mark; ``None`` if no price is known."""
        out = []
        parts = ([(contract, 1 if req.action == "BUY" else -1, 1)] if contract is not None
                 else [(lg.contract, lg.side(req.action), lg.ratio) for lg in legs])
        for c, side, ratio in parts:
            price = None
            if contract is not None and req.order_type in ("LMT", "STP LMT"):
                price = req.lmt_price
            else:
                q = self.instruments.quote(c.con_id)
                if q is not None:
                    p = q[1] if side > 0 else q[0]
                    price = p if p > 0 else (q[4] if q[4] > 0 else None)
                if price is None:
                    price = self.instruments.mark(c.con_id)
            if price is None:
                return None
            out.append((c, side * ratio * quantity, float(price)))
        return out

    def _simulate(self, account: SimAccount, trades: list[tuple[Tradable, float, float]]
                  ) -> tuple[SimAccount, float]:
        """A copy of ``account`` after ``trades``, and the commission they cost."""
        after = copy.deepcopy(account)
        total = 0.0
        for c, q, price in trades:
            fee = IBKR_FIXED.for_instrument(c.sec_type, abs(q), price)
            total += fee
            after.apply_fill(c, q, price, fee)
        return after, total

    def _check_risk(self, account: SimAccount, req: OrderRequest, contract: Tradable | None,
                    legs: tuple[Leg, ...], replacing: SimOrder | None) -> None:
        """Short-sale availability and Reg T initial margin after the trade."""
        qty = req.quantity - (replacing.filled if replacing is not None else 0.0)
        parts = ([(contract, 1 if req.action == "BUY" else -1, 1)] if contract is not None
                 else [(lg.contract, lg.side(req.action), lg.ratio) for lg in legs])
        for c, side, ratio in parts:
            if side > 0 or c.is_option or c.shortable:
                continue
            held = account.position_of(c.con_id)
            pending = sum(self._pending_sell(o, c.con_id) for o in self.open_orders()
                          if o.account == account.account_id and o is not replacing)
            if qty * ratio > held - pending + _EPS:
                raise Reject(f"short sale not allowed: {c.symbol} is hard to borrow (no "
                             f"shares available to borrow); position {held:g}, "
                             f"selling {qty * ratio:g}")
        trades = self._trade_legs(req, contract, legs, qty)
        if trades is None:
            return
        mark = self.instruments.mark
        before = account.snapshot(mark)
        after_acc, _fee = self._simulate(account, trades)
        after = after_acc.snapshot(mark)
        if after.initial > after.equity_with_loan + _EPS and after.initial > before.initial:
            raise Reject(
                "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
                f"EQUITY WITH LOAN VALUE [{after.equity_with_loan:.2f} USD] MUST EXCEED THE "
                f"INITIAL MARGIN [{after.initial:.2f} USD]")

    @staticmethod
    def _pending_sell(order: SimOrder, con_id: int) -> float:
        if order.contract is not None:
            if order.contract.con_id == con_id and order.action == "SELL":
                return order.remaining
            return 0.0
        return sum(order.remaining * lg.ratio for lg in order.legs
                   if lg.contract.con_id == con_id and lg.side(order.action) < 0)

    def _what_if(self, session: Client, req: OrderRequest) -> None:
        try:
            account, contract, legs = self._validate(req)
        except Reject as e:
            self._reject_msg(session, req.order_id, str(e))
            return
        trades = self._trade_legs(req, contract, legs, req.quantity)
        if trades is None:
            self._reject_msg(session, req.order_id,
                             "no price to compute the margin of this order")
            return
        mark = self.instruments.mark
        before = account.snapshot(mark)
        after_acc, fee = self._simulate(account, trades)
        after = after_acc.snapshot(mark)
        warning = ""
        if after.initial > after.equity_with_loan + _EPS and after.initial > before.initial:
            warning = ("insufficient equity: equity with loan value "
                       f"{after.equity_with_loan:.2f} below initial margin {after.initial:.2f}")
        state = WhatIfState(before.initial, before.maintenance, before.equity_with_loan,
                            after.initial, after.maintenance, after.equity_with_loan,
                            round(fee, 4), warning)
        probe = SimOrder(client_id=session.client_id or 0, order_id=req.order_id,
                         perm_id=0, account=account.account_id, request=req,
                         contract=contract, legs=legs)
        log.info("what-if %s: initial margin %.2f -> %.2f, commission %.2f",
                 probe.describe(), before.initial, after.initial, fee)
        self.send_session(session, open_order(probe, Status.PRE_SUBMITTED, state))

    def _modify(self, session: Client, order: SimOrder, req: OrderRequest) -> None:
        try:
            account, contract, legs = self._validate(req, order.client_id)
            if account.account_id != order.account:
                raise Reject("an order's account cannot be changed")
            old_ids = order.con_ids
            new_ids = (contract.con_id,) if contract is not None else tuple(
                lg.contract.con_id for lg in legs)
            if new_ids != old_ids or (legs and legs != order.legs):
                raise Reject("an order's contract cannot be changed")
            if req.action != order.action:
                raise Reject("an order's side (action) cannot be changed")
            if req.quantity < order.filled + 1:
                raise Reject(f"quantity {req.quantity:g} must exceed the filled "
                             f"{order.filled:g}")
            self._check_risk(account, req, contract, legs, order)
        except Reject as e:
            self._reject_msg(session, req.order_id, f"modification rejected: {e}")
            # the order is still working at the gateway: restate it for the client
            self.send_client(order.client_id, open_order(order) + order_status(order))
            return
        self._unindex(order)
        was_stop = order.order_type in TRIGGERED_TYPES
        order.request = req
        self.touch(order)
        if order.order_type in TRIGGERED_TYPES:
            if not was_stop or not order.triggered:
                order.triggered = False
        order.marketable = False
        self.types.modified(order)
        log.info("order %d/%d modified: %s", order.client_id, order.order_id, order.describe())
        self.send_client(order.client_id, open_order(order) + order_status(order))
        self._index(order)
        self.activate(order)

    # --- cancels -----------------------------------------------------------------------

    def _cancel_order(self, session: Client, fields: list[str]) -> None:
        # 4, version 1, orderId, manualOrderCancelTime
        order_id = int(fields[2])
        order = self.orders.get((session.client_id or 0, order_id))
        if order is None:
            self.send_session(session, m.error(order_id, Code.ORDER_TO_CANCEL_NOT_FOUND,
                                                None, order_id))
            return
        if order.is_done:
            self.send_session(session, m.error(
                order_id, CANNOT_CANCEL,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {order.status}."))
            return
        self.cancel(order, "")

    def _global_cancel(self, session: Client, fields: list[str]) -> None:
        log.info("global cancel from client %s", session.client_id)
        for o in self.open_orders():
            self.cancel(o, "")

    def cancel(self, order: SimOrder, reason: str, *, system: bool = False,
                notify_error: bool = True) -> None:
        order.status = Status.CANCELLED
        self.touch(order)
        self._unindex(order)
        order.done_at = self.gateway.clock.now()
        order.completed_status = reason or ("Cancelled by System" if system
                                            else "Cancelled by Trader")
        self.completed.append(order)
        log.info("order %d/%d cancelled (%s): filled %g of %g", order.client_id,
                 order.order_id, order.completed_status, order.filled, order.quantity)
        out = order_status(order)
        if notify_error:
            out += m.error(order.order_id, ORDER_CANCELLED, f"Order Canceled - reason:{reason}")
        self.send_client(order.client_id, out)
        self.types.on_cancel(order)

    # --- matching ----------------------------------------------------------------------

    def _index(self, order: SimOrder) -> None:
        self._open[order.perm_id] = order
        if order.is_combo:
            self._combos.append(order)
        else:
            assert order.contract is not None
            book = self._working.get(order.contract.con_id)
            if book is None:
                book = self._working[order.contract.con_id] = _Book()
            book.add(order)

    def _unindex(self, order: SimOrder) -> None:
        if order.is_done:
            self._open.pop(order.perm_id, None)
        if order.is_combo:
            if order in self._combos:
                self._combos.remove(order)
            return
        assert order.contract is not None
        book = self._working.get(order.contract.con_id)
        if book is not None:
            book.remove(order)
            if not book:
                del self._working[order.contract.con_id]

    def _open_for(self, order: SimOrder) -> bool:
        if not self.market_hours:
            return True
        return nyse_calendar().is_open(self.gateway.clock.now(), order.request.outside_rth)

    def _check_hours(self) -> None:
        now = self.gateway.clock.now()
        for o in self.open_orders():
            if o.expires_at is not None and now >= o.expires_at:
                self.cancel(o, "Cancelled by System: DAY order expired at the close",
                             system=True)
            elif o.status == Status.PRE_SUBMITTED and self._open_for(o) and not o.held:
                if not self.types.waits(o):
                    self.set_status(o, Status.SUBMITTED)

    def _match_all(self) -> None:
        consumed: dict[tuple[int, int], float] = {}
        if self.market_hours:
            now = self.gateway.clock.now()
            cal = nyse_calendar()
            open_now = {False: cal.is_open(now, False), True: cal.is_open(now, True)}
        for con_id in list(self._working):
            book = self._working.get(con_id)
            if not book:
                continue
            quote = self.instruments.quote(con_id)
            if quote is None:
                continue
            for order in book.reachable(quote[0], quote[1]):
                if order.is_done:
                    continue
                if self.market_hours and not open_now[order.request.outside_rth]:
                    continue
                self._match_single(order, quote, False, consumed)
        for order in list(self._combos):
            if not order.is_done and order.status == Status.SUBMITTED and self._open_for(order):
                self._match_combo(order, False, consumed)
        self.types.settle()

    def _match_one(self, order: SimOrder, aggressive: bool,
                   consumed: dict[tuple[int, int], float]) -> None:
        if order.is_combo:
            self._match_combo(order, aggressive, consumed)
            return
        assert order.contract is not None
        quote = self.instruments.quote(order.contract.con_id)
        if quote is not None:
            self._match_single(order, quote, aggressive, consumed)

    def _elected(self, order: SimOrder, quote: Quote5) -> bool:
        return self.types.elected(order, quote)

    def _try_trigger(self, order: SimOrder) -> bool:
        assert order.contract is not None
        quote = self.instruments.quote(order.contract.con_id)
        if quote is None or not self._elected(order, quote):
            return False
        order.triggered = True
        log.info("order %d/%d: %s %g elected", order.client_id, order.order_id,
                 order.order_type, order.stop_price or order.aux_price)
        self.set_status(order, Status.SUBMITTED)
        return True

    def set_status(self, order: SimOrder, status: str) -> None:
        self.touch(order)  # also after a stop's election (triggered)
        if order.status == status:
            return
        order.status = status
        self.send_client(order.client_id, open_order(order) + order_status(order))

    def _match_single(self, order: SimOrder, quote: Quote5, aggressive: bool,
                      consumed: dict[tuple[int, int], float]) -> None:
        contract = order.contract
        assert contract is not None
        otype = order.order_type
        if not self.types.continuous(order):
            return
        if self.types.waits(order):
            if not self._elected(order, quote):
                return
            order.triggered = True
            self.set_status(order, Status.SUBMITTED)
            aggressive = True
        elif order.status != Status.SUBMITTED:
            return
        bid, ask, bid_size, ask_size, _last = quote
        buy = order.action == "BUY"
        side_price, side_size = (ask, ask_size) if buy else (bid, bid_size)
        if not (side_price > 0) or not (side_size > 0):
            return
        key = (contract.con_id, 1 if buy else -1)
        avail = side_size - consumed.get(key, 0.0)
        if avail < 1:
            return
        if otype in LIMIT_TYPES:
            limit = self.types.limit_of(order, quote)
            if limit is None:
                return
            crosses = side_price <= limit + _EPS if buy else side_price >= limit - _EPS
            if not crosses:
                order.marketable = False
                return
            price = side_price if (aggressive or order.marketable) else limit
        else:
            price = side_price
        if not order.marketable:
            order.marketable = True
            book = self._working.get(contract.con_id)
            if book is not None:
                book.hot.add(order)
        qty = float(math.floor(min(order.remaining, avail)))
        if qty <= 0:
            return
        consumed[key] = consumed.get(key, 0.0) + qty
        liquidity = 2 if price == side_price else 1
        self.fill_single(order, qty, price, liquidity)

    def _match_combo(self, order: SimOrder, aggressive: bool,
                     consumed: dict[tuple[int, int], float]) -> None:
        units = order.remaining
        if units <= 0:
            return
        fills: list[tuple[Leg, int, float, float, tuple[int, int]]] = []
        cash = 0.0  # dollars paid per combo unit (negative: received)
        for leg in order.legs:
            quote = self.instruments.quote(leg.contract.con_id)
            if quote is None:
                return
            side = leg.side(order.action)
            price, size = (quote[1], quote[3]) if side > 0 else (quote[0], quote[2])
            if not (price > 0):
                return
            key = (leg.contract.con_id, side)
            need = units * leg.ratio
            if size - consumed.get(key, 0.0) < need - _EPS:
                return
            cash += side * leg.ratio * price * leg.contract.multiplier
            fills.append((leg, side, price, need, key))
        scale = self._combo_multiplier(order.legs)
        net = cash / scale if order.action == "BUY" else -cash / scale
        if order.order_type == "LMT":
            limit = order.lmt_price
            assert limit is not None
            ok = net <= limit + _EPS if order.action == "BUY" else net >= limit - _EPS
            if not ok:
                return
        for _leg, _side, _price, need, key in fills:
            consumed[key] = consumed.get(key, 0.0) + need
        self._fill_combo(order, units, round(net, 6), fills)

    @staticmethod
    def _combo_multiplier(legs: tuple[Leg, ...]) -> int:
        return max((lg.contract.multiplier for lg in legs if lg.contract.is_option), default=1)

    # --- executions ----------------------------------------------------------------------

    def _new_perm(self) -> int:
        p = self._next_perm
        self._next_perm += 1
        return p

    def _exec_id(self) -> str:
        self._exec_seq += 1
        return f"{self._exec_prefix}.{self._exec_seq:08x}.01.01"

    def _book(self, order: SimOrder, contract: Tradable, qty: float, price: float,
              side: int, liquidity: int, now: datetime) -> Execution:
        """Apply one leg's execution to the account and record it."""
        account = self.gateway.account(order.account)
        assert account is not None
        traded, fee = IBKR_FIXED.execution(contract.sec_type, order.traded.get(contract.con_id, Traded()),
                                           qty, price, contract.multiplier)
        new_q, new_v = traded.quantity, traded.value
        order.traded[contract.con_id] = traded
        order.commission += fee
        self.touch(order)
        realized = account.apply_fill(contract, side * qty, price, fee)
        ex = Execution(
            exec_id=self._exec_id(), order=order, contract=contract,
            side="BOT" if side > 0 else "SLD", shares=qty, price=price, cum_qty=new_q,
            avg_price=round(new_v / (new_q * contract.multiplier), 8), time=now,
            commission=fee, realized_pnl=realized, exchange=contract.execution_exchange,
            liquidity=liquidity)
        self.executions.append(ex)
        self.feed.dirty.setdefault(account.account_id, set()).add(contract.con_id)
        self.fills += 1
        return ex

    def fill_single(self, order: SimOrder, qty: float, price: float, liquidity: int) -> None:
        assert order.contract is not None
        now = self.gateway.clock.now()
        side = 1 if order.action == "BUY" else -1
        ex = self._book(order, order.contract, qty, price, side, liquidity, now)
        order.filled += qty
        order.fill_value += qty * price
        order.last_fill_price = price
        log.info("order %d/%d: %s %g %s @ %g (filled %g of %g)", order.client_id,
                 order.order_id, ex.side, qty, order.contract.describe(), price,
                 order.filled, order.quantity)
        out = exec_details(-1, ex) + commission_report(ex)
        out += self.gateway.faults.fill_status(self._after_fill(order, now))  # no-status fault: b""
        self.send_client(order.client_id, out)
        self.types.on_fill(order, qty)

    def _fill_combo(self, order: SimOrder, units: float, net: float,
                    fills: list[tuple[Leg, int, float, float, tuple[int, int]]]) -> None:
        now = self.gateway.clock.now()
        order.filled += units
        order.fill_value += units * net
        order.last_fill_price = net
        q = order.request.contract
        bag = Execution(
            exec_id=self._exec_id(), order=order, contract=None,
            side="BOT" if order.action == "BUY" else "SLD", shares=units, price=net,
            cum_qty=order.filled, avg_price=order.avg_fill_price, time=now, commission=0.0,
            realized_pnl=None, exchange=q.exchange or "SMART")
        self.executions.append(bag)
        out = [exec_details(-1, bag)]
        for leg, side, price, need, _key in fills:
            ex = self._book(order, leg.contract, need, price, side, 2, now)
            out.append(exec_details(-1, ex) + commission_report(ex))
        log.info("combo order %d/%d filled: %s %g @ net %g", order.client_id,
                 order.order_id, order.action, units, net)
        out.append(self.gateway.faults.fill_status(self._after_fill(order, now)))  # no-status fault: b""
        self.send_client(order.client_id, b"".join(out))
        self.types.on_fill(order, units)

    def _after_fill(self, order: SimOrder, now: datetime) -> bytes:
        if order.remaining <= 0:
            order.status = Status.FILLED
            order.done_at = now
            order.completed_status = "Filled"
            self._unindex(order)
            self.completed.append(order)
            return open_order(order) + order_status(order)
        return order_status(order)

    # --- open orders, completed orders, executions ------------------------------------

    def _req_open_orders(self, session: Client, fields: list[str]) -> None:
        out = [open_order(o) + order_status(o) for o in self.open_orders(session.client_id)]
        out.append(m.open_order_end())
        self.send_session(session, b"".join(out))

    def _req_all_open_orders(self, session: Client, fields: list[str]) -> None:
        out = [open_order(o) + order_status(o) for o in self.open_orders()]
        out.append(m.open_order_end())
        self.send_session(session, b"".join(out))

    def _req_completed_orders(self, session: Client, fields: list[str]) -> None:
        out = [completed_order(o) for o in self.completed]
        out.append(m.completed_orders_end())
        self.send_session(session, b"".join(out))

    def _req_executions(self, session: Client, fields: list[str]) -> None:
        # 7, version 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side
        req_id = int(fields[2])
        f = (fields[3:] + [""] * 7)[:7]
        client_id = int(f[0]) if f[0].lstrip("-").isdigit() else 0
        acct, since_text, symbol, sec_type, exchange, side = (
            f[1], f[2], f[3].upper(), f[4].upper(), f[5].upper(), f[6].upper())
        since = _parse_filter_time(since_text)
        out = []
        for ex in self.executions:
            o = ex.order
            c = ex.contract
            if client_id and o.client_id != client_id:
                continue
            if acct and o.account != acct:
                continue
            if since is not None and ex.time < since:
                continue
            sym = c.symbol if c is not None else o.request.contract.symbol.upper()
            st = c.sec_type if c is not None else "BAG"
            if symbol and sym != symbol:
                continue
            if sec_type and st != sec_type:
                continue
            if exchange and ex.exchange != exchange:
                continue
            if side and ex.side != side and not (side in ("BUY", "SELL")
                                                 and ex.side == ("BOT" if side == "BUY" else "SLD")):
                continue
            out.append(exec_details(req_id, ex))
            if c is not None:
                out.append(commission_report(ex))
        out.append(self.gateway.faults.executions_end(session, req_id))  # stuck-executions fault: b""
        self.send_session(session, b"".join(out))

    # --- output ------------------------------------------------------------------------

    def send_client(self, client_id: int, data: bytes) -> None:
        """Queue ``data`` for the connection of ``client_id`` (dropped if it is not
        connected: it will resynchronise through reqOpenOrders / reqExecutions)."""
        session = self.gateway.session_for(client_id)
        if session is not None and data:
            self._out.setdefault(session, []).append(data)

    def send_session(self, session: Client, data: bytes) -> None:
        if data:
            self._out.setdefault(session, []).append(data)

    def _flush(self) -> None:
        self._commit()  # write-ahead: journaled before any client hears of it
        if self.feed.dirty:
            self.feed.push_dirty()
        out, self._out = self._out, {}
        for session, frames in out.items():
            session.send(b"".join(frames))


def _parse_filter_time(text: str) -> datetime | None:
    """ExecutionFilter time: ``yyyymmdd hh:mm:ss`` (exchange time) or with a zone name,
    or ``yyyymmdd-hh:mm:ss`` (UTC); ``None`` if empty or unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        if "-" in text[:9]:
            return datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = text.split()
        t = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
        tz = ZoneInfo(parts[2]) if len(parts) > 2 else NEW_YORK
        return t.replace(tzinfo=tz)
    except (ValueError, KeyError):
        log.warning("execution filter time %r not understood, ignored", text)
        return None
