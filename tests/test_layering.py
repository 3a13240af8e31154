"""design.md: only desk.ui imports Textual. Checked in a fresh interpreter per package."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = [
    "desk.domain",
    "desk.broker",
    "desk.store",
    "desk.bus",
    "desk.sim",
    "desk.engine.runtime",
    "desk.cli",
    "desk.engine.doctor",
]


@pytest.mark.parametrize("module", CORE)
def test_core_package_does_not_import_textual(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(len(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{module} pulled in Textual: {result.stdout}{result.stderr}"


def test_the_check_itself_detects_textual() -> None:
    code = "import sys, desk.ui.app; sys.exit(0 if 'textual' in sys.modules else 1)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
