"""desk.domain.calendar's cache file: the sessions built from exchange_calendars once, read
back by later processes without pandas, and rebuilt whenever the file is missing, damaged
or inconsistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from desk.domain import calendar as cal_mod
from desk.domain.calendar import ExchangeCalendar


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DESK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("calendar-XNYS-*.json")) if cache_dir.exists() else []


def _fresh_arrays() -> cal_mod._Arrays:
    end = date(date.today().year + cal_mod._YEARS_AHEAD, 12, 31)
    return cal_mod._build_from_exchange_calendars("XNYS", end)


def test_the_first_load_writes_the_cache_and_a_second_reads_the_same_sessions(cache_dir):
    assert _files(cache_dir) == []
    built = ExchangeCalendar("XNYS")
    assert built.is_session(date(2026, 12, 4))
    [path] = _files(cache_dir)
    assert "xc" in path.name and path.stat().st_size > 0
    again = ExchangeCalendar("XNYS")
    assert again._load() == built._load() == _fresh_arrays()
    # spot facts through the cached copy: Thanksgiving closed, the day after a half day
    assert again.is_holiday(date(2026, 11, 26))
    assert again.session(date(2026, 11, 27)).early_close
    assert again.session(date(2026, 11, 27)).close == datetime(2026, 11, 27, 18, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: "not json at all",
        lambda raw: raw[: len(raw) // 2],  # a write cut short
        lambda raw: json.dumps({**json.loads(raw), "format": 0}),
        lambda raw: json.dumps({**json.loads(raw), "opens": json.loads(raw)["opens"][:-1]}),  # lengths differ
        lambda raw: json.dumps({**json.loads(raw), "days": list(reversed(json.loads(raw)["days"]))}),
        lambda raw: json.dumps({**json.loads(raw), "closes": json.loads(raw)["opens"]}),  # close == open
        lambda raw: json.dumps({k: v for k, v in json.loads(raw).items() if k != "post"}),
    ],
    ids=["garbage", "truncated", "old-format", "short-list", "unsorted", "empty-sessions", "missing-key"],
)
def test_a_damaged_cache_is_built_again_and_rewritten(cache_dir, damage):
    ExchangeCalendar("XNYS")._load()
    [path] = _files(cache_dir)
    good = path.read_text()
    path.write_text(damage(good))
    assert cal_mod._read_cache(str(path)) is None
    rebuilt = ExchangeCalendar("XNYS")
    assert rebuilt._load() == _fresh_arrays()
    assert cal_mod._read_cache(str(path)) == rebuilt._load()  # the file is good again


def test_an_unwritable_cache_is_skipped_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DESK_CACHE_DIR", str(blocker / "desk"))  # below a file: cannot be made
    calendar = ExchangeCalendar("XNYS")
    assert calendar.is_session(date(2026, 12, 4))
    assert calendar._load() == _fresh_arrays()
    assert blocker.read_text() == ""


def test_a_process_with_a_warm_cache_never_imports_pandas(cache_dir):
    ExchangeCalendar("XNYS")._load()
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from desk.domain.calendar import nyse_calendar\n"
        "cal = nyse_calendar()\n"
        "assert cal.is_session(date(2026, 12, 4)) and not cal.is_session(date(2026, 12, 25))\n"
        "print(sorted(m for m in ('pandas', 'exchange_calendars') if m in sys.modules))\n"
    )
    env = {**os.environ, "DESK_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # and with no cache it does import them (the check above is not vacuous)
    env["DESK_CACHE_DIR"] = str(cache_dir / "empty")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['exchange_calendars', 'pandas']"
