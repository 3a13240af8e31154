"""desk data check (desk.store.quality): a recorded day with known faults, checked end to end."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from desk.domain.models import Instrument, TickRecord
from desk.store import TickRecorder, make_engine, upsert_instruments
from desk.store.quality import check_day, check_store

XMAS = date(2015, 12, 24)  # a half day: 09:30-13:00 New York = 14:30-18:00 UTC
OPEN = datetime(2015, 12, 24, 14, 30, tzinfo=UTC)
CLOSE = datetime(2015, 12, 24, 18, 0, tzinfo=UTC)


def q(t: datetime, bid: float, ask: float, con_id: int = 1, symbol: str = "SPY") -> TickRecord:
    return TickRecord(t, con_id, symbol, "Q", bid, ask, 100.0, 200.0, math.nan, math.nan)


def faulty_day() -> list[TickRecord]:
    """A quote every 30 s over the session, moving a cent each time, except: no tick from
    15:00 to 15:10 (one gap of 10 minutes + 30 s), 2 crossed and 1 locked quote, an
    unchanged quote from 16:00 to 16:07 (stale), one spike of 5 % and back (2 outliers),
    one row twice."""
    rows, t, k = [], OPEN, 0
    while t < CLOSE:
        if not (datetime(2015, 12, 24, 15, 0, tzinfo=UTC) <= t < datetime(2015, 12, 24, 15, 10, tzinfo=UTC)):
            stale = datetime(2015, 12, 24, 16, 0, tzinfo=UTC) <= t < datetime(2015, 12, 24, 16, 7, tzinfo=UTC)
            bid = 200.0 + (0 if stale else 0.01 * (k % 7))
            rows.append(q(t, bid, bid + 0.02))
        t += timedelta(seconds=30)
        k += 1
    at = lambda h, m: datetime(2015, 12, 24, h, m, 15, tzinfo=UTC)  # noqa: E731
    rows += [q(at(15, 30), 200.05, 200.01), q(at(15, 31), 200.07, 200.03), q(at(15, 32), 200.04, 200.04)]
    rows += [q(at(17, 0), 210.0, 210.02), q(at(17, 0) + timedelta(seconds=5), 200.0, 200.02)]
    rows.append(rows[10])
    return rows


def test_check_day_finds_every_fault() -> None:
    r = check_day("SPY", XMAS, faulty_day())
    assert r.rth_minutes == 210 and r.covered_minutes == 200
    assert r.gaps == 1 and r.longest_gap_s == 630.0
    assert (r.crossed, r.locked, r.stale, r.outliers, r.duplicates) == (2, 1, 1, 2, 1)
    assert any("crossed" in p for p in r.problems) and any("duplicate" in p for p in r.problems)


def test_a_clean_day_has_no_problem() -> None:
    rows = [q(OPEN + timedelta(seconds=20 * i), 100 + 0.01 * (i % 5), 100.02 + 0.01 * (i % 5)) for i in range(630)]
    r = check_day("SPY", XMAS, rows)
    assert r.problems == () and r.covered_minutes == r.rth_minutes == 210 and r.gaps == 0


async def test_desk_data_check_reports_and_stores(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    opts = [
        Instrument(
            "SPY",
            sec_type="OPT",
            con_id=900 + i,
            expiry="20160115",
            strike=200.0 + i,
            right="C",
            multiplier=100,
            local_symbol=f"SPY   160115C00{200 + i}000",
        )
        for i in range(3)
    ]
    ticks = faulty_day() + [q(OPEN + timedelta(minutes=5), 1.0, 1.1, con_id=o.con_id, symbol=o.local_symbol) for o in opts[:2]]
    async with TickRecorder(url) as rec:
        rec.submit_many(ticks)
    engine = make_engine(url)
    try:
        upsert_instruments(engine, opts, seen_at=OPEN)
    finally:
        engine.dispose()
    [rep] = check_store(url, [XMAS])
    assert rep.symbol == "SPY" and (rep.options_quoted, rep.options_known) == (2, 3)
    env_url = {"DESK_DATABASE_URL": url}
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "desk", "data", "check", "--date", "2015-12-24"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env_url},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc.stderr  # problems found
    assert (
        proc.stdout.startswith("2015-12-24 SPY ")
        and "options 2/3" in proc.stdout
        and "1 of 3 options never quoted" in proc.stdout
    )
    import sqlite3

    db = sqlite3.connect(tmp_path / "desk.sqlite3")
    try:
        assert db.execute("SELECT symbol, crossed, duplicates FROM data_quality").fetchall() == [("SPY", 2, 1)]
    finally:
        db.close()
    bad = subprocess.run(
        [sys.executable, "-m", "desk", "data", "check", "--date", "2015-12-25"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env_url},
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and bad.stderr.strip().startswith("desk: 2015-12-25 is not a")


def test_the_collector_checks_each_day_once_after_its_close() -> None:
    from desk.cli import day_to_check

    before_close = datetime(2015, 12, 24, 17, 59, tzinfo=UTC)  # the half day closes at 18:00 UTC
    assert day_to_check(before_close, None) == date(2015, 12, 23)  # the previous session
    assert day_to_check(datetime(2015, 12, 24, 18, 3, tzinfo=UTC), date(2015, 12, 23)) is None  # 5 min not yet
    assert day_to_check(datetime(2015, 12, 24, 18, 6, tzinfo=UTC), date(2015, 12, 23)) == XMAS
    assert day_to_check(datetime(2015, 12, 25, 12, 0, tzinfo=UTC), XMAS) is None  # a holiday: nothing new
    assert day_to_check(datetime(2015, 12, 28, 21, 10, tzinfo=UTC), XMAS) == date(2015, 12, 28)
