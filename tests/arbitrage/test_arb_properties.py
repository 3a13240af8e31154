"""Property-based tests of the scanners' formulas (hypothesis).

* The vectorized scanners equal a plain-Python reference that tries every strike pair,
  every expiry pair and every adjacent strike triple with the documented formulas, on
  random (mostly arbitrage-ridden) chains with holes, zero sizes and expired rows.
* Random parity-consistent chains give nothing.
* Scaling every price and strike by c scales every edge by c and keeps the legs.
* With bid <= ask, a conversion and a reversal (a long and a short box) never show at once.
* The costs, over arrays, equal the scalar commission rule the order ticket and the
  simulator use (desk.domain.commission), plus the scanners' own fees.
* Incremental rescans give what full scans give.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from arb_chainlib import EXPIRIES, NOW, make_chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.arbitrage import AMERICAN, EUROPEAN, Carry, ChainScanner, ChainSnapshot, Costs, Opportunity, scan_chain
from desk.arbitrage.chain import dividend_pv
from desk.arbitrage.scanners import EDGE_TOLERANCE

M = 100.0
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_chain(seed: int, n_e: int, n_k: int, hole_rate: float, crossed: bool = False) -> ChainSnapshot:
    """Random quotes around a rough price level: many violations, holes, zero sizes."""
    rng = np.random.default_rng(seed)
    strikes = np.sort(rng.choice(np.arange(80.0, 122.5, 2.5), size=n_k, replace=False))
    shape = (n_e, n_k)
    spot = 100.0 + rng.normal(0, 3)

    def quotes(intrinsic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mid = intrinsic + rng.uniform(0.0, 4.0, shape)
        spread = rng.uniform(-0.3 if crossed else 0.0, 1.0, shape)
        bid = mid - spread / 2
        ask = mid + spread / 2
        bid = np.where((rng.random(shape) < hole_rate) | (bid <= 0), np.nan, bid)
        ask = np.where(rng.random(shape) < hole_rate, np.nan, np.maximum(ask, 0.01))
        return bid, ask

    cb, ca = quotes(np.maximum(spot - strikes, 0.0)[None, :].repeat(n_e, 0))
    pb, pa = quotes(np.maximum(strikes - spot, 0.0)[None, :].repeat(n_e, 0))
    sizes = [rng.choice([0, 1, 2, 3, 5, 10, 40], size=shape).astype(float) for _ in range(4)]
    con = np.arange(n_e * n_k).reshape(shape)
    return ChainSnapshot(
        symbol="RND",
        now=NOW,
        expiries=EXPIRIES[:n_e],
        strikes=strikes,
        call_bid=cb,
        call_ask=ca,
        put_bid=pb,
        put_ask=pa,
        call_bid_size=sizes[0],
        call_ask_size=sizes[1],
        put_bid_size=sizes[2],
        put_ask_size=sizes[3],
        under_bid=spot - 0.02,
        under_ask=spot + 0.02 if not crossed else spot - 0.01,
        under_bid_size=float(rng.choice([0, 100, 250, 1000])),
        under_ask_size=float(rng.choice([0, 100, 250, 1000])),
        call_con_id=1000 + con,
        put_con_id=5000 + con,
        under_con_id=1,
    )


# --------------------------------------------------------------------------- the reference


def _ex(price: float, size: float) -> tuple[float, float]:
    """Executable (price, whole size) or (nan, 0)."""
    if price > 0 and size > 0:
        return price, math.floor(size)
    return math.nan, 0.0


def reference(snap: ChainSnapshot, carry: Carry, style: str) -> dict[tuple, float]:
    """{(rule, legs...): edge per share}: every candidate by brute force, best partner per
    anchor, best anchor per partner, as documented in desk.arbitrage.scanners."""
    out: dict[tuple, float] = {}
    K = snap.strikes.tolist()
    n_e, n_k = snap.shape
    T = snap.years_to_expiry
    D, _ = dividend_pv(carry, snap)
    Sb, Sbs = _ex(snap.under_bid, snap.under_bid_size)
    Sa, Sas = _ex(snap.under_ask, snap.under_ask_size)
    ex = snap.expiry_strings

    def q(name: str, e: int, i: int) -> tuple[float, float]:
        right, side = name.split("_")
        return _ex(getattr(snap, f"{right}_{side}")[e, i], getattr(snap, f"{right}_{side}_size")[e, i])

    def add(rule: str, legs: tuple, edge: float, size: float) -> None:
        if edge * M > EDGE_TOLERANCE and size >= 1:
            out[(rule, *legs)] = edge

    def best_per_partner(cands: list[tuple]) -> list[tuple]:
        """cands: (group, anchor, partner, edge, size, legs) -> keep the best anchor per (group, partner)."""
        keep: dict[tuple, tuple] = {}
        for c in cands:
            if not (c[3] * M > EDGE_TOLERANCE and c[4] >= 1):
                continue
            key = (c[0], c[2])
            if key not in keep or c[3] > keep[key][3]:
                keep[key] = c
        return list(keep.values())

    for e in range(n_e):
        if T[e] <= 0:
            continue
        d = math.exp(-carry.rate * T[e])
        borrow = Sb * (1 - math.exp(-carry.borrow_rate * T[e])) if Sb == Sb else math.nan
        cb = [q("call_bid", e, i) for i in range(n_k)]
        ca = [q("call_ask", e, i) for i in range(n_k)]
        pb = [q("put_bid", e, i) for i in range(n_k)]
        pa = [q("put_ask", e, i) for i in range(n_k)]
        for i in range(n_k):
            leg = lambda a, r, i=i: (a, r, K[i], ex[e])  # noqa: E731
            add(
                "conversion",
                (("BUY", "STK"), leg("SELL", "C"), leg("BUY", "P")),
                K[i] * d + D[e] - Sa + cb[i][0] - pa[i][0],
                min(cb[i][1], pa[i][1], math.floor(Sas / M)),
            )
            add(
                "reversal",
                (("SELL", "STK"), leg("BUY", "C"), leg("SELL", "P")),
                Sb - borrow - ca[i][0] + pb[i][0] - K[i] * d - D[e],
                min(ca[i][1], pb[i][1], math.floor(Sbs / M)),
            )
        pairs: dict[str, list] = {
            r: [] for r in ("long box", "short box", "call monotonic", "call slope", "put monotonic", "put slope")
        }

        def best(js: list[int], value, largest: bool) -> int | None:
            vals = [(value(j), j) for j in js if not math.isnan(value(j))]
            if not vals:
                return None
            return (max if largest else min)(vals)[1]

        for i in range(n_k):
            after = list(range(i + 1, n_k))
            before = list(range(i))
            L = lambda a, r, s: (a, r, K[s], ex[e])  # noqa: E731
            j = best(after, lambda j: cb[j][0] - pa[j][0] + K[j] * d, True)
            if j is not None:
                edge = (cb[j][0] - pa[j][0] + K[j] * d) - (ca[i][0] - pb[i][0] + K[i] * d)
                legs = (L("BUY", "C", i), L("SELL", "C", j), L("SELL", "P", i), L("BUY", "P", j))
                pairs["long box"].append((e, i, j, edge, min(ca[i][1], pb[i][1], cb[j][1], pa[j][1]), legs))
            j = best(after, lambda j: ca[j][0] - pb[j][0] + K[j] * d, False)
            if j is not None:
                edge = (cb[i][0] - pa[i][0] + K[i] * d) - (ca[j][0] - pb[j][0] + K[j] * d)
                legs = (L("SELL", "C", i), L("BUY", "C", j), L("BUY", "P", i), L("SELL", "P", j))
                pairs["short box"].append((e, i, j, edge, min(cb[i][1], pa[i][1], ca[j][1], pb[j][1]), legs))
            j = best(after, lambda j: cb[j][0], True)
            if j is not None:
                pairs["call monotonic"].append(
                    (e, i, j, cb[j][0] - ca[i][0], min(ca[i][1], cb[j][1]), (L("BUY", "C", i), L("SELL", "C", j)))
                )
            j = best(after, lambda j: ca[j][0] + K[j] * d, False)
            if j is not None:
                edge = cb[i][0] + K[i] * d - (ca[j][0] + K[j] * d)
                pairs["call slope"].append((e, i, j, edge, min(cb[i][1], ca[j][1]), (L("BUY", "C", j), L("SELL", "C", i))))
            j = best(before, lambda j: pb[j][0], True)  # here i is the higher strike
            if j is not None:
                pairs["put monotonic"].append(
                    (e, i, j, pb[j][0] - pa[i][0], min(pa[i][1], pb[j][1]), (L("BUY", "P", i), L("SELL", "P", j)))
                )
            j = best(before, lambda j: pa[j][0] - K[j] * d, False)
            if j is not None:
                edge = (pb[i][0] - K[i] * d) - (pa[j][0] - K[j] * d)
                pairs["put slope"].append((e, i, j, edge, min(pb[i][1], pa[j][1]), (L("BUY", "P", j), L("SELL", "P", i))))
        for rule, cands in pairs.items():
            for c in best_per_partner(cands):
                add(rule, c[5], c[3], c[4])
        # butterflies on adjacent listed strikes
        for right, bid, ask, raw_b, raw_a in (
            ("C", cb, ca, snap.call_bid, snap.call_ask),
            ("P", pb, pa, snap.put_bid, snap.put_ask),
        ):
            listed = [i for i in range(n_k) if math.isfinite(raw_b[e, i]) or math.isfinite(raw_a[e, i])]
            for a, b, c in zip(listed, listed[1:], listed[2:], strict=False):
                w1, w3 = round(K[c] * 1000) - round(K[b] * 1000), round(K[b] * 1000) - round(K[a] * 1000)
                g = math.gcd(w1, w3)
                r1, r3 = w1 // g, w3 // g
                r2 = r1 + r3
                edge = r2 * bid[b][0] - r1 * ask[a][0] - r3 * ask[c][0]
                size = min(ask[a][1] // r1, bid[b][1] // r2, ask[c][1] // r3)
                legs = (("BUY", r1, right, K[a], ex[e]), ("SELL", r2, right, K[b], ex[e]), ("BUY", r3, right, K[c], ex[e]))
                add(f"{'call' if right == 'C' else 'put'} convexity", legs, edge, size)
    # calendars: best far expiry per near one, best near per far one
    rights = ["C"] + (["P"] if style == AMERICAN else [])
    for right in rights:
        name = "call" if right == "C" else "put"
        cands = []
        for i in range(n_k):
            for e1 in range(n_e - 1):
                if T[e1] <= 0:
                    continue
                far = [
                    (q(f"{name}_ask", e2, i)[0], e2) for e2 in range(e1 + 1, n_e) if not math.isnan(q(f"{name}_ask", e2, i)[0])
                ]
                if not far:
                    continue
                a, e2 = min(far)
                nb, nbs = q(f"{name}_bid", e1, i)
                legs = (("SELL", 1, right, K[i], ex[e1]), ("BUY", 1, right, K[i], ex[e2]))
                cands.append((i, e1, e2, nb - a, min(nbs, q(f"{name}_ask", e2, i)[1]), legs))
        for c in best_per_partner(cands):
            add(f"{name} calendar", c[5], c[3], c[4])
    return out


def as_reference_keys(opps: list[Opportunity]) -> dict[tuple, float]:
    out = {}
    for o in opps:
        if o.kind.value in ("conversion", "reversal"):
            legs = tuple(
                (leg.action.value, "STK") if leg.sec_type == "STK" else (leg.action.value, leg.right, leg.strike, leg.expiry)
                for leg in o.legs
            )
        elif o.kind.value == "butterfly" or o.kind.value == "calendar":
            legs = tuple((leg.action.value, leg.ratio, leg.right, leg.strike, leg.expiry) for leg in o.legs)
        else:
            legs = tuple((leg.action.value, leg.right, leg.strike, leg.expiry) for leg in o.legs)
        key = (o.rule, *legs)
        assert key not in out, f"duplicate {key}"
        out[key] = o.edge
    return out


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_e=st.integers(1, 4),
    n_k=st.integers(2, 7),
    hole_rate=st.sampled_from([0.0, 0.2, 0.5]),
    rate=st.sampled_from([0.0, 0.03, 0.08]),
    dividend=st.sampled_from([0.0, 1.2]),
    borrow=st.sampled_from([0.0, 0.02]),
    style=st.sampled_from([AMERICAN, EUROPEAN]),
)
def test_scanners_equal_the_brute_force_reference(seed, n_e, n_k, hole_rate, rate, dividend, borrow, style) -> None:
    snap = random_chain(seed, n_e, n_k, hole_rate)
    divs = [(date(2024, 5, 10), dividend)] if dividend else []
    carry = Carry(rate=rate, dividends=divs, borrow_rate=borrow)
    if style == EUROPEAN and divs:
        carry = Carry(rate=rate, borrow_rate=borrow)  # European calendars across dividends are skipped: covered elsewhere
    opps = scan_chain(snap, carry, Costs.zero(), style=style, net_of_costs=False)
    got = as_reference_keys(opps)
    want = reference(snap, carry, style)
    assert got.keys() == want.keys()
    for key, edge in want.items():
        assert got[key] == pytest.approx(edge, rel=1e-9, abs=1e-9), key
    for o in opps:  # each edge is what its legs' prices say
        assert o.edge == pytest.approx(o.bound - o.net_price, abs=1e-9)
        assert o.net_price == pytest.approx(
            sum(leg.sign * leg.ratio * leg.price / (M if leg.sec_type == "STK" else 1) for leg in o.legs), abs=1e-9
        )


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_e=st.integers(1, 2),
    n_k=st.integers(2, 6),
    expired=st.integers(1, 2),
)
def test_expired_rows_match_the_reference_too(seed, n_e, n_k, expired) -> None:
    snap = random_chain(seed, n_e + expired, n_k, 0.1)
    snap = replace(snap, now=NOW + timedelta(days=(EXPIRIES[expired - 1] - NOW.date()).days + 1))
    assert (snap.years_to_expiry <= 0).sum() == expired
    opps = scan_chain(snap, Carry(rate=0.03), Costs.zero(), net_of_costs=False)
    assert as_reference_keys(opps).keys() == reference(snap, Carry(rate=0.03), AMERICAN).keys()


# --------------------------------------------------------------------------- invariants


@SETTINGS
@given(
    spot=st.floats(20, 500),
    sigma=st.floats(0.05, 1.2),
    rate=st.floats(0.0, 0.10),
    dividend=st.floats(0.0, 0.03),
    half_spread=st.floats(0.0005, 0.5),
    borrow=st.floats(0.0, 0.05),
)
def test_random_parity_consistent_chains_give_nothing(spot, sigma, rate, dividend, half_spread, borrow) -> None:
    carry = Carry(
        rate=rate, dividends=[(date(2024, 4, 1), dividend * spot), (date(2024, 7, 1), dividend * spot)], borrow_rate=borrow
    )
    strikes = spot * np.linspace(0.5, 1.5, 21)
    snap = make_chain(
        spot=spot, strikes=strikes, carry=carry, sigma=sigma, half_spread=half_spread, stock_half_spread=half_spread / 10
    )
    assert scan_chain(snap, carry, Costs.zero(), style=EUROPEAN, net_of_costs=False) == []


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.1, 0.2, 0.5, 2.0, 3.0, 4.0, 10.0, 40.0]),
    style=st.sampled_from([AMERICAN, EUROPEAN]),
)
def test_scaling_prices_and_strikes_scales_every_edge(seed, scale, style) -> None:
    """(Scales that keep the strikes on a 1/1000-dollar grid, which butterfly ratios use.)"""
    snap = random_chain(seed, 3, 6, 0.1)
    carry = Carry(rate=0.04, dividends=[(date(2024, 5, 10), 1.0)], borrow_rate=0.01)
    scaled = replace(
        snap,
        strikes=snap.strikes * scale,
        **{
            name: getattr(snap, name) * scale for name in ("call_bid", "call_ask", "put_bid", "put_ask", "under_bid", "under_ask")
        },
    )
    scaled_carry = replace(carry, dividends=((date(2024, 5, 10), 1.0 * scale),))
    a = {o.key: o for o in scan_chain(snap, carry, Costs.zero(), style=style, net_of_costs=False)}
    b = {o.key: o for o in scan_chain(scaled, scaled_carry, Costs.zero(), style=style, net_of_costs=False)}

    def unscaled(key: tuple) -> tuple:
        kind, rule, legs = key
        return (kind, rule, tuple((c, s, r, round(k / scale, 6), e, a, q) for c, s, r, k, e, a, q in legs))

    def rounded(key: tuple) -> tuple:
        kind, rule, legs = key
        return (kind, rule, tuple((c, s, r, round(k, 6), e, a, q) for c, s, r, k, e, a, q in legs))

    a = {rounded(k): o for k, o in a.items()}
    b = {unscaled(k): o for k, o in b.items()}
    assert a.keys() == b.keys()
    for key, o in a.items():
        assert b[key].edge == pytest.approx(o.edge * scale, rel=1e-7)
        assert b[key].net_price == pytest.approx(o.net_price * scale, rel=1e-7)
        assert b[key].max_size == o.max_size
        assert b[key].risks == o.risks


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.0, 0.1), borrow=st.floats(0.0, 0.05))
def test_opposite_combos_never_show_together_on_uncrossed_quotes(seed, rate, borrow) -> None:
    """Conversion edge + reversal edge = -(the three spreads) - borrow <= 0; the same for a
    long and a short box on one strike pair (minus four spreads)."""
    snap = random_chain(seed, 3, 7, 0.1)
    carry = Carry(rate=rate, borrow_rate=borrow)
    opps = scan_chain(snap, carry, Costs.zero(), net_of_costs=False)
    cells = {}
    for o in opps:
        if o.kind.value in ("conversion", "reversal"):
            cell = (o.expiry, o.legs[1].strike)
            assert cell not in cells, f"both a conversion and a reversal at {cell}"
            cells[cell] = o
    boxes = {}
    for o in opps:
        if o.kind.value == "box":
            pair = (o.expiry, frozenset(leg.strike for leg in o.legs))
            assert pair not in boxes, f"both a long and a short box on {pair}"
            boxes[pair] = o
    # crossed quotes do make both possible: the property is about the quotes, not luck
    crossed = random_chain(seed, 1, 3, 0.0, crossed=True)
    both = scan_chain(
        replace(crossed, call_bid=crossed.call_ask + 0.5), carry, Costs.zero(), kinds=("parity",), net_of_costs=False
    )
    assert {o.kind.value for o in both} <= {"conversion", "reversal"}


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 5000),
            st.one_of(st.floats(0.0, 50.0), st.sampled_from([0.05, 0.10, math.nan])),
            st.integers(1, 100_000),
            st.floats(0.01, 2000.0),
        ),
        min_size=1,
        max_size=30,
    ),
    fee=st.floats(0.0, 0.1),
    share_fee=st.floats(0.0, 0.01),
)
def test_costs_equal_the_scalar_commission_rule(rows, fee, share_fee) -> None:
    from desk.domain.commission import IBKR_FIXED

    contracts, premium, shares, price = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    costs = Costs()
    options, stocks = costs.option_order(contracts, premium), costs.stock_order(shares, price)
    fees = Costs(option_fee_per_contract=fee, stock_fee_per_share=share_fee)
    with_fees_o, with_fees_s = fees.option_order(contracts, premium), fees.stock_order(shares, price)
    full_rate = costs.option_order(contracts)
    for i, (n, p, q, px) in enumerate(rows):
        assert options[i] == IBKR_FIXED.option(n, p)
        assert stocks[i] == IBKR_FIXED.stock(q, px)
        assert full_rate[i] == IBKR_FIXED.option(n, math.nan)
        assert with_fees_o[i] == pytest.approx(IBKR_FIXED.option(n, p) + fee * n, rel=1e-12)
        assert with_fees_s[i] == pytest.approx(IBKR_FIXED.stock(q, px) + share_fee * q, rel=1e-12)


# --------------------------------------------------------------------------- incremental


def _summary(opps: list[Opportunity]) -> dict[tuple, tuple]:
    return {o.key: (round(o.edge, 12), o.max_size, round(o.costs_combo, 9), o.risks) for o in opps}


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 6),
            st.sampled_from(["call_bid", "put_ask", "call_ask_size", "stock"]),
            st.sampled_from([-1.5, -0.3, 0.05, 0.4, 2.0]),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_incremental_rescans_equal_full_scans(seed, steps) -> None:
    snap = random_chain(seed, 4, 7, 0.1)
    carry = Carry(rate=0.04, dividends=[(date(2024, 5, 10), 0.5)], borrow_rate=0.01)
    scanner = ChainScanner(carry, Costs(), net_of_costs=False, full_every=3600.0)
    assert _summary(scanner.scan(snap)) == _summary(scan_chain(snap, carry, Costs(), net_of_costs=False))
    for e, i, field, delta in steps:
        if field == "stock":
            snap = replace(snap, under_bid=snap.under_bid + delta / 10, under_ask=snap.under_ask + delta / 10)
        else:
            arr = getattr(snap, field).copy()
            arr[e, i] = abs(arr[e, i] + delta) if np.isfinite(arr[e, i]) else abs(delta)
            snap = replace(snap, **{field: arr})
        got = scanner.scan(snap)
        assert scanner.last_mode == ("full" if field == "stock" else "incremental")
        assert _summary(got) == _summary(scan_chain(snap, carry, Costs(), net_of_costs=False))
