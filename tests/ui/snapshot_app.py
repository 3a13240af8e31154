"""The app used by the snapshot tests: built by the factory, deterministic by construction.

Frozen clock (09:45:00 ET), quotes from the simulator's market model with seed 7,
no cursor blink, no animation. Run it by hand to look at it: ``python tests/ui/snapshot_app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ui_testlib import sim_market_runtime  # noqa: E402
from ui_testlib import desk_app  # noqa: E402
from desk.ui import DeskApp  # noqa: E402


def make_snapshot_app(*, opportunities: bool = False, **settings_overrides) -> DeskApp:
    """The desk over a fake runtime filled from ``MarketModel(seed=7)``; with
    ``opportunities`` an opportunity feed over the simulator's SPY chain with one rich call
    (``opportunity_market``), so the opportunities pane shows."""
    runtime = sim_market_runtime(seed=7, steps=40, **settings_overrides)
    if opportunities:
        from opportunity_market import attach_opportunities

        attach_opportunities(runtime)
    return desk_app(runtime)


if __name__ == "__main__":
    make_snapshot_app().run()
