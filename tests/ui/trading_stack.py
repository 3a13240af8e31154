"""The desk over the real stack for the trading tests: Runtime with its embedded simulator
(ib_async to desk.sim over the TWS protocol), SQLite audit log, the app from the factory."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path

from desk.domain import ConnectionState
from desk.runtime import Runtime
from desk.settings import Mode, Settings
from ui_testlib import desk_app

SIZE = (120, 40)


def trading_settings(tmp_path: Path, **overrides) -> Settings:
    base = dict(
        mode=Mode.SIM, record=False, database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}", watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill", live_override_file=tmp_path / "override", _env_file=None,
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
    await wait_for(lambda: runtime.broker.state is ConnectionState.CONNECTED and runtime.orders.ready, pilot,
                   "connected and reconciled")
    await wait_for(lambda: len(app.watchlist.instruments) == len(runtime.broker.watchlist), pilot, "watchlist rows")

    def every_row_quoted() -> bool:
        return all((q := runtime.quotes.get(i.con_id)) is not None and q.bid > 0 and q.ask > 0
                   for i in runtime.broker.watchlist)

    await wait_for(every_row_quoted, pilot, "quotes")


@asynccontextmanager
async def trading_desk(tmp_path: Path, **overrides):
    """(app, pilot, runtime) connected, reconciled, with SPY and AAPL quoting."""
    async with sim_desk(tmp_path, **overrides) as (app, pilot, runtime):
        yield app, pilot, runtime
