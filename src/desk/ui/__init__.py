"""desk.ui: the terminal view, a Textual app (the only package of desk that imports Textual).

The view reads and asks everything through a :class:`desk.engine.backend.DeskBackend` (the
engine in this process, or an engine process it attached to); it never imports ib_async,
SQLAlchemy or the recorder. Public API: :func:`create_app` (the one factory, used by
:mod:`desk.cli` and the tests), :class:`DeskApp`, and :func:`desk.ui.themes.load_themes`.
"""

from desk.ui.app import DeskApp, create_app

__all__ = ["DeskApp", "create_app"]
