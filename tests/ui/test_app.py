"""The desk app on the real engine (Runtime over the embedded simulator, ib_async over the
TWS protocol): add / remove symbols, help, themes, status bar, start errors, quit."""

from __future__ import annotations

import re
import socket

from desk.domain import ConnectionState, FrozenClock
from desk.settings import Mode
from desk.ui.screens.add_symbol import AddSymbolScreen
from desk.ui.screens.help import HelpScreen
from screen_text import screen_text
from trading_stack import sim_desk, wait_for
from ui_testlib import FROZEN_AT, desk_app

SIZE = (120, 36)
SIX = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA"]


def _symbols(app) -> list[str]:
    return [i.symbol for i in app.watchlist.instruments]


def _said(app, text: str) -> bool:
    """The desk said ``text`` (in the status bar, kept in the event log: the chain's own
    messages may have replaced it in the status bar since)."""
    return any(e.text == text for e in app.events.events)


def _desk(tmp_path, **overrides):
    overrides.setdefault("watchlist", SIX)
    return sim_desk(tmp_path, size=overrides.pop("size", SIZE), **overrides)


async def test_add_symbol_success(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, AddSymbolScreen), pilot, "the add-symbol dialog")
        await pilot.press("t", "s", "l", "a", "enter")
        await wait_for(lambda: _said(app, "added TSLA"), pilot, lambda: app.status_bar.message)
        assert [i.symbol for i in runtime.broker.watchlist][-1] == "TSLA"  # the engine's watchlist
        assert _symbols(app)[-1] == "TSLA"
        assert app.watchlist.highlighted.symbol == "TSLA"
        await wait_for(lambda: "TSLA" in screen_text(app), pilot, "TSLA on screen")


async def test_add_unknown_symbol_shows_the_error_and_changes_nothing(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        rows_before = _symbols(app)
        cursor_before = app.watchlist.cursor_row
        await pilot.press("plus")
        await pilot.press(*"XYZ", "enter")
        expected = "XYZ: unknown symbol (IB error 200: No security definition has been found for the request)"
        await wait_for(lambda: _said(app, expected), pilot, lambda: app.status_bar.message)
        assert any(e.text == expected and e.level == "error" for e in app.events.events)
        assert any(n.message == expected and n.severity == "error" for n in app._notifications)
        assert _symbols(app) == rows_before == [i.symbol for i in runtime.broker.watchlist]
        assert app.watchlist.cursor_row == cursor_before
        await wait_for(lambda: "XYZ: unknown symbol" in screen_text(app), pilot, "the error on screen")


async def test_add_symbol_already_there_typed_with_q(tmp_path):
    """Typing q in the dialog types it (no quit); a duplicate is the engine's error."""
    async with _desk(tmp_path) as (app, pilot, runtime):
        await pilot.press("a", "q", "q", "q", "enter")
        await wait_for(lambda: _said(app, "QQQ is already in the watchlist"), pilot, lambda: app.status_bar.message)
        assert app.is_running and runtime.broker.state is ConnectionState.CONNECTED
        assert _symbols(app).count("QQQ") == 1
        assert [i.symbol for i in runtime.broker.watchlist] == SIX


async def test_add_symbol_dialog_rejects_bad_format_and_escape_cancels(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        await pilot.press("a", "1", "2", "enter")
        await wait_for(lambda: "is not a symbol" in screen_text(app), pilot, "the dialog's complaint")
        assert isinstance(app.screen, AddSymbolScreen)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, AddSymbolScreen), pilot, "the dialog closed")
        assert [i.symbol for i in runtime.broker.watchlist] == SIX  # nothing reached the engine
        assert app.status_bar.message_level != "error"


async def test_remove_highlighted_symbol(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        await pilot.press("down")  # QQQ
        await pilot.press("d")
        await wait_for(lambda: _said(app, "removed QQQ"), pilot, lambda: app.status_bar.message)
        assert "QQQ" not in _symbols(app)
        assert "QQQ" not in [i.symbol for i in runtime.broker.watchlist]
        assert app.watchlist.highlighted.symbol == "IWM"  # same row index
        await pilot.press("delete")
        await wait_for(lambda: _symbols(app) == ["SPY", "AAPL", "MSFT", "NVDA"], pilot, lambda: _symbols(app))
        assert [i.symbol for i in runtime.broker.watchlist] == ["SPY", "AAPL", "MSFT", "NVDA"]


async def test_help_opens_and_closes(tmp_path):
    async with _desk(tmp_path, quoted=False) as (app, pilot, _):
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


async def test_every_binding_is_in_the_help(tmp_path):
    from desk.engine.runtime import Runtime
    from trading_stack import trading_settings
    from ui_testlib import desk_app

    app = desk_app(Runtime(trading_settings(tmp_path)))
    sections = dict(app.help_sections())
    descriptions = {text for rows in sections.values() for _, text in rows}
    from desk.ui.widgets.watchlist import Watchlist

    for binding in [*app.BINDINGS, *Watchlist.BINDINGS]:
        assert binding.tooltip in descriptions


async def test_theme_from_settings_and_switch(tmp_path):
    async with _desk(tmp_path) as (app, pilot, _):
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


async def test_theme_switch_via_command_palette(tmp_path):
    async with _desk(tmp_path, quoted=False) as (app, pilot, _):
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


async def test_unknown_theme_warns_and_falls_back(tmp_path):
    async with _desk(tmp_path, quoted=False, theme="no-such-theme") as (app, pilot, _):
        assert app.theme == "desk-dark"
        await wait_for(
            lambda: any("unknown theme 'no-such-theme'" in n.message and n.severity == "warning" for n in app._notifications),
            pilot,
            "the warning",
        )


async def test_bad_theme_file_warns_and_the_desk_runs(tmp_path):
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "broken.toml").write_text("name = 'broken'\nprimary = 'not-a-colour'\n")
    (themes / "ok.toml").write_text("name = 'mine'\nprimary = '#336699'\n")
    async with _desk(tmp_path, quoted=False, themes_dir=themes, theme="mine") as (app, pilot, _):
        assert app.theme == "mine"
        await wait_for(lambda: any("broken.toml" in n.message for n in app._notifications), pilot, "the warning")


async def test_status_bar_shows_mode_connection_and_counters(tmp_path):
    clock = FrozenClock(FROZEN_AT)
    async with _desk(tmp_path, clock=clock, record=True) as (app, pilot, runtime):
        await wait_for(lambda: runtime.recorder.stats.written > 0, pilot, "rows written")

        def status_line() -> str:
            app._refresh_status()
            return screen_text(app).splitlines()[-2]

        await wait_for(lambda: re.search(r"rec [1-9][\d,]* \(\d[\d,]* queued\)", status_line()), pilot, status_line)
        line = status_line()
        for expected in ("SIM", "● connected", f"127.0.0.1:{runtime.sim.port}", "ticks/s", "09:45:00 ET"):
            assert expected in line, line
        runtime.sim.drop_clients()  # the gateway drops the connection: the desk says so, then reconnects
        await wait_for(
            lambda: any("reconnecting" in e.text for e in app.events.events), pilot, lambda: [e.text for e in app.events.events]
        )
        await wait_for(lambda: runtime.broker.state is ConnectionState.CONNECTED, pilot, "connected again")
        await wait_for(lambda: "● connected" in status_line(), pilot, status_line)


async def test_live_mode_badge_and_frame(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on: the live desk keeps trying
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with _desk(tmp_path, quoted=False, mode=Mode.LIVE, ib_port=port) as (app, pilot, runtime):
        await wait_for(lambda: "LIVE" in screen_text(app).splitlines()[-2], pilot, lambda: screen_text(app))
        assert app.status_bar.query_one("#status-mode").has_class("-live")
        assert app.has_class("-mode-live")
        assert runtime.sim is None  # a live desk never starts the simulator


async def test_ticks_per_second_follows_the_clock(tmp_path):
    """The meter moves only with the desk's clock (frozen here): each refresh after the
    clock advanced shows the ticks since the last one, smoothed as RateMeter documents."""
    from desk.ui.formatting import fmt_rate

    clock = FrozenClock(FROZEN_AT)
    async with _desk(tmp_path, clock=clock) as (app, pilot, runtime):
        meter = app._rate
        rates = []
        for _ in range(2):
            before = runtime.quotes.ticks_seen
            app._refresh_status()  # the clock has not moved: the meter stays where it is
            assert meter.rate == (rates[-1] if rates else meter.rate)
            await wait_for(lambda b=before: runtime.quotes.ticks_seen >= b + 5, pilot, "more ticks")
            counted, last = runtime.quotes.ticks_seen, meter._last[0]
            clock.advance(1.0)
            app._refresh_status()
            instant = counted - last
            expected = instant if not rates or rates[-1] == 0 else meter.alpha * instant + (1 - meter.alpha) * rates[-1]
            assert meter.rate == expected
            rates.append(expected)
            await pilot.pause()
            assert f"{fmt_rate(expected)} ticks/s" in screen_text(app)


async def test_start_error_is_a_message_not_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with _desk(tmp_path, quoted=False, metrics_port=port) as (app, pilot, _):
            await wait_for(lambda: app.status_bar.message.startswith("could not start:"), pilot, lambda: app.status_bar.message)
            assert app.is_running
            assert app.status_bar.message.startswith(f"could not start: metrics: cannot listen on 127.0.0.1:{port}")
            # App.notify posts a message: the notification is listed once the app handled it
            await wait_for(lambda: any(n.severity == "error" for n in app._notifications), pilot, "an error notification")
            assert "Traceback" not in screen_text(app)


async def test_quit_stops_the_engine(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        sim = runtime.sim
        assert sim.clients == 1
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot, "the app gone")
    assert app.return_code == 0
    assert runtime.broker.state is ConnectionState.DISCONNECTED
    assert runtime.sim is None and (sim.gateway is None or not sim.gateway.running)  # the simulator stopped too


async def test_every_pane_keeps_rows_at_100x30(tmp_path):
    """A short terminal: the real desk (opportunities pane on) gives every pane rows inside
    the screen, and the option chain the most after the watchlist; at 120x50 the tall
    layout is back."""
    from desk.engine.runtime import Runtime
    from trading_stack import trading_settings

    app = desk_app(Runtime(trading_settings(tmp_path)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.has_class("-short")
        panes = {
            "watchlist": app.watchlist,
            "chain": app.chain,
            "opportunities": app.opportunities,
            "orders": app.blotter,
            "positions": app.positions,
        }
        heights = {name: w.region.height for name, w in panes.items()}
        assert all(h >= 5 for h in heights.values()), heights
        assert all(w.region.y + w.region.height <= 28 for w in panes.values()), {n: w.region for n, w in panes.items()}
        assert heights["chain"] >= 6, heights
        await pilot.resize_terminal(120, 50)
        await pilot.pause()
        assert not app.has_class("-short") and app.chain.region.height > heights["chain"]


async def test_the_help_scrolls_by_keyboard_on_a_short_terminal(tmp_path):
    async with _desk(tmp_path, quoted=False, size=(100, 30)) as (app, pilot, _):
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
