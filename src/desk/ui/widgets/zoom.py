"""The panes' zoom key (``z``): one pane maximized on the desk's screen, again to restore."""

from __future__ import annotations

from textual.widget import Widget


def toggle_zoom(pane: Widget, focus: Widget | None = None) -> None:
    """Maximize ``pane`` on its screen, or restore it if it is the maximized one (then
    give ``focus`` the focus, if given: the widget inside the pane that had it)."""
    screen = pane.screen
    if screen.maximized is pane:
        screen.minimize()
        if focus is not None:
            focus.focus()
    else:
        screen.maximize(pane, container=False)
