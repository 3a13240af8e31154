"""Shared pieces of the UI tests (imported by name, so no test depends on which conftest
pytest put first on sys.path): the frozen instant of the snapshots and the app factory."""

from __future__ import annotations

from datetime import UTC, datetime

#: 09:45:00 ET (EDT, UTC-4) on Tuesday 2026-03-10.
FROZEN_AT = datetime(2026, 3, 10, 13, 45, 0, tzinfo=UTC)


def desk_app(runtime, **kwargs):
    """The desk app as the CLI builds it, on the real engine (:class:`desk.engine.runtime.Runtime`
    wrapped in :class:`desk.engine.local.LocalDesk`), with frames made deterministic (no
    cursor blink, no animations)."""
    from desk.engine.local import LocalDesk
    from desk.ui import create_app

    return create_app(LocalDesk(runtime), settings=runtime.settings, cursor_blink=False, animations=False, **kwargs)
