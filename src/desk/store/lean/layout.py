"""Where LEAN data is and what is in it: the sample data shipped in the package,
``$DESK_LEAN_DIR``, and the scan of a LEAN ``Data/`` folder (or one zip) into the files
:func:`desk.store.lean.importer.import_lean` can load (the supported layout is in the
:mod:`desk.store.lean` docstring; anything else is listed as skipped).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from desk.store.errors import StoreError

__all__ = [
    "BAR_SIZE_OF_RESOLUTION",
    "LeanFile",
    "LeanScan",
    "SAMPLE_LEAN_DIR",
    "default_lean_dir",
    "scan_lean",
]

#: LEAN resolution folder -> IB bar size text stored in ``bars.bar_size``.
BAR_SIZE_OF_RESOLUTION = {"second": "1 secs", "minute": "1 min", "hour": "1 hour", "daily": "1 day"}


#: The sample data shipped in the package (GOOG 2015-12-24, SPY 2013-10-07; see its NOTICE.md).
SAMPLE_LEAN_DIR = Path(__file__).resolve().parents[2] / "data" / "lean"


def default_lean_dir() -> Path | None:
    """Where LEAN data is looked for when none is given: ``$DESK_LEAN_DIR`` (``None`` if
    it names a folder that does not exist), else the sample data shipped in the package
    (:data:`SAMPLE_LEAN_DIR`: the GOOG 2015-12-24 day and the SPY 2013-10-07 ticks)."""
    env = os.environ.get("DESK_LEAN_DIR")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    return SAMPLE_LEAN_DIR if SAMPLE_LEAN_DIR.is_dir() else None


@dataclass(frozen=True)
class LeanFile:
    """One importable LEAN zip.

    ``kind``: ``quote`` / ``trade`` (bars), ``openinterest``, ``tick_trade``; ``sec_type``
    ``STK`` or ``OPT``; ``resolution`` LEAN's folder (``minute`` ...); ``day`` the file's
    date (``None`` for daily/hour files, which hold many days). ``display`` is the path
    shown in messages (relative to the import root)."""

    path: Path
    display: str
    sec_type: str
    resolution: str
    kind: str
    symbol: str
    day: date | None

    @property
    def bar_size(self) -> str:
        return BAR_SIZE_OF_RESOLUTION.get(self.resolution, "")


@dataclass
class LeanScan:
    """What :func:`scan_lean` found: ``files`` to import (in a stable order) and
    ``skipped`` paths that are not in a supported layout."""

    root: Path
    files: list[LeanFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _parse_day(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _classify(path: Path, display: str) -> LeanFile | None:
    parts = [p.lower() for p in path.parts]
    name = parts[-1]
    if not name.endswith(".zip"):
        return None
    stem = name[:-4]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("equity", "option"):
            break
    else:
        return None
    rest = parts[i + 1 :]
    if len(rest) < 3:
        return None
    asset, resolution = parts[i], rest[1]
    sec_type = "STK" if asset == "equity" else "OPT"
    if resolution in ("daily", "hour") and len(rest) == 3 and asset == "equity":
        return LeanFile(path, display, sec_type, resolution, "trade", stem.upper(), None)
    if len(rest) != 4:
        return None
    symbol = rest[2].upper()
    pieces = stem.split("_")
    day = _parse_day(pieces[0])
    if day is None:
        return None
    if asset == "equity":
        if resolution in ("minute", "second") and len(pieces) == 2 and pieces[1] in ("quote", "trade"):
            return LeanFile(path, display, sec_type, resolution, pieces[1], symbol, day)
        if resolution == "tick" and len(pieces) == 2 and pieces[1] == "trade":
            return LeanFile(path, display, sec_type, resolution, "tick_trade", symbol, day)
        return None
    if (
        resolution in ("minute", "second", "hour")
        and len(pieces) == 3
        and pieces[2] == "american"
        and pieces[1] in ("quote", "trade", "openinterest")
    ):
        return LeanFile(path, display, sec_type, resolution, pieces[1], symbol, day)
    return None


def scan_lean(
    path: str | Path,
    *,
    symbols: Iterable[str] | None = None,
    dates: Iterable[date] | None = None,
) -> LeanScan:
    """Find the importable files under ``path`` (a LEAN data folder or one zip).

    ``symbols`` keeps only those underlyings (case-insensitive); ``dates`` keeps only files
    of those days (daily/hour files, which span many days, are always kept). Raises
    :class:`StoreError` if ``path`` does not exist.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise StoreError(f"LEAN data path {root} does not exist")
    want_syms = {s.strip().upper() for s in symbols} if symbols else None
    want_days = set(dates) if dates else None
    scan = LeanScan(root)
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for p in candidates:
        display = p.name if root.is_file() else p.relative_to(root).as_posix()
        if p.name.lower() == "readme.md":
            continue
        lf = _classify(p.resolve(), display)
        if lf is None:
            scan.skipped.append(display)
            continue
        if want_syms is not None and lf.symbol not in want_syms:
            continue
        if want_days is not None and lf.day is not None and lf.day not in want_days:
            continue
        scan.files.append(lf)
    # underlyings before options, so the chain's underlying exists first; then by name
    scan.files.sort(key=lambda f: (f.sec_type != "STK", f.display))
    return scan
