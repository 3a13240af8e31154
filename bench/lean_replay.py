"""LEAN import, replay and history: throughput and latency figures, with baselines
measured in the same run.

(1) import   ``import_lean`` of the GOOG 2015-12-24 day (2,192 option contracts + the
             underlying + its daily file: ~560k rows) into a fresh SQLite file and into
             a scratch PostgreSQL schema (binary COPY). Baseline: reading the same zip
             members and splitting every line into fields, nothing validated or written
             (the floor any importer pays). Ratio = import time / baseline time.
(2) load     ``load_replay`` of that day from each store (what ``desk sim --replay``
             does before it listens).
(3) replay   the whole recorded day stepped at 0.25 s (IB's cadence) through a gateway
             with every one of the 2,192 options active and repriced (IV and Greeks by
             the option engine): replayed seconds per wall second, i.e. the highest
             ``--speed`` the machine sustains with the full chain subscribed.
(4) history  reqHistoricalData answered by the synthetic model (no sockets): 1 D of
             1 min bars, 1 Y and 10 Y of daily bars (first request and cached), vs.
             aggregating the same number of minute bars already in memory.

Usage: python bench/lean_replay.py [--lean DIR] [--pg postgresql+psycopg://...] [--no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from desk.domain import FrozenClock  # noqa: E402
from desk.sim import SimGateway  # noqa: E402
from desk.sim.history_bars import aggregate, bucket_labels  # noqa: E402
from desk.store.lean import SAMPLE_LEAN_DIR, default_lean_dir  # noqa: E402
from desk.sim.replay_data import load_replay, run_import  # noqa: E402
from desk.sim.replay_market import ReplayMarket  # noqa: E402
from desk.store.lean import scan_lean  # noqa: E402

DAY = date(2015, 12, 24)


def baseline_parse(lean: Path) -> tuple[float, int]:
    scan = scan_lean(lean, symbols=["GOOG"], dates=[DAY])
    t0 = time.perf_counter()
    rows = 0
    for f in scan.files:
        with zipfile.ZipFile(f.path) as z:
            for info in z.infolist():
                for line in z.read(info).decode("ascii").splitlines():
                    line.split(",")
                    rows += 1
    return time.perf_counter() - t0, rows


def bench_import(url: str, lean: Path, schema: str | None = None) -> float:
    t0 = time.perf_counter()
    r = run_import(url, lean, symbols=["GOOG"], dates=[DAY], schema=schema, stream=None)
    dt = time.perf_counter() - t0
    print(f"    {r.rows:,} rows in {dt:.2f} s = {r.rows / dt:,.0f} rows/s")
    return dt


def bench_replay(url: str, schema: str | None = None) -> None:
    t0 = time.perf_counter()
    data = load_replay(url, DAY, ["GOOG"], schema=schema, import_missing=False, stream=None)
    print(f"  (2) load_replay: {time.perf_counter() - t0:.2f} s ({len(data.options):,} options, {len(data.series):,} series)")

    async def run() -> None:
        market = ReplayMarket(data)
        gw = SimGateway(
            market=market, clock=market.clock, option_source=market.options, tick_interval=3600.0, speed=1.0 / 3600.0 * 60.0
        )  # one gw.step() = 60 replayed seconds in 0.25 s steps
        t1 = time.perf_counter()
        for con_id in data.options:  # activate the whole chain
            gw.options.quote(con_id)
        gw.options.rows.nsubs[:] = 1  # as if every contract had a line: IV and Greeks computed on every change
        activate = time.perf_counter() - t1
        span = data.end - market.clock.time()
        t2 = time.perf_counter()
        while not market.finished:
            gw.step()
        dt = time.perf_counter() - t2
        print(
            f"  (3) replay: {len(data.options):,} options activated in {activate:.2f} s and repriced on every "
            f"recorded change; "
            f"{span / 3600:.1f} replayed hours in {dt:.1f} s = {span / dt:,.0f} replayed s per s "
            f"(max sustainable --speed with the full chain)"
        )

    asyncio.run(run())


def bench_history() -> None:
    gw = SimGateway(seed=7, clock=FrozenClock(datetime(2026, 11, 20, 21, 0, tzinfo=UTC)))
    h = gw.history
    now = gw.clock.time()
    cases = [
        ("1 D of 1 min", 60, now - 86400, 390),
        ("1 Y of 1 day", 86400, now - 365 * 86400, 261 * 390),
        ("10 Y of 1 day", 86400, now - 3650 * 86400, 2520 * 390),
    ]
    timings = []
    for name, size, start, minutes in cases:  # first requests on a fresh gateway: nothing cached
        t0 = time.perf_counter()
        bars = h.bars("SPY", "TRADES", size, start, now, True)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        h.bars("SPY", "TRADES", size, start, now, True)
        timings.append((name, minutes, len(bars), first, time.perf_counter() - t0))
    mins = h.source.minute_bars("SPY", "TRADES", int(now - 30 * 86400), int(now))
    t0 = time.perf_counter()
    for _ in range(20):
        aggregate(mins, bucket_labels(mins.time, 86400))
    base = (time.perf_counter() - t0) / 20 / len(mins)
    print(f"  (4) baseline: aggregating {len(mins):,} in-memory minute bars into days: {base * 1e9:.0f} ns per minute")
    for name, minutes, n_bars, first, again in timings:
        print(
            f"  (4) {name}: {n_bars:,} bars covering {minutes:,} session minutes: first {first * 1e3:.1f} ms "
            f"({first / minutes * 1e9:.0f} ns per minute generated = {first / minutes / base:.1f}x the baseline), "
            f"cached {again * 1e3:.1f} ms"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lean", default=str(default_lean_dir() or SAMPLE_LEAN_DIR))
    ap.add_argument("--pg", default=os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    lean = Path(args.lean)
    base, lines = baseline_parse(lean)
    print(f"(1) baseline: read + split {lines:,} lines of the GOOG day in {base:.2f} s = {lines / base:,.0f} lines/s")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        print("  (1) import into SQLite:")
        dt = bench_import(url, lean)
        print(f"      = {dt / base:.1f}x the baseline")
        bench_replay(url)
    if not args.no_pg:
        from sqlalchemy import text

        from desk.store import make_engine

        schema = "bench_lean_" + uuid.uuid4().hex[:8]
        try:
            print(f"  (1) import into PostgreSQL (schema {schema}):")
            dt = bench_import(args.pg, lean, schema)
            print(f"      = {dt / base:.1f}x the baseline")
            bench_replay(args.pg, schema)
        finally:
            engine = make_engine(args.pg)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
    bench_history()
    return 0


if __name__ == "__main__":
    sys.exit(main())
