"""The workspace kept between runs (desk.workspace): watchlist and theme, through the real
app and the real runtime on the embedded simulator."""

from __future__ import annotations

import json

from trading_stack import trading_settings, wait_for

from desk.domain import ConnectionState
from desk.engine.runtime import Runtime
from desk.settings import Settings
from ui_testlib import desk_app
from desk.workspace import apply_workspace, load_workspace


async def _run(settings: Settings, actions) -> None:
    settings, problem = apply_workspace(settings)
    app = desk_app(Runtime(settings))
    if problem:
        app.warn_at_start(problem)
    async with app.run_test(size=(120, 40)) as pilot:
        # the watchlist qualified and the gateway connected (adding a symbol before is refused)
        await wait_for(
            lambda: len(app.watchlist.instruments) == len(settings.watchlist) and app.desk.state is ConnectionState.CONNECTED,
            pilot,
            "the watchlist, connected",
        )
        await actions(app, pilot)


async def test_the_watchlist_and_theme_survive_a_restart(tmp_path) -> None:
    path = tmp_path / "config" / "workspace.json"
    base = trading_settings(tmp_path).model_copy(update={"workspace_file": path})
    # explicit settings of the test stack: take the defaults' place as a user would have them
    first = Settings(**{**base.model_dump(exclude={"watchlist", "theme"}), "_env_file": None})
    first = first.model_copy(update={"watchlist": ["SPY", "AAPL"]})

    async def change(app, pilot):
        app.add_symbol("MSFT")
        await wait_for(
            lambda: [i.symbol for i in app.watchlist.instruments] == ["SPY", "AAPL", "MSFT"],
            pilot,
            lambda: f"MSFT; events: {[e.text for e in app.events.events][-6:]}",
        )
        app.theme = "desk-light"
        await wait_for(lambda: load_workspace(path)[0].theme == "desk-light", pilot, "the theme saved")

    await _run(first, change)
    saved = json.loads(path.read_text())
    assert saved["watchlist"] == ["SPY", "AAPL", "MSFT"] and saved["theme"] == "desk-light"

    second = Settings(**{**base.model_dump(exclude={"watchlist", "theme"}), "_env_file": None})

    async def check(app, pilot):
        assert [i.symbol for i in app.watchlist.instruments] == ["SPY", "AAPL", "MSFT"]
        assert app.theme == "desk-light"

    await _run(second, check)


def test_explicit_settings_win_and_a_bad_file_is_one_line(tmp_path) -> None:
    path = tmp_path / "workspace.json"
    path.write_text('{"watchlist": ["QQQ"], "theme": "desk-light"}')
    explicit = Settings(watchlist=["SPY"], workspace_file=path, _env_file=None)
    applied, problem = apply_workspace(explicit)
    assert applied.watchlist == ["SPY"] and applied.theme == "desk-light" and problem is None
    path.write_text("{not json")
    applied, problem = apply_workspace(Settings(workspace_file=path, _env_file=None))
    assert problem is not None and problem.startswith(f"workspace {path}: ") and "\n" not in problem
    assert path.read_text() == "{not json"  # kept for the user to look at
