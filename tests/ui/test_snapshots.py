"""Deterministic SVG snapshots of the desk on the real engine (update with
``pytest --snapshot-update``): see ``snapshot_app.real_snapshot_app``."""

from __future__ import annotations

from snapshot_app import SNAPSHOT_LIVE_PORT, real_snapshot_app, settle

SIZE = (120, 36)


def test_desk_dark(snap_compare, tmp_path):
    """The desk in desk-dark: watchlist at the seeded opening quotes, cursor on SPY, its
    option chain priced, status bar."""
    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=SIZE, run_before=settle)


def test_desk_light_cursor_moved(snap_compare, tmp_path):
    """desk-light theme, cursor moved down three rows (the chain follows: IWM)."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("down", "down", "j")
        await settle(pilot)

    assert snap_compare(real_snapshot_app(tmp_path, theme="desk-light"), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, tmp_path):
    """The help screen over the desk."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_live_mode(snap_compare, tmp_path):
    """LIVE mode: red badge and frame (no gateway listens: the desk is still connecting)."""
    from desk.settings import Mode

    app = real_snapshot_app(tmp_path, mode=Mode.LIVE, ib_port=SNAPSHOT_LIVE_PORT)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
