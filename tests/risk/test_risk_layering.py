"""desk.risk is pure: importing it pulls in no database, broker, simulator, settings,
Textual or ib_async (design.md: risk may import domain only). Checked in a fresh
interpreter; desk.orders may add the store (audit persistence), still no Textual, no
ib_async, no settings."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = {
    "desk.risk": [
        "textual",
        "ib_async",
        "sqlalchemy",
        "psycopg",
        "redis",
        "desk.store",
        "desk.broker",
        "desk.sim",
        "desk.ui",
        "desk.settings",
        "desk.bus",
    ],
    "desk.orders": ["textual", "ib_async", "desk.broker", "desk.sim", "desk.ui", "desk.bus", "desk.settings"],
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_stay_in_their_layer(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"bad = sorted({{m.split('.')[0] if not m.startswith('desk.') else '.'.join(m.split('.')[:2]) "
        f"for m in sys.modules}} & set({FORBIDDEN[module]!r})); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{module} imported {result.stdout.strip()} {result.stderr}"


def test_the_check_detects_a_forbidden_import() -> None:
    code = "import sys, desk.store.recorder; sys.exit(0 if 'sqlalchemy' in sys.modules else 1)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
