"""The watchlist pane on the real engine (Runtime over the embedded simulator, its market
paused and stepped by hand): rows follow the quote store, only changed rows are rebuilt,
a last that moves flashes, cursor keys."""

from __future__ import annotations

from desk.settings import DEFAULT_WATCHLIST
from desk.ui.formatting import fmt_price
from desk.ui.messages import InstrumentSelected
from screen_text import screen_text
from trading_stack import sim_desk, wait_for

SIZE = (120, 36)
SIX = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA"]


def _desk(tmp_path, *, size=SIZE, **overrides):
    overrides.setdefault("watchlist", SIX)
    return sim_desk(tmp_path, size=size, sim_paused=True, **overrides)


def _step(runtime) -> int:
    """One step of the simulator's market (its timer is paused): tick frames sent."""
    return runtime.sim.call(lambda gw: gw.step())


def _shown(app, runtime, row: int) -> bool:
    """Row ``row`` shows the store's bid, ask and last of its instrument."""
    q = runtime.quotes.get(app.watchlist.instruments[row].con_id)
    return app.watchlist.row_text(row).split()[1:4] == [fmt_price(q.bid), fmt_price(q.ask), fmt_price(q.last)]


def _settled(app) -> bool:
    """A flush has seen every row's last price, and no row is flashing."""
    watchlist = app.watchlist
    return not watchlist._unseen and not any(state[0] > 0 for state in watchlist._flash.values())


async def test_rows_show_the_store_and_follow_updates(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        watchlist = app.watchlist
        assert [i.symbol for i in watchlist.instruments] == SIX
        assert watchlist.header_text().split() == [
            "Symbol",
            "Bid",
            "Ask",
            "Last",
            "Chg",
            "Chg%",
            "Bid",
            "Sz",
            "Ask",
            "Sz",
            "Volume",
        ]
        await wait_for(
            lambda: all(_shown(app, runtime, r) for r in range(len(SIX))),
            pilot,
            lambda: [watchlist.row_text(r) for r in range(len(SIX))],
        )
        spy = runtime.quotes.get(watchlist.instruments[0].con_id)
        bid = spy.bid
        assert fmt_price(bid) in screen_text(app)

        def spy_moved() -> bool:  # step the market until SPY's bid moves
            if spy.bid != bid:
                return True
            _step(runtime)
            return False

        await wait_for(spy_moved, pilot, "SPY's bid to move")
        await wait_for(
            lambda: _shown(app, runtime, 0) and fmt_price(spy.bid) in screen_text(app), pilot, lambda: watchlist.row_text(0)
        )


async def test_only_changed_rows_are_rebuilt(tmp_path):
    """A cursor move rebuilds the two rows it touches; a market step rebuilds the rows
    whose quote changed; every other row keeps its cached strip."""
    async with _desk(tmp_path) as (app, pilot, runtime):
        watchlist = app.watchlist
        await wait_for(
            lambda: _settled(app) and all(_shown(app, runtime, r) for r in range(len(SIX))),
            pilot,
            "the opening quotes shown, flashes over",
        )
        await pilot.pause()
        cons = [i.con_id for i in watchlist.instruments]
        strips = {c: watchlist._cache[c][1] for c in cons}
        await pilot.press("down")
        await wait_for(
            lambda: watchlist._cache.get(cons[1], (None, None))[1] not in (None, strips[cons[1]]),
            pilot,
            "the new cursor row painted",
        )
        await pilot.pause()
        for c in cons:
            assert (watchlist._cache[c][1] is strips[c]) == (c not in cons[:2]), watchlist.instruments[cons.index(c)]

        quotes = {c: runtime.quotes.get(c) for c in cons}
        seqs = {c: q.seq for c, q in quotes.items()}
        strips = {c: watchlist._cache[c][1] for c in cons}
        _step(runtime)
        await wait_for(lambda: any(q.seq != seqs[c] for c, q in quotes.items()), pilot, "the step's ticks")
        await wait_for(
            lambda: _settled(app) and all(_shown(app, runtime, r) for r in range(len(SIX))), pilot, "the changed rows shown"
        )
        await pilot.pause()
        for c in cons:
            assert (watchlist._cache[c][1] is strips[c]) == (quotes[c].seq == seqs[c])


async def test_last_change_flashes_then_settles(tmp_path):
    async with _desk(tmp_path) as (app, pilot, runtime):
        watchlist = app.watchlist
        await wait_for(
            lambda: _settled(app) and all(_shown(app, runtime, r) for r in range(len(SIX))),
            pilot,
            "the opening quotes shown, flashes over",
        )
        assert not watchlist._flash  # nothing has moved yet: no row flashed
        quotes = {i.con_id: runtime.quotes.get(i.con_id) for i in watchlist.instruments}
        lasts = {c: q.last for c, q in quotes.items()}
        for _ in range(20):  # one step at a time until a last moves (most steps move several)
            seqs = {c: q.seq for c, q in quotes.items()}
            _step(runtime)
            await wait_for(lambda s=seqs: all(q.seq != s[c] for c, q in quotes.items()), pilot, "the step's ticks")
            moved = {c: 1 if q.last > lasts[c] else -1 for c, q in quotes.items() if q.last != lasts[c]}
            if moved:
                break
        assert moved
        await wait_for(lambda: set(moved) <= set(watchlist._flash), pilot, lambda: (moved, watchlist._flash))
        assert {c: watchlist._flash[c][1] for c in moved} == moved  # up green, down red
        assert set(watchlist._flash) == set(moved)  # and only those
        await wait_for(lambda: _settled(app), pilot, "the flashes to end")  # the market is paused: they do
        assert all(_shown(app, runtime, r) for r in range(len(SIX)))


async def test_cursor_keys_move_and_post_selection(tmp_path):
    selected: list[str] = []

    def hook(message):
        if isinstance(message, InstrumentSelected):
            selected.append(message.instrument.symbol)

    async with _desk(tmp_path, message_hook=hook) as (app, pilot, _):
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


async def test_cursor_scrolls_a_long_watchlist(tmp_path):
    async with _desk(tmp_path, size=(120, 12), watchlist=DEFAULT_WATCHLIST) as (app, pilot, _):  # a few rows visible
        watchlist = app.watchlist
        page = watchlist.page_rows
        assert page < len(DEFAULT_WATCHLIST)
        await pilot.press("end")
        await pilot.pause()
        assert watchlist.cursor_row == len(DEFAULT_WATCHLIST) - 1
        assert watchlist.scroll_y == len(DEFAULT_WATCHLIST) - page
        last = DEFAULT_WATCHLIST[-1]
        assert f"{last} " in screen_text(app) and "SPY " not in screen_text(app)
        await pilot.press("home")
        await pilot.pause()
        assert watchlist.scroll_y == 0 and "SPY " in screen_text(app)


async def test_empty_watchlist_says_how_to_add(tmp_path):
    async with _desk(tmp_path, watchlist=[], quoted=False) as (app, pilot, runtime):
        await wait_for(lambda: "No symbols. Press a to add one." in screen_text(app), pilot, lambda: screen_text(app))
        await pilot.press("down", "d")  # nothing to move or remove
        assert app.watchlist.highlighted is None


async def test_styles_follow_focus_and_theme(tmp_path):
    async with _desk(tmp_path) as (app, pilot, _):
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
