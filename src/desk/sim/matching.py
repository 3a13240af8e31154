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
    are error 201 ``Order rejected - reason:...`` (:mod:`desk.sim.order_checks`). An order id already used by that client (or lower
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

Accounts
    Positions, account values and P&L stream as :mod:`desk.sim.account_feed` describes.

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

import logging
import math
from collections.abc import Callable
from datetime import datetime

from desk.domain.calendar import nyse_calendar
from desk.domain.commission import IBKR_FIXED, Traded
from desk.sim import journal
from desk.sim import messages as m
from desk.sim.exercise import EXERCISE_OPTIONS, Exercises
from desk.sim.messages import Code, In
from desk.sim.order_types import LIMIT_TYPES, TRIGGERED_TYPES, OrderTypes
from desk.sim.order_parse import parse_place_order
from desk.sim.order_wire import commission_report, completed_order, exec_details, open_order, order_status
from desk.sim.orders import Execution, Leg, OrderRequest, SimOrder, Status, Tradable
from desk.sim.account_feed import AccountFeed
from desk.sim.instruments import Instruments
from desk.sim.order_checks import OrderChecks, Reject
from desk.sim.order_reports import execution_report
from desk.sim.ports import Client, Host, Quote5
from desk.sim.engine_state import EnginePersistence
from desk.sim.resting import RestingOrders

__all__ = ["OrderEngine", "Instruments", "Quote5"]

log = logging.getLogger("desk.sim.orders")

DUPLICATE_ORDER_ID = 103
ORDER_CANCELLED = 202
CANNOT_CANCEL = 10148
_EPS = 1e-9


# --- the engine -------------------------------------------------------------------------


class OrderEngine(EnginePersistence):
    """Orders, matching, executions and account streaming of one gateway.

    ``market_hours``: see the module docstring (default False: always open).
    ``pnl_interval`` / ``account_interval``: seconds between periodic reqPnL(Single)
    and account update pushes (fills push at once).
    """

    def __init__(
        self, gateway: Host, *, market_hours: bool = False, pnl_interval: float = 1.0, account_interval: float = 3.0
    ) -> None:
        self.gateway = gateway
        self.instruments = Instruments(gateway)
        #: brackets, OCA groups, trailing / touched / pegged / auction types, GTD, FOK
        self.types = OrderTypes(self)
        #: what placeOrder refuses, and whatIfOrder's margin
        self.checks = OrderChecks(gateway, self.instruments, self.types, self.open_orders)
        #: exerciseOptions and expiry settlement
        self.exercises = Exercises(self)
        self.market_hours = market_hours
        #: every order ever accepted, by (clientId, orderId)
        self.orders: dict[tuple[int, int], SimOrder] = {}
        self._by_perm: dict[int, SimOrder] = {}
        #: working orders by permId, in placement order
        self._open: dict[int, SimOrder] = {}
        #: working single-leg orders by conId; working combos
        self._working: dict[int, RestingOrders] = {}
        self._combos: list[SimOrder] = []
        #: executions of the day, in order
        self.executions: list[Execution] = []
        #: orders done (filled or cancelled), in completion order
        self.completed: list[SimOrder] = []
        self._out: dict[Client, list[bytes]] = {}
        #: positions, account values and P&L streamed to the sessions
        self.feed = AccountFeed(
            gateway,
            self.instruments,
            self.send_session,
            self._flush,
            pnl_interval=pnl_interval,
            account_interval=account_interval,
        )
        #: permIds and execIds, never repeated across restarts (desk.sim.journal.IdSource)
        self.ids = journal.IdSource()
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
            if self._out or self.feed.dirty or (self.journal is not None and self.journal.pending):
                self._flush()

    def drop_account_subscriptions(self) -> int:
        """IB's 1101: every client's account subscriptions are gone
        (:meth:`desk.sim.account_feed.AccountFeed.drop_account_subscriptions`)."""
        return self.feed.drop_account_subscriptions()

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Working orders (of one client, or all), in placement order."""
        return [o for o in self._open.values() if client_id is None or o.client_id == client_id]

    def cancel_all(self) -> int:
        """Cancel every working order of every client (reqGlobalCancel); returns how many."""
        n = 0
        for o in self.open_orders():
            self.cancel(o, "")
            n += 1
        self._flush()
        return n

    def mark_dirty(self, account_id: str, *con_ids: int) -> None:
        """These positions of ``account_id`` changed: their portfolio and P&L updates go
        out at the end of the step."""
        self.feed.dirty.setdefault(account_id, set()).update(con_ids)

    def touch(self, order: SimOrder) -> None:
        """``order`` changed: it goes into the next journal batch (with ``--state``)."""
        if self.journal is not None:
            self.journal.touch(order)

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
            account, contract, legs = self.checks.validate(req, client_id)
            self.checks.check_risk(account, req, contract, legs, None)
        except Reject as e:
            self._reject_msg(session, req.order_id, str(e))
            return
        now = gw.clock.now()
        order = SimOrder(
            client_id=client_id,
            order_id=req.order_id,
            perm_id=self.ids.perm_id(),
            account=account.account_id,
            request=req,
            contract=contract,
            legs=legs,
            placed_at=now,
        )
        if self.market_hours and order.tif == "DAY":
            try:  # the close of the session the order belongs to (the next one if closed)
                order.expires_at = nyse_calendar().session_close(now, req.outside_rth)
            except ValueError as e:  # the clock is outside the exchange calendar's years
                self._reject_msg(session, req.order_id, str(e))
                return
        self.orders[key] = order
        self._by_perm[order.perm_id] = order
        self.touch(order)
        log.info(
            "order %d/%d accepted: %s (permId %d, ref %r)",
            client_id,
            req.order_id,
            order.describe(),
            order.perm_id,
            req.order_ref,
        )
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
            if not order.is_done and order.status == Status.SUBMITTED and self.types.continuous(order):
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

    def _what_if(self, session: Client, req: OrderRequest) -> None:
        try:
            probe, state = self.checks.what_if(req, session.client_id or 0)
        except Reject as e:
            self._reject_msg(session, req.order_id, str(e))
            return
        self.send_session(session, open_order(probe, Status.PRE_SUBMITTED, state))

    def _modify(self, session: Client, order: SimOrder, req: OrderRequest) -> None:
        try:
            account, contract, legs = self.checks.check_modify(order, req)
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
            self.send_session(session, m.error(order_id, Code.ORDER_TO_CANCEL_NOT_FOUND, None, order_id))
            return
        if order.is_done:
            self.send_session(
                session,
                m.error(
                    order_id,
                    CANNOT_CANCEL,
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.",
                ),
            )
            return
        self.cancel(order, "")

    def _global_cancel(self, session: Client, fields: list[str]) -> None:
        log.info("global cancel from client %s", session.client_id)
        for o in self.open_orders():
            self.cancel(o, "")

    def cancel(self, order: SimOrder, reason: str, *, system: bool = False, notify_error: bool = True) -> None:
        order.status = Status.CANCELLED
        self.touch(order)
        self._unindex(order)
        order.done_at = self.gateway.clock.now()
        order.completed_status = reason or ("Cancelled by System" if system else "Cancelled by Trader")
        self.completed.append(order)
        log.info(
            "order %d/%d cancelled (%s): filled %g of %g",
            order.client_id,
            order.order_id,
            order.completed_status,
            order.filled,
            order.quantity,
        )
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
                book = self._working[order.contract.con_id] = RestingOrders()
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
                self.cancel(o, "Cancelled by System: DAY order expired at the close", system=True)
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

    def _match_one(self, order: SimOrder, aggressive: bool, consumed: dict[tuple[int, int], float]) -> None:
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
        log.info(
            "order %d/%d: %s %g elected", order.client_id, order.order_id, order.order_type, order.stop_price or order.aux_price
        )
        self.set_status(order, Status.SUBMITTED)
        return True

    def set_status(self, order: SimOrder, status: str) -> None:
        self.touch(order)  # also after a stop's election (triggered)
        if order.status == status:
            return
        order.status = status
        self.send_client(order.client_id, open_order(order) + order_status(order))

    def _match_single(self, order: SimOrder, quote: Quote5, aggressive: bool, consumed: dict[tuple[int, int], float]) -> None:
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

    def _match_combo(self, order: SimOrder, aggressive: bool, consumed: dict[tuple[int, int], float]) -> None:
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

    def _book(
        self, order: SimOrder, contract: Tradable, qty: float, price: float, side: int, liquidity: int, now: datetime
    ) -> Execution:
        """Apply one leg's execution to the account and record it."""
        account = self.gateway.account(order.account)
        assert account is not None
        traded, fee = IBKR_FIXED.execution(
            contract.sec_type, order.traded.get(contract.con_id, Traded()), qty, price, contract.multiplier
        )
        new_q, new_v = traded.quantity, traded.value
        order.traded[contract.con_id] = traded
        order.commission += fee
        self.touch(order)
        realized = account.apply_fill(contract, side * qty, price, fee)
        ex = Execution(
            exec_id=self.ids.exec_id(),
            order=order,
            contract=contract,
            side="BOT" if side > 0 else "SLD",
            shares=qty,
            price=price,
            cum_qty=new_q,
            avg_price=round(new_v / (new_q * contract.multiplier), 8),
            time=now,
            commission=fee,
            realized_pnl=realized,
            exchange=contract.execution_exchange,
            liquidity=liquidity,
        )
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
        log.info(
            "order %d/%d: %s %g %s @ %g (filled %g of %g)",
            order.client_id,
            order.order_id,
            ex.side,
            qty,
            order.contract.describe(),
            price,
            order.filled,
            order.quantity,
        )
        out = exec_details(-1, ex) + commission_report(ex)
        out += self.gateway.faults.fill_status(self._after_fill(order, now))  # no-status fault: b""
        self.send_client(order.client_id, out)
        self.types.on_fill(order, qty)

    def _fill_combo(
        self, order: SimOrder, units: float, net: float, fills: list[tuple[Leg, int, float, float, tuple[int, int]]]
    ) -> None:
        now = self.gateway.clock.now()
        order.filled += units
        order.fill_value += units * net
        order.last_fill_price = net
        q = order.request.contract
        bag = Execution(
            exec_id=self.ids.exec_id(),
            order=order,
            contract=None,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=units,
            price=net,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            time=now,
            commission=0.0,
            realized_pnl=None,
            exchange=q.exchange or "SMART",
        )
        self.executions.append(bag)
        out = [exec_details(-1, bag)]
        for leg, side, price, need, _key in fills:
            ex = self._book(order, leg.contract, need, price, side, 2, now)
            out.append(exec_details(-1, ex) + commission_report(ex))
        log.info("combo order %d/%d filled: %s %g @ net %g", order.client_id, order.order_id, order.action, units, net)
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
        req_id, out = execution_report(fields, self.executions)
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
