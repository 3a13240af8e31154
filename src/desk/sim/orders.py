"""Orders in the simulated gateway: what a placeOrder carries, the live order, the
tradable contracts and the wire encoders of order messages.

* :func:`parse_place_order` walks a placeOrder (3) message by position exactly as
  ib_async's ``client.placeOrder`` writes it at server versions 176-178 (no version
  field; conditional blocks for BAG legs, delta-neutral, scale, hedge, algo, PEG BENCH,
  conditions) and returns an :class:`OrderRequest`.
* :class:`SimOrder` is an order the gateway keeps: status (``PreSubmitted``,
  ``Submitted``, ``Filled``, ``Cancelled``), filled / remaining quantity, average fill
  price, permId and the request it was last placed or modified with.
* :class:`Tradable` is the engine's view of a stock (from
  :class:`~desk.sim.universe.SimStock`) or an option (from
  :class:`~desk.sim.chain.SimOption`), with the multiplier, tick rules and the fields
  the wire messages carry.
* commissions are :mod:`desk.domain.commission` (IBKR Pro Fixed, the desk's own rule):
  :attr:`SimOrder.traded` keeps each contract's running totals
  (:class:`~desk.domain.commission.Traded`).
* ``open_order``, ``order_status``, ``exec_details``, ``commission_report``,
  ``completed_order`` build the server's messages 5, 3, 11, 59 and 101 in the layouts
  ib_async 2.1's ``decoder.py`` reads at server version 178.

Units: prices in dollars per share (an option price is per share of the underlying: a
quote of 1.25 with multiplier 100 costs $125 per contract); quantities in shares (stocks)
or contracts (options); a combo's quantity counts combo units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.domain.calendar import EXCHANGE_TZ_ID, NEW_YORK
from desk.domain.commission import Traded
from desk.sim.codec import encode_fields
from desk.sim.contracts import CONTRACT_FIELDS, ContractQuery

__all__ = [
    "COMBO_TICK",
    "ORDER_TYPES",
    "TIFS",
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "ComboLeg",
    "Execution",
    "Leg",
    "OrderRequest",
    "SimOrder",
    "Status",
    "Tradable",
    "WhatIfState",
    "commission_report",
    "completed_order",
    "exec_details",
    "exec_time",
    "fmt_num",
    "on_grid",
    "open_order",
    "order_status",
    "parse_place_order",
]

#: IB's "unset" int and double (``Integer.MAX_VALUE`` / ``Double.MAX_VALUE``).
UNSET_INTEGER = 2147483647
UNSET_DOUBLE = 1.7976931348623157e308

#: Order types the simulator executes (the triggered, trailing, pegged and auction types
#: are :mod:`desk.sim.order_types`).
ORDER_TYPES = frozenset({"LMT", "MKT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT",
                         "LIT", "MOC", "LOC", "REL"})
#: Times in force the simulator honours.
TIFS = frozenset({"DAY", "GTC", "IOC", "GTD", "FOK", "OPG"})
#: Price increment of a combo's net price, dollars per share (IB quotes spreads in cents).
COMBO_TICK = 0.01

# server -> client message ids used here
_OPEN_ORDER = 5
_ORDER_STATUS = 3
_EXECUTION_DATA = 11
_COMMISSION_REPORT = 59
_COMPLETED_ORDER = 101


class Status:
    """IB order statuses the simulator reports (``OrderStatus`` of ib_async)."""

    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    DONE = frozenset({"Filled", "Cancelled"})


# --- formatting ---------------------------------------------------------------------------


def fmt_num(x: float | int | None) -> str:
    """A number as wire text: ``""`` for ``None`` / unset, integers without a decimal
    point, floats rounded to 8 decimals (``"600.5"``, ``"-1.25"``, ``"100"``)."""
    if x is None:
        return ""
    if isinstance(x, int):
        return "" if x == UNSET_INTEGER else str(x)
    if x != x or x >= UNSET_DOUBLE:  # nan or unset
        return ""
    if math.isinf(x):
        return "Infinite" if x > 0 else "-Infinite"
    r = round(float(x), 8)
    if r == int(r) and abs(r) < 1e15:
        return str(int(r))
    return repr(r)


def _money(x: float) -> str:
    return f"{x:.2f}"


def exec_time(now: datetime) -> str:
    """Execution time as IB sends it: ``yyyymmdd hh:mm:ss US/Eastern`` (exchange time;
    ib_async parses the zone name)."""
    return f"{now.astimezone(NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


# --- contracts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tradable:
    """A stock or option the engine trades, with what the order messages carry.

    ``multiplier``: shares per contract (1 for stocks, 100 for US equity options);
    ``underlying_con_id``: the option's underlying (a stock's own conId for stocks);
    ``shortable``: whether a short sale is allowed (stocks "easy to borrow"; always True
    for options, which are written, not borrowed); option tick rules: ``penny_all``
    $0.01 at every price (SPY, QQQ, IWM), else ``penny`` $0.01 below $3 and $0.05 from
    $3, else $0.05 / $0.10 (as :meth:`desk.sim.chain.SimOption.tick_for`); stocks use
    ``min_tick``. Strike in dollars per share, expiry ``YYYYMMDD``; ``etf`` tells an ETF
    from a common stock.
    """

    con_id: int
    symbol: str
    sec_type: str = "STK"
    currency: str = "USD"
    primary_exchange: str = ""
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: int = 1
    local_symbol: str = ""
    trading_class: str = ""
    underlying_con_id: int = 0
    min_tick: float = 0.01
    shortable: bool = True
    penny: bool = True
    penny_all: bool = False
    etf: bool = False

    @classmethod
    def from_definition(cls, d: Any) -> Tradable:
        """Build from a :class:`~desk.sim.universe.SimStock` or a
        :class:`~desk.sim.chain.SimOption` (what ``gateway.contract_for`` returns)."""
        if getattr(d, "sec_type", "STK") == "OPT":
            return cls(
                con_id=d.con_id, symbol=d.symbol, sec_type="OPT",
                currency=getattr(d, "currency", "USD"), expiry=d.expiry,
                strike=float(d.strike), right=d.right,
                multiplier=int(getattr(d, "multiplier", 100)),
                local_symbol=getattr(d, "local_symbol", ""),
                trading_class=getattr(d, "trading_class", d.symbol),
                underlying_con_id=int(getattr(d, "underlying_con_id", 0)),
                min_tick=float(getattr(d, "min_tick", 0.01)),
                penny=bool(getattr(d, "penny", True)),
                penny_all=bool(getattr(d, "penny_all", False)),
            )
        primary = getattr(d, "primary_exchange", "")
        return cls(
            con_id=d.con_id, symbol=d.symbol, sec_type="STK",
            currency=getattr(d, "currency", "USD"), primary_exchange=primary,
            local_symbol=d.symbol,
            trading_class="NMS" if primary == "NASDAQ" else d.symbol,
            underlying_con_id=d.con_id, min_tick=float(getattr(d, "min_tick", 0.01)),
            shortable=bool(getattr(d, "easy_to_borrow", True)),
            etf=getattr(d, "stock_type", "") == "ETF",
        )

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    def tick_for(self, price: float) -> float:
        """Price increment at ``price`` (dollars per share)."""
        if self.is_option:
            if self.penny_all:
                return 0.01
            if self.penny:
                return 0.01 if abs(price) < 3.0 else 0.05
            return 0.05 if abs(price) < 3.0 else 0.10
        return self.min_tick

    def on_grid(self, price: float) -> bool:
        """Whether ``price`` is a multiple of the increment that applies at it."""
        return on_grid(price, self.tick_for(price))

    @property
    def execution_exchange(self) -> str:
        """The venue executions report (IB names: ISLAND for NASDAQ listings)."""
        if self.is_option:
            return "CBOE"
        return {"NASDAQ": "ISLAND"}.get(self.primary_exchange, self.primary_exchange or "SMART")

    def describe(self) -> str:
        """``SPY`` or ``SPY 20261218 600 C``."""
        if self.is_option:
            return f"{self.symbol} {self.expiry} {self.strike:g} {self.right}"
        return self.symbol

    def wire11(self, exchange: str) -> list[object]:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
        currency, localSymbol, tradingClass (openOrder, execDetails, position)."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry,
                fmt_num(self.strike) or "0", self.right,
                str(self.multiplier) if self.is_option else "", exchange, self.currency,
                self.local_symbol, self.trading_class]

    def wire_portfolio(self) -> list[object]:
        """The contract fields of updatePortfolio (primaryExchange instead of exchange)."""
        return [self.con_id, self.symbol, self.sec_type, self.expiry,
                fmt_num(self.strike) or "0", self.right,
                str(self.multiplier) if self.is_option else "", self.primary_exchange,
                self.currency, self.local_symbol, self.trading_class]


def on_grid(price: float, tick: float) -> bool:
    """Whether ``price`` is a whole multiple of ``tick`` (to 1e-6 of a tick)."""
    n = price / tick
    return abs(n - round(n)) < 1e-6


# --- placeOrder ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComboLeg:
    """One leg of a BAG contract as placeOrder carries it: ``ratio`` units of the leg per
    combo unit (shares for a stock leg, contracts for an option leg), ``action`` BUY or
    SELL for a BUY of the combo (reversed when the combo is sold)."""

    con_id: int
    ratio: int
    action: str
    exchange: str = "SMART"
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1


@dataclass(slots=True)
class OrderRequest:
    """What one placeOrder message asked for (the fields the simulator uses).

    Prices in dollars per share (``None`` when unset); ``quantity`` in shares, contracts
    or combo units; ``what_if`` True for a margin/commission preview; ``unsupported``
    names features present in the message that the simulator does not execute (the
    engine rejects such orders with the names in the reason).
    """

    order_id: int
    contract: ContractQuery
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    #: IB ocaType: 1 cancel the others with block, 2 reduce with block, 3 reduce
    #: without block (0 / unset: 1, IB's default)
    oca_type: int = 0
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    display_size: int = 0
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    legs: tuple[ComboLeg, ...] = ()
    leg_prices: tuple[float | None, ...] = ()
    combo_params: tuple[tuple[str, str], ...] = ()
    good_after_time: str = ""
    good_till_date: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    #: TRAIL / TRAIL LIMIT: trailing amount in percent (``auxPrice`` is the amount in
    #: dollars when this is unset); the initial stop price (``trailStopPrice``); the
    #: TRAIL LIMIT limit offset from the stop (``lmtPriceOffset``), dollars per share
    trailing_percent: float | None = None
    trail_stop_price: float | None = None
    lmt_price_offset: float | None = None
    what_if: bool = False
    unsupported: tuple[str, ...] = ()

    @property
    def is_combo(self) -> bool:
        return self.contract.sec_type == "BAG"


class _Reader:
    """Sequential reader of a message's fields with clear errors when it is short."""

    __slots__ = ("fields", "i")

    def __init__(self, fields: Sequence[str], start: int) -> None:
        self.fields = fields
        self.i = start

    def take(self, what: str) -> str:
        if self.i >= len(self.fields):
            raise ValueError(f"placeOrder ends at field {self.i}, expected {what}")
        v = self.fields[self.i]
        self.i += 1
        return v

    def skip(self, n: int, what: str) -> None:
        if self.i + n > len(self.fields):
            raise ValueError(f"placeOrder ends at field {len(self.fields)}, expected {what}")
        self.i += n

    def more(self) -> bool:
        return self.i < len(self.fields)


def _f(text: str, what: str) -> float | None:
    if text == "":
        return None
    if text == "Infinite":
        return math.inf
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{what} is not a number: {text!r}") from None
    return None if v >= UNSET_DOUBLE else v


def _i(text: str, what: str, default: int = 0) -> int:
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{what} is not an integer: {text!r}") from None
        if v != int(v):
            raise ValueError(f"{what} is not an integer: {text!r}") from None
        return int(v)


def _b(text: str) -> bool:
    return text not in ("", "0", "false", "False")


def parse_place_order(fields: Sequence[str], version: int = 178) -> OrderRequest:
    """Parse a placeOrder (3) message (``fields[0] == "3"``) sent at server ``version``.

    Follows ``ib_async/client.py`` ``placeOrder`` field by field. Raises ``ValueError``
    naming the field if the message is too short or a number does not parse.
    """
    r = _Reader(fields, 1)
    order_id = _i(r.take("orderId"), "orderId")
    if r.i + CONTRACT_FIELDS > len(fields):
        raise ValueError("placeOrder ends inside the contract")
    contract = ContractQuery.from_fields(list(fields), r.i)
    r.skip(CONTRACT_FIELDS, "contract")
    sec_id_type, sec_id = r.take("secIdType"), r.take("secId")
    if sec_id_type or sec_id:
        contract = contract.with_sec_id(sec_id_type, sec_id)
    action = r.take("action").strip().upper()
    qty_text = r.take("totalQuantity")
    quantity = _f(qty_text, "totalQuantity")
    order_type = r.take("orderType").strip().upper()
    lmt = _f(r.take("lmtPrice"), "lmtPrice")
    aux = _f(r.take("auxPrice"), "auxPrice")
    tif = r.take("tif").strip().upper()
    oca_group = r.take("ocaGroup")
    account = r.take("account").strip()
    open_close = r.take("openClose")
    origin = _i(r.take("origin"), "origin")
    order_ref = r.take("orderRef")
    transmit = r.take("transmit") != "0"  # empty means the default, True
    parent_id = _i(r.take("parentId"), "parentId")
    r.skip(2, "blockOrder, sweepToFill")
    display_size = _i(r.take("displaySize"), "displaySize")
    trigger_method = _i(r.take("triggerMethod"), "triggerMethod")
    outside_rth = _b(r.take("outsideRth"))
    hidden = _b(r.take("hidden"))
    unsupported: list[str] = []

    legs: list[ComboLeg] = []
    leg_prices: list[float | None] = []
    params: list[tuple[str, str]] = []
    if contract.sec_type == "BAG":
        n = _i(r.take("comboLegs count"), "comboLegs count")
        for k in range(n):
            what = f"combo leg {k + 1}"
            legs.append(ComboLeg(
                con_id=_i(r.take(what), f"{what} conId"),
                ratio=_i(r.take(what), f"{what} ratio"),
                action=r.take(what).strip().upper(),
                exchange=r.take(what),
                open_close=_i(r.take(what), f"{what} openClose"),
                short_sale_slot=_i(r.take(what), f"{what} shortSaleSlot"),
                designated_location=r.take(what),
                exempt_code=_i(r.take(what), f"{what} exemptCode", -1),
            ))
        n = _i(r.take("orderComboLegs count"), "orderComboLegs count")
        for _ in range(n):
            leg_prices.append(_f(r.take("orderComboLeg price"), "orderComboLeg price"))
        n = _i(r.take("smartComboRoutingParams count"), "smartComboRoutingParams count")
        for _ in range(n):
            params.append((r.take("param tag"), r.take("param value")))

    r.skip(1, "sharesAllocation")
    r.skip(1, "discretionaryAmt")
    good_after = r.take("goodAfterTime")
    good_till = r.take("goodTillDate")
    r.skip(3, "faGroup, faMethod, faPercentage")
    if version < 177:
        r.skip(1, "faProfile")
    # modelCode .. deltaNeutralAuxPrice (24 fields)
    block = [r.take("order fields") for _ in range(24)]
    oca_type = _i(block[4], "ocaType")
    all_or_none = _b(block[7])
    min_qty_text = block[8]
    min_qty = _i(min_qty_text, "minQty") if min_qty_text else None
    if block[22]:  # deltaNeutralOrderType
        r.skip(8, "delta-neutral fields")
        unsupported.append("delta-neutral orders")
    # continuousUpdate .. scalePriceIncrement
    block = [r.take("scale fields") for _ in range(7)]
    trail_stop = _f(block[2], "trailStopPrice")
    trailing_pct = _f(block[3], "trailingPercent")
    inc = _f(block[6], "scalePriceIncrement")
    if inc is not None and 0 < inc < UNSET_DOUBLE:
        r.skip(7, "scale fields")
        unsupported.append("scale orders")
    r.skip(3, "scaleTable, activeStartTime, activeStopTime")
    hedge_type = r.take("hedgeType")
    if hedge_type:
        r.skip(1, "hedgeParam")
        unsupported.append("hedge orders")
    r.skip(4, "optOutSmartRouting, clearingAccount, clearingIntent, notHeld")
    if _b(r.take("deltaNeutralContract flag")):
        r.skip(3, "deltaNeutralContract")
    algo = r.take("algoStrategy")
    if algo:
        n = _i(r.take("algoParams count"), "algoParams count")
        r.skip(2 * n, "algoParams")
        unsupported.append(f"algo {algo!r}")
    r.skip(1, "algoId")
    what_if = _b(r.take("whatIf"))
    lmt_offset: float | None = None
    # the rest (misc options, solicited, randomize, conditions, cashQty, ...) is read
    # only as far as needed to spot features the simulator does not execute
    if r.more():
        r.skip(4, "orderMiscOptions, solicited, randomizeSize, randomizePrice")
        if order_type in ("PEG BENCH", "PEGBENCH"):
            r.skip(5, "pegged-to-benchmark fields")
        n_cond = _i(r.take("conditions count"), "conditions count")
        if n_cond:
            unsupported.append("order conditions")
        elif r.more():  # adjustedOrderType, triggerPrice, lmtPriceOffset, ...
            r.skip(2, "adjustedOrderType, triggerPrice")
            lmt_offset = _f(r.take("lmtPriceOffset"), "lmtPriceOffset")
    if quantity is None:
        raise ValueError("totalQuantity is empty")
    if good_after:
        unsupported.append("goodAfterTime")
    return OrderRequest(
        order_id=order_id, contract=contract, action=action, quantity=quantity,
        order_type=order_type, lmt_price=lmt, aux_price=aux, tif=tif, oca_group=oca_group,
        oca_type=oca_type, trailing_percent=trailing_pct, trail_stop_price=trail_stop,
        lmt_price_offset=lmt_offset,
        account=account, open_close=open_close, origin=origin, order_ref=order_ref,
        transmit=transmit, parent_id=parent_id, display_size=display_size,
        trigger_method=trigger_method, outside_rth=outside_rth, hidden=hidden,
        legs=tuple(legs), leg_prices=tuple(leg_prices), combo_params=tuple(params),
        good_after_time=good_after, good_till_date=good_till, all_or_none=all_or_none,
        min_qty=min_qty, what_if=what_if, unsupported=tuple(unsupported),
    )


# --- the live order -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leg:
    """A resolved combo leg: ``ratio`` units of ``contract`` per combo unit, ``action``
    for a BUY of the combo."""

    contract: Tradable
    ratio: int
    action: str

    def side(self, combo_action: str) -> int:
        """+1 if this leg is bought when the combo is traded with ``combo_action``."""
        s = 1 if self.action == "BUY" else -1
        return s if combo_action == "BUY" else -s


@dataclass(slots=True, eq=False)
class SimOrder:
    """An order the gateway keeps, keyed by ``(client_id, order_id)``; ``perm_id`` is
    unique in the gateway and never changes (modifications keep it).

    ``contract`` is the traded instrument of a single-leg order (``None`` for a combo),
    ``legs`` the resolved legs of a combo. ``filled`` and ``remaining`` count shares,
    contracts or combo units; ``avg_fill_price`` / ``last_fill_price`` are dollars per
    share (a combo's net price, see :mod:`desk.sim.matching`). ``triggered`` tells
    whether a stop has been elected. ``placed_at`` / ``done_at`` are UTC.
    """

    client_id: int
    order_id: int
    perm_id: int
    account: str
    request: OrderRequest
    contract: Tradable | None
    legs: tuple[Leg, ...] = ()
    status: str = Status.PRE_SUBMITTED
    filled: float = 0.0
    fill_value: float = 0.0  # sum of fill quantity x price (dollars per share units)
    last_fill_price: float = 0.0
    triggered: bool = False
    #: True while the order was marketable at its last check (it is taking displayed
    #: liquidity at the quote, not waiting at its limit)
    marketable: bool = False
    commission: float = 0.0
    #: per conId traded so far: quantity, value and commission base in dollars (the
    #: running totals of :meth:`desk.domain.commission.CommissionRates.execution`)
    traded: dict[int, Traded] = field(default_factory=dict)
    placed_at: datetime | None = None
    done_at: datetime | None = None
    completed_status: str = ""
    #: UTC instant a DAY order expires (only with market hours on) or a GTD order's
    #: goodTillDate, else None
    expires_at: datetime | None = None
    #: :mod:`desk.sim.order_types` state (not journaled): ``held`` while an
    #: untransmitted order or a bracket child waits (PreSubmitted, not matched);
    #: ``stop_price`` the current stop / trigger of TRAIL / TRAIL LIMIT; ``peg_limit``
    #: the current limit of TRAIL LIMIT (once elected) and REL; ``auction_at`` the UTC
    #: close or open a MOC / LOC / OPG order executes at (dollars per share)
    held: bool = False
    stop_price: float | None = None
    peg_limit: float | None = None
    auction_at: datetime | None = None

    @property
    def action(self) -> str:
        return self.request.action

    @property
    def quantity(self) -> float:
        return self.request.quantity

    @property
    def order_type(self) -> str:
        return self.request.order_type

    @property
    def lmt_price(self) -> float | None:
        return self.request.lmt_price

    @property
    def aux_price(self) -> float | None:
        return self.request.aux_price

    @property
    def tif(self) -> str:
        return self.request.tif or "DAY"

    @property
    def order_ref(self) -> str:
        return self.request.order_ref

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    @property
    def avg_fill_price(self) -> float:
        return self.fill_value / self.filled if self.filled else 0.0

    @property
    def is_done(self) -> bool:
        return self.status in Status.DONE

    @property
    def is_combo(self) -> bool:
        return bool(self.legs)

    @property
    def con_ids(self) -> tuple[int, ...]:
        """The conIds this order trades (one, or one per combo leg)."""
        if self.contract is not None:
            return (self.contract.con_id,)
        return tuple(leg.contract.con_id for leg in self.legs)

    def describe(self) -> str:
        what = (self.contract.describe() if self.contract is not None
                else "BAG " + "/".join(leg.contract.describe() for leg in self.legs))
        price = ""
        if self.lmt_price is not None:
            price = f" @ {self.lmt_price:g}"
        if self.aux_price is not None:
            price += f" stop {self.aux_price:g}"
        return f"{self.action} {self.quantity:g} {what} {self.order_type}{price} {self.tif}"


# --- encoders -----------------------------------------------------------------------------


def _order_contract(order: SimOrder) -> list[object]:
    if order.contract is not None:
        return order.contract.wire11("SMART")
    q = order.request.contract
    return [q.con_id, q.symbol, "BAG", "", "0", "", "", q.exchange or "SMART",
            q.currency or "USD", "", ""]


def _combo_fields(order: SimOrder) -> tuple[str, list[object]]:
    """(comboLegsDescrip, [nLegs, legs..., nOrderComboLegs, prices..., nParams, ...])."""
    req = order.request
    if not order.is_combo:
        return "", [0, 0, 0]
    descrip = ",".join(f"{leg.con_id}|{leg.ratio if leg.action == 'BUY' else -leg.ratio}"
                       for leg in req.legs)
    out: list[object] = [len(req.legs)]
    for leg in req.legs:
        out += [leg.con_id, leg.ratio, leg.action, leg.exchange, leg.open_close,
                leg.short_sale_slot, leg.designated_location, leg.exempt_code]
    out.append(len(req.leg_prices))
    out += [fmt_num(p) for p in req.leg_prices]
    out.append(len(req.combo_params))
    for tag, value in req.combo_params:
        out += [tag, value]
    return descrip, out


@dataclass(frozen=True, slots=True)
class WhatIfState:
    """The orderState of a what-if answer: margins and equity with loan value before,
    change and after (dollars), and the commission estimate (dollars)."""

    init_before: float
    maint_before: float
    ewl_before: float
    init_after: float
    maint_after: float
    ewl_after: float
    commission: float
    warning: str = ""


def open_order(order: SimOrder, status: str | None = None,
               what_if: WhatIfState | None = None) -> bytes:
    """openOrder (5) for ``order`` with orderState ``status`` (default: the order's);
    with ``what_if`` the what-if answer (whatIf=1 and the margin fields)."""
    req = order.request
    descrip, combo = _combo_fields(order)
    st = status or order.status
    if what_if is not None:
        w = what_if
        margins = [_money(w.init_before), _money(w.maint_before), _money(w.ewl_before),
                   _money(w.init_after - w.init_before),
                   _money(w.maint_after - w.maint_before),
                   _money(w.ewl_after - w.ewl_before),
                   _money(w.init_after), _money(w.maint_after), _money(w.ewl_after)]
        comm = [fmt_num(w.commission), fmt_num(w.commission), fmt_num(w.commission), "USD",
                w.warning]
    else:
        margins = [""] * 9
        comm = ["", "", "", "", ""]
    fields: list[object] = [
        _OPEN_ORDER, order.order_id, *_order_contract(order),
        req.action, fmt_num(req.quantity), req.order_type, fmt_num(req.lmt_price),
        fmt_num(req.aux_price), order.tif, req.oca_group, order.account, req.open_close,
        req.origin, req.order_ref, order.client_id, order.perm_id,
        int(req.outside_rth), int(req.hidden),
        "0",  # discretionaryAmt
        req.good_after_time, "",  # goodAfterTime, sharesAllocation
        "", "", "",  # faGroup, faMethod, faPercentage
        # modelCode .. deltaNeutralAuxPrice
        "", req.good_till_date, "", "", "", 0, "", -1, 0, "", "", "", "", "",
        req.display_size or "", 0, 0, int(req.all_or_none), fmt_num(req.min_qty), 0, 0, 0,
        "", req.parent_id, req.trigger_method, "", "", "", "",
        # continuousUpdate .. comboLegsDescrip
        0, "", "", "", "", "", descrip,
        *combo,
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0, "", "", 0, 0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc
        "",  # algoStrategy
        0, int(what_if is not None), st, *margins, *comm,
        0, 0,  # randomizeSize, randomizePrice
        0,  # conditions
        # adjustedOrderType .. usePriceMgmtAlgo (16)
        "None", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, 0, 0,
        "", "", 0,  # duration, postToAts, autoCancelParent
        "", "", "", "", "",  # minTradeQty .. midOffsetAtHalf
    ]
    return encode_fields(fields)


def order_status(order: SimOrder, status: str | None = None) -> bytes:
    """orderStatus (3): orderId, status, filled, remaining, avgFillPrice, permId,
    parentId, lastFillPrice, clientId, whyHeld, mktCapPrice."""
    return encode_fields((
        _ORDER_STATUS, order.order_id, status or order.status, fmt_num(order.filled),
        fmt_num(order.remaining), fmt_num(order.avg_fill_price), order.perm_id, order.request.parent_id,
        fmt_num(order.last_fill_price), order.client_id, "", "0",
    ))


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution the gateway made (kept for reqExecutions).

    ``contract`` is the traded leg (for a combo: the leg, or ``None`` for the BAG
    execution itself, which reports the combo's net price); ``side`` ``BOT``/``SLD``;
    ``shares`` this execution's quantity; ``price`` dollars per share; ``cum_qty`` /
    ``avg_price`` the order's totals for this contract so far; ``commission`` dollars;
    ``realized_pnl`` dollars (``None`` for an opening trade); ``time`` UTC.
    """

    exec_id: str
    order: SimOrder
    contract: Tradable | None
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: datetime
    commission: float
    realized_pnl: float | None
    exchange: str
    #: IB lastLiquidity: 1 added (a resting order was hit), 2 removed (marketable order)
    liquidity: int = 2


def exec_details(req_id: int, ex: Execution) -> bytes:
    """execDetails (11), layout of server version 178 (pendingPriceRevision last)."""
    o = ex.order
    if ex.contract is not None:
        contract = ex.contract.wire11(ex.exchange)
    else:
        q = o.request.contract
        contract = [q.con_id, q.symbol, "BAG", "", "0", "", "", ex.exchange,
                    q.currency or "USD", "", ""]
    return encode_fields((
        _EXECUTION_DATA, req_id, o.order_id, *contract, ex.exec_id, exec_time(ex.time),
        o.account, ex.exchange, ex.side, fmt_num(ex.shares), fmt_num(ex.price), o.perm_id,
        o.client_id, 0, fmt_num(ex.cum_qty), fmt_num(ex.avg_price), o.order_ref, "", "",
        "", ex.liquidity, 0,
    ))


def commission_report(ex: Execution) -> bytes:
    """commissionReport (59): execId, commission, currency, realizedPNL (unset for an
    opening execution, as IB sends it), yield, yieldRedemptionDate."""
    realized = "1.7976931348623157E308" if ex.realized_pnl is None else _money(ex.realized_pnl)
    return encode_fields((_COMMISSION_REPORT, 1, ex.exec_id, fmt_num(round(ex.commission, 4)),
                          "USD", realized, "1.7976931348623157E308", ""))


def completed_order(order: SimOrder) -> bytes:
    """completedOrder (101) for a filled or cancelled order (no orderId in this message:
    ib_async keys completed orders by permId)."""
    req = order.request
    descrip, combo = _combo_fields(order)
    done = exec_time(order.done_at) if order.done_at else ""
    fields: list[object] = [
        _COMPLETED_ORDER, *_order_contract(order),
        req.action, fmt_num(req.quantity), req.order_type, fmt_num(req.lmt_price),
        fmt_num(req.aux_price), order.tif, req.oca_group, order.account, req.open_close,
        req.origin, req.order_ref, order.perm_id, int(req.outside_rth), int(req.hidden),
        "0", req.good_after_time, "", "", "",
        # modelCode .. deltaNeutralAuxPrice (23)
        "", req.good_till_date, "", "", "", 0, "", -1, "", "", "", "", "",
        req.display_size or "", 0, int(req.all_or_none), fmt_num(req.min_qty), 0,
        req.trigger_method, "", "", "", "",
        0, "", "", "", descrip,  # continuousUpdate .. comboLegsDescrip
        *combo,
        "", "", "", "",  # scaleInit, scaleSubs, scalePriceIncrement, hedgeType
        "", "", 0, 0,  # clearingAccount, clearingIntent, notHeld, dnc flag
        "",  # algoStrategy
        0, order.status, 0, 0,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        "", "", "", 0, 0,  # trailStopPrice, lmtPriceOffset, cashQty, dontUseAuto.., isOms..
        "", fmt_num(order.filled), 0, 0, "", 0, 0, 0,  # autoCancelDate .. parentPermId
        done, order.completed_status,
        "", "", "", "", "",  # minTradeQty .. midOffsetAtHalf
    ]
    return encode_fields(fields)
