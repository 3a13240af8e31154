"""desk.ui: the Textual app (the only package of desk that imports Textual).

Public API: :func:`create_app` (the one factory), :func:`run_desk` (CLI entry),
:class:`DeskApp`, and :func:`desk.ui.themes.load_themes`.
"""

from desk.ui.app import DeskApp, create_app, run_desk

__all__ = ["DeskApp", "create_app", "run_desk"]
