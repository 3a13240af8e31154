"""The opportunities pane: the riskless view by default and the at-risk view on one key,
ranking and filters by key, a cursor that stays on its opportunity while the list
re-ranks, Enter on an opportunity that is gone; and the real stack from the pane through
the combo ticket and the OrderService to a filled combo on the simulator."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from textual.app import App, ComposeResult

from desk.pricing.chain_analytics import price_window
from desk.arbitrage import Carry, Costs
from desk.arbitrage.live import LiveArbitrage
from desk.broker.chain_window import ChainDefinition
from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain import FrozenClock, Instrument, QuoteStore
from desk.domain.opportunity import RiskFlag
from desk.domain.options import WindowSpec
from desk.ui.messages import ComboSelected
from desk.ui.widgets.opportunities import OpportunitiesPane, combo_intent

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
EXPIRY = "20260417"
SPY = Instrument("SPY", con_id=756733)


STRIKES = (95.0, 100.0, 105.0)


def _chain(quotes: QuoteStore) -> ChainManager:
    """The real chain manager, offline (no gateway): SPY's EXPIRY with strikes 95, 100 and
    105 installed, all three in the window; quotes are written into its store as the
    gateway's ticks would be (:func:`quote`)."""
    instruments = [
        Instrument("SPY", "OPT", con_id=base + i, expiry=EXPIRY, strike=k, right=right, multiplier=100)
        for base, right in ((2000, "C"), (3000, "P"))
        for i, k in enumerate(STRIKES)
    ]
    manager = ChainManager(
        None, pricer=price_window, quotes=quotes, budget=LineBudget(100), spec=WindowSpec(count=3), clock=FrozenClock(NOW)
    )
    manager.install(ChainDefinition(SPY, "SMART", "SPY", 100, (EXPIRY,), STRIKES), EXPIRY, instruments)
    assert [r.strike for r in manager.rows] == list(STRIKES)
    return manager


def quote(chain: ChainManager, strike: float, call_mid: float, put_mid: float, at: datetime = NOW) -> None:
    """Quote the call and the put of ``strike`` $0.05 either side of the mids, 20 x 20."""
    row = next(r for r in chain.rows if r.strike == strike)
    for ins, mid in ((row.call, call_mid), (row.put, put_mid)):
        chain.store.update(ins.con_id, time=at, bid=round(mid - 0.05, 2), ask=round(mid + 0.05, 2), bid_size=20, ask_size=20)


T = (datetime(2026, 4, 17, 20, 0, tzinfo=UTC) - NOW).total_seconds() / (365 * 86400)


def fair(k: float) -> tuple[float, float]:
    """(call mid, put mid) at strike ``k``: parity at r = 4 %, no dividends, S mid 100.005."""
    put = 3.0 + (k - 95.0) * 0.5
    return put + 100.005 - k * math.exp(-0.04 * T), put


def _market(rich_call: float = 0.0) -> tuple[ChainManager, QuoteStore]:
    quotes = QuoteStore()
    quotes.ensure(SPY)
    quotes.update(SPY.con_id, time=NOW, bid=100.00, ask=100.01, bid_size=1000, ask_size=1000)
    chain = _chain(quotes)
    for k in STRIKES:
        call, put = fair(k)
        quote(chain, k, call + (rich_call if k == 100.0 else 0.0), put)
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


def _live(rich_call: float, **kw) -> LiveArbitrage:
    chain, quotes = _market(rich_call)
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.04),
        costs=Costs(),
        implied_dividends=False,
        interval=0,
        simulated=True,
        clock=FrozenClock(NOW),
        **kw,
    )
    live.poll()
    return live


def notes(app: App) -> list[str]:
    """The notifications the app shows now."""
    return [n.message for n in app._notifications]


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
    net = (
        sum(
            leg.action.sign
            * leg.ratio
            * leg.instrument.multiplier
            * {c.con_id: c.price for c in conv.legs}[leg.instrument.con_id]
            for leg in intent.legs
        )
        / 100
    )
    assert net == pytest.approx(conv.net_price)


async def test_pane_shows_riskless_by_default_ranks_filters_by_key_and_enter_posts_the_combo() -> None:
    live = _live(0.60)
    riskless = [t for t in live.tracked if t.opportunity.riskless]
    at_risk = [t for t in live.tracked if not t.opportunity.riskless]
    assert len(riskless) >= 2 and at_risk  # the short box is within the American premium
    app = PaneApp(live)
    async with app.run_test(size=(160, 14)) as pilot:
        pane = app.pane
        assert pane.view == "riskless" and [t.key for t in pane.rows] == [t.key for t in riskless]
        edges = [t.opportunity.edge_total for t in pane.rows]
        assert edges == sorted(edges, reverse=True)
        title = pane.title_text()
        assert "SIMULATED" in title and "RISKLESS" in title and f"{len(at_risk)} at risk (r)" in title
        await pilot.press("r")  # the at-risk view: labelled, with the reasons
        assert pane.view == "at risk" and [t.key for t in pane.rows] == [t.key for t in at_risk]
        assert "AT RISK" in pane.title_text() and "not arbitrage" in pane.title_text()
        line = pane.render_line(2).text
        assert "short box" not in line and "box" in line and "within Am. premium" in line and "!" in line
        # the same view narrow: the flags and the reasons stay on screen
        pane.styles.width = 100
        await pilot.pause()
        narrow = pane.render_line(2).text
        header = pane.render_line(1).text
        assert len(narrow) == 100 and "Best" not in header and "Edge/cmb" in header, header
        assert "749.78 !" in narrow and "within Am." in narrow
        pane.styles.width = "100%"
        await pilot.pause()
        await pilot.press("r")
        assert pane.view == "riskless"
        kinds = {t.opportunity.kind.value for t in pane.rows}
        await pilot.press("f")  # kind: conversion
        assert pane.kind == "conversion" and {t.opportunity.kind.value for t in pane.rows} == {"conversion"}
        assert len(pane.rows) < len(riskless) or kinds == {"conversion"}
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
        assert msg.simulated and msg.opportunity.kind.value == "conversion" and msg.opportunity.riskless
        assert msg.intent.instrument.sec_type == "BAG" and len(msg.intent.legs) == 3


async def test_the_view_key_is_in_the_bindings_footer_and_help(tmp_path) -> None:
    from desk.ui.widgets.opportunities import OpportunitiesPane

    binding = next(b for b in OpportunitiesPane.BINDINGS if b.id == "opps.view")
    assert binding.key == "r" and binding.show and "at-risk" in binding.tooltip
    app = PaneApp(_live(0.60))
    async with app.run_test(size=(160, 14)):
        assert any(b.binding.id == "opps.view" for b in app.active_bindings.values() if b.binding.show)
    from snapshot_app import real_snapshot_app

    help_rows = dict(real_snapshot_app(tmp_path).help_sections())["Opportunities"]
    assert any(key == "r" and "at-risk view" in text for key, text in help_rows)


async def test_a_stale_leg_moves_an_opportunity_to_the_at_risk_view() -> None:
    chain, quotes = _market(0.60)
    clock = FrozenClock(NOW)
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.04),
        costs=Costs(),
        implied_dividends=False,
        interval=0,
        simulated=True,
        stale_after=30,
        clock=clock,
    )
    live.poll()
    assert any(t.opportunity.kind.value == "conversion" and t.opportunity.riskless for t in live.tracked)
    clock.advance(31)  # nothing requoted for 31 s: every leg is stale
    live.poll()
    assert live.tracked and not any(t.opportunity.riskless for t in live.tracked)
    assert all(RiskFlag.STALE in t.opportunity.risks for t in live.tracked)
    app = PaneApp(live)
    async with app.run_test(size=(160, 14)) as pilot:
        assert app.pane.rows == [] and "in the at risk view: r" in app.pane.render_line(2).text
        await pilot.press("r")
        assert len(app.pane.rows) == len(live.tracked) and "stale leg" in app.pane.render_line(2).text
        assert "~" in app.pane.render_line(2).text


async def test_enter_on_an_opportunity_that_went_to_the_other_view_says_where() -> None:
    chain, quotes = _market(0.60)
    clock = FrozenClock(NOW)
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.04),
        costs=Costs(),
        implied_dividends=False,
        interval=0,
        simulated=True,
        stale_after=30,
        clock=clock,
    )
    live.poll()
    app = PaneApp(live)
    async with app.run_test(size=(160, 14)) as pilot:
        pane = app.pane
        first = pane.selected
        assert first is not None and first.opportunity.riskless
        clock.advance(31)  # its legs go stale: it is at risk now
        live.poll()
        pane.refresh_rows()
        assert pane.cursor_lost
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == [] and any("now in the at risk view" in n for n in notes(app))


async def test_the_cursor_stays_on_its_opportunity_while_the_list_re_ranks() -> None:
    chain, quotes = _market(0.60)
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.04),
        costs=Costs(),
        implied_dividends=False,
        interval=0,
        linger=0,
        simulated=True,
        clock=FrozenClock(NOW),
    )
    live.poll()
    app = PaneApp(live)
    async with app.run_test(size=(160, 14)) as pilot:
        pane = app.pane
        await pilot.press("down", "down")  # onto the third line
        target = pane.selected
        assert target is not None and pane.cursor == 2 and target.opportunity.kind.value == "conversion"
        # more size shows on the conversion's legs: its total edge passes every other
        row = next(r for r in chain.rows if r.strike == 100.0)
        chain.store.update(row.call.con_id, time=NOW, bid_size=200)
        chain.store.update(row.put.con_id, time=NOW, ask_size=200)
        quotes.update(SPY.con_id, time=NOW, ask_size=100_000)
        live.poll()
        pane.refresh_rows()
        assert pane.rows[0].key == target.key  # re-ranked...
        assert pane.selected.key == target.key and pane.cursor == 0  # ...and the cursor went with it
        await pilot.press("enter")
        await pilot.pause()
        assert [m.opportunity.kind.value for m in app.selected] == ["conversion"]
        assert app.selected[0].opportunity.edge_total > target.opportunity.edge_total  # at today's prices


async def test_enter_on_an_opportunity_that_is_gone_says_so_and_opens_nothing() -> None:
    chain, quotes = _market(0.60)
    live = LiveArbitrage(
        chain,
        quotes,
        carry=Carry(rate=0.04),
        costs=Costs(),
        implied_dividends=False,
        interval=0,
        linger=0,
        simulated=True,
        clock=FrozenClock(NOW),
    )
    live.poll()
    app = PaneApp(live)
    async with app.run_test(size=(160, 14)) as pilot:
        pane = app.pane
        butterfly = pane.selected
        assert butterfly is not None and butterfly.opportunity.kind.value == "butterfly" and pane.cursor == 0
        # the 105 call comes up: the butterfly is gone, the conversion and the long box stay
        quote(chain, 105.0, fair(105.0)[0] + 1.20, fair(105.0)[1])
        live.poll()
        pane.refresh_rows()
        assert live.get(butterfly.key) is None and pane.rows
        assert pane.cursor_lost and pane.selected is None  # not silently on another line
        assert butterfly.key not in {t.key for t in pane.rows}
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == []  # nothing opened
        assert any("gone" in n and "butterfly" in n and "nothing opened" in n for n in notes(app))
        assert not pane.cursor_lost and pane.selected is not None  # back on a line for the next Enter
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.selected) == 1 and app.selected[0].opportunity.kind.value != "butterfly"


async def test_pane_without_opportunities_or_scanner_says_so() -> None:
    app = PaneApp(_live(0.0))
    async with app.run_test(size=(120, 10)) as pilot:
        assert app.pane.rows == []
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == []
        assert "no riskless opportunities" in app.pane.render_line(2).text


async def test_from_the_pane_through_the_combo_ticket_and_the_order_service_to_a_fill(tmp_path) -> None:
    """Real Runtime, embedded simulator with a mispricing injected on the chain on screen:
    a riskless opportunity on the mispriced option appears in the pane, Enter opens the
    combo ticket with every leg, Enter sends it through ``runtime.orders`` (OrderService:
    gate, checks, audit) and the BAG fills on the simulator."""
    from trading_stack import trading_settings, wait_for

    from desk.engine.runtime import Runtime
    from ui_testlib import desk_app
    from desk.ui.screens.ticket import TicketScreen

    settings = trading_settings(
        tmp_path, watchlist=["SPY"], sim_mispricing_rate=0.0001, risk_max_notional=1_000_000.0
    )  # a SPY conversion holds ~$60k of stock
    runtime = Runtime(settings)
    app = desk_app(runtime)
    async with app.run_test(size=(160, 50)) as pilot:
        # every call quoted once (not bid > 0: a far call a day from expiry has no bid)
        await wait_for(
            lambda: (
                runtime.sim is not None
                and runtime.orders.ready
                and runtime.chains.rows
                and all((q := runtime.chains.quote(r.call)) is not None and q.time is not None for r in runtime.chains.rows)
            ),
            pilot,
            "the chain quoted and the order path ready",
            timeout=20,
        )
        source = runtime.sim.gateway.options.source
        source.duration = 600.0  # long enough to trade by keys, even on a loaded machine
        source.inject()
        pane = app.opportunities

        def on_injected():
            if not source.injections:
                return None
            con_id = source.injections[0].con_id
            return next(
                (
                    t
                    for t in pane.rows
                    if t.state == "live" and t.opportunity.riskless and con_id in {leg.con_id for leg in t.opportunity.legs}
                ),
                None,
            )

        await wait_for(lambda: on_injected() is not None, pilot, "a riskless opportunity on the mispriced option")
        await pilot.press("5")
        assert app.focused is pane and pane.view == "riskless"
        target = on_injected()
        # by keys onto it: down, and back up from the last row (the scan may re-order the
        # rows between two presses, so one pass can step over it)
        step = "down"
        for _ in range(4 * len(pane.rows) + 4):
            if pane.selected is not None and pane.selected.key == target.key:
                break
            rows = pane.rows
            if rows and pane.selected is not None and pane.selected.key == rows[-1 if step == "down" else 0].key:
                step = "up" if step == "down" else "down"
            await pilot.press(step)
        assert pane.selected is not None and pane.selected.key == target.key
        await pilot.press("enter")  # keystroke 1: the combo ticket opens with every leg
        await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the combo ticket")
        screen = app.screen
        opp = runtime.opportunities.live.get(target.key).opportunity
        assert "Combo" in screen.title_text
        assert sorted((leg.instrument.con_id, leg.action.value, leg.ratio) for leg in screen.model.legs) == sorted(
            (leg.con_id, leg.action.value, leg.ratio) for leg in opp.legs
        )
        await pilot.press("enter")  # keystroke 2: send
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "the ticket sent")
        rows = [r for r in runtime.orders.rows.values() if r.is_combo]
        assert len(rows) == 1, "the combo went through the OrderService"
        gw = runtime.sim.gateway
        await wait_for(lambda: any(o.filled > 0 and o.legs for o in list(gw.orders.orders.values())), pilot, "the combo filled")
        combo = next(o for o in list(gw.orders.orders.values()) if o.legs)
        assert combo.filled == combo.quantity == 1
        assert {leg.contract.con_id for leg in combo.legs} == {leg.con_id for leg in opp.legs}
