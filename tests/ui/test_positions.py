"""The positions pane: g groups the positions by the order they came from and back, z
maximizes it, Enter on a position or a leg opens its closing ticket; on the real stack a
conversion bought as one combo is one group whose P&L and Greeks are its legs' sums and
whose account line agrees with the positions."""

from __future__ import annotations

import dataclasses
import math

import pytest
from screen_text import screen_text
from snapshot_app import real_snapshot_app
from trading_stack import settled_orders, trading_desk, wait_for

from desk.ui.widgets.positions import PositionsPane

SIZE = (160, 50)  # the tall layout: the pane shows a combo group and its legs


async def test_g_toggles_grouping_by_order_and_back(tmp_path) -> None:
    """Real fills on the snapshot desk (paused market, frozen clock): the SPY conversion
    bought as one combo and 50 AAPL bought alone."""
    app = real_snapshot_app(tmp_path)
    messages: list = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        refs = await settled_orders(pilot)
        rt = app.desk.runtime
        pane = app.positions
        await pilot.press("4")
        assert app.focused is app.positions.table
        held = [r for r in rt.account.rows() if r.quantity]
        ungrouped = list(pane.shown)
        assert sorted(ungrouped) == sorted(str(r.instrument.con_id) for r in held) and len(held) == 4
        await pilot.press("g")
        await pilot.pause()
        assert pane.grouped and any(isinstance(m, PositionsPane.GroupingChanged) and m.grouped for m in messages)
        combo, aapl = rt.orders.rows[refs["combo"]], rt.orders.rows[refs["filled"]]
        conv, alone = f"g:{combo.order_ref}", f"g:{aapl.order_ref}"
        spy, call, put = (leg.instrument for leg in combo.legs)
        keys = list(pane.shown)
        assert keys == [
            conv,
            f"{conv}:{spy.con_id}",
            f"{conv}:{call.con_id}",
            f"{conv}:{put.con_id}",
            alone,
            f"{alone}:{aapl.instrument.con_id}",
        ]
        header = pane.shown[conv]
        assert header[0] == f"▾ {combo.describe}" and header[1] == "3 legs"
        legs = [r for r in held if r.instrument.symbol == "SPY"]
        assert header[5] == f"{sum(r.unrealized for r in legs):,.2f}"  # the group's unrealized: its legs' sum
        assert float(header[9]) == pytest.approx(sum(r.delta for r in legs), abs=0.05)  # delta ~ neutral
        assert abs(float(header[9])) < 2
        assert "BUY 1 SPY combo(3)" in screen_text(app) and f"└ {call.key}" in screen_text(app)
        # Enter on the group line opens nothing; on a leg, the closing ticket of that leg
        closes: list = []
        app.open_ticket = lambda ins, action, qty=1, title="", intent=None: closes.append((ins.key, action, qty))
        await pilot.press("home", "enter")
        await pilot.pause()
        assert closes == []
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert closes == [(call.key, "BUY", 1)]  # the short call is bought back
        # z maximizes the pane, z again restores it
        await pilot.press("z")
        assert app.screen.maximized is pane
        await pilot.press("z")
        assert app.screen.maximized is None and app.focused is pane.table
        await pilot.press("g")
        await pilot.pause()
        assert not pane.grouped and list(pane.shown) == ungrouped


async def test_a_combo_bought_through_the_desk_is_one_group(tmp_path) -> None:
    from desk.risk import ComboLeg, OrderIntent

    async with trading_desk(tmp_path) as (app, pilot, rt):
        await pilot.press("enter")  # select SPY: the chain loads
        await wait_for(lambda: app.chain.highlighted is not None, pilot, "the chain", timeout=20)
        chains = rt.chains
        call, put = chains.contracts.calls[chains.atm_strike], chains.contracts.puts[chains.atm_strike]
        spy = rt.broker.watchlist[0]
        await wait_for(
            lambda: all((q := rt.quote_for(i)) is not None and q.bid > 0 and q.ask > 0 for i in (call, put, spy)),
            pilot,
            "the legs' quotes",
            timeout=20,
        )
        legs = (ComboLeg(spy, "BUY", 100), ComboLeg(call, "SELL", 1), ComboLeg(put, "BUY", 1))
        bag = dataclasses.replace(spy, sec_type="BAG", con_id=0, multiplier=100)
        book = rt.orders.preview(OrderIntent(bag, "BUY", 1, "MKT", legs=legs))
        result = await rt.orders.place(OrderIntent(bag, "BUY", 1, "LMT", limit_price=round(book.ask + 0.5, 2), legs=legs))
        assert result.sent, result.reasons
        ref = result.client_order_id
        pane = app.positions
        await wait_for(
            lambda: (
                len([r for r in pane.rows.values() if r.quantity]) == 3
                and all(math.isfinite(r.daily_pnl) for r in pane.rows.values())
            ),
            pilot,
            "three positions",
        )
        await pilot.press("4", "g")
        await wait_for(lambda: f"g:{ref}" in pane.shown and len(pane.rows) == 3, pilot, "the combo's group")
        assert [k for k in pane.shown if k.startswith(f"g:{ref}:")] == [f"g:{ref}:{c.con_id}" for c in (spy, call, put)]
        assert "combo(3)" in pane.shown[f"g:{ref}"][0]
        # the account line and the positions agree (one reqPnL / reqPnLSingle batch)

        def agree() -> bool:
            figures = rt.account.figures()
            rows = rt.account.rows()
            return (
                abs(figures.daily_pnl - sum(r.daily_pnl for r in rows)) < 0.005
                and abs(figures.unrealized - sum(r.unrealized for r in rows)) < 0.005
            )

        await wait_for(agree, pilot, "the account line = the sum of the positions")
        text = screen_text(app)  # the summary's two lines, cut (not wrapped) in the narrow pane
        assert "NetLiq" in text and "Portfolio Delta" in text
