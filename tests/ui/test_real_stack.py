"""The desk over the REAL stack: Runtime, embedded simulator, ib_async, broker, SQLite recorder."""

from __future__ import annotations

import asyncio
import time

from desk.domain import ConnectionState
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings
from ui_testlib import desk_app
from screen_text import screen_text


def _settings(tmp_path) -> Settings:
    return Settings(
        mode=Mode.SIM,
        database_url=f"sqlite:///{tmp_path / 'ticks.sqlite3'}",
        spool_dir=tmp_path / "spool",
        record=True,
        watchlist=["SPY", "AAPL", "MSFT"],
        _env_file=None,
    )


async def _wait_for(predicate, pilot, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(0.1)
    return predicate()


async def test_quotes_move_in_the_watchlist_and_are_recorded(tmp_path):
    runtime = Runtime(_settings(tmp_path))
    app = desk_app(runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        watchlist = app.watchlist

        def quoted() -> bool:
            rows = [watchlist.row_text(i).split() for i in range(len(watchlist.instruments))]
            return len(rows) == 3 and all(row[1] != "—" and row[2] != "—" for row in rows)

        assert await _wait_for(quoted, pilot), screen_text(app)
        assert [i.symbol for i in watchlist.instruments] == ["SPY", "AAPL", "MSFT"]
        # quotes flow as soon as the lines are re-requested; CONNECTED follows once the
        # connect hooks (order and execution recovery) are done
        assert await _wait_for(lambda: runtime.broker.state is ConnectionState.CONNECTED, pilot), runtime.broker.state
        first = watchlist.row_text(0)
        assert await _wait_for(lambda: watchlist.row_text(0) != first, pilot), "SPY did not move"
        assert "● connected" in screen_text(app)

        # an unknown symbol: the gateway's error, nothing else changes
        app.add_symbol("XYZQ")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.status_bar.message.startswith("XYZQ: unknown symbol (IB error 200")
        assert [i.symbol for i in watchlist.instruments] == ["SPY", "AAPL", "MSFT"]

        # a known one is qualified, subscribed and starts quoting
        app.add_symbol("AMD")
        await app.workers.wait_for_complete()
        assert await _wait_for(lambda: len(watchlist.instruments) == 4 and watchlist.row_text(3).split()[1] != "—", pilot)
        assert watchlist.highlighted.symbol == "AMD"

        assert await _wait_for(lambda: runtime.recorder is not None and runtime.recorder.stats.written > 0, pilot)
        await pilot.press("q")
        await asyncio.sleep(0)
    assert runtime.started is False  # stop() ran: recorder flushed and closed, simulator stopped
