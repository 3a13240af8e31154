"""The option chain pane's look (:class:`~desk.ui.widgets.chain.ChainPane`): its component
classes, its default CSS and the style names its strips are drawn with.

:data:`STYLE_CLASSES` maps each style name used by :mod:`desk.ui.widgets.chain_layout`
(the ``style`` lookups) to a component class; :func:`resolve_styles` turns them into Rich
styles with the widget's ``get_component_rich_style``. No Textual import here.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style

__all__ = ["CHAIN_CSS", "CHAIN_COMPONENT_CLASSES", "STYLE_CLASSES", "resolve_styles"]

#: Style name -> (component class, partial). Partial styles are foreground-only overlays
#: that keep the cell's background.
STYLE_CLASSES: dict[str, tuple[str, bool]] = {
    "title": ("chain--title", False),
    "header": ("chain--header", False),
    "cursor": ("chain--cursor", False),
    "cursor-row": ("chain--cursor-row", False),
    "itm": ("chain--itm", False),
    "detail": ("chain--detail", False),
    "empty": ("chain--empty", False),
    "strike": ("chain--strike", True),
    "atm": ("chain--atm", True),
    "stale": ("chain--stale", True),
    "missing": ("chain--missing", True),
    "hint": ("chain--hint", True),
    "warning": ("chain--warning", True),
    "error": ("chain--error", True),
    "otm": ("chain--smile-otm", True),
    "itm-dot": ("chain--smile-itm", True),
    "atm-line": ("chain--smile-atm", True),
    "axis": ("chain--smile-axis", True),
}

#: The pane's component classes (``ChainPane.COMPONENT_CLASSES``).
CHAIN_COMPONENT_CLASSES: set[str] = {cls for cls, _partial in STYLE_CLASSES.values()}

#: The pane's default CSS (``ChainPane.DEFAULT_CSS``).
CHAIN_CSS = """
    ChainPane {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    ChainPane > .chain--title { background: $panel; color: $foreground; text-style: bold; }
    ChainPane > .chain--header { background: $panel; color: $text-muted; text-style: bold; }
    ChainPane > .chain--strike { color: $foreground; text-style: bold; }
    ChainPane > .chain--atm { color: $accent; text-style: bold reverse; }
    ChainPane > .chain--itm { background: $secondary 15%; }
    ChainPane > .chain--cursor { background: $primary 25%; }
    ChainPane:focus > .chain--cursor { background: $primary 50%; }
    ChainPane > .chain--cursor-row { background: $primary 10%; }
    ChainPane > .chain--stale { color: $warning; text-style: bold; }
    ChainPane > .chain--missing { color: $text-disabled; }
    ChainPane > .chain--empty { color: $text-muted; text-style: italic; }
    ChainPane > .chain--detail { background: $panel; color: $foreground; }
    ChainPane > .chain--hint { color: $text-muted; }
    ChainPane > .chain--warning { color: $warning; text-style: bold; }
    ChainPane > .chain--error { color: $error; text-style: bold; }
    ChainPane > .chain--smile-otm { color: $accent; text-style: bold; }
    ChainPane > .chain--smile-itm { color: $text-muted; }
    ChainPane > .chain--smile-atm { color: $warning; }
    ChainPane > .chain--smile-axis { color: $text-muted; }
    """


def resolve_styles(get: Callable[..., Style], base: Style) -> dict[str, Style]:
    """Every style name -> its Rich style: ``base`` (the widget's own style) under
    ``"base"``, the others from ``get(component_class, partial=...)``."""
    styles = {"base": base}
    for name, (cls, partial) in STYLE_CLASSES.items():
        styles[name] = get(cls, partial=partial)
    return styles
