"""What the trader wants to send: :class:`OrderIntent` and its combo legs.

An intent is validated when it is built (bad input raises :class:`RiskInputError` naming
the field), is immutable, and round-trips through JSON (:meth:`OrderIntent.to_payload` /
:meth:`OrderIntent.from_payload`) so the audit log can store it and reconciliation can
rebuild it.

Prices are dollars per share (per unit of the underlying for options: a limit of 1.25 on
an option with multiplier 100 is $125 per contract). For a combo (IB secType ``BAG``) the
limit / stop price is the **net price per combo unit in dollars per share of the combo's
multiplier**: with leg ratio r_i, leg multiplier m_i, leg price p_i and combo multiplier M
(``instrument.multiplier``), the net price is ``sum(+-r_i * m_i * p_i) / M`` (+ for BUY
legs, - for SELL legs). For option-only combos M = 100 and the net price is the familiar
``sum(+-r_i * p_i)``; a conversion (BUY 100 shares, SELL 1 call, BUY 1 put, M = 100) is
priced as ``S - C + P`` per share. A negative net price is a credit.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from collections.abc import Mapping
from typing import Any, TypeVar

from desk.domain.models import Instrument

__all__ = ["Action", "ComboLeg", "MarginImpact", "OrderIntent", "OrderType", "RiskInputError", "TimeInForce"]

_EXPIRY_RE = re.compile(r"^\d{8}$")
#: secTypes the risk engine understands: stocks/ETFs, equity options, combos of them.
SUPPORTED_SEC_TYPES = ("STK", "OPT", "BAG")


class RiskInputError(ValueError):
    """An order intent, limit or market context is malformed. ``str()`` is one line naming
    the field and the problem, e.g. ``quantity must be a positive whole number, got -5``."""


class Action(str, Enum):
    """IB order action."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Action.BUY else -1


class OrderType(str, Enum):
    """IB order types the desk sends (IB's ``orderType`` strings)."""

    LMT = "LMT"
    MKT = "MKT"
    STP = "STP"
    STP_LMT = "STP LMT"


class TimeInForce(str, Enum):
    """IB ``tif``: DAY (until the close), GTC (good till cancelled), IOC (immediate or cancel)."""

    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"


_E = TypeVar("_E", bound=Enum)


def _enum(cls: type[_E], value: object, what: str) -> _E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip().upper().replace("_", " ")
        for member in cls:
            if member.value == text:
                return member
    allowed = ", ".join(m.value for m in cls)
    raise RiskInputError(f"{what} must be one of {allowed}, got {value!r}")


def _check_instrument(ins: object, what: str, *, allow_bag: bool) -> Instrument:
    if not isinstance(ins, Instrument):
        raise RiskInputError(f"{what} must be a desk.domain.Instrument, got {type(ins).__name__}")
    kinds = SUPPORTED_SEC_TYPES if allow_bag else ("STK", "OPT")
    if ins.sec_type not in kinds:
        raise RiskInputError(f"{what} {ins.symbol}: secType {ins.sec_type!r} is not supported (use {', '.join(kinds)})")
    if not ins.symbol:
        raise RiskInputError(f"{what}: symbol is empty")
    if not isinstance(ins.multiplier, int) or ins.multiplier <= 0:
        raise RiskInputError(f"{what} {ins.symbol}: multiplier must be a positive whole number, got {ins.multiplier!r}")
    if ins.sec_type != "BAG" and ins.con_id <= 0:
        raise RiskInputError(f"{what} {ins.key}: conId must be > 0 (qualify the contract first), got {ins.con_id}")
    if ins.sec_type == "OPT":
        if ins.right not in ("C", "P"):
            raise RiskInputError(f"{what} {ins.symbol}: option right must be 'C' or 'P', got {ins.right!r}")
        if not (math.isfinite(ins.strike) and ins.strike > 0):
            raise RiskInputError(f"{what} {ins.symbol}: option strike must be > 0, got {ins.strike!r}")
        if not _EXPIRY_RE.match(ins.expiry):
            raise RiskInputError(f"{what} {ins.symbol}: option expiry must be YYYYMMDD, got {ins.expiry!r}")
    return ins


def _price(value: object, what: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RiskInputError(f"{what} must be a number, got {value!r}")
    price = float(value)
    if not math.isfinite(price):
        raise RiskInputError(f"{what} must be finite, got {value!r}")
    if positive and price <= 0:
        raise RiskInputError(f"{what} must be > 0, got {value!r}")
    return price


@dataclass(frozen=True, slots=True)
class ComboLeg:
    """One leg of a combo: ``ratio`` units of ``instrument`` (shares for a stock leg,
    contracts for an option leg) per combo unit, bought or sold per ``action`` when the
    combo is bought (reversed when the combo is sold)."""

    instrument: Instrument
    action: Action
    ratio: int = 1

    def __post_init__(self) -> None:
        _check_instrument(self.instrument, "combo leg", allow_bag=False)
        object.__setattr__(self, "action", _enum(Action, self.action, "combo leg action"))
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, int) or self.ratio <= 0:
            raise RiskInputError(f"combo leg {self.instrument.key}: ratio must be a positive whole number, got {self.ratio!r}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the trader wants to send, before any check.

    ``instrument``: the contract (``sec_type`` STK, OPT, or BAG for a combo described by
    ``legs``; STK/OPT need a conId). ``action``: BUY or SELL. ``quantity``: shares (STK)
    or contracts / combo units (OPT, BAG), a positive whole number. ``order_type``: LMT
    (needs ``limit_price``), MKT (no prices), STP (needs ``stop_price``), STP LMT (both).
    Prices in dollars per share, > 0 except for combos, whose net price may be zero or
    negative (a credit). ``tif``: DAY, GTC or IOC. ``outside_rth``: IB's ``outsideRth``
    (let the order work in pre-/post-market; stocks only). ``account``: IB account id
    (empty: the gateway's default). Enum fields also accept their strings (``"buy"``,
    ``"STP LMT"``).

    Raises :class:`RiskInputError` naming the field for any inconsistency.
    """

    instrument: Instrument
    action: Action
    quantity: int
    order_type: OrderType = OrderType.LMT
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    outside_rth: bool = False
    legs: tuple[ComboLeg, ...] = field(default=())
    account: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        ins = _check_instrument(self.instrument, "instrument", allow_bag=True)
        set_(self, "action", _enum(Action, self.action, "action"))
        set_(self, "order_type", _enum(OrderType, self.order_type, "order_type"))
        set_(self, "tif", _enum(TimeInForce, self.tif, "tif"))
        qty = self.quantity
        if isinstance(qty, bool) or not isinstance(qty, int | float) or not math.isfinite(qty) or qty <= 0 or qty != int(qty):
            raise RiskInputError(f"quantity must be a positive whole number, got {qty!r}")
        set_(self, "quantity", int(qty))
        legs = tuple(self.legs)
        if ins.sec_type == "BAG":
            if len(legs) < 2:
                raise RiskInputError(f"combo {ins.symbol}: needs at least 2 legs, got {len(legs)}")
            seen: set[int] = set()
            for leg in legs:
                if not isinstance(leg, ComboLeg):
                    raise RiskInputError(f"combo {ins.symbol}: legs must be ComboLeg, got {type(leg).__name__}")
                if leg.instrument.con_id in seen:
                    raise RiskInputError(f"combo {ins.symbol}: conId {leg.instrument.con_id} appears in two legs")
                seen.add(leg.instrument.con_id)
        elif legs:
            raise RiskInputError(f"legs are only for combos (secType BAG), not {ins.sec_type}")
        set_(self, "legs", legs)
        if not isinstance(self.outside_rth, bool):
            raise RiskInputError(f"outside_rth must be true or false, got {self.outside_rth!r}")
        if not isinstance(self.account, str):
            raise RiskInputError(f"account must be a string, got {self.account!r}")
        positive = ins.sec_type != "BAG"
        kind = self.order_type
        needs_limit = kind in (OrderType.LMT, OrderType.STP_LMT)
        needs_stop = kind in (OrderType.STP, OrderType.STP_LMT)
        if needs_limit:
            if self.limit_price is None:
                raise RiskInputError(f"{kind.value} order needs limit_price")
            set_(self, "limit_price", _price(self.limit_price, "limit_price", positive=positive))
        elif self.limit_price is not None:
            raise RiskInputError(f"{kind.value} order takes no limit_price, got {self.limit_price!r}")
        if needs_stop:
            if self.stop_price is None:
                raise RiskInputError(f"{kind.value} order needs stop_price")
            set_(self, "stop_price", _price(self.stop_price, "stop_price", positive=positive))
        elif self.stop_price is not None:
            raise RiskInputError(f"{kind.value} order takes no stop_price, got {self.stop_price!r}")

    # --- derived -----------------------------------------------------------------------

    @property
    def is_combo(self) -> bool:
        return self.instrument.sec_type == "BAG"

    @property
    def signed_quantity(self) -> int:
        """``+quantity`` for BUY, ``-quantity`` for SELL."""
        return self.action.sign * self.quantity

    def leg_deltas(self) -> list[tuple[Instrument, int]]:
        """Signed position change per instrument if the order fills completely: shares or
        contracts, + bought / - sold. One entry for a single instrument, one per leg for a
        combo (leg quantity = order quantity x ratio, sign flipped for SELL legs and again
        for a SELL of the combo)."""
        if not self.is_combo:
            return [(self.instrument, self.signed_quantity)]
        return [(leg.instrument, self.signed_quantity * leg.action.sign * leg.ratio) for leg in self.legs]

    def signature(self) -> tuple[object, ...]:
        """What makes two orders "the same" for the duplicate check: the instruments
        (conIds and ratios), action, quantity, order type and prices (TIF and account
        excluded)."""
        what = (
            (self.instrument.con_id, self.instrument.symbol)
            if not self.is_combo
            else tuple((leg.instrument.con_id, leg.action.value, leg.ratio) for leg in self.legs)
        )
        return (what, self.action.value, self.quantity, self.order_type.value, self.limit_price, self.stop_price)

    @property
    def describe(self) -> str:
        """One line for humans: ``BUY 100 SPY LMT 501.25 DAY``."""
        price = ""
        if self.order_type is OrderType.LMT:
            price = f" {self.limit_price:g}"
        elif self.order_type is OrderType.STP:
            price = f" {self.stop_price:g}"
        elif self.order_type is OrderType.STP_LMT:
            price = f" {self.stop_price:g}/{self.limit_price:g}"
        name = self.instrument.key
        if self.is_combo:
            name = (
                f"{self.instrument.symbol} combo["
                + ", ".join(f"{leg.action.value} {leg.ratio} {leg.instrument.key}" for leg in self.legs)
                + "]"
            )
        rth = " +RTH" if self.outside_rth else ""
        return f"{self.action.value} {self.quantity} {name} {self.order_type.value}{price} {self.tif.value}{rth}"

    # --- JSON --------------------------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        """A JSON-ready dict (instruments as their field dicts, enums as IB strings)."""
        return {
            "instrument": asdict(self.instrument),
            "action": self.action.value,
            "quantity": self.quantity,
            "order_type": self.order_type.value,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "tif": self.tif.value,
            "outside_rth": self.outside_rth,
            "legs": [{"instrument": asdict(leg.instrument), "action": leg.action.value, "ratio": leg.ratio} for leg in self.legs],
            "account": self.account,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OrderIntent:
        """Inverse of :meth:`to_payload`. Raises :class:`RiskInputError` on a malformed dict."""
        try:
            legs = tuple(
                ComboLeg(Instrument(**leg["instrument"]), leg["action"], leg["ratio"]) for leg in payload.get("legs", ())
            )
            return cls(
                instrument=Instrument(**payload["instrument"]),
                action=payload["action"],
                quantity=payload["quantity"],
                order_type=payload.get("order_type", "LMT"),
                limit_price=payload.get("limit_price"),
                stop_price=payload.get("stop_price"),
                tif=payload.get("tif", "DAY"),
                outside_rth=payload.get("outside_rth", False),
                legs=legs,
                account=payload.get("account", ""),
            )
        except (KeyError, TypeError) as exc:
            raise RiskInputError(f"order intent payload is malformed: {exc!r}") from None


#: IB's "unset" double (``Double.MAX_VALUE``), which what-if fields carry when unknown.
_IB_UNSET = 1.7976931348623157e308


def _ib_number(value: object) -> float:
    if value is None or value == "":
        return math.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    if not math.isfinite(number) or abs(number) >= _IB_UNSET:
        return math.nan
    return number


@dataclass(frozen=True, slots=True)
class MarginImpact:
    """IB's what-if answer for an order (``whatIfOrder``: ``OrderState`` fields), dollars.

    Initial margin, maintenance margin and equity with loan value before the order, the
    change it makes, and after. ``commission`` / ``min_commission`` / ``max_commission``
    are IB's own estimate. Unknown values are ``nan``.
    """

    init_margin_before: float = math.nan
    init_margin_change: float = math.nan
    init_margin_after: float = math.nan
    maint_margin_before: float = math.nan
    maint_margin_change: float = math.nan
    maint_margin_after: float = math.nan
    equity_with_loan_before: float = math.nan
    equity_with_loan_change: float = math.nan
    equity_with_loan_after: float = math.nan
    commission: float = math.nan
    min_commission: float = math.nan
    max_commission: float = math.nan

    @property
    def complete(self) -> bool:
        """True when IB answered the figures the buying-power check needs: the initial
        margin change and the equity-with-loan change are both known."""
        return math.isfinite(self.init_margin_change) and math.isfinite(self.equity_with_loan_change)

    @property
    def funds_cost(self) -> float:
        """Dollars of AvailableFunds the order uses per IB: the initial margin change minus
        the equity-with-loan change (``nan`` unless :attr:`complete`)."""
        return self.init_margin_change - self.equity_with_loan_change

    _IB_NAMES = {
        "initMarginBefore": "init_margin_before",
        "initMarginChange": "init_margin_change",
        "initMarginAfter": "init_margin_after",
        "maintMarginBefore": "maint_margin_before",
        "maintMarginChange": "maint_margin_change",
        "maintMarginAfter": "maint_margin_after",
        "equityWithLoanBefore": "equity_with_loan_before",
        "equityWithLoanChange": "equity_with_loan_change",
        "equityWithLoanAfter": "equity_with_loan_after",
        "commission": "commission",
        "minCommission": "min_commission",
        "maxCommission": "max_commission",
    }

    @classmethod
    def from_ib(cls, fields: Mapping[str, object]) -> MarginImpact:
        """Build from IB's ``OrderState`` field names (``initMarginBefore`` ... as strings or
        numbers, e.g. ``vars(order_state)`` of ib_async). Empty strings, IB's unset value
        (1.797e308) and unparsable values become ``nan``; unknown keys are ignored."""
        values = {ours: _ib_number(fields.get(theirs)) for theirs, ours in cls._IB_NAMES.items()}
        return cls(**values)
