"""The pre-trade risk engine: :func:`evaluate` an :class:`OrderIntent` in a
:class:`MarketContext` against :class:`RiskLimits` and get a :class:`RiskReport`.

Pure: no I/O, no clock (time is ``ctx.now``), no Textual; cheap enough to run on every
keystroke of the order ticket and every quote change (see ``bench/risk.py``).

Reference price of the order (dollars per share, or net per combo unit): the limit price
for LMT and STP LMT, the stop price for STP, and for MKT the side that would fill it (ask
for a BUY, bid for a SELL; last if that side is missing). For a combo, bid and ask are
built from the legs: the combo's ask buys the BUY legs at their ask and sells the SELL
legs at their bid, its bid the reverse, each weighted by ratio x leg multiplier / combo
multiplier (see :mod:`desk.risk.intent`).

``notional`` = quantity x |reference price| x multiplier, dollars (the net debit or
credit for a combo).

The checks, in the order of the report (each a :class:`CheckResult` with the number
behind it and its limit):

=============== =================================================================== ====================
name            fails when                                                          value / limit
=============== =================================================================== ====================
max_quantity    quantity > max_order_quantity (STK) / max_order_contracts (OPT/BAG) quantity
max_notional    notional > max_notional, or no price to value the order             dollars
price_collar    |limit - mid| / |mid| x 100 > price_collar_pct (LMT, STP LMT; for a  percent
                combo the denominator is the gross value of the legs at mid); no mid
duplicate       an identical order (:meth:`OrderIntent.signature`) was sent within   seconds since it
                duplicate_window_s
order_rate      orders sent in the last 60 s, this one included, > max per minute    orders
max_position    |position + same-direction working orders + this order| > the limit  shares / contracts
                for some instrument, unless the order reduces that position
daily_loss      daily P&L <= -daily_loss_limit and the order does not only reduce    dollars lost
                positions (passes when P&L is unknown)
restricted      the symbol (underlying of an option, any leg of a combo) is listed   -
stale_quote     a needed quote is missing or older than stale_quote_s                seconds
market_hours    XNYS closed for this order: stocks in the regular session, or        -
                04:00-20:00 ET with outside_rth for LMT / STP LMT (IB fills only
                limit orders outside regular hours); options and combos in the
                regular session only. Passes when enforce_market_hours is off (sim).
buying_power    buying power after the order < 0 (passes when buying power unknown)  dollars
=============== =================================================================== ====================

Buying power after = buying power - cost - commission, where cost is IB's what-if initial
margin change when the broker supplied one (``ctx.margin``), else the notional for an
order that adds to a position (a cash-account estimate) and 0 for one that only reduces.

Payoff: for orders on options, the payoff at expiry (:mod:`desk.risk.payoff`) of the
resulting position: the current positions in the order's instruments (at their average
cost) and in the underlying stock (same symbol), plus the order filled at its reference
price. ``None`` (with ``payoff_note`` saying why) for stock-only orders, options of
different expiries, or no price.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from desk.domain.models import Instrument, Quote
from desk.risk.context import MarginImpact, MarketContext
from desk.risk.errors import RiskInputError
from desk.risk.hours import MarketHours, nyse_hours
from desk.risk.intent import Action, OrderIntent, OrderType
from desk.risk.limits import RiskLimits
from desk.risk.payoff import PayoffLeg, PayoffProfile, payoff_at_expiry

__all__ = ["CHECK_NAMES", "CheckResult", "RiskReport", "evaluate"]

CHECK_NAMES: tuple[str, ...] = (
    "max_quantity",
    "max_notional",
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
_RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One pre-trade check. ``value`` is the number that was checked and ``limit`` the
    bound it was checked against (``nan`` when the check has no number); ``message`` says
    what was found, in a line for the order ticket."""

    name: str
    passed: bool
    value: float
    limit: float
    message: str


@dataclass(frozen=True)
class RiskReport:
    """Result of :func:`evaluate`.

    ``checks``: one :class:`CheckResult` per name of :data:`CHECK_NAMES`, in that order.
    ``price``: reference price, dollars per share (net per combo unit); ``bid``/``ask``/
    ``mid``: the instrument's or the combo's market, same units (``nan`` unknown).
    ``notional`` and ``commission``: dollars. ``positions_before`` / ``positions_after``:
    signed shares / contracts per conId of every instrument the order trades (after = if
    it fills completely). ``buying_power_before`` / ``buying_power_after``: dollars
    (``nan`` unknown). ``margin``: IB's what-if answer if it was in the context.
    ``payoff``: see the module doc.
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
    buying_power_before: float
    buying_power_after: float
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

    def summary(self) -> dict:
        """JSON-ready summary for the audit log (no arrays)."""
        return {
            "blocked": self.blocked,
            "reasons": self.reasons,
            "price": _json_num(self.price),
            "notional": _json_num(self.notional),
            "commission": _json_num(self.commission),
            "checks": [
                {"name": c.name, "passed": c.passed, "value": _json_num(c.value), "limit": _json_num(c.limit)}
                for c in self.checks
            ],
        }


def _json_num(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


# --- market of the order ---------------------------------------------------------------


def _leg_weights(intent: OrderIntent) -> Iterator[tuple[Instrument, float]]:
    """(instrument, signed weight) such that net price = sum(weight * leg price)."""
    if not intent.is_combo:
        yield intent.instrument, 1.0
        return
    m = intent.instrument.multiplier
    for leg in intent.legs:
        yield leg.instrument, leg.action.sign * leg.ratio * leg.instrument.multiplier / m


def _book(intent: OrderIntent, quotes: Mapping[int, Quote]) -> tuple[float, float, float, float]:
    """(bid, ask, last, gross) of the instrument or combo; gross = sum |w| * leg mid."""
    if not intent.is_combo:
        q = quotes.get(intent.instrument.con_id)
        if q is None:
            return _NAN, _NAN, _NAN, _NAN
        bid = q.bid if q.bid > 0 else _NAN
        ask = q.ask if q.ask > 0 else _NAN
        last = q.last if q.last > 0 else _NAN
        return bid, ask, last, (bid + ask) / 2.0
    bid = ask = gross = 0.0
    for ins, w in _leg_weights(intent):
        q = quotes.get(ins.con_id)
        lb = q.bid if q is not None and q.bid > 0 else _NAN
        la = q.ask if q is not None and q.ask > 0 else _NAN
        if w > 0:
            bid += w * lb
            ask += w * la
        else:
            bid += w * la
            ask += w * lb
        gross += abs(w) * (lb + la) / 2.0
    return bid, ask, _NAN, gross


def _reference_price(intent: OrderIntent, bid: float, ask: float, last: float) -> float:
    kind = intent.order_type
    if kind in (OrderType.LMT, OrderType.STP_LMT):
        return float(intent.limit_price)  # type: ignore[arg-type]
    if kind is OrderType.STP:
        return float(intent.stop_price)  # type: ignore[arg-type]
    side = ask if intent.action is Action.BUY else bid
    return side if not math.isnan(side) else last


# --- checks ---------------------------------------------------------------------------


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "?"
    return f"{x:,.2f}" if abs(x) < 1e15 else f"{x:.3g}"


def _check_quantity(intent: OrderIntent, limits: RiskLimits) -> CheckResult:
    if intent.instrument.sec_type == "STK":
        limit, unit = limits.max_order_quantity, "shares"
    else:
        limit, unit = limits.max_order_contracts, "contracts"
    q = intent.quantity
    ok = q <= limit
    msg = f"{q:,} {unit} {'<=' if ok else '>'} max {limit:,}"
    return CheckResult("max_quantity", ok, float(q), float(limit), msg)


def _check_notional(notional: float, limits: RiskLimits) -> CheckResult:
    limit = limits.max_notional
    if math.isnan(notional):
        return CheckResult("max_notional", False, _NAN, limit, "no price to value the order (no quote)")
    ok = notional <= limit
    return CheckResult("max_notional", ok, notional, limit, f"${_fmt(notional)} {'<=' if ok else '>'} max ${_fmt(limit)}")


def _check_collar(intent: OrderIntent, mid: float, gross: float, limits: RiskLimits) -> CheckResult:
    limit = limits.price_collar_pct
    if intent.order_type not in (OrderType.LMT, OrderType.STP_LMT):
        return CheckResult("price_collar", True, _NAN, limit, f"not applicable to {intent.order_type.value} orders")
    denom = abs(gross) if intent.is_combo else abs(mid)
    if math.isnan(mid) or math.isnan(denom) or denom == 0:
        return CheckResult("price_collar", False, _NAN, limit, "no mid price (bid or ask missing)")
    dev = abs(float(intent.limit_price) - mid) / denom * 100.0  # type: ignore[arg-type]
    ok = dev <= limit
    return CheckResult(
        "price_collar", ok, dev, limit,
        f"limit {intent.limit_price:g} is {dev:.2f}% from mid {mid:.10g} ({'<=' if ok else '>'} {limit:g}%)",
    )


def _check_duplicate(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    window = limits.duplicate_window_s
    sig = intent.signature()
    newest = _NAN
    for r in ctx.recent_orders:
        age = abs((ctx.now - r.time).total_seconds())  # abs: tolerate a clock step back
        if age <= window and r.intent.signature() == sig:
            newest = age if math.isnan(newest) else min(newest, age)
    if math.isnan(newest):
        return CheckResult("duplicate", True, _NAN, window, f"no identical order in the last {window:g} s")
    return CheckResult("duplicate", False, newest, window, f"identical order sent {newest:.1f} s ago (window {window:g} s)")


def _check_rate(ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.max_orders_per_minute
    n = 1 + sum(1 for r in ctx.recent_orders if abs(ctx.now - r.time) < _RATE_WINDOW)
    ok = n <= limit
    return CheckResult("order_rate", ok, float(n), float(limit), f"{n} orders in 60 s {'<=' if ok else '>'} max {limit}")


def _pending(ctx: MarketContext, con_id: int, direction: int) -> float:
    total = 0.0
    for o in ctx.open_orders:
        for ins, delta in o.leg_deltas():
            if ins.con_id == con_id and delta * direction > 0:
                total += delta
    return total


def _reduces(before: float, after: float) -> bool:
    return before != 0 and before * after >= 0 and abs(after) < abs(before)


def _check_position(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    worst_ratio, worst = -1.0, None
    for ins, delta in intent.leg_deltas():
        before = ctx.position(ins.con_id)
        after = before + _pending(ctx, ins.con_id, 1 if delta > 0 else -1) + delta
        if ins.sec_type == "STK":
            limit, unit = limits.max_position_shares, "shares"
        else:
            limit, unit = limits.max_position_contracts, "contracts"
        ok = abs(after) <= limit or _reduces(before, before + delta)
        ratio = abs(after) / limit if limit else (math.inf if after else 0.0)
        # report the failing instrument first, else the one closest to its limit
        score = ratio + (1e9 if not ok else 0.0)
        if score > worst_ratio:
            worst_ratio, worst = score, (ok, ins, after, limit, unit)
    assert worst is not None
    ok, ins, after, limit, unit = worst
    msg = f"{ins.key}: {after:+,.0f} {unit} after fill {'<=' if ok else '>'} max {limit:,}"
    if ok and abs(after) > limit:
        msg = f"{ins.key}: {after:+,.0f} {unit} over max {limit:,} but the order reduces the position"
    return CheckResult("max_position", ok, abs(after), float(limit), msg)


def _only_reduces(intent: OrderIntent, ctx: MarketContext) -> bool:
    return all(_reduces(ctx.position(ins.con_id), ctx.position(ins.con_id) + d) for ins, d in intent.leg_deltas())


def _check_daily_loss(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.daily_loss_limit
    pnl = ctx.daily_pnl
    if math.isnan(pnl):
        return CheckResult("daily_loss", True, _NAN, limit, "daily P&L not available")
    loss = -pnl
    if loss < limit:
        return CheckResult("daily_loss", True, loss, limit, f"daily P&L ${_fmt(pnl)} (loss limit ${_fmt(limit)})")
    if _only_reduces(intent, ctx):
        return CheckResult("daily_loss", True, loss, limit, f"loss ${_fmt(loss)} at limit; order only reduces positions")
    return CheckResult("daily_loss", False, loss, limit, f"loss ${_fmt(loss)} >= daily limit ${_fmt(limit)}: only reducing orders")


def _symbols(intent: OrderIntent) -> list[str]:
    names = [intent.instrument.symbol.upper()]
    names += [leg.instrument.symbol.upper() for leg in intent.legs]
    return list(dict.fromkeys(names))


def _check_restricted(intent: OrderIntent, limits: RiskLimits) -> CheckResult:
    bad = [s for s in _symbols(intent) if s in limits.restricted_symbols]
    if bad:
        return CheckResult("restricted", False, _NAN, _NAN, f"{', '.join(bad)} restricted")
    return CheckResult("restricted", True, _NAN, _NAN, "not restricted")


def _check_stale(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.stale_quote_s
    worst, worst_key = -math.inf, ""
    for ins, _ in _leg_weights(intent):
        q = ctx.quotes.get(ins.con_id)
        if q is None or q.time is None:
            return CheckResult("stale_quote", False, _NAN, limit, f"no quote for {ins.key}")
        age = max(0.0, (ctx.now - q.time).total_seconds())
        if age > worst:
            worst, worst_key = age, ins.key
    ok = worst <= limit
    return CheckResult("stale_quote", ok, worst, limit, f"{worst_key} quote {worst:.1f} s old ({'<=' if ok else '>'} {limit:g} s)")


def _check_hours(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits, hours: MarketHours) -> CheckResult:
    if not limits.enforce_market_hours:
        return CheckResult("market_hours", True, _NAN, _NAN, "market hours not enforced (sim)")
    phase = hours.phase(ctx.now)
    if phase.phase == "unknown":
        return CheckResult("market_hours", False, _NAN, _NAN, f"no {hours.calendar_name} calendar for {ctx.now:%Y-%m-%d}")
    if phase.regular:
        return CheckResult("market_hours", True, _NAN, _NAN, f"{hours.calendar_name} regular session open")
    if phase.extended:
        stock_only = all(ins.sec_type == "STK" for ins, _ in _leg_weights(intent))
        if not stock_only:
            return CheckResult("market_hours", False, _NAN, _NAN, f"{phase.phase}-market: options trade in the regular session only")
        if not intent.outside_rth:
            return CheckResult("market_hours", False, _NAN, _NAN, f"{phase.phase}-market and the order is not outside_rth")
        if intent.order_type not in (OrderType.LMT, OrderType.STP_LMT):
            return CheckResult(
                "market_hours", False, _NAN, _NAN, f"{phase.phase}-market: only limit orders fill outside regular hours"
            )
        return CheckResult("market_hours", True, _NAN, _NAN, f"{phase.phase}-market, outside_rth limit order")
    return CheckResult("market_hours", False, _NAN, _NAN, f"{hours.calendar_name} closed")


def _check_buying_power(before: float, after: float) -> CheckResult:
    if math.isnan(before):
        return CheckResult("buying_power", True, _NAN, 0.0, "buying power not available")
    if math.isnan(after):
        return CheckResult("buying_power", False, _NAN, 0.0, "cannot estimate buying power after the order (no price)")
    ok = after >= 0
    return CheckResult("buying_power", ok, after, 0.0, f"${_fmt(after)} after the order ({'>=' if ok else '<'} 0)")


# --- commission, buying power, payoff ----------------------------------------------------


def _commission(intent: OrderIntent, ctx: MarketContext, price: float, limits: RiskLimits) -> float:
    sched = limits.commission
    if not intent.is_combo:
        return sched.for_instrument(intent.instrument.sec_type, intent.quantity, price)
    total = 0.0
    for leg in intent.legs:
        q = ctx.quotes.get(leg.instrument.con_id)
        leg_price = q.mid if q is not None else _NAN
        total += sched.for_instrument(leg.instrument.sec_type, intent.quantity * leg.ratio, leg_price)
    return total


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
    hours: MarketHours | None = None,
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
    hours = hours or nyse_hours()

    bid, ask, last, gross = _book(intent, ctx.quotes)
    mid = (bid + ask) / 2.0
    if not intent.is_combo:
        gross = mid
    price = _reference_price(intent, bid, ask, last)
    notional = intent.quantity * abs(price) * intent.instrument.multiplier
    commission = _commission(intent, ctx, price, limits)

    before: dict[int, float] = {}
    after: dict[int, float] = {}
    for ins, delta in intent.leg_deltas():
        before[ins.con_id] = ctx.position(ins.con_id)
        after[ins.con_id] = before[ins.con_id] + delta

    bp = ctx.buying_power
    margin = ctx.margin
    if margin is not None and not math.isnan(margin.init_margin_change):
        cost = margin.init_margin_change
    elif _only_reduces(intent, ctx):
        cost = 0.0
    else:
        cost = notional
    bp_after = bp - cost - commission

    checks = (
        _check_quantity(intent, limits),
        _check_notional(notional, limits),
        _check_collar(intent, mid, gross, limits),
        _check_duplicate(intent, ctx, limits),
        _check_rate(ctx, limits),
        _check_position(intent, ctx, limits),
        _check_daily_loss(intent, ctx, limits),
        _check_restricted(intent, limits),
        _check_stale(intent, ctx, limits),
        _check_hours(intent, ctx, limits, hours),
        _check_buying_power(bp, bp_after),
    )
    try:
        payoff, note = _payoff(intent, ctx, price)
    except RiskInputError as exc:  # e.g. a position with a non-finite average cost
        payoff, note = None, str(exc)
    return RiskReport(
        intent=intent,
        checks=checks,
        price=price,
        bid=bid,
        ask=ask,
        mid=mid,
        notional=notional,
        commission=commission,
        positions_before=before,
        positions_after=after,
        buying_power_before=bp,
        buying_power_after=bp_after,
        margin=margin,
        payoff=payoff,
        payoff_note=note,
        evaluated_at=ctx.now,
    )
