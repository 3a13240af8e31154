"""Arbitrage that is arbitrage: ten simulated minutes of the clean synthetic market give
no riskless opportunity, and every injected mispricing is still found as one.

The real stack, stepped by the test: the simulated gateway (seeded synthetic options,
``DESK_SIM_MISPRICING_RATE`` 0) -> ib_async -> broker -> chain manager -> the desk's
opportunity feed (:class:`desk.engine.opportunity_feed.OpportunityFeed`: the live scanner with
the settings' carry, costs and stale threshold). The gateway's timer never fires; each
step moves the market 5 s (20 model steps of 0.25 s) on a frozen clock that the test
advances, waits until the desk holds exactly the gateway's quotes, then scans: 120
scans in 10 minutes of market.

What the clean market does show (deep in-the-money American puts priced at their
intrinsic floor, so reversals and short boxes look rich) must be listed as at risk,
never as riskless.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from desk.pricing.chain_analytics import price_window
from desk.broker import Broker
from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain import FrozenClock
from desk.domain.opportunity import OpportunityKind, RiskFlag
from desk.domain.options import WindowSpec
from desk.engine.opportunity_feed import OpportunityFeed
from desk.settings import Mode, Settings
from desk.sim import SimGateway
from desk.sim.mispricing import MispricingSource

#: 10:00 ET on Tuesday 2026-03-10.
START = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
STEP = 5.0  # market seconds per gateway step
MINUTES = 10


async def _wait(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


class SteppedDesk:
    """Gateway, broker, chain manager and opportunity feed on one frozen clock."""

    def __init__(self, source: MispricingSource, clock: FrozenClock) -> None:
        self.source, self.clock = source, clock
        self.gw = SimGateway(
            "127.0.0.1", 0, seed=7, clock=clock, option_source=source, tick_interval=3600.0, speed=STEP / 3600.0
        )  # stepped by the test only
        self.broker: Broker | None = None
        self.chains: ChainManager | None = None
        self.feed: OpportunityFeed | None = None

    async def start(self, symbol: str, expiry_index: int, strikes: int) -> None:
        await self.gw.start()
        self.broker = Broker(
            "127.0.0.1", self.gw.port, 7, symbols=[symbol], lines=LineBudget(100), backoff=(0.1, 0.2), clock=self.clock
        )
        await self.broker.start()
        assert await self.broker.wait_connected(5), self.broker.state
        self.chains = ChainManager(self.broker, pricer=price_window, spec=WindowSpec(count=strikes), clock=self.clock)
        await self.chains.set_underlying(self.broker.watchlist[0])
        if expiry_index:
            await self.chains.set_expiry(self.chains.expiries[expiry_index])
        settings = Settings(mode=Mode.SIM, record=False, _env_file=None)  # the desk's defaults
        self.feed = OpportunityFeed(settings, self.chains, self.broker.quotes, clock=self.clock)
        self.feed.live.interval = 0.0
        await self.step()

    def in_step(self) -> bool:
        """True when the desk holds the gateway's current quotes for the window and the stock."""
        chains, gw = self.chains, self.gw
        chains.flush()
        for row in chains.rows:
            for ins in (row.call, row.put):
                mine, theirs = chains.store.get(ins.con_id), gw.quote_for(ins.con_id)
                if mine is None or theirs is None or mine.ask != theirs.ask or (theirs.bid > 0 and mine.bid != theirs.bid):
                    return False
        stock = self.broker.watchlist[0]
        mine, theirs = self.broker.quotes.get(stock.con_id), self.gw.quote_for(stock.con_id)
        return mine is not None and mine.bid == theirs.bid and mine.ask == theirs.ask

    async def step(self) -> None:
        """5 s of market, the desk caught up, one scan."""
        self.clock.advance(STEP)
        self.gw.step()
        await _wait(self.in_step, what="the desk to hold the gateway's quotes")
        self.feed.live.scan_now()

    async def stop(self) -> None:
        if self.chains is not None:
            self.chains.close()
        if self.broker is not None:
            await self.broker.stop()
        await self.gw.stop()


@pytest.fixture
async def desk():
    clock = FrozenClock(START)
    source = MispricingSource(rate_per_minute=0, seed=7, today=date(2026, 3, 10), duration=10.0)
    d = SteppedDesk(source, clock)
    try:
        yield d
    finally:
        await d.stop()


@pytest.mark.parametrize(
    ("symbol", "expiry_index", "strikes"),
    [
        ("SPY", 0, 20),  # the first screen: SPY, the nearest expiry, 20 strikes
        ("SPY", 3, 40),  # a few weeks out, deep in-the-money puts in the window
        ("TSLA", 8, 40),  # no dividends, months out: the desk's 4 % against the market's 4.5 %
    ],
)
async def test_ten_minutes_of_the_clean_market_give_no_riskless_opportunity(desk, symbol, expiry_index, strikes) -> None:
    await desk.start(symbol, expiry_index, strikes)
    live = desk.feed.live
    riskless, at_risk = {}, {}
    for _ in range(int(MINUTES * 60 / STEP)):
        await desk.step()
        for t in live.tracked:
            (riskless if t.opportunity.riskless else at_risk)[t.key] = t.opportunity
    assert live.stats.scans >= MINUTES * 60 / STEP
    assert riskless == {}, "\n".join(o.describe() for o in riskless.values())
    assert desk.source.injections == []
    if (symbol, expiry_index) == ("SPY", 3):  # what the clean market shows is still listed, as at risk
        assert any(o.kind is OpportunityKind.REVERSAL for o in at_risk.values())
        assert all(o.risk_reasons for o in at_risk.values())
        assert all(
            RiskFlag.EARLY_EXERCISE_PUT in o.risks or RiskFlag.AMERICAN_PREMIUM in o.risks
            for o in at_risk.values()
            if o.kind in (OpportunityKind.REVERSAL, OpportunityKind.BOX)
        )


async def test_every_injected_mispricing_is_found_as_a_riskless_opportunity(desk) -> None:
    await desk.start("SPY", 0, 20)
    live = desk.feed.live
    found: dict[int, set[str]] = {}  # injection index -> kinds of riskless opportunities on its option
    for step in range(int(MINUTES * 60 / STEP)):
        if step % 6 == 0:  # one every 30 s of market, each for 10 s
            desk.source.inject()
        await desk.step()
        for n, inj in enumerate(desk.source.injections):
            if desk.clock.time() >= inj.end:
                continue
            for t in live.tracked:
                opp = t.opportunity
                if (
                    t.state == "live"
                    and opp.riskless
                    and opp.symbol == inj.symbol
                    and any((leg.expiry, leg.strike, leg.right) == (inj.expiry, inj.strike, inj.right) for leg in opp.legs)
                ):
                    found.setdefault(n, set()).add(opp.kind.value)
    injections = desk.source.injections
    assert len(injections) == MINUTES * 2
    missed = [inj.describe() for n, inj in enumerate(injections) if n not in found]
    assert missed == [], missed
    assert any("conversion" in kinds for kinds in found.values())
