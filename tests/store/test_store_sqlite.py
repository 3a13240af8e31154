"""TickRecorder into a real SQLite file."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest
from store_testlib import assert_same_rows, make_ticks

from desk.domain.models import Instrument, TickRecord
from desk.store import StoreError, TickRecorder, count_ticks, make_engine, probe_database, read_ticks, upsert_instruments


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_rows_round_trip_exactly_with_wal(sqlite_url, tmp_path):
    rows = make_ticks(3000)
    # a non-UTC aware time must come back as the same instant, in UTC
    est = timezone(timedelta(hours=-5))
    rows.append(
        TickRecord(datetime(2024, 3, 8, 9, 31, 0, 123456, tzinfo=est), 7, "X", "T", 1.5, math.nan, 0.0, -0.0, 1e-300, 1e300)
    )
    async with TickRecorder(sqlite_url, spool_dir=tmp_path / "spool") as rec:
        rec.submit_many(rows[:100])
        for row in rows[100:]:
            rec.submit(row)
    assert rec.stats.written == len(rows) and rec.stats.queued == 0 and rec.stats.errors == 0
    assert_same_rows(rows, read_ticks(sqlite_url))

    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # time is integer microseconds since the epoch; absent values are NULL
        t, price = conn.execute("SELECT time, price FROM ticks ORDER BY time LIMIT 1").fetchone()
        assert isinstance(t, int) and t == (rows[0].time - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        assert price is None
        assert conn.execute("SELECT count(*) FROM recorder_batches").fetchone()[0] >= 1
    info = await probe_database(sqlite_url)
    assert info.reachable and info.dialect == "sqlite" and info.journal_mode == "wal"
    assert info.tick_rows == len(rows)


async def test_flush_by_size(sqlite_url):
    rec = TickRecorder(sqlite_url, flush_interval=3600, flush_rows=100)
    await rec.start()
    rec.submit_many(make_ticks(250))
    await _wait_for(lambda: rec.stats.written == 200)
    await asyncio.sleep(0.2)
    assert rec.stats.written == 200 and rec.stats.queued == 50
    await rec.close()
    assert rec.stats.written == 250 and count_ticks(sqlite_url) == 250


async def test_flush_by_time(sqlite_url):
    rec = TickRecorder(sqlite_url, flush_interval=0.1, flush_rows=1_000_000)
    await rec.start()
    for row in make_ticks(10):
        rec.submit(row)
    await _wait_for(lambda: rec.stats.written == 10, timeout=3)
    await rec.close()


async def test_flush_waits_and_close_is_idempotent(sqlite_url):
    batches = []
    loop_thread = threading.get_ident()
    threads = set()

    def on_batch(result):
        threads.add(threading.get_ident())
        batches.append(result)

    rec = TickRecorder(sqlite_url, flush_interval=3600, flush_rows=10_000, on_batch=on_batch)
    await rec.start()
    rec.submit_many(make_ticks(123))
    await rec.flush()
    assert rec.stats.written == 123
    await rec.flush()  # nothing new: returns at once
    rec.submit_many(make_ticks(7, seed=2))
    await rec.close()
    await rec.close()
    assert rec.stats.written == 130
    with pytest.raises(StoreError, match="closed"):
        rec.submit(make_ticks(1)[0])
    await asyncio.sleep(0)
    assert [b.outcome for b in batches] == ["written", "written"] and sum(b.rows for b in batches) == 130
    assert threads == {loop_thread}  # on_batch runs on the event loop, not the writer thread
    assert rec._thread is not None and rec._thread.ident != loop_thread


async def test_close_without_start_writes_submitted_rows(sqlite_url):
    rec = TickRecorder(sqlite_url)
    rec.submit_many(make_ticks(5))
    await rec.close()
    assert count_ticks(sqlite_url) == 5


async def test_invalid_rows_are_rejected_and_kept_rest_written(sqlite_url, tmp_path):
    good = make_ticks(20)
    bad_time = good[3]._replace(time="yesterday")
    huge_con = good[4]._replace(con_id=2**70)
    naive = good[5]._replace(time=good[5].time.replace(tzinfo=None))  # naive = UTC, accepted
    rows = good[:3] + [bad_time, huge_con, naive] + good[6:]
    async with TickRecorder(sqlite_url, spool_dir=tmp_path / "spool") as rec:
        rec.submit_many(rows)
    assert rec.rejected == 2 and rec.stats.errors >= 1 and "rejected" in rec.stats.last_error
    assert rec.stats.written == len(rows) - 2
    assert_same_rows(good[:3] + good[5:], read_ticks(sqlite_url))
    rejected = list((tmp_path / "spool").glob("ticks-*/rejected/*.jsonl"))
    assert len(rejected) == 1 and len(rejected[0].read_text().splitlines()) == 2


async def test_unwritable_location_spools_then_replays(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    bad_url = f"sqlite:///{blocker}/desk.sqlite3"
    rec = TickRecorder(bad_url, spool_dir=tmp_path / "spool", retry_min=0.05, retry_max=0.1)
    await rec.start()
    assert not rec.connected and rec.stats.errors >= 1
    assert "cannot create the folder" in rec.stats.last_error
    rows = make_ticks(40)
    rec.submit_many(rows)
    await rec.flush()
    assert rec.stats.spooled == 40 and rec.stats.written == 0
    blocker.unlink()
    await _wait_for(lambda: rec.stats.spooled == 0)
    await rec.close()
    assert rec.stats.written == 40
    assert_same_rows(rows, read_ticks(bad_url))
    assert list((tmp_path / "spool").rglob("*.spool")) == []


async def test_a_spool_belongs_to_its_database(tmp_path, caplog):
    """Rows spooled while database A was down are never written into database B that the
    next run points at; B's recorder says they are waiting for A, and A gets them, once,
    when it is recorded to again."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    url_a = f"sqlite:///{blocker}/a.sqlite3"
    url_b = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    spool = tmp_path / "spool"
    rec = TickRecorder(url_a, spool_dir=spool, retry_min=0.05, retry_max=0.1)
    await rec.start()
    rows = make_ticks(30)
    rec.submit_many(rows)
    await rec.flush()
    assert rec.stats.spooled == 30
    await rec.close()  # the run ends with A still down: the rows stay in A's spool

    caplog.set_level("WARNING", logger="desk.store.recorder")
    rec_b = TickRecorder(url_b, spool_dir=spool)
    await rec_b.start()
    more = make_ticks(5)
    rec_b.submit_many(more)
    await rec_b.close()
    assert_same_rows(more, read_ticks(url_b))  # B has its own rows and none of A's
    assert any("holds 30 row(s) for another database" in r.message and "a.sqlite3" in r.message for r in caplog.records), [
        r.message for r in caplog.records
    ]

    blocker.unlink()  # A is back: its spool is written there, once
    rec_a = TickRecorder(url_a, spool_dir=spool)
    await rec_a.start()
    await _wait_for(lambda: rec_a.stats.spooled == 0)
    await rec_a.close()
    assert_same_rows(rows, read_ticks(url_a))
    assert list(spool.rglob("*.spool")) == []


async def test_strict_start_raises(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    rec = TickRecorder(f"sqlite:///{blocker}/d.sqlite3", strict=True)
    with pytest.raises(StoreError, match="cannot create the folder"):
        await rec.start()


def test_upsert_instruments_sqlite(sqlite_url):
    engine = make_engine(sqlite_url)
    spy = Instrument("SPY", con_id=756733, primary_exchange="ARCA")
    opt = Instrument("SPY", sec_type="OPT", con_id=9001, expiry="20240621", strike=500.0, right="C", multiplier=100)
    t0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert upsert_instruments(engine, [spy, opt], seen_at=t0) == 2
    assert (
        upsert_instruments(engine, [Instrument("SPY", con_id=756733, primary_exchange="NYSE")], seen_at=t0 + timedelta(days=1))
        == 1
    )
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT con_id, primary_exchange, first_seen, last_seen, strike FROM instruments ORDER BY con_id"
        ).all()
    assert rows[0][0] == 9001 and rows[0][4] == 500.0
    assert rows[1][1] == "NYSE" and rows[1][2] < rows[1][3]
    with pytest.raises(StoreError, match="no conId"):
        upsert_instruments(engine, [Instrument("QQQ")])
    engine.dispose()


async def test_retention_deletes_old_ticks_sqlite(sqlite_url):
    from store_testlib import check_retention

    await check_retention(sqlite_url)
