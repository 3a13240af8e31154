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
    assert "desk.pricing.iv" in loaded  # the check sees imports
    # SciPy comes with the first N(x) (desk.pricing.normal), not with the package: the
    # engine's start imports desk.pricing before its first quote
    assert "scipy" not in loaded
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, bad
    desk_modules = [m for m in loaded if m.startswith("desk.")]
    assert all(m.startswith(("desk.pricing", "desk.domain")) for m in desk_modules), desk_modules


def test_scipy_is_imported_by_the_first_price() -> None:
    code = (
        "import sys; from desk.pricing.bsm import bsm_price; print('scipy.special' in sys.modules, end=' '); "
        "v = bsm_price(True, 100.0, 100.0, 0.5, 0.03, 0.0, 0.2); print('scipy.special' in sys.modules, round(float(v), 4))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out[:2] == ["False", "True"], out
    assert 6.0 < float(out[2]) < 7.0, out  # a 6-month ATM call at 20% vol, r 3%: about 6.3


def test_the_check_detects_a_forbidden_import() -> None:
    loaded = _loaded_after_import("desk.store.recorder")
    assert any(m.split(".")[0] == "sqlalchemy" for m in loaded)
