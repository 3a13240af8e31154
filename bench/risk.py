"""Cost of the order path: the risk preview, the market-hours lookup and the audit write.

The order ticket re-runs :func:`desk.risk.evaluate` on every keystroke and quote change,
on the event loop that also runs ib_async, so it must cost microseconds; the audit write
sits between the trader's Enter and placeOrder, so its latency is what write-ahead costs.
Prints medians (and p95) over many calls, each next to a baseline measured in the same run:

* evaluate(): a stock LMT order, a single option (payoff of the resulting position), a
  4-leg box spread; baseline: building the MarketContext alone (the caller's share);
* market hours: desk.domain.calendar (precomputed sessions, binary search): phase and
  is_open, against exchange_calendars' own ``is_open_on_minute`` for the same instants;
* audit write (durable commit, synchronous): SQLite (synchronous=FULL) and PostgreSQL
  (synchronous_commit on) through AuditLog, against a bare psycopg / sqlite3 INSERT +
  commit of the same row in the same database.

Usage: python bench/risk.py [--calls 20000] [--writes 300] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta

from desk.domain import Instrument, Quote
from desk.domain.orders import Position
from desk.domain.calendar import nyse_calendar
from desk.risk import ComboLeg, MarketContext, OrderIntent, RiskLimits, evaluate
from desk.store import AuditEvent, AuditLog, new_client_order_id

NOW = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)


def timed(fn, n: int) -> tuple[float, float]:
    """(median, p95) seconds per call of ``fn()`` over ``n`` calls (batches of 10)."""
    samples = []
    for _ in range(max(1, n // 10)):
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        samples.append((time.perf_counter() - t0) / 10)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def us(x: float) -> str:
    return f"{x * 1e6:8.1f} µs"


def opt(right: str, strike: float, con_id: int) -> Instrument:
    return Instrument("SPY", "OPT", con_id=con_id, expiry="20240419", strike=strike, right=right, multiplier=100)


def bench_evaluate(calls: int) -> None:
    spy = Instrument("SPY", con_id=1)
    c100, c110, p100, p110 = opt("C", 100, 2), opt("C", 110, 3), opt("P", 100, 4), opt("P", 110, 5)
    quotes = [
        Quote(spy, bid=100.0, ask=100.02, time=NOW),
        Quote(c100, bid=5.0, ask=5.2, time=NOW),
        Quote(c110, bid=1.0, ask=1.1, time=NOW),
        Quote(p100, bid=2.0, ask=2.1, time=NOW),
        Quote(p110, bid=7.9, ask=8.1, time=NOW),
    ]
    positions = [Position(spy, 300, 98.0), Position(c100, -1, 4.0)]
    limits = RiskLimits()
    bag = Instrument("SPY", "BAG", multiplier=100)
    box_legs = (ComboLeg(c100, "BUY"), ComboLeg(c110, "SELL"), ComboLeg(p110, "BUY"), ComboLeg(p100, "SELL"))
    cases = {
        "stock LMT": OrderIntent(spy, "BUY", 100, "LMT", limit_price=100.01),
        "option LMT + payoff": OrderIntent(c100, "SELL", 2, "LMT", limit_price=5.1),
        "box (4 legs) + payoff": OrderIntent(bag, "BUY", 1, "LMT", limit_price=9.95, legs=box_legs),
    }

    def make_ctx() -> MarketContext:
        return MarketContext(NOW, quotes=quotes, positions=positions, daily_pnl=-100.0, buying_power=1e6, underlying_price=100.0)

    base, base95 = timed(make_ctx, calls)
    print(f"baseline: build MarketContext (5 quotes, 2 positions)  median {us(base)}  p95 {us(base95)}")
    ctx = make_ctx()
    evaluate(cases["stock LMT"], ctx, limits)  # load the calendar outside the timing
    for name, intent in cases.items():
        med, p95 = timed(lambda i=intent: evaluate(i, ctx, limits), calls)
        print(f"evaluate  {name:24s}                median {us(med)}  p95 {us(p95)}  ({med / base:5.1f}x the context)")
    heaviest, _ = timed(lambda: evaluate(cases["box (4 legs) + payoff"], ctx, limits), calls)
    print(f"  -> re-evaluating the heaviest case at 10 Hz uses {heaviest * 10 * 100:.3f}% of one core (median)")


def bench_hours(calls: int) -> None:
    import exchange_calendars as xc
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XNYS")
    hours = nyse_calendar()
    instants = [NOW + timedelta(minutes=37 * k) for k in range(500)]
    minutes = [pd.Timestamp(t).floor("min") for t in instants]
    k = iter(range(10**9))
    ours, _ = timed(lambda: hours.phase(instants[next(k) % 500]), calls)
    i = iter(range(10**9))
    is_open, _ = timed(lambda: hours.is_open(instants[next(i) % 500]), calls)
    j = iter(range(10**9))
    n = max(200, calls // 50)
    theirs, _ = timed(lambda: cal.is_open_on_minute(minutes[next(j) % 500]), n)
    agree = sum(hours.phase(t).regular == cal.is_open_on_minute(m) for t, m in zip(instants, minutes, strict=True))
    print(f"market hours: desk.domain.calendar phase               median {us(ours)}")
    print(f"market hours: desk.domain.calendar is_open             median {us(is_open)}")
    print(f"market hours: exchange_calendars is_open_on_minute     median {us(theirs)}  (ratio theirs/ours {theirs / ours:4.2f})")
    print(f"  regular-session answers agree on {agree}/500 instants")


def bench_audit(writes: int, pg_url: str | None) -> None:
    payload = {"intent": {"symbol": "SPY", "action": "BUY", "quantity": 100, "limit_price": 100.01}}
    folder = tempfile.mkdtemp(prefix="desk-bench-audit-")
    targets = [("SQLite", f"sqlite:///{folder}/audit.sqlite3", None)]
    if pg_url:
        targets.append(("PostgreSQL", pg_url, "desk_bench_audit"))
    for name, url, schema in targets:
        try:
            log = AuditLog(url, schema=schema)
        except Exception as exc:  # noqa: BLE001
            print(f"audit {name}: skipped ({exc})")
            continue
        med, p95 = timed(lambda: log.write(AuditEvent("intent", new_client_order_id(), "c", payload, mode="sim")), writes)
        row = ("2024-03-08", "c", "x", "intent", "intent", json.dumps(payload), "sim", "")
        if name == "SQLite":
            raw = sqlite3.connect(f"{folder}/raw.sqlite3", isolation_level=None)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=FULL")
            raw.execute("CREATE TABLE t (time, corr, coid, event, state, payload, mode, account)")

            def bare() -> None:
                raw.execute("BEGIN")
                raw.execute("INSERT INTO t VALUES (?,?,?,?,?,?,?,?)", row)
                raw.execute("COMMIT")
        else:
            import psycopg

            from desk.store.urls import parse_database_url

            raw = psycopg.connect(**parse_database_url(url).connect_kwargs, autocommit=True)
            # a regular (WAL-logged) table: a TEMP table would skip the fsync being measured
            raw.execute(
                f"CREATE TABLE {schema}.bare (time text, corr text, coid text, event text, state text, "
                "payload jsonb, mode text, account text)"
            )

            def bare() -> None:
                raw.execute(f"INSERT INTO {schema}.bare VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", row)

        base, base95 = timed(bare, writes)
        print(f"audit write {name:10s} AuditLog.write (durable)      median {med * 1e3:7.3f} ms  p95 {p95 * 1e3:7.3f} ms")
        print(
            f"audit write {name:10s} baseline bare INSERT+commit   median {base * 1e3:7.3f} ms  p95 {base95 * 1e3:7.3f} ms"
            f"  (AuditLog {med / base:4.1f}x)"
        )
        raw.close()
        log.close()
        if schema:
            import psycopg

            from desk.store.urls import parse_database_url

            with psycopg.connect(**parse_database_url(url).connect_kwargs, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    bench_evaluate(args.calls)
    bench_hours(args.calls)
    bench_audit(args.writes, args.pg or None)


if __name__ == "__main__":
    main()
