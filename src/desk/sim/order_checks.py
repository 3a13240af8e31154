"""Pre-trade checks of the simulated gateway: what it refuses at placeOrder, and the
margin of a whatIfOrder.

:class:`OrderChecks` validates an order request (action, quantity, type, TIF, prices on
the contract's tick grid, account, combo legs, the rules of :mod:`desk.sim.order_types`),
refuses short sales of hard-to-borrow stock beyond the position, and refuses orders
whose Reg T initial margin after the trade would exceed the equity with loan value (the
margin rules are :mod:`desk.risk.margin`'s, applied through
:meth:`desk.sim.account.SimAccount.snapshot`). A refusal is a :class:`Reject` whose text
is the reason the client receives with error 201 ``Order rejected - reason:...``, worded
as IB words it where IB's wording is known: quantity <= 0 or fractional, price missing,
negative or off the tick grid, unknown contract, unknown account, unsupported order
type / TIF / feature, short sale of a hard-to-borrow stock, insufficient equity (Reg T
initial margin above equity with loan after the trade), expired option, bad combo legs,
and a modification that changes the account, contract or side. Commissions are :data:`desk.domain.commission.IBKR_FIXED`, the desk's.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable

from desk.domain.calendar import exchange_date
from desk.domain.commission import IBKR_FIXED
from desk.sim.account import SimAccount
from desk.sim.instruments import Instruments
from desk.sim.order_types import OrderTypeError, OrderTypes
from desk.sim.orders import (
    COMBO_TICK,
    ORDER_TYPES,
    TIFS,
    Leg,
    OrderRequest,
    SimOrder,
    Tradable,
    WhatIfState,
    on_grid,
)
from desk.sim.ports import Host

__all__ = ["OrderChecks", "Reject"]

log = logging.getLogger("desk.sim.orders")

_EPS = 1e-9


class Reject(Exception):
    """An order the gateway refuses; the message is IB's ``reason`` text."""


class OrderChecks:
    """The checks of one gateway's orders (see the module docstring).

    ``open_orders()`` lists the working orders (for the shares already being sold)."""

    def __init__(
        self, gateway: Host, instruments: Instruments, types: OrderTypes, open_orders: Callable[[], list[SimOrder]]
    ) -> None:
        self.gateway = gateway
        self.instruments = instruments
        self.types = types
        self.open_orders = open_orders

    def validate(self, req: OrderRequest, client_id: int = 0) -> tuple[SimAccount, Tradable | None, tuple[Leg, ...]]:
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
            raise Reject(f"order type {req.order_type!r} is not supported ({', '.join(sorted(ORDER_TYPES))})")
        tif = req.tif or "DAY"
        if tif not in TIFS:
            raise Reject(f"time in force {tif!r} is not supported ({', '.join(sorted(TIFS))})")
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
            legs = self.combo_legs(req, today)
            if req.order_type not in ("LMT", "MKT"):
                raise Reject("combo orders must be LMT (net limit price) or MKT")
            if req.lmt_price is not None and req.order_type == "LMT":
                if not math.isfinite(req.lmt_price) or not on_grid(req.lmt_price, COMBO_TICK):
                    raise Reject(f"combo limit price {req.lmt_price:g} is not a multiple of the minimum tick {COMBO_TICK:g}")
            return account, None, legs
        contract = self.instruments.resolve(req.contract)
        if contract is None:
            raise Reject(f"unknown contract: {req.contract.describe()} (no security definition in the simulator)")
        if contract.is_option and contract.expiry < today:
            raise Reject(f"option {contract.describe()} has expired")
        for name, price in self.types.priced(req):
            if not math.isfinite(price) or price <= 0:
                raise Reject(f"{name} price must be positive, got {price:g}")
            if not contract.on_grid(price):
                raise Reject(
                    f"{name} price {price:g} does not conform to the minimum "
                    f"price variation {contract.tick_for(price):g} of "
                    f"{contract.describe()}"
                )
        return account, contract, ()

    def combo_legs(self, req: OrderRequest, today: str) -> tuple[Leg, ...]:
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

    def trade_legs(
        self, req: OrderRequest, contract: Tradable | None, legs: tuple[Leg, ...], quantity: float
    ) -> list[tuple[Tradable, float, float]] | None:
        """``(contract, signed quantity, estimated price)`` of each instrument an order
        of ``quantity`` would trade, priced at the limit (single LMT), else the quote
        side it would take, else the mark; ``None`` if no price is known."""
        out = []
        parts = (
            [(contract, 1 if req.action == "BUY" else -1, 1)]
            if contract is not None
            else [(lg.contract, lg.side(req.action), lg.ratio) for lg in legs]
        )
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

    def simulate(self, account: SimAccount, trades: list[tuple[Tradable, float, float]]) -> tuple[SimAccount, float]:
        """A copy of ``account`` after ``trades``, and the commission they cost."""
        after = copy.deepcopy(account)
        total = 0.0
        for c, q, price in trades:
            fee = IBKR_FIXED.for_instrument(c.sec_type, abs(q), price)
            total += fee
            after.apply_fill(c, q, price, fee)
        return after, total

    def check_risk(
        self, account: SimAccount, req: OrderRequest, contract: Tradable | None, legs: tuple[Leg, ...], replacing: SimOrder | None
    ) -> None:
        """Short-sale availability and Reg T initial margin after the trade."""
        qty = req.quantity - (replacing.filled if replacing is not None else 0.0)
        parts = (
            [(contract, 1 if req.action == "BUY" else -1, 1)]
            if contract is not None
            else [(lg.contract, lg.side(req.action), lg.ratio) for lg in legs]
        )
        for c, side, ratio in parts:
            if side > 0 or c.is_option or c.shortable:
                continue
            held = account.position_of(c.con_id)
            pending = sum(
                self.pending_sell(o, c.con_id)
                for o in self.open_orders()
                if o.account == account.account_id and o is not replacing
            )
            if qty * ratio > held - pending + _EPS:
                raise Reject(
                    f"short sale not allowed: {c.symbol} is hard to borrow (no "
                    f"shares available to borrow); position {held:g}, "
                    f"selling {qty * ratio:g}"
                )
        trades = self.trade_legs(req, contract, legs, qty)
        if trades is None:
            return
        mark = self.instruments.mark
        before = account.snapshot(mark)
        after_acc, _fee = self.simulate(account, trades)
        after = after_acc.snapshot(mark)
        if after.initial > after.equity_with_loan + _EPS and after.initial > before.initial:
            raise Reject(
                "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
                f"EQUITY WITH LOAN VALUE [{after.equity_with_loan:.2f} USD] MUST EXCEED THE "
                f"INITIAL MARGIN [{after.initial:.2f} USD]"
            )

    @staticmethod
    def pending_sell(order: SimOrder, con_id: int) -> float:
        if order.contract is not None:
            if order.contract.con_id == con_id and order.action == "SELL":
                return order.remaining
            return 0.0
        return sum(order.remaining * lg.ratio for lg in order.legs if lg.contract.con_id == con_id and lg.side(order.action) < 0)

    def check_modify(self, order: SimOrder, req: OrderRequest) -> tuple[SimAccount, Tradable | None, tuple[Leg, ...]]:
        """Check a placeOrder that modifies the working ``order``: everything
        :meth:`validate` and :meth:`check_risk` check, and that the account, the contract
        (or combo legs) and the side are unchanged and the quantity exceeds what has
        filled. Returns what :meth:`validate` returns; raises :class:`Reject`."""
        account, contract, legs = self.validate(req, order.client_id)
        if account.account_id != order.account:
            raise Reject("an order's account cannot be changed")
        new_ids = (contract.con_id,) if contract is not None else tuple(lg.contract.con_id for lg in legs)
        if new_ids != order.con_ids or (legs and legs != order.legs):
            raise Reject("an order's contract cannot be changed")
        if req.action != order.action:
            raise Reject("an order's side (action) cannot be changed")
        if req.quantity < order.filled + 1:
            raise Reject(f"quantity {req.quantity:g} must exceed the filled {order.filled:g}")
        self.check_risk(account, req, contract, legs, order)
        return account, contract, legs

    def what_if(self, req: OrderRequest, client_id: int = 0) -> tuple[SimOrder, WhatIfState]:
        """The margin and commission an order would have (whatIfOrder), without placing
        it: a probe order and its :class:`~desk.sim.orders.WhatIfState` (Reg T initial
        and maintenance margin and equity with loan before and after, dollars; the
        commission, dollars; a warning when the equity would not cover the margin).
        Raises :class:`Reject` if the order fails :meth:`validate` or has no price."""
        account, contract, legs = self.validate(req)
        trades = self.trade_legs(req, contract, legs, req.quantity)
        if trades is None:
            raise Reject("no price to compute the margin of this order")
        mark = self.instruments.mark
        before = account.snapshot(mark)
        after_acc, fee = self.simulate(account, trades)
        after = after_acc.snapshot(mark)
        warning = ""
        if after.initial > after.equity_with_loan + _EPS and after.initial > before.initial:
            warning = (
                "insufficient equity: equity with loan value "
                f"{after.equity_with_loan:.2f} below initial margin {after.initial:.2f}"
            )
        state = WhatIfState(
            before.initial,
            before.maintenance,
            before.equity_with_loan,
            after.initial,
            after.maintenance,
            after.equity_with_loan,
            round(fee, 4),
            warning,
        )
        probe = SimOrder(
            client_id=client_id,
            order_id=req.order_id,
            perm_id=0,
            account=account.account_id,
            request=req,
            contract=contract,
            legs=legs,
        )
        log.info("what-if %s: initial margin %.2f -> %.2f, commission %.2f", probe.describe(), before.initial, after.initial, fee)
        return probe, state
