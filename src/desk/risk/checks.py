"""The pre-trade checks, one function each, and the market arithmetic they share.

Every check returns a :class:`CheckResult` with the number it checked and the bound it
checked it against. They are pure: what they know comes from the
:class:`~desk.risk.context.MarketContext` and the :class:`~desk.risk.limits.RiskLimits`.
Missing, NaN or stale prices fail closed: a check that needs a price it does not have
fails and says which.

Prices are dollars per share (net per combo unit for a combo, see
:mod:`desk.domain.intent`), notionals and funds dollars, quantities shares or contracts.

=================== ================================================================
check               fails when
=================== ================================================================
max_quantity        quantity > max_order_quantity (STK) / max_order_contracts (OPT, BAG)
max_notional        notional > max_notional; a combo's notional is the gross over its
                    legs (each leg at the side it trades), so a wide short box cannot
                    hide behind its small net price; no price: fails
working_notional    notional of every working order + this one > max_working_notional
price_collar        see :func:`check_collar`
duplicate           an identical order (:meth:`OrderIntent.signature`) was sent within
                    duplicate_window_s
order_rate          orders sent in the last 60 s, this one included, > the limit
max_position        for some leg: |position + working orders in the order's direction +
                    this order| > the limit, unless that result still only reduces the
                    position (same sign, smaller)
daily_loss          daily P&L <= -daily_loss_limit and the order does not only reduce
                    positions (working orders counted); passes when P&L is unknown
restricted          the symbol (underlying of an option, any leg of a combo) is listed
stale_quote         a needed quote is missing or older than stale_quote_s
market_hours        XNYS closed for this order (see :func:`check_hours`)
buying_power        AvailableFunds - the order's cost < 0, or either is unknown (see
                    :mod:`desk.risk.funds`)
=================== ================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from desk.domain.calendar import ExchangeCalendar
from desk.domain.models import Instrument, Quote
from desk.risk.context import MarketContext
from desk.domain.intent import Action, OrderIntent, OrderType
from desk.risk.limits import RiskLimits

__all__ = [
    "Book",
    "CheckResult",
    "book_of",
    "check_buying_power",
    "check_collar",
    "check_daily_loss",
    "check_duplicate",
    "check_hours",
    "check_notional",
    "check_position",
    "check_quantity",
    "check_rate",
    "check_restricted",
    "check_stale",
    "check_working_notional",
    "leg_weights",
    "notional_of",
    "only_reduces",
    "reference_price",
    "tick_of",
]

_NAN = math.nan
_RATE_WINDOW = timedelta(seconds=60)
#: price increment of a combo's net price, dollars per share (IB quotes spreads in cents)
COMBO_TICK = 0.01


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


@dataclass(frozen=True, slots=True)
class Book:
    """The market of an instrument or a combo, dollars per share (net per combo unit):
    ``bid`` / ``ask`` (``nan`` when a side, or any leg's side, is missing), ``last``
    (``nan`` for a combo). ``mid`` and ``spread`` are ``nan`` unless both sides are known."""

    bid: float
    ask: float
    last: float = _NAN

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0

    @property
    def spread(self) -> float:
        return self.ask - self.bid

    @property
    def two_sided(self) -> bool:
        return math.isfinite(self.bid) and math.isfinite(self.ask)


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "?"
    return f"{x:,.2f}" if abs(x) < 1e15 else f"{x:.3g}"


def _px(x: float) -> str:
    return "?" if math.isnan(x) else f"{x:.10g}"


# --- market of the order ---------------------------------------------------------------


def leg_weights(intent: OrderIntent) -> Iterator[tuple[Instrument, float]]:
    """(instrument, signed weight) such that the net price = sum(weight x leg price): one
    entry of weight 1 for a single instrument; per leg ``+-ratio x leg multiplier / combo
    multiplier`` for a combo (+ BUY legs, - SELL legs)."""
    if not intent.is_combo:
        yield intent.instrument, 1.0
        return
    m = intent.instrument.multiplier
    for leg in intent.legs:
        yield leg.instrument, leg.action.sign * leg.ratio * leg.instrument.multiplier / m


def _side(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else _NAN


def book_of(intent: OrderIntent, quotes: Mapping[int, Quote]) -> Book:
    """The :class:`Book` of the order's instrument, or of a combo built from its legs: the
    combo's ask buys the BUY legs at their ask and sells the SELL legs at their bid, its
    bid the reverse."""
    if not intent.is_combo:
        q = quotes.get(intent.instrument.con_id)
        if q is None:
            return Book(_NAN, _NAN)
        return Book(_side(q.bid), _side(q.ask), _side(q.last))
    bid = ask = 0.0
    for ins, w in leg_weights(intent):
        q = quotes.get(ins.con_id)
        lb = _side(q.bid) if q is not None else _NAN
        la = _side(q.ask) if q is not None else _NAN
        if w > 0:
            bid += w * lb
            ask += w * la
        else:
            bid += w * la
            ask += w * lb
    return Book(bid, ask)


def tick_of(intent: OrderIntent) -> float:
    """Price increment of the order's price, dollars per share (the contract's min tick;
    one cent for a combo's net price)."""
    if intent.is_combo:
        return COMBO_TICK
    t = intent.instrument.min_tick
    return t if t > 0 else 0.01


def reference_price(intent: OrderIntent, book: Book) -> float:
    """The order's price, dollars per share: the limit for LMT and STP LMT, the stop for
    STP, and for MKT the side that would fill it (ask for a BUY, bid for a SELL; ``nan``
    when that side is missing: a market order needs a live quote)."""
    kind = intent.order_type
    if kind in (OrderType.LMT, OrderType.STP_LMT) and intent.limit_price is not None:
        return float(intent.limit_price)
    if kind is OrderType.STP and intent.stop_price is not None:
        return float(intent.stop_price)
    return book.ask if intent.action is Action.BUY else book.bid


def leg_trade_prices(intent: OrderIntent, quotes: Mapping[int, Quote]) -> dict[int, float]:
    """Per conId, the price each instrument of the order trades at, dollars per share:
    the order's reference price for a single instrument; for a combo each leg at the side
    it takes (a leg bought at its ask, a leg sold at its bid; ``nan`` when missing)."""
    if not intent.is_combo:
        return {intent.instrument.con_id: reference_price(intent, book_of(intent, quotes))}
    out: dict[int, float] = {}
    for ins, delta in intent.leg_deltas():
        q = quotes.get(ins.con_id)
        out[ins.con_id] = (_side(q.ask) if delta > 0 else _side(q.bid)) if q is not None else _NAN
    return out


def notional_of(intent: OrderIntent, quotes: Mapping[int, Quote]) -> float:
    """Dollars: quantity x |price| x multiplier for a single instrument (the reference
    price); for a combo the gross over its legs, sum of |leg quantity| x |leg trade price|
    x leg multiplier. ``nan`` when a price is missing."""
    if not intent.is_combo:
        price = reference_price(intent, book_of(intent, quotes))
        return intent.quantity * abs(price) * intent.instrument.multiplier
    prices = leg_trade_prices(intent, quotes)
    return sum(abs(delta) * abs(prices[ins.con_id]) * ins.multiplier for ins, delta in intent.leg_deltas())


def _pending(ctx: MarketContext, con_id: int, direction: int) -> float:
    """Signed total of the working orders' position changes on ``con_id`` in ``direction``
    (+1 buys, -1 sells)."""
    total = 0.0
    for o in ctx.open_orders:
        for ins, delta in o.leg_deltas():
            if ins.con_id == con_id and delta * direction > 0:
                total += delta
    return total


def _reduces(before: float, after: float) -> bool:
    return before != 0 and before * after >= 0 and abs(after) < abs(before)


def worst_after(intent: OrderIntent, ctx: MarketContext) -> list[tuple[Instrument, float, float]]:
    """Per leg (instrument, position before, position after this order and every working
    order in the same direction fill), shares / contracts, signed."""
    out = []
    for ins, delta in intent.leg_deltas():
        before = ctx.position(ins.con_id)
        out.append((ins, before, before + _pending(ctx, ins.con_id, 1 if delta > 0 else -1) + delta))
    return out


def only_reduces(intent: OrderIntent, ctx: MarketContext) -> bool:
    """True when every leg of the order only reduces an existing position, even if every
    working order in the same direction fills first (so it can never open or flip one)."""
    return all(_reduces(before, after) for _, before, after in worst_after(intent, ctx))


# --- checks ----------------------------------------------------------------------------


def check_quantity(intent: OrderIntent, limits: RiskLimits) -> CheckResult:
    if intent.instrument.sec_type == "STK":
        limit, unit = limits.max_order_quantity, "shares"
    else:
        limit, unit = limits.max_order_contracts, "contracts"
    q = intent.quantity
    ok = q <= limit
    msg = f"{q:,} {unit} {'<=' if ok else '>'} max {limit:,}"
    return CheckResult("max_quantity", ok, float(q), float(limit), msg)


def check_notional(intent: OrderIntent, notional: float, limits: RiskLimits) -> CheckResult:
    limit = limits.max_notional
    if math.isnan(notional):
        return CheckResult("max_notional", False, _NAN, limit, "no price to value the order (no quote)")
    ok = notional <= limit
    what = "gross over the legs " if intent.is_combo else ""
    return CheckResult("max_notional", ok, notional, limit, f"${_fmt(notional)} {what}{'<=' if ok else '>'} max ${_fmt(limit)}")


def check_working_notional(ctx: MarketContext, notional: float, limits: RiskLimits) -> CheckResult:
    limit = limits.max_working_notional
    working = 0.0
    for o in ctx.open_orders:
        n = notional_of(o, ctx.quotes)
        if math.isnan(n):
            return CheckResult("working_notional", False, _NAN, limit, f"no price to value working order {o.describe}")
        working += n
    total = working + notional
    if math.isnan(total):
        return CheckResult("working_notional", False, _NAN, limit, "no price to value the order (no quote)")
    ok = total <= limit
    return CheckResult(
        "working_notional",
        ok,
        total,
        limit,
        f"${_fmt(total)} with {len(ctx.open_orders)} working {'<=' if ok else '>'} max ${_fmt(limit)}",
    )


def collar_allowance(touch: float, spread: float, tick: float, limits: RiskLimits) -> float:
    """Dollars per share a limit may be beyond the touch: max(collar_ticks x tick,
    price_collar_pct % of |touch|, collar_spreads x spread)."""
    return max(limits.collar_ticks * tick, abs(touch) * limits.price_collar_pct / 100.0, limits.collar_spreads * spread)


def check_collar(intent: OrderIntent, book: Book, limits: RiskLimits) -> CheckResult:
    """The price collar, on aggressiveness (how far an order reaches through the market).

    * LMT: a buy at or below the ask, a sell at or above the bid (at or inside the touch,
      or passive) always passes; beyond the touch it fails by more than
      :func:`collar_allowance`. It needs the side it is measured against (the ask for a
      buy, the bid for a sell), else it fails closed.
    * MKT: needs a two-sided quote; its expected fill is the touch, which may be at most
      max(collar_ticks x tick, price_collar_pct % of mid) from mid (a market order into a
      wide market is refused: use a limit).
    * STP: a stop is a trigger; one that would trigger at once (a buy stop at or below the
      ask, a sell stop at or above the bid) is collared as a MKT order.
    * STP LMT: the limit may be beyond the stop by at most the allowance (measured from the
      stop); one that would trigger at once is collared as a LMT order.

    ``value`` is how far beyond the reference (touch or stop) the order reaches, dollars
    per share (<= 0: not beyond), ``limit`` the allowance.
    """
    kind, tick = intent.order_type, tick_of(intent)
    buy = intent.action is Action.BUY
    sign = 1.0 if buy else -1.0
    touch = book.ask if buy else book.bid
    side = "ask" if buy else "bid"
    spread = book.spread if book.two_sided else 0.0

    def market(what: str) -> CheckResult:
        if not book.two_sided:
            return CheckResult(
                "price_collar", False, _NAN, _NAN, f"{what} needs a two-sided quote (bid {_px(book.bid)} ask {_px(book.ask)})"
            )
        reach = abs(touch - book.mid)
        allow = max(limits.collar_ticks * tick, abs(book.mid) * limits.price_collar_pct / 100.0)
        ok = reach <= allow + 1e-9
        return CheckResult(
            "price_collar",
            ok,
            reach,
            allow,
            f"{what} fills at the {side} {_px(touch)}, {reach:.4g} from mid ({'<=' if ok else '>'} {allow:.4g})"
            + ("" if ok else ": use a limit"),
        )

    def limit_vs(ref: float, ref_name: str, price: float) -> CheckResult:
        reach = sign * (price - ref)
        allow = collar_allowance(ref, spread, tick, limits)
        if reach <= 1e-9:
            where = "inside" if reach < -1e-9 else "at"
            return CheckResult("price_collar", True, reach, allow, f"limit {_px(price)} {where} the {ref_name} {_px(ref)}")
        ok = reach <= allow + 1e-9
        return CheckResult(
            "price_collar",
            ok,
            reach,
            allow,
            f"limit {_px(price)} is {reach:.4g} beyond the {ref_name} {_px(ref)} ({'<=' if ok else '>'} {allow:.4g})",
        )

    if kind is OrderType.MKT:
        return market("MKT order")
    if kind is OrderType.STP:
        stop = float(intent.stop_price or 0.0)
        if math.isnan(touch):
            return CheckResult("price_collar", False, _NAN, _NAN, f"no {side} to place the stop against")
        if sign * (stop - touch) <= 0:
            return market(f"stop {_px(stop)} triggers at once: as a MKT order it")
        return CheckResult("price_collar", True, _NAN, _NAN, f"stop {_px(stop)} beyond the {side} {_px(touch)}: a trigger")
    price = float(intent.limit_price or 0.0)
    if math.isnan(touch):
        return CheckResult("price_collar", False, _NAN, _NAN, f"no {side} to measure the limit against")
    if kind is OrderType.STP_LMT:
        stop = float(intent.stop_price or 0.0)
        if sign * (stop - touch) > 0:  # a trigger beyond the market: the limit is measured from the stop
            return limit_vs(stop, "stop", price)
    return limit_vs(touch, side, price)


def check_duplicate(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
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


def check_rate(ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.max_orders_per_minute
    n = 1 + sum(1 for r in ctx.recent_orders if abs(ctx.now - r.time) < _RATE_WINDOW)
    ok = n <= limit
    return CheckResult("order_rate", ok, float(n), float(limit), f"{n} orders in 60 s {'<=' if ok else '>'} max {limit}")


def check_position(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    """Every leg: the position after this order and every working order in the same
    direction fill must be within the limit, or still only reduce the position."""
    legs: list[tuple[bool, float, Instrument, float, float, str]] = []
    for ins, before, after in worst_after(intent, ctx):
        if ins.sec_type == "STK":
            limit, unit = limits.max_position_shares, "shares"
        else:
            limit, unit = limits.max_position_contracts, "contracts"
        ok = abs(after) <= limit or _reduces(before, after)
        ratio = abs(after) / limit if limit else (math.inf if after else 0.0)
        legs.append((ok, ratio, ins, after, float(limit), unit))
    if not legs:  # an intent always has at least one leg; kept for a clear message
        return CheckResult("max_position", False, _NAN, _NAN, "order has no instrument")
    # report a failing instrument first, else the one closest to its limit
    failing = [leg for leg in legs if not leg[0]]
    worst = max(failing or legs, key=lambda leg: leg[1])
    ok = not failing
    _, _, ins, after, worst_limit, unit = worst
    which = f" (worst of {len(intent.legs)} legs)" if intent.is_combo else ""
    msg = f"{ins.key}: {after:+,.0f} {unit} with working orders {'<=' if ok else '>'} max {worst_limit:,.0f}{which}"
    if ok and abs(after) > worst_limit:
        msg = f"{ins.key}: {after:+,.0f} {unit} over max {worst_limit:,.0f} but the order only reduces the position"
    return CheckResult("max_position", ok, abs(after), worst_limit, msg)


def check_daily_loss(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.daily_loss_limit
    pnl = ctx.daily_pnl
    if math.isnan(pnl):
        return CheckResult("daily_loss", True, _NAN, limit, "daily P&L not available")
    loss = -pnl
    if loss < limit:
        return CheckResult("daily_loss", True, loss, limit, f"daily P&L ${_fmt(pnl)} (loss limit ${_fmt(limit)})")
    if only_reduces(intent, ctx):
        return CheckResult("daily_loss", True, loss, limit, f"loss ${_fmt(loss)} at limit; order only reduces positions")
    return CheckResult(
        "daily_loss", False, loss, limit, f"loss ${_fmt(loss)} >= daily limit ${_fmt(limit)}: only reducing orders"
    )


def _symbols(intent: OrderIntent) -> list[str]:
    names = [intent.instrument.symbol.upper()]
    names += [leg.instrument.symbol.upper() for leg in intent.legs]
    return list(dict.fromkeys(names))


def check_restricted(intent: OrderIntent, limits: RiskLimits) -> CheckResult:
    bad = [s for s in _symbols(intent) if s in limits.restricted_symbols]
    if bad:
        return CheckResult("restricted", False, _NAN, _NAN, f"{', '.join(bad)} restricted")
    return CheckResult("restricted", True, _NAN, _NAN, "not restricted")


def check_stale(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits) -> CheckResult:
    limit = limits.stale_quote_s
    worst, worst_key = -math.inf, ""
    for ins, _ in leg_weights(intent):
        q = ctx.quotes.get(ins.con_id)
        if q is None or q.time is None:
            return CheckResult("stale_quote", False, _NAN, limit, f"no quote for {ins.key}")
        age = max(0.0, (ctx.now - q.time).total_seconds())
        if age > worst:
            worst, worst_key = age, ins.key
    ok = worst <= limit
    return CheckResult(
        "stale_quote", ok, worst, limit, f"{worst_key} quote {worst:.1f} s old ({'<=' if ok else '>'} {limit:g} s)"
    )


def check_hours(intent: OrderIntent, ctx: MarketContext, limits: RiskLimits, hours: ExchangeCalendar) -> CheckResult:
    """XNYS (:mod:`desk.domain.calendar`): stocks in the regular session, or in IB's extended
    hours (04:00 ET to 4 h after the close) with outside_rth for LMT / STP LMT (IB fills
    only limit orders outside regular hours); options and combos in the regular session
    only. Passes when enforce_market_hours is off (sim)."""
    if not limits.enforce_market_hours:
        return CheckResult("market_hours", True, _NAN, _NAN, "market hours not enforced (sim)")
    phase = hours.phase(ctx.now)
    if phase.phase == "unknown":
        return CheckResult("market_hours", False, _NAN, _NAN, f"no {hours.name} calendar for {ctx.now:%Y-%m-%d}")
    if phase.regular:
        return CheckResult("market_hours", True, _NAN, _NAN, f"{hours.name} regular session open")
    if phase.extended:
        stock_only = all(ins.sec_type == "STK" for ins, _ in leg_weights(intent))
        if not stock_only:
            return CheckResult(
                "market_hours", False, _NAN, _NAN, f"{phase.phase}-market: options trade in the regular session only"
            )
        if not intent.outside_rth:
            return CheckResult("market_hours", False, _NAN, _NAN, f"{phase.phase}-market and the order is not outside_rth")
        if intent.order_type not in (OrderType.LMT, OrderType.STP_LMT):
            return CheckResult(
                "market_hours", False, _NAN, _NAN, f"{phase.phase}-market: only limit orders fill outside regular hours"
            )
        return CheckResult("market_hours", True, _NAN, _NAN, f"{phase.phase}-market, outside_rth limit order")
    return CheckResult("market_hours", False, _NAN, _NAN, f"{hours.name} closed")


def check_buying_power(funds_before: float, cost: float, basis: str) -> CheckResult:
    """AvailableFunds after the order (``funds_before - cost``) must be >= 0; unknown funds
    or an unknown cost fail closed. ``basis`` says where the cost comes from."""
    if math.isnan(funds_before):
        return CheckResult("buying_power", False, _NAN, 0.0, "available funds not known yet (no account values)")
    if math.isnan(cost):
        return CheckResult("buying_power", False, _NAN, 0.0, f"cannot cost the order ({basis})")
    after = funds_before - cost
    ok = after >= 0
    return CheckResult(
        "buying_power",
        ok,
        after,
        0.0,
        f"funds ${_fmt(after)} after ${_fmt(cost)} ({basis}) {'>=' if ok else '<'} 0",
    )
