"""Orders in the simulated gateway: the records the order engine keeps and passes around.

* :class:`OrderRequest` (with :class:`ComboLeg`) is what a placeOrder carries (parsed by
  :func:`desk.sim.order_parse.parse_place_order`).
* :class:`SimOrder` is an order the gateway keeps: status (``PreSubmitted``,
  ``Submitted``, ``Filled``, ``Cancelled``), filled / remaining quantity, average fill
  price, permId and the request it was last placed or modified with; :class:`Leg` a
  resolved combo leg.
* :class:`Tradable` is the engine's view of a stock (from
  :class:`~desk.sim.universe.SimStock`) or an option (from
  :class:`~desk.sim.chain.SimOption`), with the multiplier, tick rules and the fields
  the wire messages carry.
* :class:`Execution` is one execution (kept for reqExecutions), :class:`WhatIfState` the
  orderState of a what-if answer.
* commissions are :mod:`desk.domain.commission` (IBKR Pro Fixed, the desk's own rule):
  :attr:`SimOrder.traded` keeps each contract's running totals
  (:class:`~desk.domain.commission.Traded`).

The wire encoders of order messages are :mod:`desk.sim.order_wire`.

Units: prices in dollars per share (an option price is per share of the underlying: a
quote of 1.25 with multiplier 100 costs $125 per contract); quantities in shares (stocks)
or contracts (options); a combo's quantity counts combo units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.domain.commission import Traded
from desk.sim.contracts import ContractQuery

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
    "fmt_num",
    "on_grid",
]

#: IB's "unset" int and double (``Integer.MAX_VALUE`` / ``Double.MAX_VALUE``).
UNSET_INTEGER = 2147483647
UNSET_DOUBLE = 1.7976931348623157e308

#: Order types the simulator executes (the triggered, trailing, pegged and auction types
#: are :mod:`desk.sim.order_types`).
ORDER_TYPES = frozenset({"LMT", "MKT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT", "MIT", "LIT", "MOC", "LOC", "REL"})
#: Times in force the simulator honours.
TIFS = frozenset({"DAY", "GTC", "IOC", "GTD", "FOK", "OPG"})
#: Price increment of a combo's net price, dollars per share (IB quotes spreads in cents).
COMBO_TICK = 0.01


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
                con_id=d.con_id,
                symbol=d.symbol,
                sec_type="OPT",
                currency=getattr(d, "currency", "USD"),
                expiry=d.expiry,
                strike=float(d.strike),
                right=d.right,
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
            con_id=d.con_id,
            symbol=d.symbol,
            sec_type="STK",
            currency=getattr(d, "currency", "USD"),
            primary_exchange=primary,
            local_symbol=d.symbol,
            trading_class="NMS" if primary == "NASDAQ" else d.symbol,
            underlying_con_id=d.con_id,
            min_tick=float(getattr(d, "min_tick", 0.01)),
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
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            fmt_num(self.strike) or "0",
            self.right,
            str(self.multiplier) if self.is_option else "",
            exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]

    def wire_portfolio(self) -> list[object]:
        """The contract fields of updatePortfolio (primaryExchange instead of exchange)."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            fmt_num(self.strike) or "0",
            self.right,
            str(self.multiplier) if self.is_option else "",
            self.primary_exchange,
            self.currency,
            self.local_symbol,
            self.trading_class,
        ]


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
        what = (
            self.contract.describe()
            if self.contract is not None
            else "BAG " + "/".join(leg.contract.describe() for leg in self.legs)
        )
        price = ""
        if self.lmt_price is not None:
            price = f" @ {self.lmt_price:g}"
        if self.aux_price is not None:
            price += f" stop {self.aux_price:g}"
        return f"{self.action} {self.quantity:g} {what} {self.order_type}{price} {self.tif}"


# --- reports ------------------------------------------------------------------------------


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
