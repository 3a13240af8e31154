"""The apps of the snapshot tests: built by the factory, deterministic by construction.

:func:`real_snapshot_app`: the desk over the real engine (Runtime, its embedded simulator
with seed 7 and its market paused at the opening quotes, ib_async over the TWS protocol),
frozen clock (09:45:00 ET, shared with the simulator), the simulator on a fixed port;
:func:`settle` waits until it is connected, quoted and the option chain priced.

No cursor blink, no animation. Run one by hand to look at it: ``python tests/ui/snapshot_app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ui_testlib import desk_app  # noqa: E402
from desk.ui import DeskApp  # noqa: E402


#: the embedded simulator's port in snapshots (it is on screen, in the status bar)
SNAPSHOT_SIM_PORT = 47811
#: the port a LIVE snapshot's desk tries (nothing listens there)
SNAPSHOT_LIVE_PORT = 47812


def real_snapshot_app(tmp_path: Path, **settings_overrides) -> DeskApp:
    """The desk over the real engine, its simulated market standing at seed 7's opening
    quotes, every clock frozen at ``FROZEN_AT``; ``settings_overrides`` as Settings fields."""
    from desk.domain import FrozenClock
    from desk.engine.runtime import Runtime
    from desk.settings import DEFAULT_WATCHLIST
    from trading_stack import trading_settings
    from ui_testlib import FROZEN_AT

    overrides = dict(watchlist=DEFAULT_WATCHLIST, sim_paused=True, sim_port=SNAPSHOT_SIM_PORT)
    overrides.update(settings_overrides)
    return desk_app(Runtime(trading_settings(tmp_path, **overrides), clock=FrozenClock(FROZEN_AT)))


async def settle(pilot) -> None:
    """Wait until the desk is connected, every watchlist row and the option chain's window
    quoted and priced, the orders reconciled, and nothing is left to paint."""
    from desk.domain import ConnectionState
    from trading_stack import after_two_analytics_runs, until_quoted, wait_for

    app = pilot.app
    runtime = app.desk.runtime
    if runtime.settings.embedded_sim:
        await until_quoted(app, pilot, runtime)
        chains = runtime.chains

        def chain_priced() -> bool:
            legs = [leg for row in chains.rows for leg in (row.call, row.put) if leg is not None]
            quotes = [chains.store.get(leg.con_id) for leg in legs]
            return bool(quotes) and all(
                q is not None
                and q.bid == q.bid
                and q.ours is not None
                and q.model is not None
                and q.open_interest == q.open_interest
                for q in quotes
            )

        await wait_for(chain_priced, pilot, "the option chain priced")
        await after_two_analytics_runs(pilot)
        app._flush_quotes()
        app._refresh_status()
        app._refresh_trading()
        # which of "connected to …" and the chain's own message came last depends on the race
        # of the two; the event log keeps both, the snapshot shows neither
        app.status_bar.set_message("")
    else:  # a gateway that is not there: wait for the first refusal, so the state is the same every run
        await wait_for(lambda: runtime.broker.state is ConnectionState.RECONNECTING, pilot, "the first refusal")
        app._refresh_status()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


if __name__ == "__main__":
    import tempfile

    real_snapshot_app(Path(tempfile.mkdtemp(prefix="desk-snapshot-"))).run()
