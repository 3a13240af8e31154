"""The risk engine: every check at its boundary, the preview numbers, and properties
(hypothesis) that hold for any order in any market."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_testlib import AAPL, EXPIRY, LIMITS, OPEN, SPY, combo, ctx, lmt, option, quote

from desk.domain.orders import Position
from desk.risk import (
    CHECK_NAMES,
    MarginImpact,
    MarketContext,
    OrderIntent,
    RecentOrder,
    RiskInputError,
    RiskLimits,
    evaluate,
)

Q = quote(SPY, 100.0, 100.02, last=100.01)


def failed(report) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def test_a_plain_order_passes_every_check_with_its_numbers() -> None:
    r = evaluate(lmt(SPY, "BUY", 100, 100.02), ctx(Q, available_funds=50_000.0))
    assert [c.name for c in r.checks] == list(CHECK_NAMES)
    assert not r.blocked and r.reasons == []
    assert (r.bid, r.ask, r.price) == (100.0, 100.02, 100.02) and r.mid == pytest.approx(100.01)
    assert r.notional == pytest.approx(10_002.0)
    assert r.commission == pytest.approx(1.0)  # 100 shares: the $1.00 minimum
    assert r.positions_before == {SPY.con_id: 0.0} and r.position_after == 100.0
    # Reg T: half the shares' value at the mark, the rest borrowed; the commission paid;
    # 0.01 a share over the mid paid in cash
    assert r.cost == pytest.approx(0.5 * 100 * 100.01 + 1.0 + 100 * 0.01)
    assert r.funds_after == pytest.approx(50_000 - r.cost) and r.cost_basis == "Reg T estimate"
    assert r.payoff is None and r.payoff_note == "no options in the order"
    assert r.check("price_collar").value == pytest.approx(0.0)  # at the ask
    assert r.check("stale_quote").value == 0.0
    assert r.check("order_rate").value == 1.0


def test_max_quantity_boundary_by_sec_type() -> None:
    limits = RiskLimits(max_order_quantity=100, max_order_contracts=2, max_notional=1e9)
    assert "max_quantity" not in failed(evaluate(lmt(SPY, "BUY", 100, 100.01), ctx(Q), limits))
    r = evaluate(lmt(SPY, "BUY", 101, 100.01), ctx(Q), limits)
    assert failed(r) == {"max_quantity"}
    assert r.reasons == ["max_quantity: 101 shares > max 100"]
    call = option("C", 100)
    qc = quote(call, 2.0, 2.1)
    assert "max_quantity" in failed(evaluate(lmt(call, "BUY", 3, 2.05), ctx(qc), limits))
    c = evaluate(lmt(call, "BUY", 2, 2.05), ctx(qc), limits).check("max_quantity")
    assert c.passed and c.message == "2 contracts <= max 2"


def test_max_notional_uses_the_multiplier_and_market_side_for_mkt() -> None:
    call = option("C", 100)
    qc = quote(call, 2.0, 2.1)
    r = evaluate(lmt(call, "BUY", 10, 2.05), ctx(qc), RiskLimits(max_notional=2050))
    assert r.notional == pytest.approx(2050.0) and not r.blocked
    r = evaluate(lmt(call, "BUY", 10, 2.06), ctx(qc), RiskLimits(max_notional=2050))
    assert failed(r) == {"max_notional"}
    buy = evaluate(OrderIntent(SPY, "BUY", 10, "MKT"), ctx(Q))
    sell = evaluate(OrderIntent(SPY, "SELL", 10, "MKT"), ctx(Q))
    assert buy.price == 100.02 and sell.price == 100.0
    none = evaluate(OrderIntent(SPY, "BUY", 10, "MKT"), ctx())
    assert math.isnan(none.notional)
    assert {"max_notional", "stale_quote", "buying_power"} <= failed(none)
    assert none.check("max_notional").message == "no price to value the order (no quote)"


def test_price_collar_measures_how_far_beyond_the_touch() -> None:
    limits = RiskLimits(price_collar_pct=1.0, collar_ticks=0, collar_spreads=0)
    ask, bid = 100.02, 100.0
    assert "price_collar" not in failed(evaluate(lmt(SPY, "BUY", 1, round(ask * 1.0099, 2)), ctx(Q), limits))
    assert "price_collar" in failed(evaluate(lmt(SPY, "BUY", 1, round(ask * 1.0101, 2) + 0.01), ctx(Q), limits))
    assert "price_collar" not in failed(evaluate(lmt(SPY, "SELL", 1, round(bid * 0.9901, 2)), ctx(Q), limits))
    assert "price_collar" in failed(evaluate(lmt(SPY, "SELL", 1, round(bid * 0.9899, 2) - 0.01), ctx(Q), limits))
    # passive orders never fail, however far from the market
    assert "price_collar" not in failed(evaluate(lmt(SPY, "BUY", 1, 50.0), ctx(Q), limits))
    assert "price_collar" not in failed(evaluate(lmt(SPY, "SELL", 1, 200.0), ctx(Q), limits))
    one_sided = quote(SPY, math.nan, 100.02)
    c = evaluate(lmt(SPY, "SELL", 1, 100.0), ctx(one_sided), limits).check("price_collar")
    assert not c.passed and c.message == "no bid to measure the limit against"
    stp = evaluate(OrderIntent(SPY, "SELL", 1, "STP", stop_price=50.0), ctx(Q), limits).check("price_collar")
    assert stp.passed and "a trigger" in stp.message
    wide = quote(SPY, 90.0, 110.0)
    mkt = evaluate(OrderIntent(SPY, "BUY", 1, "MKT"), ctx(wide), RiskLimits()).check("price_collar")
    assert not mkt.passed and mkt.message.endswith("use a limit")
    assert evaluate(OrderIntent(SPY, "BUY", 1, "MKT"), ctx(Q), RiskLimits()).check("price_collar").passed


def test_duplicate_window_and_order_rate() -> None:
    order = lmt(SPY, "BUY", 100, 100.01)
    limits = RiskLimits(duplicate_window_s=10, max_orders_per_minute=3)
    recent = (RecentOrder(OPEN - timedelta(seconds=9.5), order),)
    r = evaluate(order, ctx(Q, recent_orders=recent), limits)
    assert failed(r) == {"duplicate"} and r.check("duplicate").value == pytest.approx(9.5)
    old = (RecentOrder(OPEN - timedelta(seconds=10.5), order),)
    assert not evaluate(order, ctx(Q, recent_orders=old), limits).blocked
    other = (RecentOrder(OPEN - timedelta(seconds=1), lmt(SPY, "BUY", 101, 100.01)),)
    assert not evaluate(order, ctx(Q, recent_orders=other), limits).blocked
    three = tuple(RecentOrder(OPEN - timedelta(seconds=s), lmt(AAPL, "BUY", 1, 1.0)) for s in (1, 30, 59.9))
    r = evaluate(order, ctx(Q, recent_orders=three), limits)
    assert failed(r) == {"order_rate"} and r.check("order_rate").value == 4
    two = three[:2] + (RecentOrder(OPEN - timedelta(seconds=60), three[0].intent),)
    assert not evaluate(order, ctx(Q, recent_orders=two), limits).blocked


def test_max_position_counts_working_orders_and_lets_reductions_through() -> None:
    limits = RiskLimits(max_position_shares=1000, max_notional=1e9, max_order_quantity=10_000)
    long900 = (Position(SPY, 900, 95.0),)
    assert not evaluate(lmt(SPY, "BUY", 100, 100.01), ctx(Q, positions=long900), limits).blocked
    r = evaluate(lmt(SPY, "BUY", 101, 100.01), ctx(Q, positions=long900), limits)
    assert failed(r) == {"max_position"} and r.check("max_position").value == 1001
    working = (lmt(SPY, "BUY", 50, 99.0), lmt(SPY, "SELL", 500, 110.0))  # only the buy counts
    r = evaluate(lmt(SPY, "BUY", 60, 100.01), ctx(Q, positions=long900, open_orders=working), limits)
    assert failed(r) == {"max_position"} and r.check("max_position").value == 1010
    over = (Position(SPY, 3000, 95.0),)
    c = evaluate(lmt(SPY, "SELL", 500, 100.0), ctx(Q, positions=over), limits).check("max_position")
    assert c.passed and "only reduces the position" in c.message
    flip = evaluate(lmt(SPY, "SELL", 4500, 100.0), ctx(Q, positions=over), limits)
    assert "max_position" in failed(flip)  # -1500 short: not a reduction


def test_daily_loss_blocks_new_risk_but_not_reductions() -> None:
    limits = RiskLimits(daily_loss_limit=1000)
    pos = (Position(SPY, 200, 105.0),)
    assert not evaluate(lmt(SPY, "BUY", 10, 100.01), ctx(Q, positions=pos, daily_pnl=-999.99), limits).blocked
    r = evaluate(lmt(SPY, "BUY", 10, 100.01), ctx(Q, positions=pos, daily_pnl=-1000.0), limits)
    assert failed(r) == {"daily_loss"} and r.check("daily_loss").value == 1000.0
    assert not evaluate(lmt(SPY, "SELL", 200, 100.0), ctx(Q, positions=pos, daily_pnl=-5000.0), limits).blocked
    c = evaluate(lmt(SPY, "BUY", 10, 100.01), ctx(Q, daily_pnl=math.nan), limits).check("daily_loss")
    assert c.passed and c.message == "daily P&L not available"


def test_restricted_symbols_cover_underlyings_and_combo_legs() -> None:
    limits = RiskLimits(restricted_symbols="aapl, GME")
    assert limits.restricted_symbols == frozenset({"AAPL", "GME"})
    qa = quote(AAPL, 170.0, 170.02)
    r = evaluate(lmt(AAPL, "BUY", 1, 170.01), ctx(qa), limits)
    assert failed(r) == {"restricted"} and r.reasons == ["restricted: AAPL restricted"]
    call = option("C", 170, symbol="AAPL")
    assert "restricted" in failed(evaluate(lmt(call, "BUY", 1, 2.0), ctx(quote(call, 1.95, 2.05)), limits))


def test_stale_quote_boundary() -> None:
    limits = RiskLimits(stale_quote_s=5)
    assert not evaluate(lmt(SPY, "BUY", 1, 100.01), ctx(quote(SPY, 100, 100.02, age=5)), limits).blocked
    r = evaluate(lmt(SPY, "BUY", 1, 100.01), ctx(quote(SPY, 100, 100.02, age=5.001)), limits)
    assert failed(r) == {"stale_quote"}
    assert r.check("stale_quote").message == "SPY quote 5.0 s old (> 5 s)"
    no_time = dataclasses.replace(Q, time=None)
    assert evaluate(lmt(SPY, "BUY", 1, 100.01), ctx(no_time), limits).check("stale_quote").message == "no quote for SPY"


def test_buying_power_uses_ib_what_if_when_complete() -> None:
    order = lmt(SPY, "BUY", 100, 100.01)
    r = evaluate(order, ctx(Q, available_funds=4_000.0))
    assert failed(r) == {"buying_power"} and r.funds_after == pytest.approx(4_000 - r.cost)
    whatif = MarginImpact.from_ib(
        {
            "initMarginBefore": "0",
            "initMarginChange": "2500.25",
            "initMarginAfter": "2500.25",
            "maintMarginChange": "1.7976931348623157E308",
            "equityWithLoanChange": "-1.0",
            "commission": 1.0,
            "bogus": "x",
        }
    )
    assert whatif.init_margin_change == 2500.25 and math.isnan(whatif.maint_margin_change) and whatif.complete
    r = evaluate(order, ctx(Q, available_funds=4_000.0, margin=whatif))
    assert not r.blocked and r.cost == pytest.approx(2500.25 + 1.0) and r.cost_basis == "IB what-if"
    assert r.margin is whatif
    incomplete = MarginImpact.from_ib({"initMarginChange": "2500.25"})
    r = evaluate(order, ctx(Q, available_funds=4_000.0, margin=incomplete))
    assert r.cost_basis == "Reg T estimate, IB what-if incomplete" and r.blocked
    closing = evaluate(lmt(SPY, "SELL", 100, 100.0), ctx(Q, available_funds=0.5, positions=(Position(SPY, 100, 90.0),)))
    assert closing.cost < 0 and not closing.blocked  # a sale frees funds


def test_option_order_gets_the_payoff_of_the_resulting_position() -> None:
    call = option("C", 100)
    qc = quote(call, 2.4, 2.6)
    # covered call: 100 shares held at 98, sell 1 call at 2.50
    r = evaluate(lmt(call, "SELL", 1, 2.5), ctx(qc, positions=(Position(SPY, 100, 98.0),), underlying_price=100.0))
    p = r.payoff
    assert p is not None and p.expiry == EXPIRY
    assert p.max_pnl == pytest.approx(100 * (100 - 98 + 2.5))
    assert p.min_pnl == pytest.approx(-100 * (98 - 2.5))
    assert p.breakevens == (pytest.approx(95.5),)
    assert r.commission == pytest.approx(1.0)


def test_vertical_conversion_and_box_combos() -> None:
    c100, c110, p100, p110 = option("C", 100), option("C", 110), option("P", 100), option("P", 110)
    quotes = [quote(c100, 5.0, 5.2), quote(c110, 1.0, 1.1), quote(p100, 2.0, 2.1), quote(p110, 7.9, 8.1), Q]
    bag, legs = combo("SPY", [(c100, "BUY", 1), (c110, "SELL", 1)])
    vert = evaluate(OrderIntent(bag, "BUY", 2, "LMT", limit_price=4.05, legs=legs), ctx(*quotes))
    assert (vert.bid, vert.ask) == (pytest.approx(5.0 - 1.1), pytest.approx(5.2 - 1.0))
    assert vert.notional == pytest.approx(2 * (5.2 + 1.0) * 100)  # gross: each leg at the side it trades
    assert vert.commission == pytest.approx(2 * 1.30)  # each leg: 2 x 0.65 = 1.30 >= 1.00 minimum
    assert vert.positions_after == {c100.con_id: 2, c110.con_id: -2}
    assert vert.payoff.min_pnl == pytest.approx(-810.0) and vert.payoff.max_pnl == pytest.approx(2 * 1000 - 810)
    assert not vert.blocked, vert.reasons

    bag, legs = combo("SPY", [(SPY, "BUY", 100), (c100, "SELL", 1), (p100, "BUY", 1)])
    conv = evaluate(OrderIntent(bag, "BUY", 1, "LMT", limit_price=97.0, legs=legs), ctx(*quotes))
    assert conv.mid == pytest.approx(100.01 - 5.1 + 2.05)
    assert conv.payoff.locked and conv.payoff.max_pnl == pytest.approx(100 * (100 - 97.0))
    assert conv.positions_after[SPY.con_id] == 100

    bag, legs = combo("SPY", [(c100, "BUY", 1), (c110, "SELL", 1), (p110, "BUY", 1), (p100, "SELL", 1)])
    box = evaluate(OrderIntent(bag, "BUY", 1, "LMT", limit_price=9.95, legs=legs), ctx(*quotes))
    assert box.payoff.locked and box.payoff.max_pnl == pytest.approx(5.0)
    assert box.check("price_collar").passed

    later = option("C", 110, expiry="20240517")
    bag, legs = combo("SPY", [(c110, "SELL", 1), (later, "BUY", 1)])
    cal = evaluate(OrderIntent(bag, "BUY", 1, "LMT", limit_price=0.5, legs=legs), ctx(*quotes, quote(later, 1.5, 1.6)))
    assert cal.payoff is None and "different dates" in cal.payoff_note


def test_combo_with_a_missing_leg_quote_is_blocked() -> None:
    c100, c110 = option("C", 100), option("C", 110)
    bag, legs = combo("SPY", [(c100, "BUY", 1), (c110, "SELL", 1)])
    r = evaluate(OrderIntent(bag, "BUY", 1, "LMT", limit_price=4.0, legs=legs), ctx(quote(c100, 5.0, 5.2)))
    assert {"price_collar", "stale_quote", "max_notional"} <= failed(r)
    assert r.check("stale_quote").message == f"no quote for {c110.key}"


def test_bad_arguments() -> None:
    with pytest.raises(RiskInputError, match="needs an OrderIntent"):
        evaluate("BUY 100 SPY", ctx(Q))  # type: ignore[arg-type]
    with pytest.raises(RiskInputError, match="timezone-aware"):
        MarketContext(OPEN.replace(tzinfo=None))
    with pytest.raises(RiskInputError, match="risk limit max_notional must be a finite number >= 0, got -1"):
        RiskLimits(max_notional=-1)
    with pytest.raises(RiskInputError, match="daily_pnl must be a number"):
        MarketContext(OPEN, daily_pnl=None)  # type: ignore[arg-type]
    with pytest.raises(RiskInputError, match="open_orders must be OrderIntent objects, got str"):
        MarketContext(OPEN, open_orders=("BUY 1 SPY",))  # type: ignore[arg-type]
    with pytest.raises(RiskInputError, match="recent_orders must be RecentOrder with aware times"):
        MarketContext(OPEN, recent_orders=(RecentOrder(OPEN.replace(tzinfo=None), lmt(SPY, "BUY", 1, 1.0)),))


def test_limits_from_settings() -> None:
    from desk.settings import load_settings

    s = load_settings(mode="sim", risk_restricted_symbols="gme,amc", risk_max_notional=123.0)
    lim = RiskLimits.from_settings(s)
    assert lim.max_notional == 123.0 and lim.restricted_symbols == frozenset({"GME", "AMC"})
    assert lim.enforce_market_hours is False
    assert RiskLimits.from_settings(load_settings(mode="paper")).enforce_market_hours is True
    assert RiskLimits.from_settings(load_settings(mode="sim", risk_sim_any_hours=False)).enforce_market_hours is True


# --- properties ------------------------------------------------------------------------

prices = st.floats(0.01, 2000, allow_nan=False, allow_infinity=False)
maybe_price = st.one_of(st.just(math.nan), prices)


@st.composite
def markets(draw):
    """(intent, context) for a stock or an option, any order type, any market state."""
    ins = draw(st.sampled_from([SPY, AAPL, option("C", 100), option("P", 95)]))
    bid = draw(maybe_price)
    spread = draw(st.floats(0, 5))
    ask = bid + spread if not math.isnan(bid) else draw(maybe_price)
    age = draw(st.one_of(st.none(), st.floats(0, 100)))
    q = quote(ins, bid, ask, age=age or 0.0)
    if age is None:
        q = dataclasses.replace(q, time=None)
    kind = draw(st.sampled_from(["LMT", "MKT", "STP", "STP LMT"]))
    kw = {}
    if kind in ("LMT", "STP LMT"):
        kw["limit_price"] = draw(prices)
    if kind in ("STP", "STP LMT"):
        kw["stop_price"] = draw(prices)
    intent = OrderIntent(
        ins, draw(st.sampled_from(["BUY", "SELL"])), draw(st.integers(1, 5000)), kind, **kw, outside_rth=draw(st.booleans())
    )
    pos = draw(st.integers(-10_000, 10_000))
    positions = (Position(ins, pos, draw(prices)),) if pos else ()
    recent = tuple(
        RecentOrder(
            OPEN - timedelta(seconds=draw(st.floats(0, 120))), intent if draw(st.booleans()) else lmt(AAPL, "BUY", 1, 1.0)
        )
        for _ in range(draw(st.integers(0, 25)))
    )
    when = OPEN + timedelta(hours=draw(st.integers(-30, 30)))
    c = MarketContext(
        when,
        quotes=[dataclasses.replace(q, time=None if q.time is None else when - timedelta(seconds=age or 0))],
        positions=positions,
        daily_pnl=draw(st.one_of(st.just(math.nan), st.floats(-10_000, 10_000))),
        buying_power=draw(st.one_of(st.just(math.nan), st.floats(0, 1e6))),
        recent_orders=tuple(dataclasses.replace(r, time=when - (OPEN - r.time)) for r in recent),
    )
    return intent, c


limits_st = st.builds(
    RiskLimits,
    max_order_quantity=st.integers(0, 5000),
    max_order_contracts=st.integers(0, 50),
    max_notional=st.floats(0, 1e6),
    price_collar_pct=st.floats(0, 50),
    duplicate_window_s=st.floats(0, 60),
    max_orders_per_minute=st.integers(0, 30),
    max_position_shares=st.integers(0, 20_000),
    max_position_contracts=st.integers(0, 200),
    daily_loss_limit=st.floats(0, 20_000),
    stale_quote_s=st.floats(0, 60),
    enforce_market_hours=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(markets(), limits_st)
def test_blocked_iff_a_check_failed_and_numbers_are_consistent(market, limits: RiskLimits) -> None:
    intent, c = market
    r = evaluate(intent, c, limits)
    assert [x.name for x in r.checks] == list(CHECK_NAMES)
    bad = [x for x in r.checks if not x.passed]
    assert r.blocked == bool(bad)
    assert len(r.reasons) == len(bad)
    # notional and positions follow their definitions
    if not math.isnan(r.price):
        assert r.notional == pytest.approx(intent.quantity * abs(r.price) * intent.instrument.multiplier)
    cid = intent.instrument.con_id
    assert r.positions_after[cid] == r.positions_before[cid] + intent.signed_quantity
    assert r.commission >= 0
    # a check with a number and a limit agrees with it
    q = r.check("max_quantity")
    assert q.passed == (q.value <= q.limit)
    n = r.check("max_notional")
    assert n.passed == (not math.isnan(n.value) and n.value <= n.limit)
    s = r.check("stale_quote")
    assert s.passed == (not math.isnan(s.value) and s.value <= s.limit)


def _tighter(limits: RiskLimits, factor: float) -> RiskLimits:
    return dataclasses.replace(
        limits,
        max_order_quantity=int(limits.max_order_quantity * factor),
        max_order_contracts=int(limits.max_order_contracts * factor),
        max_notional=limits.max_notional * factor,
        price_collar_pct=limits.price_collar_pct * factor,
        duplicate_window_s=limits.duplicate_window_s / max(factor, 1e-9),
        max_orders_per_minute=int(limits.max_orders_per_minute * factor),
        max_position_shares=int(limits.max_position_shares * factor),
        max_position_contracts=int(limits.max_position_contracts * factor),
        daily_loss_limit=limits.daily_loss_limit * factor,
        stale_quote_s=limits.stale_quote_s * factor,
        enforce_market_hours=True if factor < 1 else limits.enforce_market_hours,
    )


@settings(max_examples=300, deadline=None)
@given(markets(), limits_st, st.floats(0.0, 1.0))
def test_tighter_limits_never_pass_what_looser_ones_block(market, limits: RiskLimits, factor: float) -> None:
    intent, c = market
    loose = evaluate(intent, c, limits)
    tight = evaluate(intent, c, _tighter(limits, factor))
    assert failed(loose) <= failed(tight)


@settings(max_examples=200, deadline=None)
@given(markets(), st.integers(1, 1000))
def test_a_bigger_order_never_passes_a_size_check_a_smaller_one_fails(market, extra: int) -> None:
    intent, c = market
    bigger = dataclasses.replace(intent, quantity=intent.quantity + extra)
    small, big = failed(evaluate(intent, c, LIMITS)), failed(evaluate(bigger, c, LIMITS))
    assert ({"max_quantity", "max_notional"} & small) <= big


@settings(max_examples=200, deadline=None)
@given(markets())
def test_evaluate_is_deterministic(market) -> None:
    intent, c = market
    a, b = evaluate(intent, c, LIMITS), evaluate(intent, c, LIMITS)
    assert a.checks == b.checks
