"""The desk app: add / remove symbols, help, themes, status bar, start errors, quit."""

from __future__ import annotations

from ui_testlib import FakeRuntime, make_settings
from desk.domain import ConnectionState, StatusEvent
from desk.runtime import RuntimeStartError
from desk.settings import Mode
from ui_testlib import desk_app
from desk.ui.screens.add_symbol import AddSymbolScreen
from desk.ui.screens.help import HelpScreen
from screen_text import screen_text

SIZE = (120, 36)


def _app(runtime):
    return desk_app(runtime)


def _symbols(app) -> list[str]:
    return [i.symbol for i in app.watchlist.instruments]


async def test_add_symbol_success(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AddSymbolScreen)
        await pilot.press("t", "s", "l", "a", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert runtime.broker.calls[-1] == ("add", "TSLA")
        assert _symbols(app)[-1] == "TSLA"
        assert app.watchlist.highlighted.symbol == "TSLA"
        assert app.status_bar.message == "added TSLA"
        assert "TSLA" in screen_text(app)


async def test_add_unknown_symbol_shows_the_error_and_changes_nothing(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rows_before = _symbols(app)
        cursor_before = app.watchlist.cursor_row
        await pilot.press("plus")
        await pilot.press(*"XYZ", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        expected = "XYZ: unknown symbol (IB error 200: No security definition has been found for the request)"
        assert app.status_bar.message == expected and app.status_bar.message_level == "error"
        assert any(n.message == expected and n.severity == "error" for n in app._notifications)
        assert _symbols(app) == rows_before
        assert app.watchlist.cursor_row == cursor_before
        assert "XYZ: unknown symbol" in screen_text(app)


async def test_add_symbol_already_there_typed_with_q(runtime):
    """Typing q in the dialog types it (no quit); a duplicate is the broker's error."""
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a", "q", "q", "q", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running and runtime.stopped == 0
        assert runtime.broker.calls == [("add", "QQQ")]
        assert app.status_bar.message == "QQQ is already in the watchlist"
        assert _symbols(app).count("QQQ") == 1


async def test_add_symbol_dialog_rejects_bad_format_and_escape_cancels(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a", "1", "2", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AddSymbolScreen)
        assert "is not a symbol" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AddSymbolScreen)
        assert runtime.broker.calls == []


async def test_remove_highlighted_symbol(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down")  # QQQ
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert runtime.broker.calls == [("remove", "QQQ")]
        assert "QQQ" not in _symbols(app)
        assert app.status_bar.message == "removed QQQ"
        assert app.watchlist.highlighted.symbol == "IWM"  # same row index
        await pilot.press("delete")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert _symbols(app) == ["SPY", "AAPL", "MSFT", "NVDA"]


async def test_help_opens_and_closes(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for expected in ("Desk", "Watchlist", "Add a symbol", "Remove the highlighted symbol", "ctrl+p", "PgDn"):
            assert expected in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_every_binding_is_in_the_help(runtime):
    app = _app(runtime)
    sections = dict(app.help_sections())
    descriptions = {text for rows in sections.values() for _, text in rows}
    from desk.ui.widgets.watchlist import Watchlist

    for binding in [*app.BINDINGS, *Watchlist.BINDINGS]:
        assert binding.tooltip in descriptions


async def test_theme_from_settings_and_switch(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "desk-dark"
        assert {"desk-dark", "desk-light"} <= set(app.available_themes)
        app.theme = "desk-light"
        await pilot.pause()
        assert app.current_theme.dark is False
        assert app.theme_variables["price-up"] == "#137A3E"
        app.theme = "nord"  # a Textual theme without desk's variables: defaults fill in
        await pilot.pause()
        assert app.theme_variables["price-up"] == app.theme_variables["success"]
        assert "SPY" in screen_text(app)


async def test_theme_switch_via_command_palette(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme")
        await pilot.pause(0.5)
        await pilot.press("enter")  # "Theme: Change the current theme"
        await pilot.pause(0.5)
        await pilot.press(*"desk-light")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.theme == "desk-light"


async def test_unknown_theme_warns_and_falls_back():
    runtime = FakeRuntime(make_settings(theme="no-such-theme"))
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "desk-dark"
        assert any("unknown theme 'no-such-theme'" in n.message and n.severity == "warning" for n in app._notifications)


async def test_bad_theme_file_warns_and_the_desk_runs(tmp_path):
    (tmp_path / "broken.toml").write_text("name = 'broken'\nprimary = 'not-a-colour'\n")
    (tmp_path / "ok.toml").write_text("name = 'mine'\nprimary = '#336699'\n")
    runtime = FakeRuntime(make_settings(themes_dir=tmp_path, theme="mine"))
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "mine"
        assert any("broken.toml" in n.message for n in app._notifications)


async def test_status_bar_shows_mode_connection_and_counters(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        status_line = screen_text(app).splitlines()[-2]
        for expected in ("SIM", "● connected", "127.0.0.1:4002", "ticks/s", "rec 1,234 (56 queued)", "09:45:00 ET"):
            assert expected in status_line
        runtime.broker.set_state(ConnectionState.RECONNECTING, "connection to the gateway lost")
        await pilot.pause()
        status_line = screen_text(app).splitlines()[-2]
        assert "reconnecting…" in status_line and "connection to the gateway lost" in status_line
        assert app.status_bar.query_one("#status-connection").has_class("-reconnecting")
        runtime.broker.emit(StatusEvent("error", "IB 354: Requested market data is not subscribed", 354))
        await pilot.pause()
        assert app.status_bar.message == "IB 354: Requested market data is not subscribed"
        assert any(n.severity == "error" for n in app._notifications)


async def test_live_mode_badge_and_frame():
    runtime = FakeRuntime(make_settings(mode=Mode.LIVE))
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "LIVE" in screen_text(app).splitlines()[-2]
        assert app.status_bar.query_one("#status-mode").has_class("-live")
        assert app.has_class("-mode-live")


async def test_ticks_per_second_follows_the_clock(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app._refresh_status()
        runtime.quotes.ticks_seen += 500
        runtime.clock.advance(1.0)
        app._refresh_status()
        await pilot.pause()
        assert "500 ticks/s" in screen_text(app)


async def test_start_error_is_a_message_not_a_traceback():
    runtime = FakeRuntime(
        make_settings(),
        start_error=RuntimeStartError("simulator: cannot listen on 127.0.0.1: [Errno 98] Address in use"),
    )
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert app.status_bar.message.startswith("could not start: simulator: cannot listen")
        assert any(n.severity == "error" for n in app._notifications)
        assert "Traceback" not in screen_text(app)


async def test_quit_stops_the_runtime_once(runtime):
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert runtime.started == 1
        await pilot.press("q")
        await pilot.pause(0.2)
    assert runtime.stopped == 1
    assert app.return_code == 0


async def test_every_pane_keeps_rows_at_100x30(tmp_path):
    """A short terminal: the real desk (opportunities pane on) gives every pane rows inside
    the screen, and the option chain the most after the watchlist; at 120x50 the tall
    layout is back."""
    from desk.runtime import Runtime
    from trading_stack import trading_settings

    app = desk_app(Runtime(trading_settings(tmp_path)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.has_class("-short")
        panes = {"watchlist": app.watchlist, "chain": app.chain, "opportunities": app.opportunities,
                 "orders": app.blotter, "positions": app.positions}
        heights = {name: w.region.height for name, w in panes.items()}
        assert all(h >= 5 for h in heights.values()), heights
        assert all(w.region.y + w.region.height <= 28 for w in panes.values()), {n: w.region for n, w in panes.items()}
        assert heights["chain"] >= 6, heights
        await pilot.resize_terminal(120, 50)
        await pilot.pause()
        assert not app.has_class("-short") and app.chain.region.height > heights["chain"]


async def test_the_help_scrolls_by_keyboard_on_a_short_terminal(runtime):
    app = _app(runtime)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one("#help-body")
        assert body.max_scroll_y > 0 and body.scroll_y == 0  # more keys than fit
        await pilot.press("pagedown")
        await pilot.pause()
        first = body.scroll_y
        assert first > 0
        await pilot.press("j", "j")
        await pilot.pause()
        assert body.scroll_y > first
        await pilot.press("end")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("home")
        await pilot.pause()
        assert body.scroll_y == 0
