"""design.md: desk.pricing imports only desk.domain, numpy, scipy and exchange_calendars."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("textual", "ib_async", "sqlalchemy", "psycopg", "redis")


def _loaded_after_import(module: str) -> list[str]:
    code = f"import sys, importlib; importlib.import_module({module!r}); print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()


def test_pricing_imports_no_ui_broker_or_store_code() -> None:
    loaded = _loaded_after_import("desk.pricing")
    assert "desk.pricing.iv" in loaded and "scipy.special" in loaded  # the check sees imports
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, bad
    desk_modules = [m for m in loaded if m.startswith("desk.")]
    assert all(m.startswith(("desk.pricing", "desk.domain")) for m in desk_modules), desk_modules


def test_the_check_detects_a_forbidden_import() -> None:
    loaded = _loaded_after_import("desk.store")
    assert any(m.split(".")[0] == "sqlalchemy" for m in loaded)
