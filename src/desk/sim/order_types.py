"""IB's conditional order types in the simulated gateway: brackets, OCA groups, trailing,
touched, pegged and auction orders, GTD and FOK (called by :mod:`desk.sim.matching`).

One :class:`OrderTypes` lives on each :class:`~desk.sim.matching.OrderEngine` (as
``engine.types``); the engine calls it at placement (:meth:`OrderTypes.check`,
:meth:`OrderTypes.accept`), before matching an order (:meth:`OrderTypes.waits`,
:meth:`OrderTypes.elected`, :meth:`OrderTypes.limit_of`), after each fill
(:meth:`OrderTypes.on_fill`), after a cancel (:meth:`OrderTypes.on_cancel`) and on every
market step (:meth:`OrderTypes.on_step`). Semantics follow IB's order type pages
(interactivebrokers.com "Order Types") and the TWS API guide (bracket_order.html,
oca.html, trailing stops):

Brackets (``parentId``, ``transmit``)
    An order placed with ``transmit=False`` is kept ``PreSubmitted`` and does not work
    until an order naming it as ``parentId`` arrives with ``transmit=True`` (as TWS holds
    an untransmitted order: ib_async's ``bracketOrder`` sends parent and take-profit with
    transmit False, the stop-loss with True). Children stay ``PreSubmitted`` (not
    matched) until the parent is filled in full, then work like any order (a stop child
    stays ``PreSubmitted`` until elected). The children of one parent are one OCA group
    that reduces the others by each fill (IB: a filled take-profit cancels the stop).
    Cancelling the parent cancels its children. A child of an unknown or cancelled
    parent is rejected (201).
OCA groups (``ocaGroup``, ``ocaType``; per client)
    1 (default): a fill of one member cancels the other working members, with block
    (nothing else in the group trades in the same matching pass). 2: the others' sizes
    are reduced by the filled quantity, with block. 3: reduced, without block: the
    reduction is applied at the end of the matching pass, so members marketable in the
    same pass all fill (an overfill, as IB warns).
TRAIL / TRAIL LIMIT
    Trailing amount ``auxPrice`` (dollars) or ``trailingPercent``. A SELL's stop is the
    highest reference price seen since placement minus the amount (or percent of it), a
    BUY's the lowest plus it; it only ratchets toward the market. Reference: the stop's
    trigger method (default: last for stocks, bid for a sell / ask for a buy on options);
    the initial stop is ``trailStopPrice`` when given. Elected when the reference
    reaches the stop: TRAIL becomes a market order, TRAIL LIMIT a limit at the stop
    minus ``lmtPriceOffset`` (SELL; plus for BUY), or at ``lmtPrice`` when no offset.
MIT / LIT
    Market / limit if touched: a BUY is triggered when the reference price falls to or
    below ``auxPrice``, a SELL when it rises to or above it; then a market order, or a
    limit order at ``lmtPrice``. ``PreSubmitted`` until triggered.
REL (pegged to primary)
    A BUY works at the bid plus the offset ``auxPrice``, a SELL at the ask minus it,
    re-pegged every step, capped at ``lmtPrice`` when given; it fills when the market
    reaches it, like a resting limit.
MOC / LOC and TIF OPG
    Auction orders: they execute in full at the close (MOC, LOC: the close of the session
    the order belongs to, :meth:`desk.domain.calendar.ExchangeCalendar.session_close`)
    or the next open (TIF OPG with MKT or LMT), at the auction price: the last trade
    price at the first market step at or after that instant (the mid when no trade is
    known; the simulator has no auction book). A LOC / LMT OPG whose limit the auction
    price does not reach is cancelled.
GTD / FOK
    GTD works until ``goodTillDate`` (``yyyymmdd hh:mm:ss`` with an optional zone name,
    exchange time without one, or ``yyyymmdd-hh:mm:ss`` UTC), then it is cancelled. FOK
    fills its whole quantity at once against the displayed size or is cancelled
    (limit and market orders only).

The state here (``held``, the trailing stop, the peg) is not journaled: after a restart
with ``--state`` a trailing stop starts again from the market.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from desk.domain.calendar import NEW_YORK, nyse_calendar
from desk.domain.orders import round_to_tick
from desk.sim.order_wire import open_order, order_status
from desk.sim.orders import OrderRequest, SimOrder, Status, Tradable
from desk.sim.ports import OrderBook, Quote5

__all__ = ["AUCTION_TYPES", "LIMIT_TYPES", "TRIGGERED_TYPES", "OrderTypes", "parse_good_till"]

_EPS = 1e-9
#: order types that wait for an election (PreSubmitted until then)
TRIGGERED_TYPES = frozenset({"STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT", "LIT"})
#: order types that fill at a limit price (once elected)
LIMIT_TYPES = frozenset({"LMT", "STP LMT", "TRAIL LIMIT", "LIT", "LOC", "REL"})
#: order types that execute in an auction, not continuously
AUCTION_TYPES = frozenset({"MOC", "LOC"})


class OrderTypeError(ValueError):
    """A request the order types refuse: the message is the 201 reason."""


def parse_good_till(text: str) -> datetime:
    """goodTillDate as UTC: ``yyyymmdd hh:mm:ss [zone]`` (exchange time without a zone),
    ``yyyymmdd-hh:mm:ss`` (UTC), or ``yyyymmdd`` (the end of that exchange day).
    ``ValueError`` naming the text if it does not parse."""
    t = text.strip()
    try:
        if "-" in t and " " not in t:
            return datetime.strptime(t, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = t.split(" ")
        if len(parts) == 1:
            d = datetime.strptime(parts[0], "%Y%m%d")
            return d.replace(hour=23, minute=59, second=59, tzinfo=NEW_YORK).astimezone(UTC)
        zone = ZoneInfo(parts[2]) if len(parts) > 2 and parts[2] else NEW_YORK
        d = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y%m%d %H:%M:%S")
        return d.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError, IndexError):
        raise ValueError(f"goodTillDate {text!r} is not 'yyyymmdd hh:mm:ss [zone]'") from None


class OrderTypes:
    """The order-type rules of one engine (see the module docstring)."""

    def __init__(self, engine: OrderBook) -> None:
        self.engine = engine
        #: OCA type 3 reductions waiting for the end of the matching pass:
        #: (order filled, quantity)
        self._unblocked: list[tuple[SimOrder, float]] = []

    # --- placement -------------------------------------------------------------------

    def check(self, req: OrderRequest, contract: Tradable | None, client_id: int) -> None:
        """Type- and TIF-specific checks of a request of ``client_id``;
        ``OrderTypeError`` with the reason."""
        ot, tif = req.order_type, req.tif or "DAY"
        if req.is_combo and (req.parent_id or req.oca_group or not req.transmit):
            raise OrderTypeError("combo orders cannot be bracket children, OCA members or untransmitted")
        if ot in ("TRAIL", "TRAIL LIMIT"):
            if req.trailing_percent is None and (req.aux_price is None or req.aux_price <= 0):
                raise OrderTypeError(f"{ot} order needs a trailing amount (auxPrice) or a trailingPercent")
            if req.trailing_percent is not None and not 0 < req.trailing_percent < 100:
                raise OrderTypeError(f"trailingPercent must be between 0 and 100, got {req.trailing_percent:g}")
            if ot == "TRAIL LIMIT" and req.lmt_price_offset is None and req.lmt_price is None:
                raise OrderTypeError("TRAIL LIMIT order needs lmtPriceOffset or lmtPrice")
        if ot in ("MIT", "LIT") and req.aux_price is None:
            raise OrderTypeError(f"{ot} order needs a trigger price (auxPrice)")
        if ot in ("LIT", "LOC") and req.lmt_price is None:
            raise OrderTypeError(f"{ot} order needs a limit price")
        if ot == "REL" and (req.aux_price is None or req.aux_price < 0):
            raise OrderTypeError("REL order needs a non-negative offset (auxPrice)")
        if tif == "FOK" and ot not in ("LMT", "MKT"):
            raise OrderTypeError("FOK applies to LMT and MKT orders only")
        if tif == "OPG" and ot not in ("LMT", "MKT"):
            raise OrderTypeError("OPG applies to LMT and MKT orders only (at the open)")
        if ot in AUCTION_TYPES and tif not in ("DAY",):
            raise OrderTypeError(f"{ot} orders are DAY orders, got TIF {tif}")
        if tif == "GTD":
            if not req.good_till_date:
                raise OrderTypeError("GTD order needs goodTillDate")
            try:
                until = parse_good_till(req.good_till_date)
            except ValueError as e:
                raise OrderTypeError(str(e)) from None
            if until <= self.engine.gateway.clock.now():
                raise OrderTypeError(f"goodTillDate {req.good_till_date} is in the past")
        if req.parent_id:
            parent = self.engine.orders.get((client_id, req.parent_id))
            if parent is None:
                raise OrderTypeError(f"parent order {req.parent_id} not found")
            if parent.status == Status.CANCELLED:
                raise OrderTypeError(f"parent order {req.parent_id} is cancelled")

    def priced(self, req: OrderRequest) -> list[tuple[str, float]]:
        """(name, price) of the request's prices that must be positive and on the grid."""
        ot = req.order_type
        out: list[tuple[str, float]] = []
        if ot in LIMIT_TYPES and ot != "TRAIL LIMIT" and req.lmt_price is not None:
            if not (ot == "REL" and req.lmt_price == 0):
                out.append(("limit", req.lmt_price))
        if ot in ("STP", "STP LMT", "MIT", "LIT") and req.aux_price is not None:
            out.append(("stop" if ot.startswith("STP") else "trigger", req.aux_price))
        return out

    def accept(self, order: SimOrder) -> bool:
        """A new order was accepted (sent PreSubmitted): set its type state. Returns
        whether the engine should activate it now (False: it is held)."""
        req = order.request
        now = self.engine.gateway.clock.now()
        if req.tif == "GTD":
            order.expires_at = parse_good_till(req.good_till_date)
        self._auction_time(order, now)
        parent = self.engine.orders.get((order.client_id, req.parent_id)) if req.parent_id else None
        if not req.transmit:
            order.held = True
        if parent is not None and parent.status != Status.FILLED:
            order.held = True
        if req.transmit and parent is not None:
            self._transmit(parent)
        return not order.held

    def modified(self, order: SimOrder) -> None:
        """An order was modified: restart its trailing stop and peg, re-time its auction;
        a transmit=True modification of an untransmitted order transmits it."""
        req = order.request
        if not order.triggered:
            order.stop_price = None
            order.peg_limit = None
        if req.tif == "GTD" and req.good_till_date:
            order.expires_at = parse_good_till(req.good_till_date)
        self._auction_time(order, self.engine.gateway.clock.now())
        if order.held and req.transmit:
            parent = self.engine.orders.get((order.client_id, req.parent_id)) if req.parent_id else None
            if parent is None or parent.status == Status.FILLED:
                order.held = False

    def _auction_time(self, order: SimOrder, now: datetime) -> None:
        cal = nyse_calendar()
        try:
            if order.order_type in AUCTION_TYPES:
                order.auction_at = cal.session_close(now, False)
            elif order.tif == "OPG":
                session = cal.session_of(now, False)
                if now >= session.open:
                    session = cal.next_session(session.day)
                order.auction_at = session.open
        except ValueError:  # outside the calendar's years: no auction
            order.auction_at = None

    def _transmit(self, parent: SimOrder) -> None:
        """A child with transmit=True arrived: the parent and its held siblings are
        transmitted (the parent works; the children wait for its fill)."""
        if parent.held and not parent.is_done and not parent.request.parent_id:
            parent.held = False
            self.engine.activate(parent)

    def children(self, parent: SimOrder) -> list[SimOrder]:
        """Working orders of the same client whose parentId is ``parent``'s orderId."""
        return [
            o for o in self.engine.open_orders(parent.client_id) if o.request.parent_id == parent.order_id and o is not parent
        ]

    # --- matching --------------------------------------------------------------------

    @staticmethod
    def waits(order: SimOrder) -> bool:
        """Whether ``order`` waits for an election (stops, trailing, touched orders)."""
        return order.order_type in TRIGGERED_TYPES and not order.triggered

    @staticmethod
    def continuous(order: SimOrder) -> bool:
        """Whether the continuous matching pass may fill ``order`` (not held, not an
        auction order)."""
        return not order.held and order.auction_at is None and order.order_type not in AUCTION_TYPES

    @staticmethod
    def _reference(order: SimOrder, quote: Quote5) -> float:
        """The trigger reference of ``order`` (dollars per share; 0 when unknown) by its
        triggerMethod: 0 last for stocks / bid-ask for options, 1/4 bid-ask (the ask for a
        BUY, the bid for a SELL), 2/3 last, 8 midpoint; 7 (last or bid/ask) is handled by
        :meth:`elected`."""
        bid, ask, _bs, _as, last = quote
        tm = order.request.trigger_method
        if tm == 0:
            tm = 4 if order.contract is not None and order.contract.is_option else 2
        if tm in (1, 4):
            return ask if order.action == "BUY" else bid
        if tm == 8:
            return (bid + ask) / 2.0 if bid > 0 and ask > 0 else 0.0
        return last

    def elected(self, order: SimOrder, quote: Quote5) -> bool:
        """Update a trailing stop with ``quote`` and tell whether ``order`` is elected
        (a stop or trailing stop reached, a touched order's trigger touched). For TRAIL
        LIMIT sets the limit (``peg_limit``) at election."""
        ot = order.order_type
        buy = order.action == "BUY"
        refs = [self._reference(order, quote)]
        if order.request.trigger_method == 7:
            bid, ask, _bs, _as, last = quote
            refs = [last, ask if buy else bid]
        refs = [r for r in refs if r > 0]
        if not refs:
            return False
        if ot in ("TRAIL", "TRAIL LIMIT"):
            self._trail(order, refs[0])
            trigger = order.stop_price
        else:
            trigger = order.aux_price
        if trigger is None:
            return False
        if ot in ("MIT", "LIT"):  # touched: a BUY when the market falls to the trigger
            hit = any(r <= trigger + _EPS if buy else r >= trigger - _EPS for r in refs)
        else:
            hit = any(r >= trigger - _EPS if buy else r <= trigger + _EPS for r in refs)
        if hit and ot == "TRAIL LIMIT":
            off = order.request.lmt_price_offset
            if off is not None:
                order.peg_limit = self._tick_round(order, trigger + off if buy else trigger - off, not buy)
            else:
                order.peg_limit = order.lmt_price
        return hit

    def _tick_round(self, order: SimOrder, price: float, up: bool) -> float:
        contract = order.contract
        tick = contract.tick_for(price) if contract is not None else 0.01
        return round_to_tick(price, tick, "up" if up else "down")

    def _trail(self, order: SimOrder, ref: float) -> None:
        """Ratchet the trailing stop with reference price ``ref``: a SELL's stop is
        max(ref) - amount, a BUY's min(ref) + amount (IB "Trailing Stop Orders")."""
        req = order.request
        buy = order.action == "BUY"
        if req.trailing_percent is not None:
            amount = ref * req.trailing_percent / 100.0
        else:
            amount = req.aux_price or 0.0
        stop = self._tick_round(order, ref + amount if buy else ref - amount, buy)
        if order.stop_price is None:
            order.stop_price = req.trail_stop_price if req.trail_stop_price else stop
            return
        if (buy and stop < order.stop_price - _EPS) or (not buy and stop > order.stop_price + _EPS):
            order.stop_price = stop
            self.engine.touch(order)

    def limit_of(self, order: SimOrder, quote: Quote5) -> float | None:
        """The price a limit-type order works at now: the pegged price of REL (re-pegged
        to ``quote``), the elected limit of TRAIL LIMIT, else ``lmtPrice``."""
        ot = order.order_type
        if ot == "REL":
            bid, ask = quote[0], quote[1]
            buy = order.action == "BUY"
            base = bid if buy else ask
            if not base > 0:
                return order.peg_limit
            off = order.aux_price or 0.0
            peg = self._tick_round(order, base + off if buy else base - off, not buy)
            cap = order.lmt_price
            if cap:
                peg = min(peg, cap) if buy else max(peg, cap)
            order.peg_limit = peg
            return peg
        if ot == "TRAIL LIMIT":
            return order.peg_limit
        return order.lmt_price

    def fok_fillable(self, order: SimOrder) -> bool:
        """Whether a FOK order can fill its whole quantity now against the displayed size
        at an acceptable price (a combo: whether its legs show it, left to the match)."""
        if order.contract is None:
            return True
        quote = self.engine.instruments.quote(order.contract.con_id)
        if quote is None:
            return False
        bid, ask, bid_size, ask_size, _last = quote
        buy = order.action == "BUY"
        price, size = (ask, ask_size) if buy else (bid, bid_size)
        if not price > 0 or size < order.remaining - _EPS:
            return False
        if order.order_type == "LMT":
            limit = order.lmt_price or 0.0
            return price <= limit + _EPS if buy else price >= limit - _EPS
        return True

    # --- after fills and cancels -------------------------------------------------------

    def _group(self, order: SimOrder) -> list[SimOrder]:
        """The other working members of ``order``'s OCA group: the same client's orders
        of its ocaGroup, and its bracket siblings (children of the same parent)."""
        req = order.request
        out = []
        for o in self.engine.open_orders(order.client_id):
            if o is order:
                continue
            if req.oca_group and o.request.oca_group == req.oca_group:
                out.append(o)
            elif req.parent_id and o.request.parent_id == req.parent_id:
                out.append(o)
        return out

    def on_fill(self, order: SimOrder, qty: float) -> None:
        """``order`` just filled ``qty``: apply its OCA group; a bracket parent filled in
        full releases its children."""
        if order.request.oca_group or order.request.parent_id:
            oca_type = order.request.oca_type or 1
            if order.request.parent_id and not order.request.oca_group:
                oca_type = 2  # bracket siblings reduce each other, with block
            if oca_type == 3:
                self._unblocked.append((order, qty))
            else:
                self._apply_oca(order, qty, oca_type)
        if order.status == Status.FILLED:
            for child in self.children(order):
                if child.held:
                    child.held = False
                    self.engine.activate(child)

    def settle(self) -> None:
        """End of a matching pass: apply the OCA type 3 (no block) reductions."""
        pending, self._unblocked = self._unblocked, []
        for order, qty in pending:
            self._apply_oca(order, qty, 3)

    def _apply_oca(self, order: SimOrder, qty: float, oca_type: int) -> None:
        eng = self.engine
        group = (
            f"OCA group {order.request.oca_group}" if order.request.oca_group else f"bracket of parent {order.request.parent_id}"
        )
        for other in self._group(order):
            if other.is_done:
                continue
            if oca_type == 1:
                eng.cancel(other, f"{group}: order {order.order_id} filled", system=True)
                continue
            new_qty = other.quantity - qty
            if new_qty <= other.filled + _EPS:
                eng.cancel(other, f"{group}: order {order.order_id} filled, nothing left", system=True)
                continue
            other.request = dataclasses.replace(other.request, quantity=new_qty)
            eng.touch(other)
            eng.send_client(other.client_id, open_order(other) + order_status(other))

    def on_cancel(self, order: SimOrder) -> None:
        """``order`` was cancelled: its bracket children are cancelled with it."""
        for child in self.children(order):
            if not child.is_done:
                self.engine.cancel(child, "parent order cancelled", system=True)

    # --- every market step -----------------------------------------------------------

    def on_step(self) -> None:
        """Expire GTD orders and execute the auction orders whose close / open came."""
        eng = self.engine
        now = eng.gateway.clock.now()
        for o in eng.open_orders():
            if o.is_done:
                continue
            if o.tif == "GTD" and o.expires_at is not None and now >= o.expires_at:
                eng.cancel(o, "GTD order expired", system=True)
            elif (
                o.auction_at is not None
                and now >= o.auction_at
                and not o.held
                and o.status in (Status.SUBMITTED, Status.PRE_SUBMITTED)
            ):
                self._auction(o)

    def _auction(self, order: SimOrder) -> None:
        eng = self.engine
        assert order.contract is not None
        quote = eng.instruments.quote(order.contract.con_id)
        if quote is None:
            return
        bid, ask, _bs, _as, last = quote
        price = last if last > 0 else ((bid + ask) / 2.0 if bid > 0 and ask > 0 else 0.0)
        if not price > 0:
            return
        price = self._tick_round(order, price, order.action == "SELL")
        when = "close" if order.order_type in AUCTION_TYPES else "open"
        if order.order_type in ("LOC", "LMT"):
            limit = order.lmt_price or 0.0
            ok = price <= limit + _EPS if order.action == "BUY" else price >= limit - _EPS
            if not ok:
                eng.cancel(order, f"not executed at the {when}: auction price {price:g} beyond the limit {limit:g}", system=True)
                return
        order.auction_at = None
        if order.status != Status.SUBMITTED:
            eng.set_status(order, Status.SUBMITTED)
        eng.fill_single(order, order.remaining, price, 1)
