"""A deterministic option chain for the opportunities pane's snapshots, quoted by the
simulator: SPY from ``MarketModel(seed=7)`` after the snapshot app's 40 steps, its options
from ``SyntheticOptions(seed=7)`` listed as of the frozen date, one call quoted rich as
:class:`desk.sim.mispricing.MispricingSource` would (3 spreads + $0.20, on the $0.05
grid), the desk's live scanner on top with the settings' carry and costs.

What it shows: riskless opportunities on the rich call, and the early-exercise premium of
the deep in-the-money puts of the window (reversals, short boxes) in the at-risk view.
"""

from __future__ import annotations

import math
from datetime import date
from types import SimpleNamespace

from desk.arbitrage import carry_from_settings, costs_from_settings
from desk.arbitrage.live import LiveArbitrage
from desk.domain.chain import ChainRow
from desk.domain import FrozenClock, Instrument
from desk.domain.options import OptionChainStore
from desk.sim import SimGateway
from desk.sim.synthetic_options import SyntheticOptions

#: the expiry shown (index into the listing) and the window of strikes around the money
EXPIRY_INDEX = 3
BELOW, ABOVE = 4, 22


class SimChain:
    """The ChainManager surface the live scanner reads, filled once from the simulator."""

    def __init__(self, underlying: Instrument, clock: FrozenClock, steps: int = 40, rich_call_offset: int = 1) -> None:
        today = date(2026, 3, 10)
        gw = SimGateway(seed=7, clock=clock, option_source=SyntheticOptions(7, today), symbols=["SPY"])
        for _ in range(steps):  # the snapshot app's market: 40 steps of 0.25 s
            gw.market.step(0.25)
        snap = gw.market.snapshot("SPY")
        self.spot = (snap.bid + snap.ask) / 2
        listed = gw.options.source.listing.chain("SPY").expiries[EXPIRY_INDEX]
        self.underlying = underlying
        self.expiry = listed.expiry
        self.definition = SimpleNamespace(multiplier=100)
        self.store = OptionChainStore()
        self.rows: list[ChainRow] = []
        atm = min(range(len(listed.strikes)), key=lambda i: abs(listed.strikes[i] - self.spot))
        for i in range(max(0, atm - BELOW), min(len(listed.strikes), atm + ABOVE + 1)):
            k = listed.strikes[i]
            call = Instrument("SPY", "OPT", con_id=listed.call_ids[i], expiry=self.expiry, strike=k, right="C",
                              multiplier=100)
            put = Instrument("SPY", "OPT", con_id=listed.put_ids[i], expiry=self.expiry, strike=k, right="P",
                             multiplier=100)
            self.rows.append(ChainRow(k, call, put))
            for ins in (call, put):
                self.store.ensure(ins)
                q = gw.options.quote(ins.con_id)
                shift = 0.0
                if ins.right == "C" and i == atm + rich_call_offset:  # the simulated mispricing
                    shift = math.ceil((3.0 * (q.ask - q.bid) + 0.20) / 0.05 - 1e-9) * 0.05
                self.store.update(ins.con_id, time=clock.now(), bid=round(q.bid + shift, 2),
                                  ask=round(q.ask + shift, 2), bid_size=q.bid_size, ask_size=q.ask_size)


def attach_opportunities(runtime) -> LiveArbitrage:
    """Give the snapshot app's fake runtime an opportunity feed over :class:`SimChain`
    (as ``runtime.opportunities``, the backend's live scanner; the pane shows when it is there)."""
    spy = runtime.broker.universe["SPY"]
    chain = SimChain(spy, runtime.clock)
    settings = runtime.settings
    live = LiveArbitrage(chain, runtime.quotes, carry=carry_from_settings(settings), costs=costs_from_settings(settings),
                         min_edge=settings.arb_min_edge, simulated=True, stale_after=settings.chain_stale_seconds,
                         clock=runtime.clock)
    runtime.opportunities = live
    live.scan_now()  # what the engine's analytics timer does (no engine here)
    return live
