"""The option chain pane: pilot tests (expiry switching, re-centring, Greeks toggle, smile,
selection, stale marks, budget message), deterministic snapshots of the real GOOG chain of
2015-12-24 10:30 ET, and the pane over the real stack (Runtime + embedded simulator)."""

from __future__ import annotations

import math
import time as _time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time

from desk.broker.chains import CHAIN_OWNER
from desk.domain import FrozenClock
from desk.engine.runtime import Runtime
from desk.ui.messages import InstrumentSelected
from desk.ui.widgets.chain import ChainPane
from desk.ui.widgets.chain_layout import SIDE_COLUMNS, row_width, visible_columns
from goog_chain import EXPIRIES, GOOG, ReplayGateway
from screen_text import screen_text
from trading_stack import after_two_analytics_runs, trading_settings, wait_for
from ui_testlib import desk_app

SIZE = (120, 36)
WIDE = (170, 40)
AT = time(10, 30)
SHOWN = "20160115"
#: the replay gateway's port in the snapshots (the status bar shows it)
SNAPSHOT_REPLAY_PORT = 47813


def goog_app(tmp_path, gateway: ReplayGateway, *, count: int = 10, lines: int = 100):
    """The desk on the real engine, its watchlist GOOG, connected to ``gateway`` (the paused
    replay of 2015-12-24 at 10:30 ET) and on the replay's clock."""
    settings = trading_settings(
        tmp_path, watchlist=["GOOG"], ib_port=gateway.port, chain_strikes=str(count), market_data_lines=lines
    )
    return desk_app(Runtime(settings, clock=gateway.clock))


async def open_goog_chain(pilot) -> None:
    """Wait for the GOOG chain, show the 2016-01-15 expiry and settle."""
    app = pilot.app
    chains = app.desk.runtime.chains
    await wait_for(lambda: chains.definition is not None and chains.expiry is not None, pilot, "the GOOG chain")
    await chains.set_expiry(SHOWN)
    await _settle(pilot)


@asynccontextmanager
async def goog_desk(tmp_path, *, size=SIZE, count: int = 10, lines: int = 100, message_hook=None):
    """(app, pilot, runtime) on the GOOG chain of 2016-01-15, quoted and priced."""
    with ReplayGateway(AT) as gateway:
        app = goog_app(tmp_path, gateway, count=count, lines=lines)
        async with app.run_test(size=size, message_hook=message_hook) as pilot:
            await open_goog_chain(pilot)
            yield app, pilot, app.desk.runtime


async def _settle(pilot) -> None:
    """Wait until every contract of the window is quoted and priced by the engine, then
    apply what changed to the view (what the 0.15 s timer does) and repaint."""
    app = pilot.app
    chains = app.desk.runtime.chains

    def priced() -> bool:
        legs = [leg for row in chains.rows for leg in (row.call, row.put) if leg is not None]
        quotes = [chains.store.get(leg.con_id) for leg in legs]
        return bool(quotes) and all(q is not None and q.time is not None and q.ours is not None for q in quotes)

    await wait_for(priced, pilot, "the chain's window quoted and priced")
    await after_two_analytics_runs(pilot)
    await app.workers.wait_for_complete()
    await pilot.pause()
    app._flush_quotes()  # deterministic: do not depend on the timer firing under load
    await app.workers.wait_for_complete()
    await pilot.pause()


def _pane(app) -> ChainPane:
    return app.chain


def _strikes(app) -> list[float]:
    return [r.strike for r in _pane(app).rows]


# ---------------------------------------------------------------------------------- layout


def test_columns_drop_outside_in_to_fit() -> None:
    assert visible_columns(row_width(SIDE_COLUMNS)) == SIDE_COLUMNS
    narrow = visible_columns(118)
    assert [c.key for c in narrow] == ["bid", "ask", "last", "iv", "delta", "theta", "vega"]
    assert row_width(narrow) <= 118
    tiny = visible_columns(20)
    assert [c.key for c in tiny] == ["bid", "ask", "iv", "delta"]  # never fewer than these


async def test_chain_shows_calls_strike_puts_with_atm_and_greeks(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        pane = _pane(app)
        text = screen_text(app)
        # the spot is the mid of the replayed quote at 10:30 ET (748.10 / 748.59)
        assert "GOOG 748.35" in text and "◂ 2016-01-15 · 22.2d ▸ 4/12" in text and "Greeks: ours" in text
        header = pane.line_text(1)
        assert header.split() == [
            "Vega",
            "Theta",
            "Delta",
            "IV%",
            "Last",
            "Bid",
            "Ask",
            "Strike",
            "Bid",
            "Ask",
            "Last",
            "IV%",
            "Delta",
            "Theta",
            "Vega",
        ]
        assert _strikes(app) == [735.0 + 2.5 * i for i in range(10)] and pane._atm_row() == 5
        atm = pane.row_text(5)
        assert "▶747.5◀" in atm
        cells = atm.split()
        # calls: vega theta delta iv last bid ask | strike | puts: bid ask last iv delta theta vega
        c_vega, c_theta, c_delta, c_iv, _, c_bid, c_ask, _, p_bid, p_ask, _, p_iv, p_delta, p_theta, p_vega = cells
        assert float(c_bid) < float(c_ask) and float(p_bid) < float(p_ask)
        assert 15.0 < float(c_iv) < 25.0 and abs(float(c_iv) - float(p_iv)) < 1.0
        assert 0.4 < float(c_delta) < 0.65 and -0.6 < float(p_delta) < -0.35
        assert float(c_theta) < 0 and float(p_theta) < 0 and float(c_vega) > 0
        # the cursor starts on the ATM row (the expiry was changed by the engine, not by a key)
        assert pane.highlighted.strike == 747.5 and pane.highlighted.expiry == SHOWN
        assert f"{pane.highlighted.key}  bid" in text  # detail line of the cursor contract
        assert "[ ] expiry  +/- strikes  g Greeks  s smile" in text


async def test_wide_terminal_shows_every_column(tmp_path) -> None:
    async with goog_desk(tmp_path, size=WIDE) as (app, pilot, runtime):
        header = _pane(app).line_text(1).split()
        assert header[:4] == ["OI", "Vol", "Vega", "Theta"] and header[-3:] == ["Vega", "Vol", "OI"]
        assert "Gamma" in header


# ---------------------------------------------------------------------------------- pilot tests


async def test_expiry_switching_with_brackets(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        manager = runtime.chains
        await pilot.press("2")
        assert app.focused is _pane(app)
        before = manager.subscribed
        await pilot.press("right_square_bracket")
        await wait_for(lambda: manager.expiry == "20160122", pilot, "the next expiry")
        await _settle(pilot)
        assert "◂ 2016-01-22" in screen_text(app) and "5/12" in screen_text(app)
        assert all(r.call.expiry == "20160122" for r in _pane(app).rows)
        assert not (manager.subscribed & before) and manager.budget.used_by(CHAIN_OWNER) == 20
        assert _pane(app).highlighted.expiry == "20160122"
        await pilot.press("left_square_bracket")
        await wait_for(lambda: manager.expiry == SHOWN, pilot, "the expiry before")
        await _settle(pilot)
        assert "◂ 2016-01-15" in screen_text(app)
        # past the last expiry the key stays on it
        await manager.set_expiry(EXPIRIES[-1])
        await _settle(pilot)
        await pilot.press("right_square_bracket")
        await _settle(pilot)
        assert manager.expiry == EXPIRIES[-1] and "12/12" in screen_text(app)


async def test_window_recentres_when_the_underlying_moves(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        pane = _pane(app)
        assert "▶747.5◀" in pane.row_text(5)
        # a move within the hysteresis band: same window, the ATM mark follows the price
        runtime.quotes.update(GOOG.con_id, bid=748.9, ask=749.1)
        await wait_for(lambda: runtime.chains.atm_strike == 750.0, pilot, "the ATM strike at 750")
        await _settle(pilot)
        assert _strikes(app)[5] == 747.5 and "▶750◀" in pane.row_text(6)
        # a real move: the window re-centres on the new ATM strike, its new contracts are
        # subscribed and quoted by the gateway, and the cursor follows the ATM row
        runtime.quotes.update(GOOG.con_id, bid=771.9, ask=772.1)
        wanted = [760.0, 762.5, 765.0, 767.5, 770.0, 772.5, 775.0, 777.5, 780.0, 782.5]
        await wait_for(lambda: [r.strike for r in runtime.chains.rows] == wanted, pilot, "the window re-centred")
        await _settle(pilot)
        assert _strikes(app) == wanted
        assert "▶772.5◀" in pane.row_text(5) and pane.cursor_row == 5
        assert pane.highlighted.strike == 772.5
        assert "GOOG 772.00" in screen_text(app)
        # every visible contract has a price again
        assert all("—" not in pane.row_text(i).split()[5:7] for i in range(3, 8))


async def test_greeks_toggle_between_ours_and_ibs_model(tmp_path) -> None:
    """g: the Greeks IB's model sent with the quotes (tick 13) instead of ours."""
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        manager = runtime.chains
        pane = _pane(app)
        atm = pane._atm_row()
        call = pane.rows[atm].call
        ours = pane.row_text(atm).split()
        assert ours[3] != "—"
        await wait_for(lambda: manager.store.get(call.con_id).model is not None, pilot, "IB's model Greeks")
        await pilot.press("c", "g")  # focus the chain, then toggle
        await _settle(pilot)
        assert pane.source == "ib" and "Greeks: IB model" in screen_text(app)
        model = manager.store.get(call.con_id).model
        ib = pane.row_text(atm).split()
        assert ib[:4] == [f"{model.vega:.3f}", f"{model.theta:.3f}", f"{model.delta:.3f}", f"{model.iv * 100:.1f}"]
        await pilot.press("g")
        await _settle(pilot)
        assert pane.source == "ours" and pane.row_text(atm).split() == ours


async def _until(predicate, pilot, what: str, timeout: float = 15.0) -> None:
    """Let the app run until ``predicate()`` holds; fail naming ``what`` after ``timeout`` s."""
    deadline = _time.monotonic() + timeout
    while not predicate():
        assert _time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


async def test_cursor_moves_and_enter_selects_the_option_for_the_ticket(tmp_path) -> None:
    selected: list = []

    seen: list = []  # the messages themselves: an id() could be reused once one is freed

    def hook(message) -> None:  # called at every node the message bubbles through
        if (
            isinstance(message, InstrumentSelected)
            and message.instrument.sec_type == "OPT"
            and not any(m is message for m in seen)
        ):
            seen.append(message)
            selected.append(message.instrument)

    async with goog_desk(tmp_path, message_hook=hook) as (app, pilot, runtime):
        await pilot.press("c", "home")
        await pilot.press(*["down"] * 6, "right", "enter")
        await _until(lambda: selected, pilot, "the first selection")
        assert [i.key for i in selected] == ["GOOG 20160115 750 P"]
        assert selected[0].con_id == _pane(app).rows[6].put.con_id and selected[0].multiplier == 100
        assert runtime.chains.underlying.symbol == "GOOG"  # an option selection is not an underlying
        await pilot.press("h", "k", "k", "enter")
        await _until(lambda: len(selected) == 2, pilot, "the second selection")  # bubbles pane -> screen -> app
        assert [i.key for i in selected] == ["GOOG 20160115 750 P", "GOOG 20160115 745 C"]
        await pilot.press("end", "home")
        assert _pane(app).cursor_row == 0


async def test_wider_and_narrower_windows(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        await pilot.press("c", "plus", "plus")
        await wait_for(lambda: len(runtime.chains.rows) == 14, pilot, "14 strikes")
        await _settle(pilot)
        assert len(_strikes(app)) == 14 and "14 strikes" in screen_text(app)
        assert runtime.chains.budget.used_by(CHAIN_OWNER) == 28
        await pilot.press("minus", "minus", "minus")
        await wait_for(lambda: len(runtime.chains.rows) == 8, pilot, "8 strikes")
        await _settle(pilot)
        assert len(_strikes(app)) == 8 and runtime.chains.budget.used_by(CHAIN_OWNER) == 16
        assert 747.5 in _strikes(app)


async def test_smile_view_plots_iv_by_strike(tmp_path) -> None:
    async with goog_desk(tmp_path, count=30) as (app, pilot, runtime):
        await pilot.press("c", "s")
        await _settle(pilot)
        text = screen_text(app)
        assert "IV% by strike (ours)" in text and "●" in text and "┊" in text
        strikes = _strikes(app)
        assert len(strikes) == 30 and f"{strikes[0]:g}" in text and f"{strikes[-1]:g}" in text  # the x axis's ends
        # the smirk: the leftmost plotted point (deep OTM put) is higher than the ATM region
        lines = [_pane(app).line_text(y) for y in range(2, _pane(app).size.height - 2)]
        rows_with_dot = [i for i, line in enumerate(lines) if "●" in line]
        first_col = {i: lines[i].index("●") for i in rows_with_dot}
        leftmost_row = min(first_col, key=first_col.get)
        assert leftmost_row < max(rows_with_dot)  # higher on screen than the lowest IV
        await pilot.press("s")
        await _settle(pilot)
        assert "IV% by strike" not in screen_text(app) and "Strike" in screen_text(app)


async def test_stale_quotes_are_marked(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        pane = _pane(app)
        atm = pane._atm_row()
        assert "*" not in pane.row_text(atm)
        runtime.clock.advance(31)  # the replay's clock: no update for 31 s, older than DESK_CHAIN_STALE_SECONDS (30)
        call = pane.rows[atm].call
        runtime.chains.store.update(call.con_id, bid=12.0, time=runtime.clock.now())  # the call is fresh
        await _settle(pilot)
        text = pane.row_text(atm)
        left, right = text.split("▶747.5◀")
        assert not left.rstrip().endswith("*") and right.lstrip().startswith("*")


async def test_budget_message_is_shown_when_lines_run_out(tmp_path) -> None:
    """Nine market data lines: GOOG takes one, the chain the other eight (four strikes)."""
    async with goog_desk(tmp_path, count=10, lines=9) as (app, pilot, runtime):
        assert len(_strikes(app)) == 4
        expected = "GOOG chain: 4 of 10 strikes shown, the market data lines are used up"
        await wait_for(
            lambda: app.status_bar.message.startswith(expected),
            pilot,
            lambda: f"the budget message, not {app.status_bar.message!r}",
        )
        assert app.status_bar.message_level == "warning"
        await pilot.pause()
        assert expected in screen_text(app)


async def test_help_lists_the_chain_keys(tmp_path) -> None:
    async with goog_desk(tmp_path, size=(120, 60)) as (app, pilot, runtime):
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "Option chain" in text and "Toggle Greeks: ours / IB's model" in text and "Next expiry" in text


async def test_pane_without_a_chain_manager_says_so() -> None:
    """The pane of a desk whose engine has no option chain (``chains`` None)."""
    from textual.app import App, ComposeResult

    class PaneApp(App):
        def compose(self) -> ComposeResult:
            yield ChainPane(None, clock=FrozenClock(datetime(2026, 3, 10, 13, 45, tzinfo=UTC)), stale_after=30.0)

    app = PaneApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Option chain: not available" in screen_text(app)
        app.query_one(ChainPane).focus()
        await pilot.press("right_square_bracket", "g", "s", "plus", "enter")
        assert app.is_running and "Option chain: not available" in screen_text(app)


# ---------------------------------------------------------------------------------- snapshots


# The chain pane is maximized (z) in the snapshots, so they show the chain alone and do not
# change when other panes are added to the desk's layout.


def test_chain_snapshot(snap_compare, tmp_path):
    """The real GOOG 2016-01-15 chain at 10:30 ET on 2015-12-24, replayed and paused, our Greeks."""

    async def run_before(pilot):
        await open_goog_chain(pilot)
        await pilot.press("c", "z")
        await _settle(pilot)
        pilot.app.status_bar.set_message("")  # "connected to …" or the chain's own: a race
        await pilot.pause()

    # 28 strikes fit the maximized pane without scrolling (nothing depends on scroll timing)
    with ReplayGateway(AT, port=SNAPSHOT_REPLAY_PORT) as gateway:
        assert snap_compare(goog_app(tmp_path, gateway, count=28), terminal_size=SIZE, run_before=run_before)


def test_chain_smile_snapshot(snap_compare, tmp_path):
    """The smile of the same expiry over 30 strikes."""

    async def run_before(pilot):
        await open_goog_chain(pilot)
        await pilot.press("c", "z", "s")
        await _settle(pilot)
        pilot.app.status_bar.set_message("")  # "connected to …" or the chain's own: a race
        await pilot.pause()

    with ReplayGateway(AT, port=SNAPSHOT_REPLAY_PORT) as gateway:
        assert snap_compare(goog_app(tmp_path, gateway, count=30), terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------------------------- real stack


async def test_chain_over_the_real_stack(tmp_path):
    """Runtime + embedded simulator + ib_async: the first watchlist symbol's chain streams."""
    from desk.engine.runtime import Runtime
    from desk.settings import Mode, Settings

    settings = Settings(mode=Mode.SIM, record=False, watchlist=["SPY", "AAPL"], chain_strikes="8", _env_file=None)
    runtime = Runtime(settings)
    app = desk_app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        manager = runtime.chains

        async def wait_for(predicate, timeout=10.0):
            deadline = _time.monotonic() + timeout
            while _time.monotonic() < deadline and not predicate():
                await pilot.pause(0.1)
            return predicate()

        def quoted() -> bool:
            # every contract quoted and priced; bids and IVs at the money (a far call hours
            # from expiry may have no bid, in the simulator as in a real market)
            rows = _pane(app).rows
            if len(rows) != 8 or not all(
                (q := manager.quote(leg)) is not None and q.time is not None and q.ours is not None
                for r in rows
                for leg in (r.call, r.put)
            ):
                return False
            atm = rows[_pane(app)._atm_row()]
            return all((q := manager.quote(leg)).bid > 0 and q.ours.iv == q.ours.iv for leg in (atm.call, atm.put))

        assert await wait_for(quoted), screen_text(app)
        assert manager.underlying.symbol == "SPY"
        assert runtime.broker.lines.describe() == "market data lines: 18 of 100 in use (watchlist 2, chain 16)"
        cells = _pane(app).row_text(_pane(app)._atm_row()).split()
        assert all(c != "—" for c in (cells[5], cells[6], cells[8], cells[9]))  # bids and asks
        first = manager.expiry
        await pilot.press("c", "right_square_bracket")
        assert await wait_for(lambda: manager.expiry > first and quoted())
        # the watchlist selection moves the chain to AAPL
        await pilot.press("1", "down")
        assert await wait_for(lambda: manager.underlying.symbol == "AAPL" and quoted())
        assert {r.call.symbol for r in _pane(app).rows} == {"AAPL"}
        assert runtime.broker.lines.used == 18
        assert math.isfinite(manager.forward)


# ---------------------------------------------------------------------------------- smile layout (pure)


def test_smile_lines_plot_points_axes_and_markers() -> None:
    from desk.ui.widgets.smile import SmilePoint, smile_lines

    points = [
        SmilePoint(90.0, 0.30, True),
        SmilePoint(95.0, 0.25, True),
        SmilePoint(100.0, 0.20, True),
        SmilePoint(105.0, 0.22, True),
        SmilePoint(110.0, 0.26, True),
        SmilePoint(100.0, 0.21, False),
        SmilePoint(120.0, math.nan, True),  # no IV: left out
    ]
    lines = smile_lines(points, 40, 12, atm_strike=100.0, cursor_strike=105.0)
    assert len(lines) == 12
    texts = ["".join(text for text, _ in runs) for runs in lines]
    assert all(len(t) == 40 for t in texts)
    kinds = {kind for runs in lines for _, kind in runs}
    assert {"otm", "itm", "atm", "cursor", "axis", "label"} <= kinds
    # y labels: top is the highest IV (+ padding), bottom the lowest
    assert texts[0].startswith(" 30.5%┤") and texts[10].startswith(" 19.5%┤")
    # x axis: lowest, ATM and highest strike
    assert texts[11].startswith("      └90") and texts[11].rstrip().endswith("110") and "100" in texts[11]
    # the 90 put is at the top-left, the ATM point on the lowest line
    assert texts[0][7] == "●" and "●" in texts[10]
    otm_rows = [i for i, t in enumerate(texts) if "●" in t]
    assert len(otm_rows) >= 4
    # too few points or too little room: a sentence instead of a plot
    few = smile_lines(points[:1], 40, 5)
    assert "fewer than two IVs" in few[0][0][0] and len(few) == 5
    assert "too small" in smile_lines(points, 60, 3)[0][0][0]


async def test_tab_and_number_keys_move_the_focus(tmp_path) -> None:
    async with goog_desk(tmp_path) as (app, pilot, runtime):
        assert app.focused is app.watchlist
        await pilot.press("tab")
        assert app.focused is _pane(app)
        await pilot.press("1")
        assert app.focused is app.watchlist
        await pilot.press("2")
        assert app.focused is _pane(app)
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is _pane(app)
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is None


async def test_replayed_goog_day_shows_its_smile(tmp_path):
    """The desk against `desk sim --replay 2015-12-24 --symbols GOOG --speed 60`: the chain of
    the recorded day, its expiries by key, sane IVs on screen and the smile drawn."""
    from desk.engine.runtime import Runtime
    from desk.settings import Mode, Settings
    from desk.sim import SimGateway
    from desk.sim.replay_market import ReplayMarket
    from goog_chain import goog_replay_data

    market = ReplayMarket(goog_replay_data(AT))
    gw = SimGateway(market=market, clock=market.clock, option_source=market.options, speed=60.0)
    await gw.start()
    settings = Settings(mode=Mode.SIM, ib_port=gw.port, record=False, watchlist=["GOOG"], chain_strikes="30", _env_file=None)
    runtime = Runtime(settings)
    app = desk_app(runtime)
    try:
        async with app.run_test(size=(150, 45)) as pilot:
            manager = runtime.chains

            async def wait_for(predicate, timeout=15.0):
                deadline = _time.monotonic() + timeout
                while _time.monotonic() < deadline and not predicate():
                    await pilot.pause(0.1)
                return predicate()

            assert await wait_for(lambda: manager.expiry == "20151231" and len(_pane(app).rows) == 30), screen_text(app)
            assert manager.expiries == EXPIRIES
            await pilot.press("c", "right_square_bracket", "right_square_bracket")
            assert await wait_for(lambda: manager.expiry == "20160115")

            def ivs() -> list[float]:
                out = []
                for r in _pane(app).rows:
                    for ins in (r.call, r.put):
                        q = manager.quote(ins)
                        if q is not None and q.ours is not None and q.ours.iv == q.ours.iv:
                            out.append(q.ours.iv)
                return out

            assert await wait_for(lambda: len(ivs()) >= 40), screen_text(app)
            assert all(0.10 < v < 0.60 for v in ivs())
            text = screen_text(app)
            assert "GOOG 7" in text and "◂ 2016-01-15" in text and "4/12" in text
            atm = _pane(app).row_text(_pane(app)._atm_row()).split()
            iv_call = float(atm[_pane(app).line_text(1).split().index("IV%")])
            assert 14.0 < iv_call < 26.0  # percent, on screen
            await pilot.press("s")
            await pilot.pause(0.3)
            text = screen_text(app)
            assert "IV% by strike (ours)" in text and text.count("●") >= 20
            await pilot.press("q")
    finally:
        await gw.stop()
