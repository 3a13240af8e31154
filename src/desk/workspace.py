"""The user's workspace, kept between runs: the watchlist and the theme.

Stored as JSON in ``DESK_WORKSPACE_FILE`` (default ``workspace.json`` in the user's config
directory, ``~/.config/desk`` on Linux), written atomically (temporary file, fsync, rename)
whenever the watchlist or the theme changes in the desk. At start a saved value is used
unless the setting was given explicitly (``DESK_WATCHLIST`` / ``DESK_THEME`` in the
environment or ``.env``), so configuration wins over habit. A file that cannot be read or
parsed is reported in one line and left where it is; the defaults are used.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from desk.settings import APP_NAME, Settings

__all__ = ["Workspace", "apply_workspace", "default_workspace_file", "load_workspace", "save_workspace"]

VERSION = 1


def default_workspace_file() -> Path:
    """``workspace.json`` in the user's config directory."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "workspace.json"


@dataclass
class Workspace:
    """What is kept: ``watchlist`` (symbols, in order) and ``theme`` (a theme name);
    ``None`` where nothing was saved."""

    watchlist: list[str] | None = None
    theme: str | None = None
    extra: dict = field(default_factory=dict)


def load_workspace(path: Path) -> tuple[Workspace, str | None]:
    """``(workspace, problem)``: the saved workspace (empty when there is no file) and one
    line when the file could not be used."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Workspace(), None
    except OSError as exc:
        return Workspace(), f"workspace {path}: cannot read: {exc.strerror or exc}"
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        wl = data.get("watchlist")
        if wl is not None and not (isinstance(wl, list) and all(isinstance(s, str) for s in wl)):
            raise ValueError("watchlist must be a list of symbols")
        theme = data.get("theme")
        if theme is not None and not isinstance(theme, str):
            raise ValueError("theme must be a name")
    except ValueError as exc:
        return Workspace(), f"workspace {path}: {exc}; using the defaults (the file is kept)"
    extra = {k: v for k, v in data.items() if k not in ("version", "watchlist", "theme")}
    return Workspace(wl, theme, extra), None


def save_workspace(path: Path, ws: Workspace) -> str | None:
    """Write ``ws`` atomically; one line when it could not be written, else None."""
    data = {"version": VERSION, **ws.extra}
    if ws.watchlist is not None:
        data["watchlist"] = list(ws.watchlist)
    if ws.theme is not None:
        data["theme"] = ws.theme
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".workspace-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return f"workspace {path}: cannot save: {exc.strerror or exc}"
    return None


def apply_workspace(settings: Settings) -> tuple[Settings, str | None]:
    """``settings`` with the saved watchlist and theme where the user did not set them
    explicitly; and the load problem, if any."""
    path = settings.workspace_file or default_workspace_file()
    ws, problem = load_workspace(path)
    update: dict[str, object] = {}
    explicit = settings.model_fields_set
    if ws.watchlist and "watchlist" not in explicit and not settings.sim_replay:
        update["watchlist"] = ws.watchlist
    if ws.theme and "theme" not in explicit:
        update["theme"] = ws.theme
    return (settings.model_copy(update=update) if update else settings), problem
