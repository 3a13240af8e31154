"""The desk over the real stack for the trading tests: Runtime with its embedded simulator
(ib_async to desk.sim over the TWS protocol), SQLite audit log, the app from the factory."""

from __future__ import annotations

import dataclasses
import time
from contextlib import asynccontextmanager
from pathlib import Path

from desk.domain import ConnectionState, Instrument
from desk.risk import ComboLeg, OrderIntent
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings
from ui_testlib import desk_app

SIZE = (120, 40)


def trading_settings(tmp_path: Path, **overrides) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "override",
        _env_file=None,
    )
    base.update(overrides)
    return Settings(**base)


async def wait_for(predicate, pilot, what="condition", timeout: float = 30.0) -> None:
    """Poll ``predicate`` until true; on timeout fail with ``what`` (a string, or a callable
    giving the text, e.g. what the screen shows then)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what() if callable(what) else what}"
        await pilot.pause(0.05)


@asynccontextmanager
async def sim_desk(tmp_path: Path, *, size=SIZE, clock=None, message_hook=None, quoted: bool = True, **overrides):
    """(app, pilot, runtime): the desk from the factory over the real engine
    (:class:`Runtime` and its embedded simulator, ib_async over the TWS protocol) with
    ``trading_settings(tmp_path, **overrides)``; with ``quoted`` (the default) it yields once
    the gateway is connected, the orders reconciled and every watchlist row quoted."""
    runtime = Runtime(trading_settings(tmp_path, **overrides), clock=clock)
    app = desk_app(runtime)
    async with app.run_test(size=size, message_hook=message_hook) as pilot:
        if quoted:
            await until_quoted(app, pilot, runtime)
        yield app, pilot, runtime


async def until_quoted(app, pilot, runtime: Runtime) -> None:
    """Wait until the gateway is connected, the orders reconciled and every row of the
    engine's watchlist is on screen with a bid and an ask."""
    await wait_for(
        lambda: runtime.broker.state is ConnectionState.CONNECTED and runtime.orders.ready, pilot, "connected and reconciled"
    )
    await wait_for(lambda: len(app.watchlist.instruments) == len(runtime.broker.watchlist), pilot, "watchlist rows")

    def every_row_quoted() -> bool:
        return all((q := runtime.quotes.get(i.con_id)) is not None and q.bid > 0 and q.ask > 0 for i in runtime.broker.watchlist)

    await wait_for(every_row_quoted, pilot, "quotes")


async def after_two_analytics_runs(pilot) -> None:
    """Wait for two more runs of the engine's analytics (chain IV/Greeks, the scan): a quote
    that arrived before this call has then been priced (a contract can carry Greeks
    computed before its last quote, from the rest of the window)."""
    analytics = pilot.app.desk.runtime.analytics
    start = analytics.runs
    await wait_for(lambda: analytics.runs >= start + 2, pilot, "two runs of the engine's analytics")


@asynccontextmanager
async def trading_desk(tmp_path: Path, **overrides):
    """(app, pilot, runtime) connected, reconciled, with SPY and AAPL quoting."""
    async with sim_desk(tmp_path, **overrides) as (app, pilot, runtime):
        yield app, pilot, runtime


def spy_of(rt) -> Instrument:
    return next(i for i in rt.broker.watchlist if i.symbol == "SPY")


def conversion(rt, action: str = "BUY") -> OrderIntent:
    """BUY 100 SPY, SELL 1 ATM call, BUY 1 ATM put of the chain's expiry, 0.50 through the
    legs' net ask (marketable)."""
    chains = rt.chains
    spy = spy_of(rt)
    call, put = chains.contracts.calls[chains.atm_strike], chains.contracts.puts[chains.atm_strike]
    legs = (ComboLeg(spy, "BUY", 100), ComboLeg(call, "SELL", 1), ComboLeg(put, "BUY", 1))
    bag = dataclasses.replace(spy, sec_type="BAG", con_id=0, multiplier=100)
    book = rt.orders.preview(OrderIntent(bag, action, 1, "MKT", legs=legs))
    return OrderIntent(bag, action, 1, "LMT", limit_price=round(book.ask + 0.50, 2), legs=legs)


async def place_orders(app, pilot) -> dict[str, str]:
    """Through the engine's order service: a GTC buy 5 below the bid (works), 50 AAPL at
    the ask (fills), a short sale of GME (the simulator rejects it: hard to borrow) and the
    SPY conversion (fills). Returns their orderRefs by name once each has its status."""
    rt = app.desk.runtime
    spy = spy_of(rt)
    aapl = next(i for i in rt.broker.watchlist if i.symbol == "AAPL")
    gme = await rt.broker.watch_contract("GME")
    await wait_for(lambda: (q := rt.quotes.get(gme.con_id)) is not None and q.bid > 0, pilot, "GME quotes")
    intents = {
        "working": OrderIntent(spy, "BUY", 10, "LMT", limit_price=round(rt.quotes.get(spy.con_id).bid - 5.0, 2), tif="GTC"),
        "filled": OrderIntent(aapl, "BUY", 50, "LMT", limit_price=rt.quotes.get(aapl.con_id).ask),
        "rejected": OrderIntent(gme, "SELL", 10, "LMT", limit_price=rt.quotes.get(gme.con_id).bid),
        "combo": conversion(rt),
    }
    refs = {}
    for name, intent in intents.items():
        result = await rt.orders.place(intent)
        assert result.sent, (name, result.reasons)
        refs[name] = result.client_order_id
    want = {"working": "Submitted", "filled": "Filled", "rejected": "Rejected", "combo": "Filled"}
    rows = rt.orders.rows
    await wait_for(
        lambda: all(rows.get(refs[n]) is not None and rows[refs[n]].status == s for n, s in want.items()),
        pilot,
        lambda: f"the orders' statuses: { {n: rows[r].status for n, r in refs.items() if r in rows} }",
    )
    return refs


async def settled_orders(pilot) -> dict[str, str]:
    """On a settled snapshot desk (``snapshot_app.settle``): :func:`place_orders`, then wait
    until the positions, their P&L and the blotter show them; clears the order notices."""
    from snapshot_app import settle
    from desk.ui.widgets.blotter import blotter_cells

    await settle(pilot)
    refs = await place_orders(pilot.app, pilot)
    app = pilot.app
    rt = app.desk.runtime
    # the positions and P&L of the two fills (reqPositions, reqPnLSingle) and the rows on screen
    await wait_for(
        lambda: (
            len([r for r in app.positions.rows.values() if r.quantity]) == 4
            and all(r.daily_pnl == r.daily_pnl for r in app.positions.rows.values())
        ),
        pilot,
        "the four positions with their P&L",
    )
    await wait_for(
        lambda: all(app.blotter.shown.get(ref) == blotter_cells(rt.orders.rows[ref]) for ref in refs.values()),
        pilot,
        "the blotter's rows",
    )
    app.status_bar.set_message("")  # the last order notice: which came last is a race of the reports
    app.clear_notifications()  # the rejection's toast (it times out on the wall clock)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return refs
