"""Order ticket pilot tests on the real stack (Runtime, embedded simulator, ib_async):
every keyboard path from a quote to a fill, validation, failing checks, kill switch,
live confirmation, the option ticket's payoff."""

from __future__ import annotations

import dataclasses
import math

import pytest
from screen_text import screen_text
from trading_stack import trading_desk, wait_for

from desk.risk import OrderIntent
from desk.ui.screens.ticket import ConfirmScreen, TicketScreen
from desk.domain.orders import round_to_tick
from desk.ui.widgets.ticket import TicketModel


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
        for expected in ("Notional $", "Commission $", "PASS max_quantity", "PASS price_collar", "Available funds"):
            assert expected in text, text
        await wait_for(lambda: "Init margin" in screen_text(app), pilot, "IB what-if of this order")
        assert ticket.margin[1].init_margin_change > 0
        # the market moved meanwhile: the ask again, ten ticks through it, and send
        await pilot.press("tab", "tab", "A", *["up"] * 10, "enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "the ticket to close")
        assert ticket.result.sent
        ref = ticket.result.order_ref
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Filled", pilot, "the fill")
        await wait_for(lambda: app.status_bar.message.startswith("filled: BUY 5 SPY LMT"), pilot, "filled, said")
        key = str(spy.con_id)  # the pane's row key
        await wait_for(lambda: key in app.positions.rows and app.positions.rows[key].quantity == 5, pilot, "the position")
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
        # flat: the row stays for the day (quantity 0) with the round trip's realized P&L
        await wait_for(
            lambda: (r := app.positions.rows.get(key)) is not None and r.quantity == 0 and r.realized != 0,
            pilot,
            lambda: f"the flat position; rows {app.positions.rows}",
        )
        row = app.positions.rows[key]
        assert row.daily_pnl == pytest.approx(row.realized) and rt.account.positions() == []


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
        ref = ticket.result.order_ref
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
        await rt.audit.drain()
        events = [r.event for r in rt.audit.log.events_for(ref)]
        assert events[:2] == ["intent", "sent"] and "cancel_request" in events
        assert app.status_bar.message_level != "error"  # a cancel you asked for is not an error
        # cancel all: two more resting orders, X cancels both
        refs = []
        for qty in ("2", "3"):
            t = await _open(pilot, app, "b")
            await pilot.press("backspace", qty, "tab", "tab", "B", *["down"] * 40, "enter")
            await wait_for(
                lambda: not isinstance(app.screen, TicketScreen), pilot, lambda: f"sent; the ticket shows: {screen_text(app)}"
            )
            refs.append(t.result.order_ref)
        await wait_for(
            lambda: all(r in app.blotter.shown and app.blotter.shown[r][2] == "Submitted" for r in refs), pilot, "working"
        )
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
        await pilot.press(*"5000")  # > 1,000 shares and > $250,000
        await pilot.pause()
        text = screen_text(app)
        assert "FAIL max_quantity" in text and "FAIL max_notional" in text and "PASS restricted" in text
        await pilot.press("enter")
        await pilot.pause()
        await wait_for(lambda: "blocked: max_quantity" in screen_text(app), pilot, "the refusal")
        # a price off the tick is refused as you type
        await pilot.press(*["backspace"] * 4, "1", "tab", "tab", *"13.005")
        assert ticket.model.text["limit"] == "13.005"  # the first key replaced the prefilled limit
        assert "is not a multiple of the tick" in ticket.model.errors()["limit"]
        assert "is not a multiple of the tick" in screen_text(app)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "closed")
        assert rt.orders.rows == {}
        await rt.audit.drain()
        assert [r.event for r in rt.audit.log.all_events()] == ["blocked"]  # the refused attempt is audited


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
        await rt.audit.drain()
        assert rt.orders.rows == {} and rt.audit.log.all_events() == []


async def test_kill_switch_key_blocks_orders_until_reset(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "b")
        await pilot.press("tab", "tab", "B", *["down"] * 30, "enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        ref = ticket.result.order_ref
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
            rt.orders.router.limits = dataclasses.replace(rt.orders.router.limits, enforce_market_hours=False)
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
            await rt.audit.drain()
            assert sum(1 for r in rt.audit.log.all_events() if r.event == "sent") == 1
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
        await wait_for(
            lambda: (q := rt.quote_for(option)) is not None and q.bid > 0 and q.ask > 0, pilot, "the option's quote", timeout=20
        )
        ticket = await _open(pilot, app, "b")
        assert ticket.instrument.sec_type == "OPT"
        await wait_for(lambda: ticket.report is not None and ticket.report.payoff is not None, pilot, "the payoff")
        text = screen_text(app)
        assert "Payoff" in text and "max loss $" in text and "breakevens" in text
        assert ticket.report.payoff.max_loss > 0
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        assert ticket.result.sent and rt.orders.rows[ticket.result.order_ref].instrument == option


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


async def test_the_first_key_replaces_a_prefilled_field(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        ticket = await _open(pilot, app, "b")
        await pilot.press("5")  # the prefilled quantity 1 is selected: 5, not 15
        assert ticket.model.text["quantity"] == "5"
        await pilot.press("tab", "tab")  # to the limit, prefilled at the ask: selected again
        await pilot.press(*"2.79")
        assert ticket.model.text["limit"] == "2.79"
        await pilot.press("3", "5")  # once typing, keys append
        assert ticket.model.text["limit"] == "2.7935"
        await pilot.press("escape")


async def test_a_rejected_order_says_rejected_not_sent(tmp_path) -> None:
    """GME is hard to borrow in the simulator: a short sale is rejected with error 201."""
    async with trading_desk(tmp_path, watchlist=["SPY", "GME"]) as (app, pilot, rt):
        await pilot.press("down")  # GME
        assert app.watchlist.highlighted.symbol == "GME"
        ticket = await _open(pilot, app, "s")
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent to the gateway")
        ref = ticket.result.order_ref
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Rejected", pilot, "Rejected")
        cells = app.blotter.shown[ref]
        assert cells[6].startswith("201: ") and "hard to borrow" in cells[6]
        await wait_for(lambda: app.status_bar.message.startswith("order rejected: SELL 1 GME"), pilot, "the status bar")
        assert app.status_bar.message_level == "error" and "sent" not in app.status_bar.message


async def test_modify_by_typing_the_price_and_quantity_and_blotter_keys(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        refs = []
        base = rt.quotes.get(rt.broker.watchlist[0].con_id).bid
        for _ in range(3):
            t = await _open(pilot, app, "b")
            # resting below the market, typed; distinct prices (the duplicate check refuses
            # an identical order, which a bid-relative price can be when the bid moves)
            price = f"{base - 0.50 - 0.05 * len(refs):.2f}"
            await pilot.press("tab", "tab", *price, "enter")
            await wait_for(
                lambda: not isinstance(app.screen, TicketScreen), pilot, lambda: f"sent; the ticket shows: {screen_text(app)}"
            )
            refs.append(t.result.order_ref)
        await wait_for(
            lambda: all(r in app.blotter.shown and app.blotter.shown[r][2] == "Submitted" for r in refs), pilot, "working"
        )
        await pilot.press("3")
        blotter = app.blotter
        await pilot.press("end")
        assert blotter.cursor_row == blotter.row_count - 1 and blotter.selected_ref == refs[0]  # oldest last
        await pilot.press("home")
        assert blotter.cursor_row == 0 and blotter.selected_ref == refs[-1]
        await pilot.press("pagedown")
        assert blotter.cursor_row == blotter.row_count - 1
        await pilot.press("pageup")
        assert blotter.cursor_row == 0
        # e: the modify dialog; the limit is selected, typing replaces it
        from desk.ui.screens.modify import ModifyScreen

        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, ModifyScreen), pilot, "the modify dialog")
        row = rt.orders.rows[refs[-1]]
        new_price = round(row.limit_price - 1.0, 2)
        await pilot.press(*f"{new_price:.2f}", "tab")
        await pilot.press(*"7", "enter")  # quantity 1 -> 7, the first key replaces it
        await wait_for(lambda: not isinstance(app.screen, ModifyScreen), pilot, "the dialog closed")
        await wait_for(
            lambda: math.isclose(rt.orders.rows[refs[-1]].limit_price, new_price) and rt.orders.rows[refs[-1]].quantity == 7,
            pilot,
            "the modified order",
        )
        assert app.status_bar.message.startswith(f"modify sent: {refs[-1]}")


async def test_a_combo_ticket_shows_every_leg_and_fills_as_one_order(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        from desk.risk import ComboLeg

        await pilot.press("enter")  # select SPY: the chain loads
        await wait_for(lambda: app.chain.highlighted is not None, pilot, "the chain", timeout=20)
        chains = rt.chains
        contracts = chains.contracts
        call, put = contracts.calls[chains.atm_strike], contracts.puts[chains.atm_strike]
        spy = rt.broker.watchlist[0]
        await wait_for(
            lambda: all((q := rt.quote_for(i)) is not None and q.bid > 0 and q.ask > 0 for i in (call, put, spy)),
            pilot,
            "the legs' quotes",
            timeout=20,
        )
        legs = (ComboLeg(spy, "BUY", 100), ComboLeg(call, "SELL", 1), ComboLeg(put, "BUY", 1))
        bag = dataclasses.replace(spy, sec_type="BAG", con_id=0, multiplier=100)
        probe = OrderIntent(bag, "BUY", 1, "MKT", legs=legs)
        book = rt.orders.preview(probe)
        limit = round(book.ask + 0.50, 2)  # through the net ask: it fills
        app.open_ticket(bag, "BUY", 1, "Combo ticket", intent=OrderIntent(bag, "BUY", 1, "LMT", limit_price=limit, legs=legs))
        await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the combo ticket")
        ticket = app.screen
        await wait_for(lambda: ticket.report is not None, pilot, "the preview")
        text = screen_text(app)
        assert "net bid" in text and "nan" not in text
        for leg in legs:
            assert leg.instrument.key in text
        assert "100x BUY" in text and "1x SELL" in text and "Order Δ" in text
        assert {leg.instrument.con_id for leg in ticket.report.legs} == {leg.instrument.con_id for leg in legs}
        assert ticket.report.check("max_position").passed and not ticket.report.blocked, ticket.report.reasons
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, TicketScreen), pilot, "sent")
        ref = ticket.result.order_ref
        await wait_for(lambda: ref in app.blotter.shown and app.blotter.shown[ref][2] == "Filled", pilot, "the combo fill")
        assert app.blotter.shown[ref][1].startswith("BUY 1 SPY combo(3) LMT")
        legs_shown = [cells[1] for key, cells in app.blotter.shown.items() if key.startswith(ref + "#leg")]
        assert len(legs_shown) == 3 and "100x BUY SPY" in legs_shown[0]
        await wait_for(lambda: sum(1 for r in rt.account.rows() if r.quantity) >= 3, pilot, "three positions")
