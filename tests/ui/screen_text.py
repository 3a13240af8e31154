"""Plain-text dump of what a pilot app shows (for assertions and debugging)."""

from __future__ import annotations

from textual.app import App


def screen_lines(app: App) -> list[str]:
    """The current screen as a list of plain-text lines (the size of the terminal)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App) -> str:
    """The current screen as one string, lines joined by newlines."""
    return "\n".join(line.rstrip() for line in screen_lines(app))
