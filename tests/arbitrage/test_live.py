"""LiveArbitrage: the chain on screen scanned live, through the real stack (simulated
gateway with injected mispricings -> ib_async -> broker -> chain manager -> scanner)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from datetime import UTC, date, datetime

import numpy as np
import pytest

from desk.pricing.chain_analytics import price_window
from desk.arbitrage import Carry, ChainSnapshot, Costs
from desk.arbitrage.live import LiveArbitrage, implied_dividend_pv, snapshot_from_chain
from desk.broker import Broker
from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain import FrozenClock
from desk.domain.opportunity import OpportunityKind
from desk.domain.options import WindowSpec
from desk.sim import SimGateway
from desk.sim.mispricing import MispricingSource


async def _wait(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack():
    source = MispricingSource(rate_per_minute=0, seed=11, duration=1.5)
    gw = SimGateway("127.0.0.1", 0, seed=11, option_source=source)
    await gw.start()
    broker = Broker("127.0.0.1", gw.port, 7, symbols=["SPY"], lines=LineBudget(100), backoff=(0.1, 0.2))
    await broker.start()
    assert await broker.wait_connected(5), broker.state
    chains = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=16))
    await chains.set_underlying(broker.watchlist[0])
    try:
        yield source, gw, broker, chains
    finally:
        chains.close()
        await broker.stop()
        await gw.stop()


async def test_clean_chain_has_no_opportunity_and_an_injected_one_is_found_then_gone(stack) -> None:
    source, gw, broker, chains = stack
    payloads: list[dict] = []
    live = LiveArbitrage(
        chains,
        broker.quotes,
        carry=Carry(rate=0.04, borrow_rate=0.0025),
        costs=Costs(),
        interval=0,
        linger=60,
        simulated=True,
        sinks=[payloads.extend],
    )

    def scan() -> None:
        chains.flush()
        live.poll()

    def quoted() -> bool:
        # every contract of the window quoted once (not every call with a bid: a far call
        # hours from expiry has none, in the simulator as in a real market)
        scan()
        snap = snapshot_from_chain(chains, broker.quotes, datetime.now(UTC))
        legs = [leg for row in chains.rows for leg in (row.call, row.put) if leg is not None]
        return (
            snap is not None
            and snap.under_bid > 0
            and bool(legs)
            and all((q := chains.store.get(leg.con_id)) is not None and q.time is not None for leg in legs)
        )

    await _wait(quoted, what="a quoted window")
    for _ in range(8):  # a couple of seconds of the clean market: nothing beyond costs
        await asyncio.sleep(0.1)
        scan()
    assert live.tracked == [] and payloads == []
    assert live.stats.scans >= 8 and live.stats.last_cpu_ms >= 0

    source.inject()
    await _wait(lambda: bool(source.injections), what="the injection")
    inj = source.injections[0]
    assert inj.symbol == "SPY" and inj.expiry == chains.expiry and abs(inj.shift) >= 0.2

    def found() -> bool:
        scan()
        return any(t.opportunity.kind is OpportunityKind.CONVERSION and t.state == "live" for t in live.tracked)

    await _wait(found, what="a conversion on the shifted option")
    conv = next(t for t in live.tracked if t.opportunity.kind is OpportunityKind.CONVERSION)
    opp = conv.opportunity
    assert inj.con_id in {leg.con_id for leg in opp.legs}  # the mispriced option is a leg
    assert {leg.sec_type for leg in opp.legs} == {"STK", "OPT"} and opp.edge_combo_net > 0 and opp.max_size >= 1
    assert conv.simulated and conv.quote_time is not None
    assert live.tracked[0].opportunity.edge_total == max(t.opportunity.edge_total for t in live.tracked if t.state == "live")
    new = [p for p in payloads if p["state"] == "new"]
    assert conv.key in {p["key"] for p in new} and all(p["simulated"] for p in payloads)

    # the injection ends: the scanner reports it gone, the row stays listed (linger), dimmed
    await _wait(lambda: (scan(), live.get(conv.key).state == "gone")[1], what="the conversion gone")
    assert any(p["state"] == "gone" and p["key"] == conv.key for p in payloads)
    gone = live.get(conv.key)
    assert gone.gone_at is not None and gone.opportunity.first_seen <= gone.opportunity.last_seen


def _snapshot(call_mid, put_mid, spot=100.0, strikes=(90.0, 95.0, 100.0, 105.0, 110.0)) -> ChainSnapshot:
    n = len(strikes)
    half = 0.05
    c, p = np.array([call_mid], dtype=float), np.array([put_mid], dtype=float)
    size = np.full((1, n), 10.0)
    return ChainSnapshot(
        symbol="XYZ",
        now=datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
        expiries=(date(2026, 6, 19),),
        strikes=np.array(strikes),
        call_bid=c - half,
        call_ask=c + half,
        put_bid=p - half,
        put_ask=p + half,
        call_bid_size=size,
        call_ask_size=size,
        put_bid_size=size,
        put_ask_size=size,
        under_bid=spot - 0.01,
        under_ask=spot + 0.01,
        under_bid_size=500,
        under_ask_size=500,
    )


def test_implied_dividends_are_the_median_parity_gap_and_ignore_one_outlier() -> None:
    K = np.array([90.0, 95.0, 100.0, 105.0, 110.0])
    snap = _snapshot(np.zeros(5) + 5, np.zeros(5) + 5)
    T = float(snap.years_to_expiry[0])
    r, pv = 0.04, 0.80
    # parity with dividends: C - P = S - PV(div) - K e^{-rT}
    cp = 100.0 - pv - K * math.exp(-r * T)
    put = np.full(5, 15.0)
    call = put + cp
    call[3] += 1.5  # one mispriced strike
    got = implied_dividend_pv(_snapshot(call, put), r)
    assert got.shape == (1,) and got[0] == pytest.approx(pv, abs=1e-9)
    # fewer than 3 strikes with both mids: unknown
    call[:3] = np.nan
    assert math.isnan(implied_dividend_pv(_snapshot(call, put), r)[0])


def test_live_arbitrage_validates_and_without_a_chain_scans_nothing() -> None:
    with pytest.raises(ValueError, match="interval"):
        LiveArbitrage(None, None, interval=-1)
    with pytest.raises(ValueError, match="linger"):
        LiveArbitrage(None, None, linger=math.nan)

    class NoChain:
        underlying = None
        expiry = None
        rows: list = []

    clock = FrozenClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    live = LiveArbitrage(NoChain(), None, interval=5, clock=clock)
    assert live.poll() is None and live.stats.scans == 1
    assert live.poll() is None and live.stats.skipped == 1  # throttled: 5 s interval, clock frozen
    assert live.tracked == []


def test_live_module_keeps_the_arbitrage_layer() -> None:
    code = (
        "import sys, desk.arbitrage.live; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'ib_async', 'sqlalchemy', 'redis')"
        " or m.startswith(('desk.ui', 'desk.broker', 'desk.store', 'desk.sim', 'desk.bus'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
