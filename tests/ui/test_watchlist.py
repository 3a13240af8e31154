"""The watchlist pane: rows follow the QuoteStore, only dirty rows re-render, cursor keys."""

from __future__ import annotations

import math

from ui_testlib import UNIVERSE, FakeRuntime, fill_fixed_quotes, make_settings
from ui_testlib import desk_app
from desk.ui.messages import InstrumentSelected
from desk.ui.widgets.watchlist import FLASH_FLUSHES
from screen_text import screen_text

SIZE = (120, 36)


def _app(runtime):
    return desk_app(runtime)


async def test_rows_show_the_store_and_follow_updates(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        watchlist = app.watchlist
        assert [i.symbol for i in watchlist.instruments] == ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA"]
        assert watchlist.header_text().split() == ["Symbol", "Bid", "Ask", "Last", "Chg", "Chg%", "Bid", "Sz", "Ask", "Sz", "Volume"]
        spy = watchlist.row_text(0).split()
        assert spy == ["SPY", "512.34", "512.36", "512.35", "▲", "+2.25", "+0.44%", "1,200", "900", "48.12M"]
        assert "512.34" in screen_text(app)

        runtime.quotes.update(UNIVERSE["SPY"].con_id, bid=513.01, ask=513.03, last=513.02, volume=48_200_000)
        await pilot.pause(0.4)  # > two flushes
        assert watchlist.row_text(0).split()[:5] == ["SPY", "513.01", "513.03", "513.02", "▲"]
        assert "513.01" in screen_text(app)

        runtime.quotes.update(UNIVERSE["SPY"].con_id, last=511.00, bid=math.nan)
        await pilot.pause(0.4)
        row = watchlist.row_text(0).split()
        assert row[1] == "—" and row[3:5] == ["511.00", "▼"]


async def test_only_dirty_rows_are_rebuilt(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        watchlist = app.watchlist
        before = watchlist.rows_rendered
        await pilot.pause(0.4)  # flushes with nothing dirty: nothing rebuilt
        assert watchlist.rows_rendered == before
        runtime.quotes.update(UNIVERSE["QQQ"].con_id, bid=440.00)
        await pilot.pause(0.4)
        assert watchlist.rows_rendered == before + 1


async def test_last_change_flashes_then_settles(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        watchlist = app.watchlist
        con_id = UNIVERSE["AAPL"].con_id
        runtime.quotes.update(con_id, last=191.00)
        watchlist.apply_dirty(runtime.quotes.drain_dirty())
        assert watchlist._flash[con_id] == [FLASH_FLUSHES, 1]
        for _ in range(FLASH_FLUSHES):
            watchlist.apply_dirty(set())
        assert watchlist._flash[con_id][0] == 0


async def test_cursor_keys_move_and_post_selection(runtime):
    selected: list[str] = []

    def hook(message):
        if isinstance(message, InstrumentSelected):
            selected.append(message.instrument.symbol)

    app = _app(runtime)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await pilot.pause()
        watchlist = app.watchlist
        assert watchlist.has_focus and watchlist.cursor_row == 0
        await pilot.press("down")
        assert watchlist.cursor_row == 1
        await pilot.press("j", "j")
        assert watchlist.cursor_row == 3
        await pilot.press("k")
        assert watchlist.cursor_row == 2
        await pilot.press("end")
        assert watchlist.cursor_row == 5 and watchlist.highlighted.symbol == "NVDA"
        await pilot.press("down")  # clamped
        assert watchlist.cursor_row == 5
        await pilot.press("home")
        assert watchlist.cursor_row == 0
        await pilot.press("G")
        assert watchlist.cursor_row == 5
        await pilot.press("g")
        assert watchlist.cursor_row == 0
        await pilot.press("pagedown")
        assert watchlist.cursor_row == 5
        await pilot.press("pageup")
        assert watchlist.cursor_row == 0
        await pilot.click("#watchlist", offset=(5, 4))  # border, header, SPY, QQQ, IWM
        assert watchlist.highlighted.symbol == "IWM"
        await pilot.press("home", "enter")
        await pilot.pause()
        assert selected[0] == "SPY"
        assert "NVDA" in selected and selected[-1] == "SPY"


async def test_cursor_scrolls_a_long_watchlist():
    runtime = FakeRuntime(make_settings(), symbols=list(UNIVERSE))
    fill_fixed_quotes(runtime)
    app = _app(runtime)
    async with app.run_test(size=(120, 12)) as pilot:  # a few rows visible only
        await pilot.pause()
        watchlist = app.watchlist
        page = watchlist.page_rows
        assert page < len(UNIVERSE)
        await pilot.press("end")
        await pilot.pause()
        assert watchlist.cursor_row == len(UNIVERSE) - 1
        assert watchlist.scroll_y == len(UNIVERSE) - page
        assert "INTC" in screen_text(app) and "SPY " not in screen_text(app)
        await pilot.press("home")
        await pilot.pause()
        assert watchlist.scroll_y == 0 and "SPY " in screen_text(app)


async def test_empty_watchlist_says_how_to_add():
    runtime = FakeRuntime(make_settings(), symbols=[])
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "No symbols. Press a to add one." in screen_text(app)
        await pilot.press("down", "d")  # nothing to move or remove
        assert app.watchlist.highlighted is None


async def test_styles_follow_focus_and_theme(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        watchlist = app.watchlist

        def cursor_bg():
            return watchlist.render_line(1)._segments[0].style.bgcolor

        def row_bg():
            return watchlist.render_line(2)._segments[0].style.bgcolor

        focused, plain = cursor_bg(), row_bg()
        assert focused != plain
        app.set_focus(None)
        await pilot.pause()
        assert cursor_bg() not in (focused, plain)  # dimmer cursor when the pane is not focused
        watchlist.focus()
        await pilot.pause()
        assert cursor_bg() == focused
        app.theme = "desk-light"
        await pilot.pause()
        assert row_bg() != plain
        assert row_bg().triplet.hex.upper() == "#FFFFFF"  # desk-light's $surface
