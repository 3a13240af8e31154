"""A terminal view attached to an engine (``desk --attach``): the real DeskApp on a
:class:`~desk.engine.view.RemoteDesk`, over the engine API's Unix socket, to the real
engine (Runtime on its embedded simulator through ib_async). Two views on one engine,
keys that act in the engine, and an engine that stops and comes back."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desk.domain import ConnectionState
from desk.engine.local import LocalEngine
from desk.engine.view import RemoteDesk
from desk.order_command import parse_terms
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings
from desk.ui import create_app

SIZE = (160, 50)


def _settings(tmp_path: Path, socket: Path, **overrides) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "override",
        spool_dir=tmp_path / "spool",
        engine_socket=socket,
        workspace_file=tmp_path / "workspace.json",
        _env_file=None,
    )
    base.update(overrides)
    return Settings(**base)


async def _until(predicate, what, timeout: float = 30.0, pilot=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what() if callable(what) else what}"
        if pilot is not None:
            await pilot.pause(0.02)
        else:
            await asyncio.sleep(0.02)


async def _engine(tmp_path: Path, socket: Path, **overrides) -> Runtime:
    rt = Runtime(_settings(tmp_path, socket, **overrides))
    await rt.start()
    await _until(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, "the engine connected")
    assert rt.api is not None, rt.api_problem
    return rt


@pytest.fixture
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sock") / "engine.sock"


def _view(tmp_path: Path, socket: Path):
    desk = RemoteDesk(socket, client="test view")
    return desk, create_app(desk, settings=_settings(tmp_path, socket), cursor_blink=False, animations=False)


async def test_a_view_shows_the_engines_quotes_orders_and_positions_and_its_keys_act_there(
    tmp_path: Path, socket_path: Path
) -> None:
    engine = await _engine(tmp_path, socket_path)
    desk, app = _view(tmp_path, socket_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await _until(lambda: [i.symbol for i in app.watchlist.instruments] == ["SPY", "AAPL"], "the watchlist", pilot=pilot)
            assert desk.mode == "sim" and desk.endpoint == engine.endpoint
            # the view's quotes are the engine's (sent as deltas of the changed rows)
            spy = engine.broker.watchlist[0]

            def same_quote() -> bool:
                ours, theirs = desk.quotes.get(spy.con_id), engine.quotes.get(spy.con_id)
                return (
                    ours is not None
                    and theirs is not None
                    and ours.bid > 0
                    and ours.seq > 0
                    and (ours.bid, ours.ask) == (theirs.bid, theirs.ask)
                )

            await _until(same_quote, "SPY's quote in the view", pilot=pilot)

            # the option chain is the engine's, priced by the engine's analytics
            chain = desk.chains
            await _until(
                lambda: (
                    chain.underlying is not None
                    and chain.underlying.symbol == "SPY"
                    and chain.rows
                    and any(
                        (q := chain.quote(r.call)) is not None and q.ours is not None and math.isfinite(q.ours.iv)
                        for r in chain.rows
                    )
                ),
                "SPY's chain with desk's IVs in the view",
                pilot=pilot,
            )
            assert chain.expiry == engine.chains.expiry and [r.strike for r in chain.rows] == [
                r.strike for r in engine.chains.rows
            ]
            some = next(r.call for r in chain.rows if r.call is not None)
            await _until(
                lambda: chain.quote(some).ours == engine.chains.quote(some).ours, "the engine's IV and Greeks", pilot=pilot
            )
            first_expiry = chain.expiry
            app.chain.focus()
            await pilot.press("right_square_bracket")
            await _until(
                lambda: engine.chains.expiry != first_expiry and chain.expiry == engine.chains.expiry and chain.rows,
                "the next expiry, chosen in the view",
                pilot=pilot,
            )
            await pilot.press("plus")
            await _until(lambda: len(chain.rows) > 20, lambda: f"a wider window ({chain.spec})", pilot=pilot)
            app.watchlist.focus()

            # an order placed by another client of the engine shows in the view's blotter,
            # its fill in the positions
            terms = parse_terms("BUY 3 AAPL MKT".split())
            report = await LocalEngine(engine).place(terms)
            assert report.sent, report.reasons
            await _until(
                lambda: (row := desk.order_rows.get(report.order_ref)) is not None and row.status == "Filled",
                "the fill in the view",
                pilot=pilot,
            )
            await _until(
                lambda: any(r.instrument.symbol == "AAPL" and r.quantity == 3 for r in desk.positions().rows),
                "the AAPL position in the view",
                pilot=pilot,
            )
            await _until(
                lambda: "Filled" in app.blotter.shown.get(report.order_ref, ()), "the fill in the blotter pane", pilot=pilot
            )

            # the view's keys act in the engine: kill switch, then reset
            await pilot.press("ctrl+k")
            await _until(lambda: engine.orders.gate.kill_switch.state().engaged, "the engine's kill switch", pilot=pilot)
            await _until(lambda: desk.trading().engaged, "the view's badge", pilot=pilot)
            await pilot.press("ctrl+r")
            await pilot.pause()
            await pilot.press("y")
            await _until(lambda: not engine.orders.gate.kill_switch.state().restricted, "the reset", pilot=pilot)

            # a working order moved by a tick from the view's blotter, then cancelled
            limit = parse_terms("BUY 1 SPY LMT 1 DAY".split())
            working = await LocalEngine(engine).place(limit)
            assert working.sent, working.reasons
            await _until(
                lambda: (row := desk.order_rows.get(working.order_ref)) is not None and row.working,
                "the working order in the view",
                pilot=pilot,
            )
            moved = await desk.modify(working.order_ref, limit_price=1.01)
            assert moved.sent, moved.reasons
            await _until(
                lambda: engine.orders.rows[working.order_ref].limit_price == pytest.approx(1.01),
                "the modification at the engine",
                pilot=pilot,
            )
            await desk.cancel(working.order_ref)
            await _until(lambda: not desk.order_rows[working.order_ref].working, "the cancel in the view", pilot=pilot)

            # the order ticket in the view: the engine's checks, then the engine sends it
            from desk.ui.screens.ticket import TicketScreen

            app.watchlist.focus()
            await pilot.press("b")
            await _until(lambda: isinstance(app.screen, TicketScreen), "the ticket", pilot=pilot)
            ticket = app.screen
            await _until(lambda: ticket.report is not None, "the engine's preview in the ticket", pilot=pilot)
            assert [c.name for c in ticket.report.checks] == [c.name for c in engine.orders.preview(ticket.model.intent()).checks]
            assert ticket.report.intent == ticket.model.intent() and not ticket.report.blocked, ticket.report.reasons
            await pilot.press("enter")
            await _until(lambda: not isinstance(app.screen, TicketScreen), "the ticket sent", pilot=pilot)
            assert ticket.result.sent, ticket.result.reasons
            assert engine.orders.rows[ticket.result.order_ref].instrument == spy
            await _until(lambda: ticket.result.order_ref in desk.order_rows, "the ticket's order in the view", pilot=pilot)

            # a symbol added from the view is in the engine's watchlist
            added = await desk.add_symbol("MSFT")
            assert added.symbol == "MSFT"
            assert "MSFT" in [i.symbol for i in engine.broker.watchlist]
            await _until(lambda: "MSFT" in [i.symbol for i in app.watchlist.instruments], "MSFT in the view", pilot=pilot)
            with pytest.raises(Exception, match="ZZZZ"):
                await desk.add_symbol("ZZZZ")
            await pilot.press("q")
        # quitting the view detached it and left the engine running and serving
        assert engine.started and engine.broker.state is ConnectionState.CONNECTED
        await _until(lambda: engine.api is not None and engine.api.views == 0, "the view detached")
        check = RemoteDesk(socket_path)
        await check.start()
        await _until(lambda: check.snapshots == 1 and "MSFT" in [i.symbol for i in check.watchlist], "a new view's snapshot")
        await check.stop()
    finally:
        await engine.stop()


async def test_two_views_see_one_engine_and_a_view_re_attaches_after_an_engine_restart(tmp_path: Path, socket_path: Path) -> None:
    engine = await _engine(tmp_path, socket_path)
    one, two = RemoteDesk(socket_path, client="one"), RemoteDesk(socket_path, client="two")
    events: list[object] = []
    one.add_listener(events.append)
    try:
        await one.start()
        await two.start()
        await _until(
            lambda: one.snapshots == 1 and two.snapshots == 1 and len(one.watchlist) == 2 and len(two.watchlist) == 2,
            "both snapshots",
        )
        assert engine.api is not None and engine.api.views == 2
        report = await one.kill_switch("halt", "from view one")
        assert report.state == "halted"
        await _until(
            lambda: two.trading().engaged and two.trading().reason == "from view one", "view two sees view one's kill switch"
        )
        await one.kill_switch("reset", "test")
        await _until(lambda: not two.trading().restricted, "the reset in view two")

        await engine.stop()
        await _until(lambda: one.state is ConnectionState.RECONNECTING, "view one noticing the engine stopped")
        assert any("stopped; re-attaching" in getattr(e, "detail", "") for e in events)
        with pytest.raises(ConnectionError):
            await one.cancel_all()

        engine = await _engine(tmp_path, socket_path)
        await _until(lambda: one.snapshots == 2 and one.state is ConnectionState.CONNECTED, "view one re-attached")
        await _until(lambda: two.snapshots == 2, "view two re-attached")
        assert one.endpoint == engine.endpoint
        assert any("re-attached to the engine" in getattr(e, "text", "") for e in events)
        spy = engine.broker.watchlist[0]
        await _until(
            lambda: (q := one.quotes.get(spy.con_id)) is not None and math.isfinite(q.bid) and q.bid > 0,
            "quotes from the new engine",
        )
    finally:
        await one.stop()
        await two.stop()
        await engine.stop()


async def test_the_engines_scanner_finds_an_injected_mispricing_and_the_view_lists_it(tmp_path: Path, socket_path: Path) -> None:
    engine = await _engine(tmp_path, socket_path, watchlist=["SPY"], sim_mispricing_rate=0.0001)
    desk, app = _view(tmp_path, socket_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            chains = engine.chains
            await _until(
                lambda: chains.rows and all((q := chains.quote(r.call)) is not None and q.time is not None for r in chains.rows),
                "the engine's chain quoted",
                pilot=pilot,
            )
            source = engine.sim.gateway.options.source
            source.duration = 600.0
            source.inject()
            pane = app.opportunities

            def listed() -> bool:
                if not source.injections:
                    return False
                con_id = source.injections[0].con_id
                return any(
                    t.state == "live" and t.opportunity.riskless and con_id in {leg.con_id for leg in t.opportunity.legs}
                    for t in pane.rows
                )

            await _until(listed, "the mispricing in the view's opportunities pane", pilot=pilot)
            assert pane.display and desk.opportunities.enabled and desk.opportunities.simulated
            key = next(t.key for t in pane.rows if t.state == "live")
            assert desk.opportunities.get(key) is not None
            assert engine.opportunities.live.get(key) is not None  # the engine's own scan found it
    finally:
        await desk.stop()
        await engine.stop()


def test_attach_without_an_engine_is_one_line_and_exit_2(tmp_path: Path) -> None:
    socket = tmp_path / "none.sock"
    proc = subprocess.run(
        [sys.executable, "-m", "desk", "--attach", str(socket)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"desk: no engine is running on {socket} (start one with `desk --headless`, or run `desk`)")


async def test_a_view_attaches_over_loopback_tcp_with_the_engines_token(tmp_path: Path, socket_path: Path) -> None:
    """DESK_ENGINE_TCP_PORT on the engine, ``desk --attach 127.0.0.1:PORT`` in the view:
    the same desk over TCP, the token read from beside the engine's socket."""
    import socket as so

    from desk.engine.client import parse_address

    probe = so.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a free port (another process could take it before the engine: unlikely here)
    engine = await _engine(tmp_path, socket_path, engine_tcp_port=port)
    address = parse_address(f"127.0.0.1:{port}", socket=socket_path)
    desk = RemoteDesk(address, client="tcp view")
    app = create_app(desk, settings=_settings(tmp_path, socket_path), cursor_blink=False, animations=False)
    try:
        assert engine.api.tcp_address == ("127.0.0.1", port)
        async with app.run_test(size=SIZE) as pilot:
            await _until(lambda: [i.symbol for i in app.watchlist.instruments] == ["SPY", "AAPL"], "the watchlist", pilot=pilot)
            spy = engine.broker.watchlist[0]
            await _until(
                lambda: (q := desk.quotes.get(spy.con_id)) is not None and q.bid > 0, "SPY's quote over TCP", pilot=pilot
            )
            assert engine.api.views == 1 and desk.endpoint == engine.endpoint
        # a view with the wrong token: one line, exit 2, before any screen is drawn
        env = {**os.environ, "DESK_ENGINE_SOCKET": str(socket_path), "DESK_ENGINE_TOKEN": "0" * 32}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "desk",
            "--attach",
            f"127.0.0.1:{port}",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        assert err.decode().strip() == (
            f"desk: the engine on 127.0.0.1:{port} refused this view: wrong engine token: "
            f"a TCP view sends the one in {socket_path.with_suffix('.token')} "
            f"(or DESK_ENGINE_TOKEN)"
        )
    finally:
        await engine.stop()


def test_attach_to_a_port_that_is_not_loopback_or_has_no_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "DESK_ENGINE_SOCKET": str(tmp_path / "engine.sock"), "DESK_ENGINE_TOKEN": ""}
    for address, line in (
        ("10.1.2.3:7001", "desk: engine address '10.1.2.3:7001': an engine listens on loopback only (127.0.0.1, localhost, ::1)"),
        (
            "127.0.0.1:7001",
            f"desk: engine address '127.0.0.1:7001': no token (DESK_ENGINE_TOKEN is empty and "
            f"{tmp_path / 'engine.token'} cannot be read)",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "desk", "--attach", address],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert proc.returncode == 2 and proc.stderr.strip() == line


def test_the_attached_view_loads_no_ib_sql_or_calendar_code() -> None:
    """What ``desk --attach`` imports (the CLI, its settings, the app, the remote backend)
    leaves out ib_async, SQLAlchemy, exchange_calendars, the recorder and the engine's
    composition."""
    code = (
        "import sys, desk.cli, desk.ui.app, desk.engine.view; "
        "rc = desk.cli.main(['--attach', '/nonexistent/engine.sock']); "  # settings loaded as the view loads them
        "assert rc == 2, rc; "
        "print(','.join(sorted(m for m in ('ib_async', 'sqlalchemy', 'psycopg', 'exchange_calendars', 'pandas', "
        "'redis', 'desk.engine.runtime', 'desk.broker', 'desk.store', 'desk.orders', 'desk.engine.server', "
        "'desk.engine.operations') if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
