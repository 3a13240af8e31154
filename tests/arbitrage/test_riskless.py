"""What the desk ranks as riskless (``Opportunity.riskless``, one definition): never the
early-exercise premium of an American short leg, an edge within the American gap, a stale
leg, or a dividend owed on a short sale; and never the gap between the desk's rate and
the market's (a negative implied dividend is the market's excess rate, not zero)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pytest
from arb_chainlib import EXPIRIES, NOW, make_american_chain, make_chain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.arbitrage import AMERICAN, Carry, Costs, OpportunityKind, RiskFlag, scan_chain
from desk.arbitrage.live import LiveArbitrage, carry_with_dividends, implied_dividend_pv
from desk.domain.chain import ChainRow
from desk.domain import FrozenClock, Instrument, QuoteStore
from desk.domain.opportunity_codec import opportunity_payload
from desk.domain.options import OptionChainStore

STRIKES = np.arange(60.0, 141.0, 5.0)


# --------------------------------------------------------------------------- the definition


def _one(kind: OpportunityKind = OpportunityKind.CONVERSION):
    snap = make_chain(strikes=STRIKES, carry=Carry(rate=0.05))
    b = snap.call_bid.copy()
    a = snap.call_ask.copy()
    j = int(np.searchsorted(STRIKES, 100.0))
    shift = 1.50 if kind is OpportunityKind.CONVERSION else -1.50  # beyond the American gap (K (1 - d) = 0.62)
    b[1, j] += shift
    a[1, j] += shift
    opps = scan_chain(replace(snap, call_bid=b, call_ask=a), Carry(rate=0.05), Costs(), kinds=("parity",), style=AMERICAN)
    return next(o for o in opps if o.kind is kind)


def test_riskless_is_profitable_without_any_reason_against_it() -> None:
    conv = _one(OpportunityKind.CONVERSION)
    assert conv.risks == frozenset() and conv.riskless and conv.risk_reasons == frozenset()
    for flag in (RiskFlag.EARLY_EXERCISE_CALL, RiskFlag.EARLY_EXERCISE_PUT, RiskFlag.AMERICAN_PREMIUM, RiskFlag.STALE):
        flagged = replace(conv, risks=frozenset({flag}))
        assert not flagged.riskless and flagged.risk_reasons == {flag}
    # dividends received (long stock) do not take an edge beyond the American gap away...
    assert replace(conv, risks=frozenset({RiskFlag.DIVIDEND})).riskless
    # ...dividends owed on a short sale do
    rev = _one(OpportunityKind.REVERSAL)
    assert rev.short_stock and not conv.short_stock and rev.riskless
    assert replace(rev, risks=frozenset({RiskFlag.DIVIDEND})).risk_reasons == {RiskFlag.DIVIDEND}
    # an edge that costs eat is not riskless either
    assert not replace(conv, edge_combo_net=-0.01).riskless
    payload = opportunity_payload(replace(conv, risks=frozenset({RiskFlag.STALE})))
    assert payload["riskless"] is False and payload["risks"] == ["stale"]
    assert opportunity_payload(conv)["riskless"] is True


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.01, 0.08),
    sigma=st.floats(0.12, 0.6),
    spot=st.floats(70.0, 130.0),
    half_spread=st.sampled_from([0.01, 0.02, 0.05]),
)
def test_an_american_chain_without_mispricing_has_no_riskless_opportunity(rate, sigma, spot, half_spread) -> None:
    """Brute-force model: American options on a binomial tree (calls and puts with their
    early-exercise premium), quoted a half-spread either side. Whatever the European
    bounds report on it is the American premium, so none of it is riskless."""
    snap = make_american_chain(spot=spot, strikes=STRIKES, rate=rate, sigma=sigma, half_spread=half_spread)
    opps = scan_chain(snap, Carry(rate=rate), Costs(), style=AMERICAN)
    assert [o.describe() for o in opps if o.riskless] == []
    gross = scan_chain(snap, Carry(rate=rate), Costs.zero(), style=AMERICAN, net_of_costs=False)
    assert all(o.risk_reasons for o in gross)


# --------------------------------------------------------------------------- the carry


def test_the_markets_rate_above_the_desks_is_an_excess_rate_not_a_conversion() -> None:
    """A stock without dividends quoted at the market's 4.5 %, scanned at the desk's 4 %:
    the implied dividend is negative. Counted as none, every conversion of the far expiry
    looks like the rate gap of an arbitrage; as the excess rate, there is none."""
    market = make_chain(strikes=STRIKES, carry=Carry(rate=0.045), half_spread=0.01)
    desk = Carry(rate=0.04)
    pv = implied_dividend_pv(market, desk.rate)
    assert (pv < 0).all()  # the chain's forward is above the desk's
    clipped = carry_with_dividends(desk, market, np.maximum(pv, 0.0))
    assert [o.expiry for o in scan_chain(market, clipped, Costs(), kinds=("parity",)) if o.riskless]
    carry = carry_with_dividends(desk, market, pv)
    assert carry.dividends == () and [e for e, _ in carry.excess_rate] == list(EXPIRIES)
    assert all(s == pytest.approx(0.005, abs=5e-4) for _, s in carry.excess_rate)  # the rate gap
    assert scan_chain(market, carry, Costs(), kinds=("parity",)) == []
    # a strike mispriced beyond the chain's own carry still shows
    j = int(np.searchsorted(STRIKES, 100.0))
    b, a = market.call_bid.copy(), market.call_ask.copy()
    b[3, j] += 0.60
    a[3, j] += 0.60
    rich = replace(market, call_bid=b, call_ask=a)
    carry = carry_with_dividends(desk, rich, implied_dividend_pv(rich, desk.rate))
    found = scan_chain(rich, carry, Costs(), kinds=("parity",))
    assert [(o.kind, o.legs[1].strike, o.expiry) for o in found] == [
        (OpportunityKind.CONVERSION, 100.0, EXPIRIES[3].strftime("%Y%m%d"))
    ]
    assert found[0].riskless


def test_excess_rate_is_validated() -> None:
    assert Carry(excess_rate=[(date(2024, 6, 21), 0.005)]).excess_rate == ((date(2024, 6, 21), 0.005),)
    for bad in (
        [(date(2024, 6, 21), -0.1)],
        [(date(2024, 6, 21), math.nan)],
        [("20240621", 0.1)],
        [1.0],
        [(date(2024, 6, 21), 1.0)],
    ):
        with pytest.raises(ValueError, match="excess_rate"):
            Carry(excess_rate=bad)


# --------------------------------------------------------------------------- stale legs, live


class _Chain:
    """The ChainManager surface the live scanner reads: one expiry, strikes 95..105."""

    def __init__(self) -> None:
        self.underlying = Instrument("XYZ", con_id=1)
        self.expiry = "20240419"
        self.definition = type("D", (), {"multiplier": 100})()
        self.store = OptionChainStore()
        self.rows = []
        for i, k in enumerate((95.0, 100.0, 105.0)):
            call = Instrument("XYZ", "OPT", con_id=20 + i, expiry=self.expiry, strike=k, right="C", multiplier=100)
            put = Instrument("XYZ", "OPT", con_id=30 + i, expiry=self.expiry, strike=k, right="P", multiplier=100)
            self.rows.append(ChainRow(k, call, put))
            self.store.ensure(call)
            self.store.ensure(put)


def test_a_stale_leg_flags_the_opportunity_and_the_sinks_hear_of_it() -> None:
    snap = make_chain(strikes=STRIKES, expiries=(EXPIRIES[1],), carry=Carry(rate=0.05))
    chain, quotes = _Chain(), QuoteStore()
    quotes.ensure(chain.underlying)
    quotes.update(1, time=NOW, bid=snap.under_bid, ask=snap.under_ask, bid_size=10_000, ask_size=10_000)
    for row in chain.rows:
        j = int(np.searchsorted(STRIKES, row.strike))
        rich = 0.60 if row.strike == 100.0 else 0.0
        chain.store.update(
            row.call.con_id, time=NOW, bid=snap.call_bid[0, j] + rich, ask=snap.call_ask[0, j] + rich, bid_size=50, ask_size=50
        )
        chain.store.update(row.put.con_id, time=NOW, bid=snap.put_bid[0, j], ask=snap.put_ask[0, j], bid_size=50, ask_size=50)
    clock = FrozenClock(NOW)
    payloads: list[dict] = []
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.05),
        implied_dividends=False,
        interval=0,
        stale_after=30,
        clock=clock,
        sinks=[payloads.extend],
    )
    live.poll()
    conv = next(t for t in live.tracked if t.opportunity.kind is OpportunityKind.CONVERSION)
    assert conv.opportunity.riskless and payloads and all(p["riskless"] for p in payloads if p["key"] == conv.key)
    clock.advance(20)
    live.poll()
    assert live.get(conv.key).opportunity.riskless  # 20 s old: fresh enough
    payloads.clear()
    clock.advance(11)  # 31 s without an update: stale
    live.poll()
    stale = live.get(conv.key)
    assert stale.state == "live" and RiskFlag.STALE in stale.opportunity.risks and not stale.opportunity.riskless
    sent = [p for p in payloads if p["key"] == conv.key]
    assert sent and sent[-1]["state"] == "live" and sent[-1]["riskless"] is False and "stale" in sent[-1]["risks"]
    # requoted: fresh again
    for row in chain.rows:
        for ins in (row.call, row.put):
            chain.store.update(ins.con_id, time=clock.now())
    quotes.update(1, time=clock.now())
    live.poll()
    assert live.get(conv.key).opportunity.riskless
    with pytest.raises(ValueError, match="stale_after"):
        LiveArbitrage(chain, quotes, stale_after=0)
    assert datetime.now(UTC) > NOW  # (the frozen clock is in the past: no wall clock was read)
