"""The scanners on synthetic chains: a consistent chain gives nothing; every injected
mispricing is found with the right legs and edge; costs suppress small edges; sizes,
returns, dividends and early-exercise flags.

Expected edges are recomputed here from the quotes with the formulas of
``desk.arbitrage.scanners`` (times to expiry from 16:00 New York, independently of the
scanner's calendar code).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from arb_chainlib import EXPIRIES, NOW, make_american_chain, make_chain

from desk.arbitrage import (
    AMERICAN,
    EUROPEAN,
    Carry,
    ChainSnapshot,
    Costs,
    LegAction,
    Opportunity,
    OpportunityKind,
    RiskFlag,
    scan_chain,
)

NY = ZoneInfo("America/New_York")
EX_DATE = date(2024, 5, 10)  # between the 2nd (Apr 19) and 3rd (Jun 21) expiry
CARRY = Carry(rate=0.05, dividends=[(EX_DATE, 0.80)], borrow_rate=0.01)
STRIKES = np.arange(60.0, 141.0, 5.0)
M = 100.0


def k(strike: float) -> int:
    return int(np.searchsorted(STRIKES, strike))


def years(e: int) -> float:
    close = datetime.combine(EXPIRIES[e], time(16, 0), tzinfo=NY)
    return (close - NOW).total_seconds() / (365 * 86400)


def dividends_pv(e: int, carry: Carry = CARRY) -> float:
    total = 0.0
    for d in carry.dividends:
        if NOW.astimezone(NY).date() < d.ex_date <= EXPIRIES[e]:
            t = (datetime.combine(d.ex_date, time(0), tzinfo=NY) - NOW).total_seconds() / (365 * 86400)
            total += d.amount * math.exp(-carry.rate * t)
    return total


def chain(**kw) -> ChainSnapshot:
    kw.setdefault("carry", CARRY)
    return make_chain(strikes=STRIKES, **kw)


def shift(snap: ChainSnapshot, right: str, e: int, strike: float, delta: float) -> ChainSnapshot:
    """Move one option's bid and ask by ``delta`` dollars per share."""
    bid, ask = (f"{'call' if right == 'C' else 'put'}_{side}" for side in ("bid", "ask"))
    b, a = getattr(snap, bid).copy(), getattr(snap, ask).copy()
    b[e, k(strike)] += delta
    a[e, k(strike)] += delta
    return replace(snap, **{bid: b, ask: a})


def legs(o: Opportunity) -> list[tuple]:
    return [(leg.action.value, leg.ratio, leg.sec_type, leg.right, leg.strike, leg.expiry) for leg in o.legs]


def exp(e: int) -> str:
    return EXPIRIES[e].strftime("%Y%m%d")


def find(opps: list[Opportunity], kind: OpportunityKind, expected_legs: list[tuple]) -> Opportunity:
    hits = [o for o in opps if o.kind is kind and legs(o) == expected_legs]
    assert len(hits) == 1, f"{kind.value} {expected_legs} not found in {[o.describe() for o in opps if o.kind is kind]}"
    return hits[0]


def gross(snap: ChainSnapshot, style: str = EUROPEAN, carry: Carry = CARRY) -> list[Opportunity]:
    return scan_chain(snap, carry, Costs.zero(), style=style, net_of_costs=False)


# --------------------------------------------------------------------------- nothing to find


@pytest.mark.parametrize(
    "carry",
    [
        Carry(),
        Carry(rate=0.05),
        CARRY,
        Carry(rate=0.02, dividends=[(date(2024, 3, 20), 1.5), (date(2024, 9, 1), 1.5)], borrow_rate=0.03),
    ],
    ids=["zero-carry", "rate", "rate-dividend-borrow", "two-dividends"],
)
@pytest.mark.parametrize("half_spread", [0.001, 0.05])
def test_a_parity_consistent_chain_gives_nothing_even_before_costs(carry: Carry, half_spread: float) -> None:
    snap = make_chain(strikes=STRIKES, carry=carry, half_spread=half_spread)
    assert np.isfinite(snap.call_bid).sum() > 40  # the chain is really quoted
    assert gross(snap, EUROPEAN, carry) == []


def test_an_american_chain_gives_only_what_early_exercise_explains() -> None:
    """American puts priced on a binomial tree carry an early-exercise premium, so the
    European bounds show reversals, short boxes and put-spread slopes; every one of them is
    flagged, and the bounds that hold for American options (monotonicity, convexity,
    calendars, long boxes, conversions without dividends) report nothing."""
    snap = make_american_chain(strikes=STRIKES, rate=0.05)
    opps = gross(snap, AMERICAN, Carry(rate=0.05))
    assert opps, "the American premium of deep in-the-money puts should show up"
    assert {o.rule for o in opps} <= {"reversal", "short box", "put slope"}
    for o in opps:
        assert RiskFlag.AMERICAN_PREMIUM in o.risks, o.describe()
        assert o.at_risk
    assert any(RiskFlag.EARLY_EXERCISE_PUT in o.risks for o in opps)
    # the same quotes scanned as European options: nothing is flagged
    assert all(not o.at_risk for o in gross(snap, EUROPEAN, Carry(rate=0.05)))


# --------------------------------------------------------------------------- injected mispricings


def test_conversion_is_found_with_its_legs_edge_size_and_return() -> None:
    e, K = 1, 100.0
    snap = shift(chain(), "C", e, K, 0.30)  # an expensive call
    i = k(K)
    opps = gross(snap)
    o = find(
        opps,
        OpportunityKind.CONVERSION,
        [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))],
    )
    T = years(e)
    net = snap.under_ask - snap.call_bid[e, i] + snap.put_ask[e, i]
    bound = K * math.exp(-CARRY.rate * T) + dividends_pv(e)
    assert dividends_pv(e) == 0  # the ex-date is after this expiry
    assert o.net_price == pytest.approx(net, abs=1e-12)
    assert o.net_price_combo == pytest.approx(net * M, abs=1e-9)
    assert o.edge == pytest.approx(bound - net, abs=1e-9)
    assert o.edge == pytest.approx(0.30 - 0.02 - 0.02 - 0.01, abs=1e-9)
    assert o.max_size == 50
    assert o.legs[0].con_id == 1 and o.legs[1].con_id == snap.call_con_id[e, i] and o.legs[2].con_id == snap.put_con_id[e, i]
    assert [leg.price for leg in o.legs] == [snap.under_ask, snap.call_bid[e, i], snap.put_ask[e, i]]
    assert o.years_to_expiry == pytest.approx(T, rel=1e-12)
    assert o.days_to_expiry == (EXPIRIES[e] - date(2024, 3, 4)).days
    assert o.capital_combo == pytest.approx(net * M)
    assert o.annualized_return == pytest.approx(o.edge_combo_net / o.capital_combo / T)
    assert o.first_seen == o.last_seen == NOW
    assert [x for x in opps if x.kind is OpportunityKind.CONVERSION] == [o]


def test_conversion_counts_dividends_before_expiry() -> None:
    e, K = 2, 100.0  # the ex-date falls before this expiry
    snap = shift(chain(), "C", e, K, 0.30)
    i = k(K)
    o = find(
        gross(snap),
        OpportunityKind.CONVERSION,
        [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))],
    )
    D = dividends_pv(e)
    assert 0.79 < D < 0.80
    expected = K * math.exp(-CARRY.rate * years(e)) + D - (snap.under_ask - snap.call_bid[e, i] + snap.put_ask[e, i])
    assert o.edge == pytest.approx(expected, abs=1e-9)
    assert o.bound == pytest.approx(K * math.exp(-CARRY.rate * years(e)) + D, abs=1e-9)
    assert RiskFlag.DIVIDEND in o.risks


def test_reversal_is_found_with_borrow_and_dividends() -> None:
    for e, cheaper in ((1, 0.30), (3, 1.50)):  # borrow costs ~0.8 a share over the longer one
        K = 95.0
        snap = shift(chain(), "C", e, K, -cheaper)  # a cheap call
        i = k(K)
        o = find(
            gross(snap),
            OpportunityKind.REVERSAL,
            [("SELL", 100, "STK", "", 0.0, ""), ("BUY", 1, "OPT", "C", K, exp(e)), ("SELL", 1, "OPT", "P", K, exp(e))],
        )
        T = years(e)
        credit = snap.under_bid - snap.call_ask[e, i] + snap.put_bid[e, i]
        owed = K * math.exp(-CARRY.rate * T) + dividends_pv(e) + snap.under_bid * (1 - math.exp(-CARRY.borrow_rate * T))
        assert o.edge == pytest.approx(credit - owed, abs=1e-9)
        assert o.net_price == pytest.approx(-credit, abs=1e-12)
        assert o.capital_combo == pytest.approx(K * M)
        # the borrow fee alone can eat the edge
        assert not [x for x in gross(snap, EUROPEAN, replace(CARRY, borrow_rate=0.5)) if x.kind is OpportunityKind.REVERSAL]


def test_long_and_short_box_are_found() -> None:
    e, K1, K2 = 1, 90.0, 110.0
    d = math.exp(-CARRY.rate * years(e))
    # long box: the synthetic at K1 cheap, at K2 rich
    snap = shift(shift(shift(shift(chain(), "C", e, K1, -0.2), "P", e, K1, 0.2), "C", e, K2, 0.2), "P", e, K2, -0.2)
    i, j = k(K1), k(K2)
    o = find(
        gross(snap),
        OpportunityKind.BOX,
        [
            ("BUY", 1, "OPT", "C", K1, exp(e)),
            ("SELL", 1, "OPT", "C", K2, exp(e)),
            ("SELL", 1, "OPT", "P", K1, exp(e)),
            ("BUY", 1, "OPT", "P", K2, exp(e)),
        ],
    )
    net = snap.call_ask[e, i] - snap.call_bid[e, j] - snap.put_bid[e, i] + snap.put_ask[e, j]
    assert o.rule == "long box"
    assert o.net_price == pytest.approx(net, abs=1e-12)
    assert o.edge == pytest.approx((K2 - K1) * d - net, abs=1e-9)
    assert o.edge == pytest.approx(0.8 - 4 * 0.02, abs=1e-9)
    assert o.capital_combo == pytest.approx(net * M)
    # short box: the reverse
    snap = shift(shift(shift(shift(chain(), "C", e, K1, 0.2), "P", e, K1, -0.2), "C", e, K2, -0.2), "P", e, K2, 0.2)
    o = find(
        gross(snap),
        OpportunityKind.BOX,
        [
            ("SELL", 1, "OPT", "C", K1, exp(e)),
            ("BUY", 1, "OPT", "C", K2, exp(e)),
            ("BUY", 1, "OPT", "P", K1, exp(e)),
            ("SELL", 1, "OPT", "P", K2, exp(e)),
        ],
    )
    credit = snap.call_bid[e, i] - snap.call_ask[e, j] - snap.put_ask[e, i] + snap.put_bid[e, j]
    assert o.rule == "short box"
    assert o.edge == pytest.approx(credit - (K2 - K1) * d, abs=1e-9)
    assert o.capital_combo == pytest.approx((K2 - K1) * M)


def test_call_and_put_monotonicity_violations_are_found() -> None:
    e = 0
    base = chain()
    # a call at 105 bid above the call at 100's ask
    delta = base.call_ask[e, k(100)] - base.call_bid[e, k(105)] + 0.10
    snap = shift(base, "C", e, 105.0, delta)
    o = find(
        gross(snap), OpportunityKind.VERTICAL, [("BUY", 1, "OPT", "C", 100.0, exp(e)), ("SELL", 1, "OPT", "C", 105.0, exp(e))]
    )
    assert o.rule == "call monotonic"
    assert o.edge == pytest.approx(0.10, abs=1e-9)
    assert o.net_price == pytest.approx(-0.10, abs=1e-9)
    assert o.capital_combo == pytest.approx(snap.call_ask[e, k(100)] * M)
    # a put at 95 bid above the put at 100's ask
    delta = base.put_ask[e, k(100)] - base.put_bid[e, k(95)] + 0.07
    snap = shift(base, "P", e, 95.0, delta)
    o = find(
        gross(snap), OpportunityKind.VERTICAL, [("BUY", 1, "OPT", "P", 100.0, exp(e)), ("SELL", 1, "OPT", "P", 95.0, exp(e))]
    )
    assert o.rule == "put monotonic"
    assert o.edge == pytest.approx(0.07, abs=1e-9)


def test_vertical_slope_violations_are_found() -> None:
    e = 3
    base = chain()
    d = math.exp(-CARRY.rate * years(e))
    # deep in the money calls: C(65) - C(70) more than 5 e^{-rT}
    delta = base.call_ask[e, k(70)] + 5 * d - base.call_bid[e, k(65)] + 0.10
    snap = shift(base, "C", e, 70.0, -delta)
    o = find(gross(snap), OpportunityKind.VERTICAL, [("BUY", 1, "OPT", "C", 70.0, exp(e)), ("SELL", 1, "OPT", "C", 65.0, exp(e))])
    assert o.rule == "call slope"
    assert o.edge == pytest.approx(0.10, abs=1e-9)
    assert o.bound == pytest.approx(-5 * d)
    assert o.capital_combo == pytest.approx(5 * M)
    # deep in the money puts: P(140) - P(135) more than 5 e^{-rT}
    delta = base.put_ask[e, k(135)] + 5 * d - base.put_bid[e, k(140)] + 0.06
    snap = shift(base, "P", e, 135.0, -delta)
    o = find(
        gross(snap), OpportunityKind.VERTICAL, [("BUY", 1, "OPT", "P", 135.0, exp(e)), ("SELL", 1, "OPT", "P", 140.0, exp(e))]
    )
    assert o.rule == "put slope"
    assert o.edge == pytest.approx(0.06, abs=1e-9)


@pytest.mark.parametrize("right", ["C", "P"])
def test_butterfly_convexity_violation_is_found(right: str) -> None:
    e = 1
    base = chain()
    bid = base.call_bid if right == "C" else base.put_bid
    ask = base.call_ask if right == "C" else base.put_ask
    delta = (0.10 + ask[e, k(95)] + ask[e, k(105)] - 2 * bid[e, k(100)]) / 2
    snap = shift(base, right, e, 100.0, delta)
    o = find(
        gross(snap),
        OpportunityKind.BUTTERFLY,
        [
            ("BUY", 1, "OPT", right, 95.0, exp(e)),
            ("SELL", 2, "OPT", right, 100.0, exp(e)),
            ("BUY", 1, "OPT", right, 105.0, exp(e)),
        ],
    )
    assert o.edge == pytest.approx(0.10, abs=1e-9)
    assert o.rule == ("call convexity" if right == "C" else "put convexity")


def test_butterfly_uses_adjacent_listed_strikes_and_integer_ratios() -> None:
    """Strikes 90, 95, 105 (uneven): 2 x 90, -3 x 95, 1 x 105; an unlisted strike is skipped."""
    e = 1
    strikes = np.array([80.0, 90.0, 95.0, 100.0, 105.0, 110.0, 120.0])
    base = make_chain(strikes=strikes, carry=CARRY)
    cb, ca = base.call_bid.copy(), base.call_ask.copy()
    cb[e, 3] = ca[e, 3] = np.nan  # 100 not listed for this expiry
    delta = (0.10 + 2 * ca[e, 1] + ca[e, 4] - 3 * cb[e, 2]) / 3  # a rich 95 call
    ca[e, 2] += delta
    cb[e, 2] += delta
    snap = replace(base, call_bid=cb, call_ask=ca)
    o = find(
        gross(snap),
        OpportunityKind.BUTTERFLY,
        [("BUY", 2, "OPT", "C", 90.0, exp(e)), ("SELL", 3, "OPT", "C", 95.0, exp(e)), ("BUY", 1, "OPT", "C", 105.0, exp(e))],
    )
    assert o.edge == pytest.approx(3 * cb[e, 2] - 2 * ca[e, 1] - ca[e, 4], abs=1e-9)
    assert o.edge == pytest.approx(0.10, abs=1e-9)
    assert o.max_size == 50 // 3
    assert o.capital_combo == pytest.approx((2 * ca[e, 1] + ca[e, 4]) * M)


def test_call_calendar_is_found_and_european_puts_are_not_checked() -> None:
    base = chain()
    delta = base.call_ask[1, k(100)] - base.call_bid[0, k(100)] + 0.05
    snap = shift(base, "C", 0, 100.0, delta)
    opps = gross(snap)
    o = find(opps, OpportunityKind.CALENDAR, [("SELL", 1, "OPT", "C", 100.0, exp(0)), ("BUY", 1, "OPT", "C", 100.0, exp(1))])
    assert o.edge == pytest.approx(0.05, abs=1e-9)
    assert o.expiry == exp(0)
    assert o.capital_combo == pytest.approx(snap.call_ask[1, k(100)] * M)
    assert all(x.rule == "call calendar" for x in opps if x.kind is OpportunityKind.CALENDAR)


def test_european_call_calendar_is_not_checked_across_a_dividend() -> None:
    """A European call can be worth less for longer when a dividend goes ex in between."""
    base = chain()
    delta = base.call_ask[2, k(100)] - base.call_bid[1, k(100)] + 0.05  # Apr 19 vs Jun 21, ex-date May 10
    snap = shift(base, "C", 1, 100.0, delta)
    assert not [o for o in gross(snap) if o.kind is OpportunityKind.CALENDAR]
    # American calls cannot lose value with time: there it is an opportunity (so are the
    # deep in-the-money European calls that lose the dividend)
    american = gross(snap, AMERICAN)
    o = find(american, OpportunityKind.CALENDAR, [("SELL", 1, "OPT", "C", 100.0, exp(1)), ("BUY", 1, "OPT", "C", 100.0, exp(2))])
    assert o.edge == pytest.approx(0.05, abs=1e-9)
    others = [x for x in american if x.rule == "call calendar" and x is not o]
    assert others and all(x.legs[0].strike < 90 for x in others)


def test_put_calendar_on_american_options() -> None:
    base = make_american_chain(strikes=STRIKES, rate=0.05)
    delta = base.put_ask[2, k(100)] - base.put_bid[0, k(100)] + 0.04
    snap = shift(base, "P", 0, 100.0, delta)
    o = find(
        gross(snap, AMERICAN, Carry(rate=0.05)),
        OpportunityKind.CALENDAR,
        [("SELL", 1, "OPT", "P", 100.0, exp(0)), ("BUY", 1, "OPT", "P", 100.0, exp(1))],
    )
    assert o.edge == pytest.approx(snap.put_bid[0, k(100)] - snap.put_ask[1, k(100)], abs=1e-9)
    assert o.edge > 0.04  # the nearest far expiry is the cheapest


# --------------------------------------------------------------------------- costs and sizes


def test_costs_that_exceed_the_edge_suppress_it() -> None:
    e, K = 1, 100.0
    base = chain()
    i = k(K)
    # edge of exactly $1.00 per combo; IBKR fixed costs at 50 combos: 2 x 50 x $0.65 + 5000 x $0.005 = $90 = $1.80 a combo
    no_edge = K * math.exp(-CARRY.rate * years(e)) - (base.under_ask - base.call_bid[e, i] + base.put_ask[e, i])
    snap = shift(base, "C", e, K, 0.01 - no_edge)
    conv = [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))]
    o = find(scan_chain(snap, CARRY, Costs(), style=EUROPEAN, net_of_costs=False), OpportunityKind.CONVERSION, conv)
    assert o.edge_combo == pytest.approx(1.0, abs=1e-7)
    assert o.costs_combo == pytest.approx(1.80)
    assert o.edge_combo_net == pytest.approx(-0.80, abs=1e-7)
    assert not o.profitable
    assert o.edge_total == pytest.approx(-0.80 * 50, abs=1e-5)
    assert not [x for x in scan_chain(snap, CARRY, Costs(), style=EUROPEAN) if x.kind is OpportunityKind.CONVERSION]
    assert find(
        scan_chain(snap, CARRY, Costs.zero(), style=EUROPEAN), OpportunityKind.CONVERSION, conv
    ).edge_total == pytest.approx(50.0, abs=1e-5)
    # a bigger edge survives costs, but not a minimum edge above it
    snap = shift(base, "C", e, K, 0.30)
    o = find(scan_chain(snap, CARRY, Costs(), style=EUROPEAN), OpportunityKind.CONVERSION, conv)
    assert o.edge_combo_net == pytest.approx(o.edge_combo - 1.80)
    assert o.edge_total == pytest.approx(o.edge_combo_net * 50)
    assert not [
        x
        for x in scan_chain(snap, CARRY, Costs(), style=EUROPEAN, min_edge=o.edge_combo_net + 0.01)
        if x.kind is OpportunityKind.CONVERSION
    ]


def test_per_order_minimums_and_fees_are_spread_over_the_size() -> None:
    e, K = 1, 100.0
    i = k(K)
    snap = shift(chain(), "C", e, K, 0.30)
    sizes = snap.call_bid_size.copy()
    sizes[e, i] = 1
    snap = replace(snap, call_bid_size=sizes)
    conv = [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))]
    o = find(scan_chain(snap, CARRY, Costs(option_fee_per_contract=0.10), style=EUROPEAN), OpportunityKind.CONVERSION, conv)
    assert o.max_size == 1
    # minimum $1 per option order (0.65 < 1) + $0.10 fee each, stock 100 shares -> $1 minimum
    assert o.costs_combo == pytest.approx(1.10 + 1.10 + 1.00)


def test_max_size_comes_from_every_legs_displayed_size() -> None:
    e, K = 1, 100.0
    i = k(K)
    snap = shift(chain(), "C", e, K, 0.30)
    conv = [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))]
    cbs, pas = snap.call_bid_size.copy(), snap.put_ask_size.copy()
    cbs[e, i], pas[e, i] = 7, 12
    assert find(gross(replace(snap, call_bid_size=cbs, put_ask_size=pas)), OpportunityKind.CONVERSION, conv).max_size == 7
    assert find(gross(replace(snap, call_bid_size=cbs, under_ask_size=350)), OpportunityKind.CONVERSION, conv).max_size == 3
    # nothing displayed on one leg (0 or NaN): not executable, not reported
    for size in (0.0, np.nan):
        cbs[e, i] = size
        assert not [o for o in gross(replace(snap, call_bid_size=cbs)) if o.kind is OpportunityKind.CONVERSION]
    assert not [o for o in gross(replace(snap, under_ask_size=99)) if o.kind is OpportunityKind.CONVERSION]


# --------------------------------------------------------------------------- early exercise flags


def test_short_itm_call_before_a_large_dividend_is_flagged() -> None:
    carry = Carry(rate=0.05, dividends=[(EX_DATE, 3.0)], borrow_rate=0.01)
    base = make_chain(strikes=STRIKES, carry=carry)
    e = 2
    conv = lambda K: [("BUY", 100, "STK", "", 0.0, ""), ("SELL", 1, "OPT", "C", K, exp(e)), ("BUY", 1, "OPT", "P", K, exp(e))]  # noqa: E731
    itm = find(gross(shift(base, "C", e, 90.0, 0.3), AMERICAN, carry), OpportunityKind.CONVERSION, conv(90.0))
    put_tv = (base.put_bid[e, k(90)] + base.put_ask[e, k(90)]) / 2  # OTM put: all time value
    assert put_tv < 3.0
    assert RiskFlag.EARLY_EXERCISE_CALL in itm.risks and RiskFlag.DIVIDEND in itm.risks
    otm = find(gross(shift(base, "C", e, 110.0, 0.3), AMERICAN, carry), OpportunityKind.CONVERSION, conv(110.0))
    assert RiskFlag.EARLY_EXERCISE_CALL not in otm.risks
    # the edge is 0.25 a share, less than the dividends a call assignment would take away
    assert RiskFlag.AMERICAN_PREMIUM in otm.risks
    european = find(gross(shift(base, "C", e, 90.0, 0.3), EUROPEAN, carry), OpportunityKind.CONVERSION, conv(90.0))
    assert european.risks == frozenset({RiskFlag.DIVIDEND})


def test_short_deep_itm_put_is_flagged_when_interest_beats_the_call_time_value() -> None:
    carry = Carry(rate=0.05)
    base = make_chain(strikes=STRIKES, carry=carry)
    e = 3
    rev = lambda K: [("SELL", 100, "STK", "", 0.0, ""), ("BUY", 1, "OPT", "C", K, exp(e)), ("SELL", 1, "OPT", "P", K, exp(e))]  # noqa: E731
    deep = find(gross(shift(base, "C", e, 130.0, -1.0), AMERICAN, carry), OpportunityKind.REVERSAL, rev(130.0))
    call_tv = (base.call_bid[e, k(130)] + base.call_ask[e, k(130)]) / 2  # OTM call: all time value
    assert carry.rate * 130.0 * years(e) > call_tv
    assert RiskFlag.EARLY_EXERCISE_PUT in deep.risks
    otm = find(gross(shift(base, "C", e, 90.0, -8.0), AMERICAN, carry), OpportunityKind.REVERSAL, rev(90.0))
    assert RiskFlag.EARLY_EXERCISE_PUT not in otm.risks
    # an edge of ~$8 a share is more than the interest on the strike: a real arbitrage
    assert 90.0 * (1 - math.exp(-0.05 * years(e))) < otm.edge
    assert RiskFlag.AMERICAN_PREMIUM not in otm.risks and not otm.at_risk


# --------------------------------------------------------------------------- expiry and bad input


def test_expired_rows_are_skipped() -> None:
    late = datetime(2024, 3, 15, 20, 30, tzinfo=UTC)  # after the first expiry's close
    snap = shift(replace(chain(), now=late), "C", 0, 100.0, 5.0)
    assert snap.years_to_expiry[0] < 0 < snap.years_to_expiry[1]
    assert all(o.expiry != exp(0) for o in gross(snap))


def test_expiry_close_follows_the_exchange_calendar() -> None:
    """2015-12-24 was a half day: options expiring that day stopped at 13:00 New York."""
    now = datetime(2015, 12, 24, 12, 0, tzinfo=NY)
    snap = make_chain(strikes=[100.0], expiries=(date(2015, 12, 24), date(2016, 1, 15)), now=now)
    assert snap.years_to_expiry[0] * 365 * 24 == pytest.approx(1.0)
    assert snap.days_to_expiry.tolist() == [0, 22]


def _grid(value: float = 1.0, shape: tuple[int, int] = (2, 3)) -> np.ndarray:
    return np.full(shape, value)


def _snapshot(**over) -> ChainSnapshot:
    kw = dict(
        symbol="XYZ",
        now=NOW,
        expiries=(date(2024, 4, 19), date(2024, 5, 17)),
        strikes=np.array([90.0, 100.0, 110.0]),
        call_bid=_grid(),
        call_ask=_grid(),
        put_bid=_grid(),
        put_ask=_grid(),
        call_bid_size=_grid(),
        call_ask_size=_grid(),
        put_bid_size=_grid(),
        put_ask_size=_grid(),
        under_bid=100.0,
        under_ask=100.1,
        under_bid_size=100,
        under_ask_size=100,
    )
    kw.update(over)
    return ChainSnapshot(**kw)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"call_bid": _grid(shape=(3, 2))}, r"call_bid must have shape \(2, 3\)"),
        ({"put_ask_size": _grid(-1.0)}, "put_ask_size has negative values"),
        ({"strikes": np.array([90.0, 110.0, 100.0])}, "strikes must be strictly increasing"),
        ({"strikes": np.array([0.0, 100.0, 110.0])}, "strikes must be finite and > 0"),
        ({"expiries": (date(2024, 5, 17), date(2024, 4, 19))}, "expiries must be strictly increasing"),
        ({"expiries": ("20240419", date(2024, 5, 17))}, "expiries must be dates"),
        ({"now": datetime(2024, 3, 4, 10, 0)}, "now must be a timezone-aware datetime"),
        ({"under_ask": -1.0}, "under_ask must be >= 0"),
        ({"multiplier": 0.0}, "multiplier must be > 0"),
        ({"call_con_id": np.zeros((2, 2))}, r"call_con_id must have shape"),
        ({"expiry_closes": (NOW,)}, "expiry_closes must have 2 items"),
    ],
)
def test_bad_snapshots_are_refused_naming_the_field(over: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _snapshot(**over)


def test_bad_options_are_refused() -> None:
    snap = _snapshot()
    with pytest.raises(ValueError, match="unknown scanner"):
        scan_chain(snap, kinds=("parity", "straddle"))
    with pytest.raises(ValueError, match="style must be one of"):
        scan_chain(snap, style="bermudan")
    with pytest.raises(ValueError, match="min_edge"):
        scan_chain(snap, min_edge=math.nan)
    with pytest.raises(ValueError, match="Carry.rate"):
        Carry(rate=math.inf)
    with pytest.raises(ValueError, match="Carry.borrow_rate"):
        Carry(borrow_rate=-0.01)
    with pytest.raises(ValueError, match="Dividend.amount"):
        Carry(dividends=[(date(2024, 5, 1), -1.0)])
    with pytest.raises(ValueError, match=r"\(ex_date, amount\) pairs"):
        Carry(dividends=[date(2024, 5, 1)])
    with pytest.raises(ValueError, match="Costs.option_per_contract"):
        Costs(option_per_contract=-0.65)


def test_legs_say_buy_at_ask_and_sell_at_bid() -> None:
    snap = shift(shift(chain(), "C", 1, 100.0, 0.30), "C", 2, 95.0, -0.30)
    opps = gross(snap, AMERICAN)
    assert opps
    for o in opps:
        for leg in o.legs:
            if leg.sec_type == "STK":
                assert leg.price == (snap.under_ask if leg.action is LegAction.BUY else snap.under_bid)
                continue
            e = snap.expiry_strings.index(leg.expiry)
            i = k(leg.strike)
            side = "ask" if leg.action is LegAction.BUY else "bid"
            quotes = getattr(snap, f"{'call' if leg.right == 'C' else 'put'}_{side}")
            assert leg.price == quotes[e, i]
        assert o.net_price == pytest.approx(
            sum(leg.sign * leg.ratio * leg.price / (M if leg.sec_type == "STK" else 1) for leg in o.legs)
        )
