"""Where the tests find LEAN data: one rule, :func:`desk.store.lean.default_lean_dir`.

By default that is the sample data shipped in the package (GOOG 2015-12-24, SPY
2013-10-07), so the suite runs on a clone with nothing beside it. Tests that need more
(the daily bars of other symbols) are marked ``lean_full`` and run when ``DESK_LEAN_DIR``
names a full LEAN folder (``.ci/run`` points it at ``../shared/data/lean``); otherwise they
are skipped with that reason, said in the summary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from desk.store.lean import SAMPLE_LEAN_DIR, default_lean_dir


def lean_dir() -> Path:
    """The LEAN folder the tests read: ``DESK_LEAN_DIR``, else the packaged sample."""
    return default_lean_dir() or SAMPLE_LEAN_DIR


#: a full LEAN folder given through DESK_LEAN_DIR, or None
FULL_LEAN_DIR = Path(os.environ["DESK_LEAN_DIR"]) if os.environ.get("DESK_LEAN_DIR") else None

_skip = pytest.mark.skipif(
    FULL_LEAN_DIR is None or not (FULL_LEAN_DIR / "equity/usa/daily").is_dir(),
    reason="needs a full LEAN folder (daily bars): set DESK_LEAN_DIR, as .ci/run does",
)


def needs_full_lean(test):
    """Mark ``test`` ``lean_full`` (``pytest -m lean_full`` selects them) and skip it,
    saying why, unless DESK_LEAN_DIR names a full LEAN folder."""
    return pytest.mark.lean_full(_skip(test))
