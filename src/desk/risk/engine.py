"""The pre-trade risk engine: :func:`evaluate` an :class:`OrderIntent` in a
:class:`MarketContext` against :class:`RiskLimits` and get a :class:`RiskReport`.

Pure: no I/O, no clock (time is ``ctx.now``), no Textual; cheap enough to run on every
keystroke of the order ticket and every quote change (see ``bench/risk.py``).

The checks and the market arithmetic (the combo's book from its legs, the reference
price, the notional) are in :mod:`desk.risk.checks`, the buying-power cost in
:mod:`desk.risk.funds`. The report adds what the ticket shows: every leg with its market
and position before / after, the commission estimate (IBKR Fixed, leg by leg at the
price each leg trades), AvailableFunds before and after with where the cost comes from,
IB's what-if when the broker has it, and for options the payoff at expiry of the
resulting position: the current positions in the order's instruments (at their average
cost) and in the underlying stock (same symbol), plus the order filled at its reference
price. ``None`` (with ``payoff_note`` saying why) for stock-only orders, options of
different expiries, or no price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from desk.domain.calendar import ExchangeCalendar, nyse_calendar
from desk.domain.models import Instrument
from desk.risk.checks import (
    CheckResult,
    book_of,
    check_buying_power,
    check_collar,
    check_daily_loss,
    check_duplicate,
    check_hours,
    check_notional,
    check_position,
    check_quantity,
    check_rate,
    check_restricted,
    check_stale,
    check_working_notional,
    leg_trade_prices,
    notional_of,
    reference_price,
)
from desk.domain.intent import MarginImpact
from desk.risk.context import MarketContext
from desk.risk.errors import RiskInputError
from desk.risk.funds import funds_cost
from desk.domain.intent import OrderIntent
from desk.risk.limits import RiskLimits
from desk.risk.payoff import PayoffLeg, PayoffProfile, payoff_at_expiry

__all__ = ["CHECK_NAMES", "CheckResult", "LegPreview", "RiskReport", "evaluate"]

CHECK_NAMES: tuple[str, ...] = (
    "max_quantity",
    "max_notional",
    "working_notional",
    "price_collar",
    "duplicate",
    "order_rate",
    "max_position",
    "daily_loss",
    "restricted",
    "stale_quote",
    "market_hours",
    "buying_power",
)

_NAN = math.nan


@dataclass(frozen=True, slots=True)
class LegPreview:
    """One instrument the order trades, as the ticket lists it.

    ``action``: BUY or SELL as this leg trades when the order fills; ``ratio``: units per
    combo unit (1 for a single instrument); ``quantity``: signed shares / contracts the
    order trades. ``bid`` / ``ask``: the leg's market, ``price`` the side it trades at
    (the order's price for a single instrument), dollars per share (``nan`` unknown).
    ``position_before`` / ``position_after``: signed shares / contracts, after = this
    order filled (working orders not included)."""

    instrument: Instrument
    action: str
    ratio: int
    quantity: float
    bid: float
    ask: float
    price: float
    position_before: float
    position_after: float


@dataclass(frozen=True)
class RiskReport:
    """Result of :func:`evaluate`.

    ``checks``: one :class:`CheckResult` per name of :data:`CHECK_NAMES`, in that order.
    ``price``: reference price, dollars per share (net per combo unit); ``bid``/``ask``/
    ``mid``: the instrument's or the combo's market (built from the legs), same units
    (``nan`` unknown). ``legs``: one :class:`LegPreview` per instrument traded.
    ``notional`` (gross over the legs for a combo) and ``commission``: dollars.
    ``positions_before`` / ``positions_after``: signed shares / contracts per conId.
    ``funds_before``: IB AvailableFunds, ``cost``: what the order uses of it (see
    :mod:`desk.risk.funds`; ``cost_basis`` says whether from IB's what-if or desk's Reg T
    estimate), ``funds_after`` = before - cost; ``buying_power_before``: IB BuyingPower,
    for display (dollars, ``nan`` unknown). ``margin``: IB's what-if answer if it was in
    the context. ``payoff``: see the module doc.
    """

    intent: OrderIntent
    checks: tuple[CheckResult, ...]
    price: float
    bid: float
    ask: float
    mid: float
    notional: float
    commission: float
    positions_before: Mapping[int, float]
    positions_after: Mapping[int, float]
    legs: tuple[LegPreview, ...] = ()
    funds_before: float = _NAN
    cost: float = _NAN
    cost_basis: str = ""
    funds_after: float = _NAN
    buying_power_before: float = _NAN
    margin: MarginImpact | None = None
    payoff: PayoffProfile | None = None
    payoff_note: str = ""
    evaluated_at: datetime | None = field(default=None, compare=False)

    @property
    def blocked(self) -> bool:
        """True when any check failed: the order must not be sent."""
        return any(not c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """The messages of the failed checks, in check order (empty when not blocked)."""
        return [f"{c.name}: {c.message}" for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        """The check called ``name``; ``KeyError`` if there is none."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def position_before(self) -> float:
        """Position before in the order's instrument (single-instrument orders; for a
        combo the first leg)."""
        return next(iter(self.positions_before.values()))

    @property
    def position_after(self) -> float:
        """Position after the fill in the order's instrument (first leg of a combo)."""
        return next(iter(self.positions_after.values()))

    def summary(self) -> dict[str, object]:
        """JSON-ready summary for the audit log and ``desk order preview --json`` (no arrays)."""
        return {
            "blocked": self.blocked,
            "reasons": self.reasons,
            "price": _json_num(self.price),
            "bid": _json_num(self.bid),
            "ask": _json_num(self.ask),
            "notional": _json_num(self.notional),
            "commission": _json_num(self.commission),
            "funds_before": _json_num(self.funds_before),
            "cost": _json_num(self.cost),
            "cost_basis": self.cost_basis,
            "funds_after": _json_num(self.funds_after),
            "checks": [
                {"name": c.name, "passed": c.passed, "value": _json_num(c.value), "limit": _json_num(c.limit), "text": c.message}
                for c in self.checks
            ],
        }


def _json_num(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def _commission(intent: OrderIntent, prices: Mapping[int, float], limits: RiskLimits) -> float:
    sched = limits.commission
    return sum(sched.for_instrument(ins.sec_type, abs(delta), prices.get(ins.con_id, _NAN)) for ins, delta in intent.leg_deltas())


def _legs(intent: OrderIntent, ctx: MarketContext, prices: Mapping[int, float]) -> tuple[LegPreview, ...]:
    out = []
    ratios = {leg.instrument.con_id: leg.ratio for leg in intent.legs}
    for ins, delta in intent.leg_deltas():
        q = ctx.quotes.get(ins.con_id)
        bid = q.bid if q is not None and q.bid > 0 else _NAN
        ask = q.ask if q is not None and q.ask > 0 else _NAN
        before = ctx.position(ins.con_id)
        out.append(
            LegPreview(
                ins,
                "BUY" if delta > 0 else "SELL",
                ratios.get(ins.con_id, 1),
                float(delta),
                bid,
                ask,
                prices.get(ins.con_id, _NAN),
                before,
                before + delta,
            )
        )
    return tuple(out)


def _payoff(intent: OrderIntent, ctx: MarketContext, price: float) -> tuple[PayoffProfile | None, str]:
    deltas = intent.leg_deltas()
    if all(ins.sec_type != "OPT" for ins, _ in deltas):
        return None, "no options in the order"
    if math.isnan(price):
        return None, "no price for the order"
    expiries = sorted({ins.expiry for ins, _ in deltas if ins.sec_type == "OPT"})
    con_ids = {ins.con_id for ins, _ in deltas}
    symbol = intent.instrument.symbol
    legs: list[PayoffLeg] = []
    cash = 0.0
    # existing positions: the order's instruments and the underlying stock
    for pos in ctx.positions.values():
        ins = pos.instrument
        held = ins.con_id in con_ids or (ins.sec_type == "STK" and ins.symbol == symbol)
        if not held or pos.quantity == 0:
            continue
        if ins.sec_type == "OPT":
            expiries = sorted({*expiries, ins.expiry})
            legs.append(PayoffLeg(ins.right, pos.quantity, ins.strike, ins.multiplier))
        else:
            legs.append(PayoffLeg("STK", pos.quantity, 0.0, ins.multiplier))
        cash -= pos.quantity * pos.avg_cost * ins.multiplier
    if len(expiries) > 1:
        return None, f"legs expire on different dates ({', '.join(expiries)}): no single-expiry payoff"
    for ins, delta in deltas:
        if ins.sec_type == "OPT":
            legs.append(PayoffLeg(ins.right, delta, ins.strike, ins.multiplier))
        else:
            legs.append(PayoffLeg("STK", delta, 0.0, ins.multiplier))
    cash -= intent.signed_quantity * price * intent.instrument.multiplier
    spot = ctx.underlying_price
    return payoff_at_expiry(legs, cash, expiry=expiries[0], spot=spot), ""


# --- entry point ----------------------------------------------------------------------


def evaluate(
    intent: OrderIntent,
    ctx: MarketContext,
    limits: RiskLimits | None = None,
    *,
    hours: ExchangeCalendar | None = None,
) -> RiskReport:
    """Run every pre-trade check on ``intent`` and build the risk preview.

    ``limits`` defaults to :class:`RiskLimits()`; ``hours`` to the shared XNYS calendar.
    Never raises for market conditions (missing quotes, unknown P&L ... become check
    results); raises :class:`RiskInputError` only for arguments of the wrong type.
    """
    if not isinstance(intent, OrderIntent):
        raise RiskInputError(f"evaluate needs an OrderIntent, got {type(intent).__name__}")
    if not isinstance(ctx, MarketContext):
        raise RiskInputError(f"evaluate needs a MarketContext, got {type(ctx).__name__}")
    limits = limits or RiskLimits()
    hours = hours or nyse_calendar()

    book = book_of(intent, ctx.quotes)
    price = reference_price(intent, book)
    prices = leg_trade_prices(intent, ctx.quotes)
    notional = notional_of(intent, ctx.quotes)
    commission = _commission(intent, prices, limits)
    legs = _legs(intent, ctx, prices)
    before = {leg.instrument.con_id: leg.position_before for leg in legs}
    after = {leg.instrument.con_id: leg.position_after for leg in legs}
    cost, basis = funds_cost(intent, ctx, prices, commission)
    funds_after = ctx.available_funds - cost

    checks = (
        check_quantity(intent, limits),
        check_notional(intent, notional, limits),
        check_working_notional(ctx, notional, limits),
        check_collar(intent, book, limits),
        check_duplicate(intent, ctx, limits),
        check_rate(ctx, limits),
        check_position(intent, ctx, limits),
        check_daily_loss(intent, ctx, limits),
        check_restricted(intent, limits),
        check_stale(intent, ctx, limits),
        check_hours(intent, ctx, limits, hours),
        check_buying_power(ctx.available_funds, cost, basis),
    )
    try:
        payoff, note = _payoff(intent, ctx, price)
    except RiskInputError as exc:  # e.g. a position with a non-finite average cost
        payoff, note = None, str(exc)
    return RiskReport(
        intent=intent,
        checks=checks,
        price=price,
        bid=book.bid,
        ask=book.ask,
        mid=book.mid,
        notional=notional,
        commission=commission,
        positions_before=before,
        positions_after=after,
        legs=legs,
        funds_before=ctx.available_funds,
        cost=cost,
        cost_basis=basis,
        funds_after=funds_after,
        buying_power_before=ctx.buying_power,
        margin=ctx.margin,
        payoff=payoff,
        payoff_note=note,
        evaluated_at=ctx.now,
    )
