"""Tick ingest throughput into PostgreSQL: the recorder against naive baselines.

Budget (docs/design.md): the recorder sustains >= 100,000 ticks/s into PostgreSQL /
TimescaleDB and reaches at least 70% of raw binary COPY measured in the same run.

Same synthetic rows (80% quotes with price/size absent, 20% trades), same run, each method
into a fresh table with the recorder's schema and indexes (BRIN on time + (con_id, time)
btree, or a hypertable with TimescaleDB), in a scratch schema dropped afterwards:

  (a) recorder     TickRecorder end to end: submit() every tick on the event loop (in
                   chunks of --chunk with a yield between, like a feed), then close();
                   defaults flush_rows=5000, flush_interval=0.25. Also reports the event
                   loop's lag while the writer thread runs.
  (b) raw COPY     one psycopg binary COPY, write_row per row, one transaction (NaN stored
                   as NaN: no per-row work at all; the ceiling).
  (c) executemany  psycopg cursor.executemany(INSERT ...), one transaction.
  (d) SQLAlchemy   Core insert() executemany (insertmanyvalues), parameters prepared
                   before the clock starts, one transaction.
  (e) SQLite       optional (--sqlite): the recorder into a SQLite file in WAL mode.
  (f) Redis        optional (--redis URL): RedisPublisher, Lua-script and pipeline modes,
                   ticks/s and event-loop CPU per tick (not part of the budget).

Usage: python bench/ingest.py [--rows 500000] [--url postgresql+psycopg://...] [--sqlite]
                              [--repeat 1] [--skip-slow]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy import CHAR, Column, DateTime, Double, Integer, MetaData, Table, Text, insert

from desk.domain.models import TickRecord
from desk.store import StoreSchema, TickRecorder, ensure_schema, make_engine, parse_database_url
from desk.store.sinks import PG_COPY_TYPES

DEFAULT_URL = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COLUMNS = TickRecord._fields


def make_rows(n: int, seed: int = 42) -> list[TickRecord]:
    rng = random.Random(seed)
    t = datetime(2024, 3, 8, 14, 30, tzinfo=timezone.utc)
    symbols = [f"S{i:03d}" for i in range(200)]
    rows = []
    for _ in range(n):
        t += timedelta(microseconds=rng.randint(1, 40))
        s = rng.randrange(len(symbols))
        mid = 50.0 + s + rng.random()
        if rng.random() < 0.8:
            rows.append(
                TickRecord(
                    t,
                    1000 + s,
                    symbols[s],
                    "Q",
                    mid - 0.01,
                    mid + 0.01,
                    float(rng.randint(1, 900)),
                    float(rng.randint(1, 900)),
                    math.nan,
                    math.nan,
                )
            )
        else:
            rows.append(
                TickRecord(t, 1000 + s, symbols[s], "T", mid - 0.01, mid + 0.01, 100.0, 300.0, mid, float(rng.randint(1, 500)))
            )
    return rows


def fresh_table(url: str, schema: str, table: str) -> None:
    engine = make_engine(url, application_name="desk-bench")
    try:
        ensure_schema(engine, StoreSchema(table=table, schema=schema))
    finally:
        engine.dispose()


def pg_conn(url: str) -> psycopg.Connection:
    return psycopg.connect(**parse_database_url(url).connect_kwargs, application_name="desk-bench")


def count(url: str, schema: str, table: str) -> int:
    with pg_conn(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]


async def run_recorder(url: str, rows: list[TickRecord], schema: str | None, table: str, chunk: int) -> tuple[float, dict]:
    rec = TickRecorder(url, schema=schema, table=table)
    await rec.start()
    lags: list[float] = []
    stop = False

    async def probe() -> None:  # event-loop lag: how late a 5 ms sleep wakes up
        while not stop:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t0 - 0.005)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    submit = rec.submit
    for i in range(0, len(rows), chunk):
        for row in rows[i : i + chunk]:
            submit(row)
        await asyncio.sleep(0)
    submitted = time.perf_counter()
    await rec.close()
    elapsed = time.perf_counter() - start
    stop = True
    await prober
    s = rec.stats
    if s.written != len(rows) or s.errors:
        raise SystemExit(f"recorder lost rows or failed: {s}")
    lags.sort()
    info = {
        "submit_s": submitted - start,
        "lag_p50_ms": statistics.median(lags) * 1e3 if lags else 0.0,
        "lag_p99_ms": lags[int(len(lags) * 0.99) - 1] * 1e3 if len(lags) > 1 else 0.0,
        "lag_max_ms": lags[-1] * 1e3 if lags else 0.0,
    }
    return elapsed, info


def run_copy(url: str, rows: list[TickRecord], schema: str, table: str) -> float:
    with pg_conn(url) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            cols = ", ".join(f'"{c}"' for c in COLUMNS)
            with cur.copy(f'COPY "{schema}"."{table}" ({cols}) FROM STDIN (FORMAT BINARY)') as copy:
                copy.set_types(PG_COPY_TYPES)
                write = copy.write_row
                for row in rows:
                    write(row)
        conn.commit()
        return time.perf_counter() - start


def run_executemany(url: str, rows: list[TickRecord], schema: str, table: str) -> float:
    with pg_conn(url) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            cols = ", ".join(f'"{c}"' for c in COLUMNS)
            cur.executemany(f'INSERT INTO "{schema}"."{table}" ({cols}) VALUES ({", ".join(["%s"] * 10)})', rows)
        conn.commit()
        return time.perf_counter() - start


def run_sqlalchemy(url: str, rows: list[TickRecord], schema: str, table: str) -> float:
    t = Table(
        table,
        MetaData(schema=schema),
        Column("time", DateTime(timezone=True)),
        Column("con_id", Integer),
        Column("symbol", Text),
        Column("kind", CHAR(1)),
        *(Column(c, Double) for c in COLUMNS[4:]),
    )
    params = [r._asdict() for r in rows]
    engine = make_engine(url, application_name="desk-bench")
    try:
        with engine.begin() as conn:
            start = time.perf_counter()
            conn.execute(insert(t), params)
        return time.perf_counter() - start
    finally:
        engine.dispose()


async def run_redis(url: str, rows: list[TickRecord], use_script: bool) -> tuple[float, float]:
    from desk.bus import RedisPublisher

    stream = f"desk:bench:{uuid.uuid4().hex[:8]}"
    pub = RedisPublisher(url, stream=stream, channel_prefix=stream + ":", use_script=use_script, max_buffer=len(rows))
    await pub.start()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 1000):
        pub.submit_many(rows[i : i + 1000])
        await asyncio.sleep(0)
    await pub.close(timeout=600)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if pub.stats.published != len(rows):
        raise SystemExit(f"redis publisher lost ticks: {pub.stats}")
    import redis

    redis.Redis.from_url(url).delete(stream)
    return elapsed, cpu / len(rows) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--chunk", type=int, default=1000, help="ticks submitted between event-loop yields")
    ap.add_argument("--repeat", type=int, default=1, help="runs of (a) and (b), alternating; best of each")
    ap.add_argument("--sqlite", action="store_true", help="also the recorder into a SQLite file")
    ap.add_argument("--skip-slow", action="store_true", help="skip (c) and (d)")
    ap.add_argument("--redis", metavar="URL", help="also the Redis publisher, e.g. redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    rows = make_rows(args.rows)
    schema = "desk_bench_" + uuid.uuid4().hex[:8]
    n = len(rows)
    results: dict[str, float] = {}
    extra: dict = {}
    try:
        with pg_conn(args.url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            ts = conn.execute("SELECT extversion FROM pg_extension WHERE extname='timescaledb'").fetchone()
        print(
            f"PostgreSQL {version}{', TimescaleDB ' + ts[0] if ts else ' (no TimescaleDB: plain tables, BRIN + btree)'}; "
            f"{n:,} rows; Python {sys.version.split()[0]}; psycopg {psycopg.__version__}; {os.cpu_count()} CPUs"
        )
        for r in range(args.repeat):
            fresh_table(args.url, schema, f"rec{r}")
            secs, info = asyncio.run(run_recorder(args.url, rows, schema, f"rec{r}", args.chunk))
            assert count(args.url, schema, f"rec{r}") == n
            if secs < results.get("recorder", math.inf):
                results["recorder"], extra = secs, info
            fresh_table(args.url, schema, f"copy{r}")
            secs = run_copy(args.url, rows, schema, f"copy{r}")
            assert count(args.url, schema, f"copy{r}") == n
            results["raw COPY"] = min(secs, results.get("raw COPY", math.inf))
        if not args.skip_slow:
            fresh_table(args.url, schema, "execmany")
            results["executemany"] = run_executemany(args.url, rows, schema, "execmany")
            assert count(args.url, schema, "execmany") == n
            fresh_table(args.url, schema, "sqla")
            results["SQLAlchemy Core"] = run_sqlalchemy(args.url, rows, schema, "sqla")
            assert count(args.url, schema, "sqla") == n
        if args.sqlite:
            with tempfile.TemporaryDirectory() as d:
                url = f"sqlite:///{d}/bench.sqlite3"
                secs, _ = asyncio.run(run_recorder(url, rows, None, "ticks", args.chunk))
                results["recorder (SQLite)"] = secs
    finally:
        with pg_conn(args.url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.commit()

    rec_rate = n / results["recorder"]
    print(f"\n{'method':<22}{'rows/s':>12}{'seconds':>10}{'vs recorder':>13}")
    for name, secs in results.items():
        rate = n / secs
        print(f"{name:<22}{rate:>12,.0f}{secs:>10.2f}{rate / rec_rate:>12.2f}x")
    ratio = rec_rate / (n / results["raw COPY"])
    print(
        f"\nrecorder: submit() of all rows took {extra['submit_s']:.2f} s; event-loop lag while writing "
        f"p50 {extra['lag_p50_ms']:.1f} ms, p99 {extra['lag_p99_ms']:.1f} ms, max {extra['lag_max_ms']:.1f} ms"
    )
    if args.redis:
        for use_script in (True, False):
            secs, us = asyncio.run(run_redis(args.redis, rows, use_script))
            mode = "Lua script" if use_script else "pipeline"
            print(f"Redis publisher ({mode}): {n / secs:,.0f} ticks/s, {us:.1f} µs of process CPU per tick")
    ok_rate, ok_ratio = rec_rate >= 100_000, ratio >= 0.70
    print(f"recorder {rec_rate:,.0f} ticks/s  (budget >= 100,000: {'ok' if ok_rate else 'MISSED'})")
    print(f"recorder / raw COPY = {ratio:.2f}  (budget >= 0.70: {'ok' if ok_ratio else 'MISSED'})")
    return 0 if ok_rate and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
