"""Order ticket pilot tests on the real stack (Runtime, embedded simulator, ib_async):
every keyboard path from a quote to a fill, validation, failing checks, kill switch,
live confirmation, the option ticket's payoff."""

from __future__ import annotations

import dataclasses
import math

from screen_text import screen_text
from trading_stack import trading_desk, wait_for

from desk.risk import OrderIntent
from desk.ui.screens.ticket import ConfirmScreen, TicketScreen
from desk.ui.widgets.ticket import TicketModel, round_to_tick


async def _open(pilot, app, key: str = "b") -> TicketScreen:
    await pilot.press(key)
    await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the ticket")
    await pilot.pause()
    return app.screen


async def test_quote_to_fill_in_a_few_keys(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        spy = rt.broker.watchlist[0]
        ticket = await _open(pilot, app, "b")
        assert ticket.instrument == spy and ticket.model.action == "BUY"
        # the limit is prefilled at the ask, the quantity field is current
        await pilot.press("backspace", "5", "A")
        intent = ticket.model.intent()
        assert intent.quantity == 5 and intent.order_type.value == "LMT"
        # the ask of the moment (the simulated market keeps moving: a few cents)
        assert abs(intent.limit_price - round_to_tick(rt.quotes.get(spy.con_id).ask, spy.min_tick)) < 0.1
        text = screen_text(app)
        for expected in ("Notional $", "Commission $", "PASS max_quantity", "PASS price_collar", "Buying power"):
            assert expected in text, text
        await wait_for(lambda: "Init margin" in screen_text(app), pilot, "IB what-if of this order")
        assert ticket.margin[1].init_margin_change > 0
        # the market moved meanwhile: the ask again, ten ticks through it, and send
        await pilot.press("tab", "tab", "A", *["up"] * 10, "enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "the ticket to close")
        assert ticket.result.sent
        ref = ticket.result.client_order_id
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Filled", pilot, "the fill")
        assert app.status_bar.message.startswith("sent BUY 5 SPY LMT")
        await wait_for(lambda: spy.con_id in app.positions.rows and app.positions.rows[spy.con_id].quantity == 5,
                       pilot, "the position")
        assert "NetLiq" in screen_text(app)

        # the position pane opens a closing ticket: SELL 5, Enter sends it
        await pilot.press("4")
        assert app.focused is app.positions.table
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the closing ticket")
        closing = app.screen
        assert closing.model.action == "SELL" and closing.model.text["quantity"] == "5"
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "the closing order")
        await wait_for(lambda: spy.con_id not in app.positions.rows, pilot, "the flat position")


async def test_resting_order_modify_and_cancel_by_key(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "b")
        await pilot.press("tab", "tab")  # quantity -> type -> limit
        assert ticket.model.field == "limit"
        await pilot.press("B", *["down"] * 30)  # 30 ticks under the bid: rests
        limit = ticket.model.intent().limit_price
        await pilot.press("t")  # DAY -> GTC
        assert ticket.model.tif == "GTC"
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        ref = ticket.result.client_order_id
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Submitted", pilot, "working")
        await pilot.press("3")
        assert app.focused is app.blotter
        await pilot.press("plus")
        await wait_for(lambda: math.isclose(rt.orders.rows[ref].limit_price, limit + 0.01), pilot, "modified +1 tick")
        await wait_for(lambda: f"LMT {limit + 0.01:g} GTC" in app.blotter.shown[ref][1], pilot, "the new price shown")
        await pilot.press("minus", "minus")
        await wait_for(lambda: math.isclose(rt.orders.rows[ref].limit_price, limit - 0.01), pilot, "modified -2 ticks")
        await pilot.press("x")
        await wait_for(lambda: app.blotter.shown[ref][2] == "Cancelled", pilot, "the cancel")
        events = [r.event for r in rt.audit.events_for(ref)]
        assert events[:2] == ["intent", "sent"] and "cancel_request" in events
        # cancel all: two more resting orders, X cancels both
        refs = []
        for qty in ("2", "3"):
            t = await _open(pilot, app, "b")
            await pilot.press("backspace", qty, "tab", "tab", "B", *["down"] * 40, "enter")
            await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
            refs.append(t.result.client_order_id)
        await wait_for(lambda: all(r in app.blotter.shown and app.blotter.shown[r][2] == "Submitted" for r in refs),
                       pilot, "working")
        await pilot.press("3", "X")
        await wait_for(lambda: all(app.blotter.shown[r][2] == "Cancelled" for r in refs), pilot, "cancel all")


async def test_validation_and_failing_checks_block_and_say_why(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "s")
        assert ticket.model.action == "SELL"
        await pilot.press("backspace")
        assert "quantity must be a whole number > 0" in screen_text(app)
        await pilot.press("enter")
        assert isinstance(app.screen, TicketScreen)
        assert "not sent: quantity must be a whole number > 0" in screen_text(app)
        await pilot.press(*"5000")  # > 1,000 shares and > $50,000
        await pilot.pause()
        text = screen_text(app)
        assert "FAIL max_quantity" in text and "FAIL max_notional" in text and "PASS restricted" in text
        await pilot.press("enter")
        await pilot.pause()
        await wait_for(lambda: "blocked: max_quantity" in screen_text(app), pilot, "the refusal")
        # a price off the tick is refused as you type
        await pilot.press(*["backspace"] * 4, "1", "tab", "tab", "1", "3")
        assert "is not a multiple of the tick" in screen_text(app) or "limit" in ticket.model.errors()
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "closed")
        assert rt.orders.rows == {}
        assert [r.event for r in rt.audit.all_events()] == ["blocked"]  # the refused attempt is audited


async def test_type_cycle_stop_orders_and_escape_sends_nothing(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "b")
        await pilot.press("o")  # LMT -> MKT: no price fields
        assert ticket.model.order_type == "MKT" and "limit" not in ticket.model.fields
        await pilot.press("o")  # STP: a stop price, prefilled from the ask by A
        assert ticket.model.order_type == "STP"
        await pilot.press("A")
        assert ticket.model.intent().stop_price > 0
        await pilot.press("o")  # STP LMT: both
        await pilot.press("tab", "tab", "M")
        assert ticket.model.field == "limit" and ticket.model.intent().limit_price > 0
        await pilot.press("r", "space")
        assert ticket.model.outside_rth and ticket.model.action == "SELL"
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "closed")
        assert rt.orders.rows == {} and rt.audit.all_events() == []


async def test_kill_switch_key_blocks_orders_until_reset(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "b")
        await pilot.press("tab", "tab", "B", *["down"] * 30, "enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        ref = ticket.result.client_order_id
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Submitted", pilot, "working")
        await pilot.press("ctrl+k")
        await wait_for(lambda: app.status_bar.kill_engaged, pilot, "the KILL badge")
        await wait_for(lambda: app.blotter.shown[ref][2] == "Cancelled", pilot, "global cancel")
        assert " KILL " in screen_text(app)
        ticket = await _open(pilot, app, "b")
        assert "KILL SWITCH ENGAGED" in screen_text(app)
        await pilot.press("enter")
        await wait_for(lambda: "blocked: kill switch engaged" in screen_text(app), pilot, "the refusal")
        await pilot.press("escape")
        await pilot.press("ctrl+r")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), pilot, "the confirmation")
        await pilot.press("y")
        await wait_for(lambda: not app.status_bar.kill_engaged and not rt.gate.kill_switch.engaged, pilot, "reset")
        ticket = await _open(pilot, app, "b")
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent after the reset")
        assert ticket.result.sent


async def test_live_mode_needs_the_symbol_typed(tmp_path) -> None:
    from desk.settings import Mode
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=5)
    await gw.start()
    (tmp_path / "override").write_text("")
    try:
        async with trading_desk(tmp_path, mode=Mode.LIVE, ib_port=gw.port, orders_enabled=True) as (app, pilot, rt):
            assert app.has_class("-mode-live")
            # the simulator trades at any hour; live limits would refuse a weekend run of this test
            rt.router.limits = dataclasses.replace(rt.router.limits, enforce_market_hours=False)
            ticket = await _open(pilot, app, "b")
            assert ticket.model.fields[-1] == "confirm"
            await pilot.press("enter")
            await wait_for(lambda: "live mode: type SPY to confirm" in screen_text(app), pilot, "the refusal")
            await pilot.press(*["tab"] * 5)  # quantity -> type -> limit -> tif -> rth -> confirm
            assert ticket.model.field == "confirm"
            await pilot.press("Q", "Q", "Q", "enter")  # letters go into the confirmation, not to the keys
            await wait_for(lambda: "does not match SPY" in screen_text(app), pilot, "the mismatch")
            assert ticket.model.order_type == "LMT"
            await pilot.press("backspace", "backspace", "backspace", "s", "p", "y", "enter")
            await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
            assert ticket.result.sent
            # the override file gone: nothing leaves, whatever is typed
            (tmp_path / "override").unlink()
            ticket = await _open(pilot, app, "b")
            await pilot.press("backspace", "2", *["tab"] * 5, "S", "P", "Y", "enter")
            await wait_for(lambda: "override file" in screen_text(app), pilot, "the refusal")
            assert sum(1 for r in rt.audit.all_events() if r.event == "sent") == 1
    finally:
        await gw.stop()


async def test_paper_mode_without_orders_enabled_sends_nothing(tmp_path) -> None:
    from desk.settings import Mode
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=5)
    await gw.start()
    try:
        async with trading_desk(tmp_path, mode=Mode.PAPER, ib_port=gw.port) as (app, pilot, rt):
            await _open(pilot, app, "b")
            assert "orders off" in screen_text(app)
            await pilot.press("enter")
            await wait_for(lambda: "DESK_ORDERS_ENABLED=true" in screen_text(app), pilot, "the refusal")
            assert rt.orders.rows == {}
    finally:
        await gw.stop()


async def test_option_ticket_from_the_chain_draws_the_payoff(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        await pilot.press("enter")  # select SPY: the chain loads
        await wait_for(lambda: app.chain.highlighted is not None, pilot, "the chain", timeout=20)
        await pilot.press("2")
        option = app.chain.highlighted
        await wait_for(lambda: (q := rt.quote_for(option)) is not None and q.bid > 0 and q.ask > 0, pilot,
                       "the option's quote", timeout=20)
        ticket = await _open(pilot, app, "b")
        assert ticket.instrument.sec_type == "OPT"
        await wait_for(lambda: ticket.report is not None and ticket.report.payoff is not None, pilot, "the payoff")
        text = screen_text(app)
        assert "Payoff" in text and "max loss $" in text and "breakevens" in text
        assert ticket.report.payoff.max_loss > 0
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        assert ticket.result.sent and ticket.result.report.intent.instrument == option


def test_ticket_model_steps_prices_by_the_contracts_tick() -> None:
    from desk.domain import Instrument

    opt = Instrument("SPY", "OPT", con_id=9, expiry="20260320", strike=600, right="C", multiplier=100, min_tick=0.05)
    m = TicketModel(opt, "BUY", quote=lambda: (1.20, 1.30))
    m.key("tab"), m.key("tab")
    assert m.field == "limit"
    m.key("M", "M")
    assert m.text["limit"] == "1.25"
    m.key("up")
    assert m.text["limit"] == "1.30"
    m.key("down"), m.key("down")
    assert m.intent() == OrderIntent(opt, "BUY", 1, "LMT", limit_price=1.20)
