"""Deterministic snapshots of the opportunities pane: the riskless view (the default) and
the at-risk view (``r``), over the simulator's seeded SPY chain with one rich call, on the
frozen clock (``snapshot_app``, ``opportunity_market``)."""

from __future__ import annotations

from snapshot_app import make_snapshot_app

SIZE = (200, 50)


async def _settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def _pane(*keys: str):
    async def run_before(pilot) -> None:
        await _settle(pilot)
        app = pilot.app
        await pilot.press("5", *keys)  # focus the pane: the footer shows its keys
        assert app.focused is app.opportunities
        app.opportunities.refresh_rows(force=True)
        await pilot.pause()

    return run_before


def test_riskless_view(snap_compare):
    """Only what is locked in: the butterfly, long box and conversion on the rich call."""
    app = make_snapshot_app(opportunities=True)

    async def run_before(pilot) -> None:
        await _pane()(pilot)
        pane = pilot.app.opportunities
        assert pane.view == "riskless" and pane.rows and all(t.opportunity.riskless for t in pane.rows)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_at_risk_view(snap_compare):
    """``r``: the early-exercise premium of the deep in-the-money puts (reversals, a short
    box) and the short box within the American gap, each with why it is not arbitrage."""
    app = make_snapshot_app(opportunities=True)

    async def run_before(pilot) -> None:
        await _pane("r")(pilot)
        pane = pilot.app.opportunities
        assert pane.view == "at risk" and pane.rows and not any(t.opportunity.riskless for t in pane.rows)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
