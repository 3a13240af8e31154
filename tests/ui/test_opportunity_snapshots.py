"""Deterministic snapshots of the opportunities pane on the real engine: the riskless view
(the default) and the at-risk view (``r``). The snapshot desk (``snapshot_app``: market
paused at seed 7's opening quotes, frozen clock) with the simulator's mispricing source:
one injection, started by one market step, quotes one option of the chain's window off by
3 spreads + $0.20; the engine's scanner finds it."""

from __future__ import annotations

from snapshot_app import real_snapshot_app, settle
from trading_stack import wait_for

SIZE = (200, 50)


def _pane(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        app = pilot.app
        rt = app.desk.runtime
        gateway = rt.sim.gateway
        source = gateway.options.source
        source.inject()
        gateway.step()  # the injection starts at the next market step (and the market moves one step)
        pane = app.opportunities

        def found() -> bool:
            if not source.injections:
                return False
            con_id = source.injections[0].con_id
            return any(
                t.state == "live" and t.opportunity.riskless and con_id in {leg.con_id for leg in t.opportunity.legs}
                for t in pane.rows
            )

        await wait_for(found, pilot, "the scanner's opportunities on the mispriced option")
        await settle(pilot)
        await pilot.press("5", *keys)  # focus the pane: the footer shows its keys
        assert app.focused is pane
        pane.refresh_rows(force=True)
        await pilot.pause()

    return run_before


def test_riskless_view(snap_compare, tmp_path):
    """Only what is locked in: the opportunities on the mispriced option."""
    app = real_snapshot_app(tmp_path, sim_mispricing_rate=0.0001)

    async def run_before(pilot) -> None:
        await _pane()(pilot)
        pane = pilot.app.opportunities
        assert pane.view == "riskless" and pane.rows and all(t.opportunity.riskless for t in pane.rows)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_at_risk_view(snap_compare, tmp_path):
    """``r``: what is not arbitrage (an American option's early-exercise premium, a box
    within the American gap), each with why."""
    app = real_snapshot_app(tmp_path, sim_mispricing_rate=0.0001)

    async def run_before(pilot) -> None:
        await _pane("r")(pilot)
        pane = pilot.app.opportunities
        assert pane.view == "at risk" and not any(t.opportunity.riskless for t in pane.rows)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
