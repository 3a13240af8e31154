"""Property tests of the pre-trade checks against brute-force models.

Each model is written the long way, independently of :mod:`desk.risk.checks`: positions
after every subset of the working orders filling, the combo's notional share by share,
the collar's allowance as "any of the three allowances", the worst loss at expiry over a
grid of underlying prices. Hypothesis draws positions, working orders, quotes and limits.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from risk_testlib import AAPL, OPEN, SPY, ctx, option, quote

from desk.domain.orders import Position
from desk.risk import ComboLeg, MarketContext, OrderIntent, RecentOrder, RiskLimits, evaluate
from desk.risk.checks import book_of, check_collar, check_position, tick_of

BAG = dataclasses.replace(SPY, sec_type="BAG", con_id=0, multiplier=100)
C90, C100, C110 = option("C", 90), option("C", 100), option("C", 110)
P90, P100, P110 = option("P", 90), option("P", 100), option("P", 110)
INSTRUMENTS = [SPY, C90, C100, C110, P90, P100, P110]

# --- strategies ---------------------------------------------------------------------------


@st.composite
def intents(draw, instruments=INSTRUMENTS):
    """A single-instrument LMT order, or a 2-3 leg combo of distinct instruments."""
    if draw(st.booleans()):
        ins = draw(st.sampled_from(instruments))
        return OrderIntent(
            ins,
            draw(st.sampled_from(["BUY", "SELL"])),
            draw(st.integers(1, 400)),
            "LMT",
            limit_price=draw(st.sampled_from([1.0, 2.5, 100.0])),
        )
    legs = draw(st.lists(st.sampled_from(instruments), min_size=2, max_size=3, unique_by=lambda i: i.con_id))
    combo = tuple(
        ComboLeg(i, draw(st.sampled_from(["BUY", "SELL"])), 100 if i.sec_type == "STK" else draw(st.integers(1, 2))) for i in legs
    )
    return OrderIntent(BAG, draw(st.sampled_from(["BUY", "SELL"])), draw(st.integers(1, 5)), "LMT", limit_price=1.0, legs=combo)


def _all_quotes():
    return [quote(SPY, 100.0, 100.02)] + [quote(i, 4.0, 4.2) for i in INSTRUMENTS[1:]]


# --- max_position --------------------------------------------------------------------------


def _brute_position_ok(intent: OrderIntent, c: MarketContext, limits: RiskLimits) -> bool:
    for ins, delta in intent.leg_deltas():
        pos = c.position(ins.con_id)
        same = [d for o in c.open_orders for i, d in o.leg_deltas() if i.con_id == ins.con_id and d * delta > 0]
        limit = limits.max_position_shares if ins.sec_type == "STK" else limits.max_position_contracts
        outcomes = [pos + sum(subset) + delta for n in range(len(same) + 1) for subset in itertools.combinations(same, n)]
        # whichever working orders fill first, the result is within the limit or still
        # only a reduction of the position held
        for x in outcomes:
            if not (abs(x) <= limit or (pos != 0 and pos * x >= 0 and abs(x) < abs(pos))):
                return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    intents(),
    st.lists(intents(), max_size=5),
    st.dictionaries(st.sampled_from(INSTRUMENTS), st.integers(-600, 600), max_size=4),
    st.integers(0, 600),
    st.integers(0, 20),
)
def test_max_position_matches_every_subset_of_working_orders(intent, working, held, shares, contracts) -> None:
    limits = RiskLimits(max_position_shares=shares, max_position_contracts=contracts)
    positions = [Position(i, q, 1.0) for i, q in held.items() if q]
    c = dataclasses.replace(ctx(*_all_quotes(), positions=tuple(positions)), open_orders=tuple(working))
    assert check_position(intent, c, limits).passed == _brute_position_ok(intent, c, limits)


def test_the_reported_loophole_is_closed() -> None:
    """Long 100 SPY with a SELL 9,000 working: a new SELL 50 would make -8,950 (limit 5,000)."""
    working = OrderIntent(SPY, "SELL", 9000, "LMT", limit_price=100.0)
    c = dataclasses.replace(ctx(quote(SPY, 100.0, 100.02), positions=(Position(SPY, 100, 99.0),)), open_orders=(working,))
    r = check_position(OrderIntent(SPY, "SELL", 50, "LMT", limit_price=100.0), c, RiskLimits())
    assert not r.passed and r.value == 8950


# --- price collar --------------------------------------------------------------------------


def _brute_collar_ok(intent: OrderIntent, bid: float, ask: float, limits: RiskLimits) -> bool:
    tick = tick_of(intent)
    buy = intent.action.value == "BUY"
    touch = ask if buy else bid
    if intent.order_type.value == "MKT":
        if not (math.isfinite(bid) and math.isfinite(ask)):
            return False
        mid = (bid + ask) / 2
        half = abs(touch - mid)
        return half <= limits.collar_ticks * tick + 1e-9 or half <= abs(mid) * limits.price_collar_pct / 100 + 1e-9
    if not math.isfinite(touch):
        return False
    price = intent.limit_price
    beyond = (price - touch) if buy else (touch - price)
    if beyond <= 1e-9:
        return True  # at or inside the touch, or passive
    spread = ask - bid if math.isfinite(bid) and math.isfinite(ask) else 0.0
    allowances = [limits.collar_ticks * tick, abs(touch) * limits.price_collar_pct / 100, limits.collar_spreads * spread]
    return any(beyond <= a + 1e-9 for a in allowances)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from([SPY, C100, P90]),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(["LMT", "MKT"]),
    st.one_of(st.just(math.nan), st.floats(0.05, 500)),
    st.floats(0, 5),
    st.floats(-3, 3),
    st.integers(0, 20),
    st.floats(0, 20),
    st.floats(0, 3),
    st.booleans(),
)
def test_collar_matches_its_definition(ins, action, kind, bid, spread, offset, ticks, pct, spreads, one_sided) -> None:
    ask = bid + spread if math.isfinite(bid) else 10.0
    if one_sided:
        bid = math.nan
    touch = ask if action == "BUY" else bid
    price = round((touch if math.isfinite(touch) else 5.0) * (1 + offset / 10), 2)
    assume(price > 0)
    intent = OrderIntent(ins, action, 1, kind, limit_price=price if kind == "LMT" else None)
    limits = RiskLimits(collar_ticks=ticks, price_collar_pct=pct, collar_spreads=spreads)
    book = book_of(intent, {ins.con_id: quote(ins, bid, ask)})
    assert check_collar(intent, book, limits).passed == _brute_collar_ok(intent, book.bid, book.ask, limits)


def test_a_limit_at_or_inside_the_touch_always_passes_the_collar() -> None:
    """The reported cases: SPY 608 C at 0.07 / 0.09, a passive bid on 3.29 / 3.68, GOOG 747.5 C 6.50 / 7.10."""
    tight = RiskLimits(collar_ticks=0, price_collar_pct=0, collar_spreads=0)
    for bid, ask in ((0.07, 0.09), (3.29, 3.68), (6.50, 7.10)):
        q = {C100.con_id: quote(C100, bid, ask)}
        for action, price in (("BUY", ask), ("SELL", bid), ("BUY", bid), ("BUY", round(bid - 0.5, 2)), ("SELL", ask)):
            if price <= 0:
                continue
            intent = OrderIntent(C100, action, 1, "LMT", limit_price=price)
            assert check_collar(intent, book_of(intent, q), tight).passed, (bid, ask, action, price)
        # ... and a buy far above the ask does not
        far = OrderIntent(C100, "BUY", 1, "LMT", limit_price=round(ask * 3, 2))
        assert not check_collar(far, book_of(far, q), RiskLimits()).passed


# --- notional ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(intents(), st.lists(intents(), max_size=4))
def test_notional_and_working_notional_share_by_share(intent, working) -> None:
    quotes = _all_quotes()
    c = dataclasses.replace(ctx(*quotes), open_orders=tuple(working))
    by_id = {q.instrument.con_id: q for q in quotes}

    def brute(o: OrderIntent) -> float:
        total = 0.0
        if not o.is_combo:
            for _ in range(o.quantity):
                total += abs(o.limit_price) * o.instrument.multiplier
            return total
        for _unit in range(o.quantity):
            for leg in o.legs:
                side = leg.action.sign * o.action.sign
                price = by_id[leg.instrument.con_id].ask if side > 0 else by_id[leg.instrument.con_id].bid
                for _each in range(leg.ratio):
                    total += price * leg.instrument.multiplier
        return total

    r = evaluate(intent, c, RiskLimits())
    assert r.notional == pytest.approx(brute(intent))
    assert r.check("working_notional").value == pytest.approx(brute(intent) + sum(brute(o) for o in working))


def test_a_wide_short_box_cannot_hide_behind_its_net_price() -> None:
    """A 20-lot 1,000-wide short box: net price about the width, gross notional millions."""
    k1, k2 = option("C", 100), option("C", 1100)
    p1, p2 = option("P", 100), option("P", 1100)
    legs = (ComboLeg(k1, "SELL"), ComboLeg(k2, "BUY"), ComboLeg(p2, "SELL"), ComboLeg(p1, "BUY"))
    quotes = [quote(k1, 500.0, 500.5), quote(k2, 0.05, 0.10), quote(p2, 499.5, 500.0), quote(p1, 0.05, 0.10)]
    box = OrderIntent(BAG, "BUY", 20, "LMT", limit_price=-999.0, legs=legs)
    r = evaluate(box, ctx(*quotes), RiskLimits())
    assert r.notional > 1_900_000 and not r.check("max_notional").passed


# --- duplicate and rate --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 120_000).map(lambda ms: ms / 1000), st.booleans()), max_size=30),
    st.integers(0, 30),
    st.integers(0, 60_000).map(lambda ms: ms / 1000),
)
def test_rate_and_duplicate_count_the_window(recent, per_minute, window) -> None:
    # ages in whole milliseconds: datetime arithmetic is exact there (microseconds)
    intent = OrderIntent(SPY, "BUY", 1, "LMT", limit_price=100.0)
    other = OrderIntent(AAPL, "BUY", 1, "LMT", limit_price=1.0)
    orders = tuple(RecentOrder(OPEN - timedelta(seconds=age), intent if same else other) for age, same in recent)
    c = dataclasses.replace(ctx(quote(SPY, 100.0, 100.02)), recent_orders=orders)
    r = evaluate(intent, c, RiskLimits(max_orders_per_minute=per_minute, duplicate_window_s=window))
    n = 1
    for age, _ in recent:
        if age < 60:
            n += 1
    dup = False
    for age, same in recent:
        if same and age <= window:
            dup = True
    assert r.check("order_rate").passed == (n <= per_minute)
    assert r.check("duplicate").passed == (not dup)


# --- buying power -------------------------------------------------------------------------

OPTIONS = [C90, C100, C110, P90, P100, P110]
_MARKS = {C90: 11.0, C100: 4.0, C110: 1.0, P90: 1.0, P100: 4.0, P110: 11.0}


def _brute_worst_loss(intent: OrderIntent, prices: dict[int, float]) -> float:
    """Worst P&L at expiry (dollars, <= 0 is a loss) over underlying prices 0..300 in cents
    steps near the strikes, of the combo filled at the leg prices."""
    cash = 0.0
    legs = []
    for ins, delta in intent.leg_deltas():
        cash -= delta * prices[ins.con_id] * ins.multiplier
        legs.append((ins, delta))
    worst = math.inf
    for s in [x / 4 for x in range(0, 1201)]:
        value = cash
        for ins, delta in legs:
            intrinsic = max(s - ins.strike, 0.0) if ins.right == "C" else max(ins.strike - s, 0.0)
            value += delta * intrinsic * ins.multiplier
        worst = min(worst, value)
    return worst


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(OPTIONS), min_size=2, max_size=4, unique_by=lambda i: i.con_id),
    st.lists(st.sampled_from(["BUY", "SELL"]), min_size=4, max_size=4),
    st.integers(1, 5),
)
def test_an_option_combo_costs_at_least_its_worst_loss(legs, actions, qty) -> None:
    combo = tuple(ComboLeg(i, a) for i, a in zip(legs, actions))
    # defined risk: every short option has a long of its right beside it (a naked short
    # is charged the CBOE requirement, which is not its unlimited / full-strike loss)
    for right in ("C", "P"):
        shorts = sum(1 for i, a in zip(legs, actions) if i.right == right and a == "SELL")
        longs = sum(1 for i, a in zip(legs, actions) if i.right == right and a == "BUY")
        assume(shorts <= longs)
    intent = OrderIntent(BAG, "BUY", qty, "LMT", limit_price=0.5, legs=combo)
    quotes = [quote(SPY, 100.0, 100.0)] + [quote(i, _MARKS[i], _MARKS[i]) for i in OPTIONS]
    c = ctx(*quotes, available_funds=1e9, underlying_price=100.0)
    r = evaluate(intent, c, RiskLimits())
    prices = {i.con_id: _MARKS[i] for i in OPTIONS}
    worst = _brute_worst_loss(intent, prices)
    assume(math.isfinite(r.cost))
    # never less than what the position can lose at expiry (plus the commission paid)
    assert r.cost >= -worst + r.commission - 1e-6
    if len(legs) == 2 and legs[0].right == legs[1].right and actions[0] != actions[1]:
        # a vertical: exactly its maximum loss
        assert r.cost == pytest.approx(-worst + r.commission, abs=1e-6)


def test_buying_power_charges_what_the_order_really_costs() -> None:
    """Long premium + commission; stock at its Reg T 50 %; a short put its CBOE requirement
    less the premium; a short box its width less the credit (once)."""
    funds = 20_000.0
    q = [
        quote(SPY, 100.0, 100.0),
        quote(C100, 4.0, 4.0),
        quote(P90, 1.0, 1.0),
        quote(P110, 11.0, 11.0),
        quote(C90, 11.0, 11.0),
        quote(C110, 1.0, 1.0),
    ]
    c = ctx(*q, available_funds=funds, underlying_price=100.0)
    long_call = evaluate(OrderIntent(C100, "BUY", 2, "LMT", limit_price=4.0), c)
    assert long_call.cost == pytest.approx(800.0 + long_call.commission)
    stock = evaluate(OrderIntent(SPY, "BUY", 100, "LMT", limit_price=100.0), c)
    assert stock.cost == pytest.approx(5_000.0 + stock.commission)
    # the reported case: SELL 10 SPY 500 P at 10.00 (SPY 600) on $20,000 of funds
    p500 = option("P", 500)
    c600 = ctx(quote(SPY, 600.0, 600.0), quote(p500, 10.0, 10.0), available_funds=funds, underlying_price=600.0)
    short_puts = evaluate(OrderIntent(p500, "SELL", 10, "LMT", limit_price=10.0), c600)
    # CBOE, broad-based 15 %: max(MV + 15 % U - OTM, MV + 10 % K) per contract
    per = max(1000.0 + 0.15 * 60_000 - 10_000, 1000.0 + 0.10 * 500 * 100)
    assert short_puts.cost == pytest.approx(10 * per - 10 * 1000.0 + short_puts.commission)
    assert not short_puts.check("buying_power").passed
    box = OrderIntent(
        BAG,
        "BUY",
        1,
        "LMT",
        limit_price=-19.8,
        legs=(ComboLeg(C90, "SELL"), ComboLeg(C110, "BUY"), ComboLeg(P110, "SELL"), ComboLeg(P90, "BUY")),
    )
    r = evaluate(box, c)
    credit = (11.0 - 1.0 + 11.0 - 1.0) * 100
    assert r.cost == pytest.approx(20 * 100 - credit + r.commission)


def test_unknown_funds_and_missing_prices_fail_closed() -> None:
    c = ctx(quote(SPY, 100.0, 100.02), available_funds=math.nan)
    r = evaluate(OrderIntent(SPY, "BUY", 1, "LMT", limit_price=100.0), c)
    assert not r.check("buying_power").passed  # AvailableFunds never arrived
    no_quote = evaluate(OrderIntent(C100, "BUY", 1, "MKT"), ctx(available_funds=1e6))
    failed = {x.name for x in no_quote.checks if not x.passed}
    assert {"max_notional", "price_collar", "stale_quote", "buying_power"} <= failed


def test_default_limits_let_one_lot_combos_through_and_stop_a_hundred_lot() -> None:
    """A conversion, a reversal and a box at the simulator's highest-priced underlying (SPY ~600)."""
    spy = dataclasses.replace(SPY)
    c600, p600 = option("C", 600), option("P", 600)
    c500, p700, c700, p500 = option("C", 500), option("P", 700), option("C", 700), option("P", 500)
    q = [
        quote(spy, 600.0, 600.02),
        quote(c600, 20.0, 20.1),
        quote(p600, 19.0, 19.1),
        quote(c500, 104.0, 104.3),
        quote(c700, 1.0, 1.1),
        quote(p700, 97.0, 97.3),
        quote(p500, 0.9, 1.0),
    ]
    c = ctx(*q, available_funds=1_000_000.0, underlying_price=600.01)
    conversion = (ComboLeg(spy, "BUY", 100), ComboLeg(c600, "SELL"), ComboLeg(p600, "BUY"))
    reversal = (ComboLeg(spy, "SELL", 100), ComboLeg(c600, "BUY"), ComboLeg(p600, "SELL"))
    box = (ComboLeg(c500, "BUY"), ComboLeg(c700, "SELL"), ComboLeg(p700, "BUY"), ComboLeg(p500, "SELL"))
    for legs in (conversion, reversal, box):
        book = book_of(OrderIntent(BAG, "BUY", 1, "MKT", legs=legs), c.quotes)
        one = evaluate(OrderIntent(BAG, "BUY", 1, "LMT", limit_price=round(book.ask, 2), legs=legs), c)
        assert not one.blocked, one.reasons
        hundred = evaluate(OrderIntent(BAG, "BUY", 100, "LMT", limit_price=round(book.ask, 2), legs=legs), c)
        assert hundred.blocked and {"max_quantity", "max_notional"} <= {x.name for x in hundred.checks if not x.passed}
