"""Deterministic SVG snapshots of the desk (update with ``pytest --snapshot-update``)."""

from __future__ import annotations

from snapshot_app import make_snapshot_app

SIZE = (120, 36)


async def _settle(pilot) -> None:
    # the runtime "starts" in a worker; wait for it so the status line is the same every run
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_desk_dark(snap_compare):
    """The desk in desk-dark: watchlist from the seeded market, cursor on SPY, status bar."""
    assert snap_compare(make_snapshot_app(), terminal_size=SIZE, run_before=_settle)


def test_desk_light_cursor_moved(snap_compare):
    """desk-light theme, cursor moved down three rows."""

    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("down", "down", "j")
        await pilot.pause()

    assert snap_compare(make_snapshot_app(theme="desk-light"), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare):
    """The help screen over the desk."""

    async def run_before(pilot):
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_snapshot_app(), terminal_size=SIZE, run_before=run_before)


def test_live_mode(snap_compare):
    """LIVE mode: red badge and frame."""
    from desk.settings import Mode

    assert snap_compare(make_snapshot_app(mode=Mode.LIVE), terminal_size=SIZE, run_before=_settle)
