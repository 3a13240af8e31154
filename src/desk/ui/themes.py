"""Colour themes: the built-in desk themes and a loader for user theme files.

Theme files are TOML files (``*.toml``) in the project's top-level ``themes/`` folder and
in ``DESK_THEMES_DIR``. Each file holds one theme::

    name = "my-theme"          # required; what you pick in the command palette
    dark = true
    primary = "#4C9BE8"        # required
    secondary = "#7A8CA3"      # every other colour is optional (Textual derives it)
    ...
    [variables]
    price-up = "#3FD17F"       # desk's own variables, see DESK_VARIABLES
    footer-key-foreground = "#E8B04C"   # any Textual theme variable

Colours are anything Textual understands: ``#RRGGBB``, ``#RRGGBBAA``, ``rgb(r,g,b)``,
``hsl(h,s%,l%)`` or a colour name. A malformed file never stops the desk: the loader
reports ``<file>: <problem>`` and skips that file.

The themes in ``themes/desk-dark.toml`` and ``themes/desk-light.toml`` mirror
:func:`builtin_themes` (a test keeps them equal), so the desk looks the same when the
folder is missing, e.g. in a non-editable install.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

log = logging.getLogger(__name__)

#: Name of the theme used when ``DESK_THEME`` names no known theme.
DEFAULT_THEME = "desk-dark"

#: The desk's own theme variables and, for themes that do not define them, the Textual
#: colour variable they default to. Stylesheets use them as ``$price-up`` etc.
DESK_VARIABLES: dict[str, str] = {
    "price-up": "success",  # last / change of an instrument trading up
    "price-down": "error",  # ... trading down
    "mode-sim": "accent",  # the SIM badge
    "mode-paper": "warning",  # the PAPER badge
    "mode-live": "error",  # the LIVE badge and frame
}

#: Colour keys of a theme file (each optional except ``primary``).
COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
_OTHER_KEYS = {"name": str, "dark": bool, "luminosity_spread": float, "text_alpha": float, "variables": dict}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ALPHA_RE = re.compile(r"^(?P<colour>.+?)\s+(?P<pct>\d{1,3}(\.\d+)?)%$")


class ThemeFileError(Exception):
    """A theme file cannot be used. ``str()`` is ``<file>: <problem>``, one line."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def project_themes_dir() -> Path:
    """The top-level ``themes/`` folder of the project (editable install / source tree).

    ``src/desk/ui/themes.py`` -> ``parents[3]`` is the project root. The folder may not
    exist (an installed wheel); callers treat that as "no theme files".
    """
    return Path(__file__).resolve().parents[3] / "themes"


def builtin_themes() -> list[Theme]:
    """desk-dark and desk-light, as defined in code (mirrors of the files in ``themes/``)."""
    return [
        Theme(
            name="desk-dark",
            dark=True,
            primary="#4C9BE8",
            secondary="#7A8CA3",
            accent="#E8B04C",
            foreground="#D6DEE8",
            background="#0E1116",
            surface="#161B22",
            panel="#1F2630",
            success="#3FBF7F",
            warning="#E8A33C",
            error="#E5534B",
            variables={
                "price-up": "#3FD17F",
                "price-down": "#FF5C57",
                "mode-sim": "#2BB5A6",
                "mode-paper": "#E8A33C",
                "mode-live": "#FF3B30",
                "footer-key-foreground": "#E8B04C",
            },
        ),
        Theme(
            name="desk-light",
            dark=False,
            primary="#1F6FC5",
            secondary="#5A6B80",
            accent="#B7791F",
            foreground="#1B2430",
            background="#F5F7FA",
            surface="#FFFFFF",
            panel="#E4E9F0",
            success="#1E8E4E",
            warning="#B26A00",
            error="#C62828",
            variables={
                "price-up": "#137A3E",
                "price-down": "#C62828",
                "mode-sim": "#0F7C72",
                "mode-paper": "#B26A00",
                "mode-live": "#D50000",
                "footer-key-foreground": "#1F6FC5",
            },
        ),
    ]


def desk_variable_defaults(colours: dict[str, str]) -> dict[str, str]:
    """Values of :data:`DESK_VARIABLES` taken from a generated Textual colour system.

    ``colours`` is what ``Theme.to_color_system().generate()`` returns (``success``,
    ``error``, ... as CSS colour strings).
    """
    return {name: colours[source] for name, source in DESK_VARIABLES.items() if source in colours}


def _check_colour(path: Path, key: str, value: object, *, allow_alpha: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ThemeFileError(path, f'{key!r} must be a colour string such as "#4C9BE8", got {value!r}')
    text = value.strip()
    candidate = text
    if allow_alpha and (match := _ALPHA_RE.match(text)):
        candidate = match.group("colour")
    try:
        Color.parse(candidate)
    except ColorParseError:
        raise ThemeFileError(
            path, f"{key!r} is not a colour: {value!r} (use #RRGGBB, rgb(r,g,b), hsl(h,s%,l%) or a colour name)"
        ) from None
    return text


def load_theme_file(path: Path) -> Theme:
    """Read one theme file. Raises :class:`ThemeFileError` naming the file and the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ThemeFileError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ThemeFileError(path, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(path, f"not valid TOML: {exc}") from None

    known = set(COLOUR_KEYS) | set(_OTHER_KEYS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ThemeFileError(path, f"unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(path, "missing 'name' (e.g. name = \"my-theme\")")
    if not _NAME_RE.match(name):
        raise ThemeFileError(path, f"'name' {name!r} may only hold letters, digits, '-', '_' and '.'")
    if "primary" not in data:
        raise ThemeFileError(path, "missing 'primary' colour (e.g. primary = \"#4C9BE8\")")
    colours = {key: _check_colour(path, key, data[key]) for key in COLOUR_KEYS if key in data}
    for key, kind in _OTHER_KEYS.items():
        if key in data and key != "name":
            value = data[key]
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int) and not isinstance(value, bool))
            if not ok:
                want = {bool: "true or false", float: "a number", dict: "a [variables] table"}[kind]
                raise ThemeFileError(path, f"{key!r} must be {want}, got {value!r}")
    variables: dict[str, str] = {}
    for key, value in data.get("variables", {}).items():
        if key in DESK_VARIABLES:
            variables[key] = _check_colour(path, f"variables.{key}", value, allow_alpha=True)
        elif isinstance(value, str):
            variables[key] = value
        else:
            raise ThemeFileError(path, f"'variables.{key}' must be a string, got {value!r}")
    theme = Theme(
        name=name,
        dark=data.get("dark", True),
        variables=variables,
        **colours,  # type: ignore[arg-type]
        **{k: float(data[k]) for k in ("luminosity_spread", "text_alpha") if k in data},
    )
    try:
        theme.to_color_system().generate()
    except Exception as exc:  # anything Textual rejects, reported as a file problem
        raise ThemeFileError(path, f"Textual cannot use this theme: {exc}") from None
    return theme


def load_themes(dirs: Iterable[Path | str | None], *, errors: list[str] | None = None) -> list[Theme]:
    """Load every ``*.toml`` theme file of ``dirs`` (in order; files sorted by name).

    ``None`` entries and folders that do not exist are skipped. A file that cannot be
    used is skipped with a one-line message ``<file>: <problem>``, appended to
    ``errors`` when given (and logged). A later theme with the same name replaces an
    earlier one. Returns the themes in load order, one per name.
    """
    found: dict[str, Theme] = {}
    for folder in dirs:
        if folder is None:
            continue
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                log.warning("skipping theme file %s", exc)
                if errors is not None:
                    errors.append(str(exc))
                continue
            found.pop(theme.name, None)
            found[theme.name] = theme
    return list(found.values())
