"""The engine's start (desk.engine.runtime): the first quote does not wait for the
database layer, nothing the broker receives before the recorder opens is lost, the order
path still reconciles after the connect, and a bad database URL is refused in one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from desk.engine.runtime import Runtime, SettingsRefused
from desk.settings import load_settings
from desk.store import count_ticks


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _settings(tmp_path: Path, **kw: object):
    base: dict[str, object] = dict(
        mode="sim",
        record=True,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL", "QQQ"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "override",
        spool_dir=tmp_path / "spool",
        engine_api=False,
    )
    base.update(kw)
    # store=False: as the engine process loads them (the runtime checks the URL itself)
    return load_settings(env_file=None, store=False, **base)


def test_importing_the_runtime_loads_no_database_layer_or_scipy() -> None:
    code = "import sys, desk.engine.runtime; print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert "ib_async" in loaded and "numpy" in loaded  # the check sees imports
    assert not {"sqlalchemy", "psycopg", "scipy", "pandas", "exchange_calendars"} & set(loaded), loaded


async def test_every_tick_from_the_first_is_recorded_and_orders_reconcile(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    rt = Runtime(settings)
    start = asyncio.ensure_future(rt.start())
    try:
        await wait_for(lambda: any(q.bid for q in rt.quotes.quotes()), "a first quote")
        await start
        assert rt.recorder is not None
        # the order path reconciled after the connect (its hook waited for it to start)
        await wait_for(lambda: rt.orders.ready, "the order path ready")
        await wait_for(lambda: rt.broker.ticks_recorded > 200, "ticks")
    finally:
        await rt.stop()
    # every tick the broker handed to its sinks, the held ones included, is in the table
    assert count_ticks(settings.database_url) == rt.broker.ticks_recorded


async def test_a_bad_database_url_is_refused_in_one_line_and_stops_everything(tmp_path: Path) -> None:
    rt = Runtime(
        _settings(
            tmp_path,
            database_url="postgresql+psycopg://me:s3cret@db:notaport/x",
            engine_api=True,
            engine_socket=tmp_path / "s" / "engine.sock",
        )
    )
    with pytest.raises(SettingsRefused) as info:
        await rt.start()
    assert str(info.value) == "DESK_DATABASE_URL: the port is not a number"
    assert rt.api is None and rt.sim is None and rt.recorder is None
    assert not (tmp_path / "s" / "engine.sock").exists()
    assert not rt.broker.ib.isConnected()
