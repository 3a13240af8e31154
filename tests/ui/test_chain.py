"""The option chain pane: pilot tests (expiry switching, re-centring, Greeks toggle, smile,
selection, stale marks, budget message), deterministic snapshots of the real GOOG chain of
2015-12-24 10:30 ET, and the pane over the real stack (Runtime + embedded simulator)."""

from __future__ import annotations

import math
import time as _time
from datetime import time

from ui_testlib import FakeRuntime, make_settings
from desk.broker.chain_window import ChainDefinition
from desk.broker.chains import CHAIN_OWNER, ChainManager
from desk.broker.lines import LineBudget
from desk.domain import FrozenClock
from desk.domain.options import OptionGreeks, WindowSpec
from ui_testlib import desk_app
from desk.ui.messages import InstrumentSelected
from desk.ui.widgets.chain import ChainPane
from desk.ui.widgets.chain_layout import SIDE_COLUMNS, row_width, visible_columns
from goog_chain import EXPIRIES, GOOG, goog_chain_at
from screen_text import screen_text

SIZE = (120, 36)
WIDE = (170, 40)
AT = time(10, 30)
SHOWN = ("20160115", "20160122")


def goog_runtime(*, count: int = 10, lines: int = 100) -> FakeRuntime:
    """A fake runtime whose watchlist is GOOG and whose chain is the real 2015-12-24 one.

    The chain manager is the real one, offline (no gateway): definitions and contracts
    installed from the LEAN files, quotes written into its store as of 10:30 ET.
    """
    chain = goog_chain_at(AT, SHOWN)
    runtime = FakeRuntime(make_settings(), clock=FrozenClock(chain.at), symbols=["GOOG"], universe={"GOOG": GOOG})
    runtime.quotes.update(GOOG.con_id, bid=chain.und_bid, ask=chain.und_ask, last=chain.und_bid, close=755.98,
                          volume=1_140_000, bid_size=100, ask_size=100, time=chain.at)
    manager = ChainManager(None, quotes=runtime.quotes, budget=LineBudget(lines), spec=WindowSpec(count=count),
                           clock=runtime.clock)
    definition = ChainDefinition(GOOG, "SMART", "GOOG", 100, EXPIRIES, chain.strikes)
    manager.install(definition, "20160115", chain.instruments("20160115"))
    manager.add_expiry("20160122", chain.instruments("20160122"))
    runtime.chains = manager
    fill(manager)
    return runtime


def fill(manager: ChainManager) -> None:
    """Write the recorded quotes of every subscribed contract (what the gateway would send)."""
    chain = goog_chain_at(AT, SHOWN)
    for con_id in manager.subscribed:
        s = chain.contracts[con_id]
        q = manager.store.get(con_id)
        if q.time is None:
            manager.store.update(con_id, bid=s.bid, ask=s.ask, bid_size=s.bid_size, ask_size=s.ask_size,
                                 last=s.last, volume=s.volume, open_interest=s.open_interest, time=chain.at)


def _app(runtime):
    return desk_app(runtime)


async def _settle(pilot) -> None:
    """Let workers finish, run one flush (what the 0.15 s timer does) and repaint."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app._flush_quotes()  # deterministic: do not depend on the timer firing under load
    await pilot.app.workers.wait_for_complete()
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


async def test_chain_shows_calls_strike_puts_with_atm_and_greeks() -> None:
    runtime = goog_runtime()
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        pane = _pane(app)
        text = screen_text(app)
        assert "GOOG 748.36" in text and "◂ 2016-01-15 · 22.2d ▸ 4/12" in text and "Greeks: ours" in text
        header = pane.line_text(1)
        assert header.split() == ["Vega", "Theta", "Delta", "IV%", "Last", "Bid", "Ask", "Strike",
                                  "Bid", "Ask", "Last", "IV%", "Delta", "Theta", "Vega"]
        assert _strikes(app) == [735.0, 737.5, 740.0, 742.5, 745.0, 747.5, 750.0, 752.5, 755.0, 757.5]
        atm = pane.row_text(5)
        assert "▶747.5◀" in atm
        cells = atm.split()
        # calls: vega theta delta iv last bid ask | strike | puts: bid ask last iv delta theta vega
        c_vega, c_theta, c_delta, c_iv, _, c_bid, c_ask, _, p_bid, p_ask, _, p_iv, p_delta, p_theta, p_vega = cells
        assert float(c_bid) < float(c_ask) and float(p_bid) < float(p_ask)
        assert 15.0 < float(c_iv) < 25.0 and abs(float(c_iv) - float(p_iv)) < 1.0
        assert 0.4 < float(c_delta) < 0.65 and -0.6 < float(p_delta) < -0.35
        assert float(c_theta) < 0 and float(p_theta) < 0 and float(c_vega) > 0
        assert pane.cursor_row == 5 and pane.highlighted.key == "GOOG 20160115 747.5 C"
        assert "GOOG 20160115 747.5 C  bid" in text  # detail line of the cursor contract
        assert "[ ] expiry  +/- strikes  g Greeks  s smile" in text


async def test_wide_terminal_shows_every_column() -> None:
    app = _app(goog_runtime())
    async with app.run_test(size=WIDE) as pilot:
        await _settle(pilot)
        header = _pane(app).line_text(1).split()
        assert header[:4] == ["OI", "Vol", "Vega", "Theta"] and header[-3:] == ["Vega", "Vol", "OI"]
        assert "Gamma" in header


# ---------------------------------------------------------------------------------- pilot tests


async def test_expiry_switching_with_brackets() -> None:
    runtime = goog_runtime()
    manager = runtime.chains
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("2")
        assert app.focused is _pane(app)
        before = manager.subscribed
        await pilot.press("right_square_bracket")
        await _settle(pilot)
        assert manager.expiry == "20160122"
        assert "◂ 2016-01-22" in screen_text(app) and "5/12" in screen_text(app)
        assert all(r.call.expiry == "20160122" for r in _pane(app).rows)
        assert not (manager.subscribed & before) and manager.budget.used_by(CHAIN_OWNER) == 20
        assert _pane(app).highlighted.expiry == "20160122"
        await pilot.press("left_square_bracket")
        await _settle(pilot)
        assert manager.expiry == "20160115" and "◂ 2016-01-15" in screen_text(app)
        # an expiry whose contracts are not installed offline: the reason is shown, nothing changes
        await pilot.press("right_square_bracket", "right_square_bracket")
        await _settle(pilot)
        assert manager.expiry == "20160122"
        assert "contracts not installed" in app.status_bar.message


async def test_window_recentres_when_the_underlying_moves() -> None:
    runtime = goog_runtime()
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        pane = _pane(app)
        assert "▶747.5◀" in pane.row_text(5)
        # a move within the hysteresis band: same window, the ATM mark follows the price
        runtime.quotes.update(GOOG.con_id, bid=748.9, ask=749.1)
        await _settle(pilot)
        assert _strikes(app)[5] == 747.5 and "▶750◀" in pane.row_text(6)
        # a real move: the window re-centres on the new ATM strike and the cursor follows it
        runtime.quotes.update(GOOG.con_id, bid=771.9, ask=772.1)
        await _settle(pilot)
        assert _strikes(app) == [760.0, 762.5, 765.0, 767.5, 770.0, 772.5, 775.0, 777.5, 780.0, 782.5]
        fill(runtime.chains)  # quotes of the newly subscribed contracts arrive
        await _settle(pilot)
        assert "▶772.5◀" in pane.row_text(5) and pane.cursor_row == 5
        assert pane.highlighted.strike == 772.5
        assert "GOOG 772.00" in screen_text(app)
        # every visible contract has a price again
        assert all("—" not in pane.row_text(i).split()[5:7] for i in range(3, 8))


async def test_greeks_toggle_between_ours_and_ibs_model() -> None:
    runtime = goog_runtime()
    manager = runtime.chains
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        pane = _pane(app)
        call = pane.rows[5].call
        ours = pane.row_text(5).split()
        assert ours[3] != "—"
        manager.store.update(call.con_id, model=OptionGreeks(0.2345, 0.5123, 0.0111, 0.7777, -0.3333, 13.0, 748.4))
        await pilot.press("c", "g")  # focus the chain, then toggle
        await _settle(pilot)
        assert pane.source == "ib" and "Greeks: IB model" in screen_text(app)
        ib = pane.row_text(5).split()
        assert ib[:4] == ["0.778", "-0.333", "0.512", "23.4"]
        assert pane.row_text(4).split()[3] == "—"  # no IB model Greeks sent for that one
        await pilot.press("g")
        await _settle(pilot)
        assert pane.source == "ours" and pane.row_text(5).split() == ours


async def _until(predicate, pilot, what: str, timeout: float = 15.0) -> None:
    """Let the app run until ``predicate()`` holds; fail naming ``what`` after ``timeout`` s."""
    deadline = _time.monotonic() + timeout
    while not predicate():
        assert _time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


async def test_cursor_moves_and_enter_selects_the_option_for_the_ticket() -> None:
    runtime = goog_runtime()
    selected: list = []

    seen: list = []  # the messages themselves: an id() could be reused once one is freed

    def hook(message) -> None:  # called at every node the message bubbles through
        if isinstance(message, InstrumentSelected) and message.instrument.sec_type == "OPT" \
                and not any(m is message for m in seen):
            seen.append(message)
            selected.append(message.instrument)

    app = _app(runtime)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await _settle(pilot)
        await pilot.press("c", "down", "right", "enter")
        await _until(lambda: selected, pilot, "the first selection")
        assert [i.key for i in selected] == ["GOOG 20160115 750 P"]
        assert selected[0].con_id == _pane(app).rows[6].put.con_id and selected[0].multiplier == 100
        assert runtime.chains.underlying.symbol == "GOOG"  # an option selection is not an underlying
        await pilot.press("h", "k", "k", "enter")
        await _until(lambda: len(selected) == 2, pilot, "the second selection")  # bubbles pane -> screen -> app
        assert [i.key for i in selected] == ["GOOG 20160115 750 P", "GOOG 20160115 745 C"]
        await pilot.press("end", "home")
        assert _pane(app).cursor_row == 0


async def test_wider_and_narrower_windows() -> None:
    runtime = goog_runtime()
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("c", "plus", "plus")
        await _settle(pilot)
        assert len(_strikes(app)) == 14 and "14 strikes" in screen_text(app)
        assert runtime.chains.budget.used_by(CHAIN_OWNER) == 28
        await pilot.press("minus", "minus", "minus")
        await _settle(pilot)
        assert len(_strikes(app)) == 8 and runtime.chains.budget.used_by(CHAIN_OWNER) == 16
        assert 747.5 in _strikes(app)


async def test_smile_view_plots_iv_by_strike() -> None:
    runtime = goog_runtime(count=30)
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("c", "s")
        await _settle(pilot)
        text = screen_text(app)
        assert "IV% by strike (ours)" in text and "●" in text and "┊" in text
        assert "710" in text and "782.5" in text  # x axis: the window's lowest and highest strikes
        # the smirk: the leftmost plotted point (deep OTM put) is higher than the ATM region
        lines = [_pane(app).line_text(y) for y in range(2, _pane(app).size.height - 2)]
        rows_with_dot = [i for i, line in enumerate(lines) if "●" in line]
        first_col = {i: lines[i].index("●") for i in rows_with_dot}
        leftmost_row = min(first_col, key=first_col.get)
        assert leftmost_row < max(rows_with_dot)  # higher on screen than the lowest IV
        await pilot.press("s")
        await _settle(pilot)
        assert "IV% by strike" not in screen_text(app) and "Strike" in screen_text(app)


async def test_stale_quotes_are_marked() -> None:
    runtime = goog_runtime()
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        pane = _pane(app)
        assert "*" not in pane.row_text(5)
        runtime.clock.advance(31)  # no update for 31 s: older than DESK_CHAIN_STALE_SECONDS (30)
        call = pane.rows[5].call
        runtime.chains.store.update(call.con_id, bid=12.0, time=runtime.clock.now())  # the call is fresh
        await _settle(pilot)
        text = pane.row_text(5)
        left, right = text.split("▶747.5◀")
        assert not left.rstrip().endswith("*") and right.lstrip().startswith("*")


async def test_budget_message_is_shown_when_lines_run_out() -> None:
    runtime = goog_runtime(count=10, lines=9)
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert len(_strikes(app)) == 4
        expected = "GOOG chain: 4 of 10 strikes shown, the market data lines are used up"
        assert app.status_bar.message.startswith(expected) and app.status_bar.message_level == "warning"
        assert expected in screen_text(app)


async def test_help_lists_the_chain_keys() -> None:
    app = _app(goog_runtime())
    async with app.run_test(size=(120, 60)) as pilot:
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "Option chain" in text and "Toggle Greeks: ours / IB's model" in text and "Next expiry" in text


async def test_pane_without_a_chain_manager_says_so() -> None:
    runtime = FakeRuntime(make_settings())  # like the lead's fixtures: no .chains
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert "Option chain: not available" in screen_text(app)
        await pilot.press("c", "right_square_bracket", "g", "enter")
        assert app.is_running


# ---------------------------------------------------------------------------------- snapshots


# The chain pane is maximized (z) in the snapshots, so they show the chain alone and do not
# change when other panes are added to the desk's layout.


def test_chain_snapshot(snap_compare):
    """The real GOOG 2016-01-15 chain at 10:30 ET on 2015-12-24, frozen clock, our Greeks."""

    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("c", "z")
        await _settle(pilot)

    # 28 strikes fit the maximized pane without scrolling (nothing depends on scroll timing)
    assert snap_compare(_app(goog_runtime(count=28)), terminal_size=SIZE, run_before=run_before)


def test_chain_smile_snapshot(snap_compare):
    """The smile of the same expiry over 30 strikes."""

    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("c", "z", "s")
        await _settle(pilot)

    assert snap_compare(_app(goog_runtime(count=30)), terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------------------------- real stack


async def test_chain_over_the_real_stack(tmp_path):
    """Runtime + embedded simulator + ib_async: the first watchlist symbol's chain streams."""
    from desk.runtime import Runtime
    from desk.settings import Mode, Settings

    settings = Settings(mode=Mode.SIM, record=False, watchlist=["SPY", "AAPL"], chain_strikes="8", _env_file=None)
    runtime = Runtime(settings)
    app = _app(runtime)
    async with app.run_test(size=SIZE) as pilot:
        manager = runtime.chains

        async def wait_for(predicate, timeout=10.0):
            deadline = _time.monotonic() + timeout
            while _time.monotonic() < deadline and not predicate():
                await pilot.pause(0.1)
            return predicate()

        def quoted() -> bool:
            rows = _pane(app).rows
            return len(rows) == 8 and all(
                (q := manager.quote(r.call)) is not None and q.bid > 0 and q.ours is not None and q.ours.iv == q.ours.iv
                for r in rows
            )

        assert await wait_for(quoted), screen_text(app)
        assert manager.underlying.symbol == "SPY"
        assert runtime.broker.lines.describe() == "market data lines: 18 of 100 in use (watchlist 2, chain 16)"
        cells = _pane(app).row_text(4).split()
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
        SmilePoint(90.0, 0.30, True), SmilePoint(95.0, 0.25, True), SmilePoint(100.0, 0.20, True),
        SmilePoint(105.0, 0.22, True), SmilePoint(110.0, 0.26, True), SmilePoint(100.0, 0.21, False),
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


async def test_tab_and_number_keys_move_the_focus() -> None:
    app = _app(goog_runtime())
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
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
    from desk.runtime import Runtime
    from desk.settings import Mode, Settings
    from desk.sim import SimGateway
    from desk.sim.replay_market import ReplayMarket
    from goog_chain import goog_replay_data

    market = ReplayMarket(goog_replay_data(AT))
    gw = SimGateway(market=market, clock=market.clock, option_source=market.options, speed=60.0)
    await gw.start()
    settings = Settings(mode=Mode.SIM, ib_port=gw.port, record=False, watchlist=["GOOG"], chain_strikes="30",
                        _env_file=None)
    runtime = Runtime(settings)
    app = _app(runtime)
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
