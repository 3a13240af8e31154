"""The opportunities pane: ranking, filters by key, Enter posts the combo as one BAG
order; and the real stack from the pane to a filled combo on the simulator."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest
from textual.app import App, ComposeResult

from desk.arbitrage import Carry, Costs
from desk.arbitrage.live import LiveArbitrage
from desk.broker.chains import ChainRow
from desk.domain import FrozenClock, Instrument, QuoteStore
from desk.domain.options import OptionChainStore
from desk.ui.messages import ComboSelected
from desk.ui.widgets.opportunities import OpportunitiesPane, combo_intent

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
EXPIRY = "20260417"
SPY = Instrument("SPY", con_id=756733)


class FakeChain:
    """The ChainManager surface the scanner reads: one expiry, strikes 95..105."""

    def __init__(self) -> None:
        self.underlying = SPY
        self.expiry = EXPIRY
        self.definition = type("D", (), {"multiplier": 100})()
        self.store = OptionChainStore()
        self.rows = []
        for i, k in enumerate((95.0, 100.0, 105.0)):
            call = Instrument("SPY", "OPT", con_id=2000 + i, expiry=EXPIRY, strike=k, right="C", multiplier=100)
            put = Instrument("SPY", "OPT", con_id=3000 + i, expiry=EXPIRY, strike=k, right="P", multiplier=100)
            self.rows.append(ChainRow(k, call, put))
            self.store.ensure(call)
            self.store.ensure(put)

    def quote(self, strike: float, call_mid: float, put_mid: float) -> None:
        row = next(r for r in self.rows if r.strike == strike)
        for ins, mid in ((row.call, call_mid), (row.put, put_mid)):
            self.store.update(ins.con_id, time=NOW, bid=round(mid - 0.05, 2), ask=round(mid + 0.05, 2),
                              bid_size=20, ask_size=20)


def _market(rich_call: float = 0.0) -> tuple[FakeChain, QuoteStore]:
    chain = FakeChain()
    quotes = QuoteStore()
    quotes.ensure(SPY)
    quotes.update(SPY.con_id, time=NOW, bid=100.00, ask=100.01, bid_size=1000, ask_size=1000)
    T = (datetime(2026, 4, 17, 20, 0, tzinfo=UTC) - NOW).total_seconds() / (365 * 86400)
    for k in (95.0, 100.0, 105.0):  # parity at r = 4 %, no dividends
        put = 3.0 + (k - 95.0) * 0.5
        call = put + 100.005 - k * math.exp(-0.04 * T)
        chain.quote(k, call + (rich_call if k == 100.0 else 0.0), put)
    return chain, quotes


class PaneApp(App):
    def __init__(self, live) -> None:
        super().__init__()
        self.pane = OpportunitiesPane(live, clock=live.clock if live else None, id="opportunities")
        self.selected: list[ComboSelected] = []

    def compose(self) -> ComposeResult:
        yield self.pane

    def on_mount(self) -> None:
        self.pane.focus()
        self.pane.refresh_rows(force=True)

    def on_combo_selected(self, message: ComboSelected) -> None:
        self.selected.append(message)


def _live(rich_call: float) -> LiveArbitrage:
    chain, quotes = _market(rich_call)
    live = LiveArbitrage(chain, quotes, carry=Carry(rate=0.04), costs=Costs(), implied_dividends=False,
                         interval=0, simulated=True, clock=FrozenClock(NOW))
    live.poll()
    return live


def test_combo_intent_is_one_bag_order_at_the_net_price() -> None:
    live = _live(0.60)
    conv = next(t.opportunity for t in live.tracked if t.opportunity.kind.value == "conversion")
    intent = combo_intent(conv)
    assert intent.instrument.sec_type == "BAG" and intent.instrument.multiplier == 100
    assert intent.action.value == "BUY" and intent.quantity == 1 and intent.order_type.value == "LMT"
    assert intent.limit_price == pytest.approx(round(conv.net_price, 2))
    by_type = {leg.instrument.sec_type: leg for leg in intent.legs}
    assert by_type["STK"].ratio == 100 and by_type["STK"].instrument.con_id == SPY.con_id
    sold = [leg for leg in intent.legs if leg.action.value == "SELL"]
    assert [leg.instrument.key for leg in sold] == ["SPY 20260417 100 C"]  # the rich call is sold
    # net price of the intent's legs (risk.intent convention) equals the limit
    net = sum(leg.action.sign * leg.ratio * leg.instrument.multiplier * {c.con_id: c.price for c in conv.legs}[
        leg.instrument.con_id] for leg in intent.legs) / 100
    assert net == pytest.approx(conv.net_price)


async def test_pane_ranks_filters_by_key_and_enter_posts_the_combo() -> None:
    live = _live(0.60)
    assert len(live.tracked) >= 2
    app = PaneApp(live)
    async with app.run_test(size=(140, 14)) as pilot:
        pane = app.pane
        edges = [t.opportunity.edge_total for t in pane.rows]
        assert edges == sorted(edges, reverse=True) and len(edges) == len(live.tracked)
        assert "SIMULATED" in pane.title_text()
        kinds = {t.opportunity.kind.value for t in pane.rows}
        await pilot.press("f")  # kind: conversion
        assert pane.kind == "conversion" and {t.opportunity.kind.value for t in pane.rows} == {"conversion"}
        assert len(pane.rows) < len(live.tracked) or kinds == {"conversion"}
        await pilot.press("plus", "plus", "plus", "plus", "plus", "plus", "plus")  # min edge $500
        assert pane.min_edge == 500.0 and pane.rows == []
        await pilot.press("minus", "minus", "minus", "minus", "minus", "minus", "minus")
        assert pane.min_edge == 0.0 and pane.rows
        await pilot.press("u")
        assert pane.underlying == "SPY" and pane.rows
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.selected) == 1
        msg = app.selected[0]
        assert msg.simulated and msg.opportunity.kind.value == "conversion"
        assert msg.intent.instrument.sec_type == "BAG" and len(msg.intent.legs) == 3


async def test_pane_without_opportunities_or_scanner_says_so() -> None:
    app = PaneApp(_live(0.0))
    async with app.run_test(size=(120, 10)) as pilot:
        assert app.pane.rows == []
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == []
        assert "no opportunities" in app.pane.render_line(2).text


async def test_from_the_pane_to_a_filled_combo_on_the_simulator(tmp_path) -> None:
    """Real Runtime, embedded simulator with a mispricing injected on the chain on screen:
    the opportunity appears in the pane, Enter opens the ticket, y sends the BAG, it fills."""
    from desk.runtime import Runtime
    from desk.settings import Mode, Settings
    from desk.ui import create_app

    settings = Settings(mode=Mode.SIM, database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
                        spool_dir=tmp_path / "spool", record=True, watchlist=["SPY"],
                        sim_mispricing_rate=0.0001, risk_max_notional=1_000_000.0,
                        _env_file=None)  # a SPY conversion holds ~$60k of stock
    runtime = Runtime(settings)
    if not hasattr(runtime, "router"):
        pytest.skip("the runtime has no order router yet (order path being built)")
    app = create_app(runtime, cursor_blink=False, animations=False)

    async def wait_for(predicate, pilot, timeout=20.0, what=""):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.1)

    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(lambda: runtime.sim is not None and runtime.router is not None
                       and runtime.chains.rows and all(
                           (q := runtime.chains.quote(r.call)) is not None and q.bid > 0 for r in runtime.chains.rows),
                       pilot, what="the chain quoted")
        source = runtime.sim.gateway.options.source
        runtime.sim.gateway.options.source.duration = 60.0  # long enough to trade by keys
        source.inject()
        pane = app.opportunities
        await wait_for(lambda: any(t.opportunity.kind.value == "conversion" and t.state == "live" for t in pane.rows),
                       pilot, what="a conversion in the pane")
        await pilot.press("5")
        assert app.focused is pane
        pane.cursor = next(i for i, t in enumerate(pane.rows) if t.opportunity.kind.value == "conversion")
        await pilot.press("enter")  # keystroke 1: the ticket opens with the combo
        await wait_for(lambda: app.screen.__class__.__name__ in ("TicketScreen", "ComboConfirmScreen"), pilot,
                       what="the combo ticket")
        screen = app.screen
        if screen.__class__.__name__ == "ComboConfirmScreen":  # fallback ticket
            assert "SIMULATED" in screen.text()
            await pilot.press("y")  # keystroke 2: send
        else:  # the order ticket (risk preview, what-if): Enter sends
            assert "Combo" in screen.title_text
            await pilot.press("enter")  # keystroke 2: send
        gw = runtime.sim.gateway
        await wait_for(lambda: any(o.filled > 0 and o.legs for o in list(gw.orders.orders.values())), pilot,
                       what="the combo filled")
        combo = next(o for o in list(gw.orders.orders.values()) if o.legs)
        assert combo.filled == combo.quantity == 1
        conv = {leg.con_id for leg in pane.rows[0].opportunity.legs} if pane.rows else set()
        assert {leg.contract.con_id for leg in combo.legs} & ({source.injections[0].con_id} | conv)


