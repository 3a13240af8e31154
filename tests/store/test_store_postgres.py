"""TickRecorder into a real PostgreSQL server (each test in its own schema)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timezone

import pytest
from store_testlib import assert_same_rows, make_ticks, pg_connect

from desk.domain.models import Instrument
from desk.store import (
    StoreError,
    StoreSchema,
    TickRecorder,
    count_ticks,
    make_engine,
    open_sink,
    probe_database,
    read_ticks,
    upsert_instruments,
)
from desk.store.recorder import spool_folder
from desk.store.spool import Spool


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def _assert_exactly_once(pg_url: str, schema: str, expected: int) -> None:
    with pg_connect(pg_url) as conn:
        total, distinct = conn.execute(f'SELECT count(*), count(DISTINCT (time, con_id)) FROM "{schema}".ticks').fetchone()
    assert (total, distinct) == (expected, expected)


async def test_rows_round_trip_exactly(pg_url, pg_schema, tmp_path):
    rows = make_ticks(12_345)
    async with TickRecorder(pg_url, schema=pg_schema, spool_dir=tmp_path) as rec:
        for row in rows:
            rec.submit(row)
    s = rec.stats
    assert (s.received, s.written, s.queued, s.spooled, s.errors) == (len(rows), len(rows), 0, 0, 0)
    assert_same_rows(rows, read_ticks(pg_url, schema=pg_schema))
    with pg_connect(pg_url) as conn:
        # absent values are SQL NULL, infinities stay infinite, kind is char(1)
        nulls = conn.execute(f'SELECT count(*) FROM "{pg_schema}".ticks WHERE kind = %s AND price IS NULL', ("Q",)).fetchone()[0]
        assert nulls == sum(1 for r in rows if r.kind == "Q")
        assert conn.execute(f"SELECT count(*) FROM \"{pg_schema}\".ticks WHERE price = 'Infinity'").fetchone()[0] >= 1
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = 'ticks'",
                (pg_schema,),
            ).fetchall()
        )
    assert types["time"] == "timestamp with time zone" and types["con_id"] == "integer"
    assert types["kind"] == "character" and types["bid"] == "double precision"


def _timescale_available(pg_url: str) -> bool:
    with pg_connect(pg_url) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()[0])


async def test_hypertable_when_timescaledb_available(pg_url, pg_schema):
    if not _timescale_available(pg_url):
        pytest.skip("timescaledb is not available on this server (the plain-table test covers this case)")
    async with TickRecorder(pg_url, schema=pg_schema) as rec:
        info = rec.schema_info
    assert info is not None and info.timescaledb_installed and info.hypertable, info
    with pg_connect(pg_url) as conn:
        n = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = %s AND hypertable_name = 'ticks'",
            (pg_schema,),
        ).fetchone()[0]
        defs = [
            r[0]
            for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'ticks'", (pg_schema,))
        ]
    assert n == 1
    # TimescaleDB makes its own btree index on time (named ticks_time_idx): check types, not names
    assert any('USING btree (con_id, "time")' in d for d in defs), defs
    assert not any("USING brin" in d for d in defs), defs  # no BRIN on a hypertable


async def test_plain_table_with_brin_without_timescaledb(pg_url, pg_schema):
    async with TickRecorder(pg_url, schema=pg_schema, timescale=False) as rec:
        info = rec.schema_info
    assert info is not None and not info.hypertable
    assert info.timescaledb_available == _timescale_available(pg_url)
    with pg_connect(pg_url) as conn:
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (pg_schema,)).fetchall())
    assert "USING brin" in indexes["ticks_time_idx"]
    assert 'USING btree (con_id, "time")' in indexes["ticks_con_id_time_idx"]


async def test_schema_creation_is_idempotent(pg_url, pg_schema):
    for _ in range(2):
        async with TickRecorder(pg_url, schema=pg_schema, table="ticks_b") as rec:
            rec.submit_many(make_ticks(10))
    assert count_ticks(pg_url, schema=pg_schema, table="ticks_b") == 20


async def test_flush_by_size_and_by_time(pg_url, pg_schema):
    rec = TickRecorder(pg_url, schema=pg_schema, flush_interval=3600, flush_rows=1000)
    await rec.start()
    rec.submit_many(make_ticks(2500))
    await _wait_for(lambda: rec.stats.written == 2000)
    await asyncio.sleep(0.2)
    assert rec.stats.queued == 500
    await rec.close()
    assert count_ticks(pg_url, schema=pg_schema) == 2500

    rec = TickRecorder(pg_url, schema=pg_schema, table="by_time", flush_interval=0.1, flush_rows=100_000)
    await rec.start()
    rec.submit_many(make_ticks(3))
    await _wait_for(lambda: rec.stats.written == 3, timeout=3)
    await rec.close()


async def test_unreachable_database_spools_then_next_start_replays_exactly_once(pg_url, pg_proxy, pg_schema, tmp_path):
    proxy, url = pg_proxy  # the test database, reached through a proxy that is cut first
    proxy.cut()
    spool = tmp_path / "spool"
    rows = make_ticks(7_000)
    down = TickRecorder(url, schema=pg_schema, spool_dir=spool, flush_rows=1000)
    await down.start()
    assert not down.connected
    assert "cannot connect to PostgreSQL at 127.0.0.1:" in down.stats.last_error
    down.submit_many(rows)
    await down.close()
    assert down.stats.spooled == 7_000 and down.stats.written == 0
    assert len(list(spool.rglob("*.spool"))) == 7

    # another database (the same server by another address) does not take them
    async with TickRecorder(pg_url, schema=pg_schema, spool_dir=spool) as other:
        assert other.stats.written == 0
    assert len(list(spool.rglob("*.spool"))) == 7

    proxy.restore()
    async with TickRecorder(url, schema=pg_schema, spool_dir=spool) as up:
        assert up.stats.spooled == 0  # replayed during start()
        assert up.stats.written == 7_000
    assert list(spool.rglob("*.spool")) == []
    assert_same_rows(rows, read_ticks(pg_url, schema=pg_schema))


async def test_strict_start_reports_connection_refused(pg_schema):
    rec = TickRecorder("postgresql+psycopg://postgres@127.0.0.1:1/test", schema=pg_schema, strict=True)
    with pytest.raises(StoreError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1 .*refused"):
        await rec.start()


async def test_terminated_backend_mid_run_loses_nothing(pg_url, pg_schema, tmp_path):
    app = f"desk-test-{uuid.uuid4().hex[:8]}"
    rec = TickRecorder(
        pg_url,
        schema=pg_schema,
        spool_dir=tmp_path / "spool",
        flush_interval=0.02,
        flush_rows=500,
        retry_min=0.05,
        retry_max=0.2,
        application_name=app,
    )
    await rec.start()
    rows = make_ticks(20_000, seed=5)
    kills = 0

    def terminate() -> int:
        with pg_connect(pg_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s) t",
                (app,),
            ).fetchone()[0]

    def backends() -> int:
        with pg_connect(pg_url) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]

    for i in range(0, len(rows), 1000):
        rec.submit_many(rows[i : i + 1000])
        await asyncio.sleep(0.01)
        if i % 4000 == 0:
            # kill only once the recorder has reconnected, so every round cuts a live session
            # whatever the machine's load (the count no longer depends on timing)
            await _wait_for(lambda: backends() > 0)
            kills += terminate()
    await rec.flush()
    await _wait_for(lambda: rec.stats.spooled == 0 and rec.connected)
    await rec.close()
    assert kills >= 3
    assert rec.stats.errors >= 1 and rec.stats.written == len(rows)
    _assert_exactly_once(pg_url, pg_schema, len(rows))
    assert_same_rows(rows, read_ticks(pg_url, schema=pg_schema))


async def test_outage_through_proxy_spools_and_replays_in_same_run(pg_url, pg_proxy, pg_schema, tmp_path):
    proxy, url = pg_proxy
    spool = tmp_path / "spool"
    results = []
    rec = TickRecorder(
        url,
        schema=pg_schema,
        spool_dir=spool,
        flush_interval=0.02,
        flush_rows=400,
        retry_min=0.05,
        retry_max=0.2,
        on_batch=results.append,
    )
    await rec.start()
    rows = make_ticks(6_000, seed=9)
    rec.submit_many(rows[:2000])
    await rec.flush()
    assert rec.stats.written == 2000

    proxy.cut()
    rec.submit_many(rows[2000:4000])
    await rec.flush()
    s = rec.stats
    assert s.spooled > 0 and s.written + s.spooled == 4000 and s.errors >= 1
    assert len(list(spool.rglob("*.spool"))) >= 1
    await asyncio.sleep(0.3)  # several failed reconnects with backoff
    assert rec.stats.spooled == s.spooled

    proxy.restore()
    rec.submit_many(rows[4000:])
    await _wait_for(lambda: rec.stats.spooled == 0 and rec.stats.written == 6000)
    await rec.close()
    assert {r.outcome for r in results} >= {"written", "spooled", "replayed"}
    assert list(spool.rglob("*.spool")) == []
    _assert_exactly_once(pg_url, pg_schema, 6000)
    # order preserved: replayed batches precede batches submitted after the outage
    assert_same_rows(rows, read_ticks(pg_url, schema=pg_schema))


async def test_replayed_batch_already_committed_is_skipped(pg_url, pg_schema, tmp_path):
    rows = make_ticks(300)
    batch_id = uuid.uuid4()
    sink = open_sink(pg_url, schema=pg_schema)
    sink.connect()
    assert sink.write_batch(batch_id, rows) is True
    assert sink.write_batch(batch_id, rows) is False  # same id again: nothing written
    sink.close()
    # the client never saw the commit (e.g. connection lost during COMMIT) and spooled it
    spool = Spool(spool_folder(tmp_path / "spool", pg_url, "ticks", pg_schema))
    spool.open()
    spool.append(batch_id, rows)
    results = []
    async with TickRecorder(pg_url, schema=pg_schema, spool_dir=tmp_path / "spool", on_batch=results.append) as rec:
        await asyncio.sleep(0)
    assert rec.stats.spooled == 0
    assert [r.outcome for r in results] == ["duplicate"]
    _assert_exactly_once(pg_url, pg_schema, 300)


@pytest.mark.parametrize("flush_rows", [5000, 10], ids=["one-batch", "grouped-batches"])
async def test_invalid_rows_rejected_rest_written(pg_url, pg_schema, tmp_path, flush_rows):
    rows = make_ticks(50)
    rows[10] = rows[10]._replace(con_id=2**40)  # beyond PostgreSQL integer
    rows[20] = rows[20]._replace(symbol=None)
    rows[30] = rows[30]._replace(time=rows[30].time.replace(tzinfo=None))  # naive means UTC: accepted
    async with TickRecorder(pg_url, schema=pg_schema, spool_dir=tmp_path, flush_rows=flush_rows) as rec:
        rec.submit_many(rows)
    assert rec.rejected == 2 and rec.stats.written == 48 and rec.stats.spooled == 0
    rows[30] = rows[30]._replace(time=rows[30].time.replace(tzinfo=timezone.utc))
    assert_same_rows(rows[:10] + rows[11:20] + rows[21:], read_ticks(pg_url, schema=pg_schema))
    assert len(list(tmp_path.glob("ticks-*/rejected/*.jsonl"))) == (1 if flush_rows == 5000 else 2)


async def test_grouped_batches_share_a_transaction_but_keep_their_ids(pg_url, pg_schema):
    results = []
    async with TickRecorder(pg_url, schema=pg_schema, flush_rows=100, max_batches_per_commit=4, on_batch=results.append) as rec:
        rec.submit_many(make_ticks(1050))
    assert [r.rows for r in results] == [100] * 10 + [50]
    with pg_connect(pg_url) as conn:
        marks = conn.execute(f'SELECT count(*), sum(rows) FROM "{pg_schema}".recorder_batches').fetchone()
    assert marks == (11, 1050)
    _assert_exactly_once(pg_url, pg_schema, 1050)


async def test_probe_database(pg_url, pg_schema):
    info = await probe_database(pg_url, schema=pg_schema)
    assert info.reachable and info.dialect == "postgresql" and info.server_version
    assert info.tick_rows is None and not info.tick_table_exists
    async with TickRecorder(pg_url, schema=pg_schema) as rec:
        rec.submit_many(make_ticks(42))
    info = await probe_database(pg_url, schema=pg_schema)
    assert info.tick_rows == 42 and "42 rows" in info.summary()
    with pg_connect(pg_url) as conn:
        available = bool(conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name='timescaledb'").fetchone()[0])
    assert info.timescaledb_available == available

    down = await probe_database("postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert not down.reachable
    assert down.error.startswith("cannot connect to PostgreSQL at 127.0.0.1:1 (database test, user postgres): ")
    assert "refused" in down.error
    bad = await probe_database("mysql://x@y/z")
    assert not bad.reachable and "unsupported database" in bad.error


def test_upsert_instruments_postgres(pg_url, pg_schema):
    engine = make_engine(pg_url)
    try:
        assert upsert_instruments(engine, [Instrument("SPY", con_id=756733)], schema=pg_schema) == 1
        assert upsert_instruments(engine, [Instrument("SPY", con_id=756733, exchange="ARCA")], schema=pg_schema) == 1
        store = StoreSchema(schema=pg_schema)
        with engine.connect() as conn:
            rows = conn.execute(store.instruments.select()).all()
        assert len(rows) == 1 and rows[0].exchange == "ARCA" and rows[0].first_seen.tzinfo is not None
    finally:
        engine.dispose()


async def test_hung_database_never_blocks_the_event_loop(pg_url, pg_proxy, pg_schema):
    proxy, url = pg_proxy
    rec = TickRecorder(url, schema=pg_schema, flush_interval=0.02, flush_rows=500)
    await rec.start()
    proxy.freeze()  # the server stops answering mid-write; the writer thread hangs in COPY
    rows = make_ticks(20_000, seed=11)
    loop = asyncio.get_running_loop()
    worst = 0.0
    for i in range(0, len(rows), 500):
        t0 = loop.time()
        for row in rows[i : i + 500]:
            rec.submit(row)
        await asyncio.sleep(0.005)
        worst = max(worst, loop.time() - t0)
    assert worst < 0.5  # generous: the point is it does not wait for the database
    assert rec.stats.written < len(rows) and rec.stats.queued > 0
    proxy.thaw()
    await asyncio.wait_for(rec.flush(), 30)
    await rec.close()
    assert rec.stats.written == len(rows)
    _assert_exactly_once(pg_url, pg_schema, len(rows))


async def test_a_hung_database_is_treated_as_down_and_memory_stays_bounded(pg_url, pg_proxy, pg_schema, tmp_path, caplog):
    """The server stops answering mid-write (not down: the socket stays open). After
    ``write_timeout`` the recorder cuts the connection, spools what it holds and what
    follows, and warns; nothing piles up in memory. When the server answers again the
    spool is written, exactly once."""
    caplog.set_level("WARNING", logger="desk.store.recorder")
    proxy, url = pg_proxy
    rec = TickRecorder(
        url,
        schema=pg_schema,
        spool_dir=tmp_path / "spool",
        flush_interval=0.02,
        flush_rows=500,
        write_timeout=0.5,
        retry_min=0.05,
        retry_max=0.2,
    )
    await rec.start()
    assert rec.connected
    proxy.freeze()
    rows = make_ticks(20_000, seed=12)
    for i in range(0, len(rows), 250):  # 5,000 rows/s for 4 s
        rec.submit_many(rows[i : i + 250])
        await asyncio.sleep(0.05)
    # still hung: every row is in the spool, none waits in memory
    await _wait_for(lambda: rec.stats.queued == 0 and rec.stats.spooled + rec.stats.written == len(rows), timeout=20)
    assert rec.stats.spooled > 0
    assert any("did not answer a write within 0.5 s; treated as down" in r.message for r in caplog.records)
    proxy.thaw()
    await _wait_for(lambda: rec.stats.spooled == 0 and rec.stats.written == len(rows), timeout=30)
    await rec.close()
    _assert_exactly_once(pg_url, pg_schema, len(rows))


async def test_retention_deletes_old_ticks_postgres(pg_url, pg_schema):
    from store_testlib import check_retention

    await check_retention(pg_url, schema=pg_schema)
