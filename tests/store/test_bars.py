"""Minute bars in the database (desk.store.bars) against a brute-force aggregation in Python,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

from store_testlib import make_ticks

from desk.store import TickRecorder
from desk.store.bars import read_minute_bars


def brute_force(ticks) -> dict[tuple[int, int], dict[str, float]]:
    groups: dict[tuple[int, int], list] = defaultdict(list)
    for t in ticks:
        groups[(t.con_id, int(t.time.timestamp() // 60))].append(t)
    out = {}
    for key, rows in groups.items():
        rows.sort(key=lambda r: r.time)
        bar: dict[str, float] = {}
        series = {
            "bid": [r.bid for r in rows if r.kind == "Q" and r.bid > 0],
            "ask": [r.ask for r in rows if r.kind == "Q" and r.ask > 0],
            "mid": [(r.bid + r.ask) / 2 for r in rows if r.kind == "Q" and r.bid > 0 and r.ask > 0],
            "": [r.price for r in rows if r.kind == "T" and r.price > 0],
        }
        for side, v in series.items():
            p = f"{side}_" if side else ""
            bar.update(
                {
                    p + "open": v[0] if v else math.nan,
                    p + "high": max(v) if v else math.nan,
                    p + "low": min(v) if v else math.nan,
                    p + "close": v[-1] if v else math.nan,
                }
            )
        bar["volume"] = sum(r.size for r in rows if r.kind == "T" and r.price > 0 and r.size == r.size)
        out[key] = bar
    return out


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12)


async def check(url: str, **kw) -> None:
    raw = make_ticks(3000, seed=31)
    base = raw[0].time
    # spread over about 85 minutes, several conIds per minute; finite or absent values only
    ticks = [
        t._replace(time=base + timedelta(seconds=1.7 * i))
        for i, t in enumerate(raw)
        if all(math.isfinite(x) or math.isnan(x) for x in t[4:])
    ]
    async with TickRecorder(url, **kw) as rec:
        rec.submit_many(ticks)
    bars = read_minute_bars(url, schema=kw.get("schema"))
    want = brute_force(ticks)
    assert {(b.con_id, int(b.time.timestamp() // 60)) for b in bars} == set(want) and len(want) > 200
    for b in bars:
        w = want[(b.con_id, int(b.time.timestamp() // 60))]
        for field, value in w.items():
            assert same(getattr(b, field), value), (b.con_id, b.time, field, getattr(b, field), value)
    one = bars[0]
    only = read_minute_bars(url, con_id=one.con_id, start=one.time, end=one.time.replace(second=59), schema=kw.get("schema"))
    assert only == [one]


async def test_minute_bars_sqlite(sqlite_url) -> None:
    await check(sqlite_url)


async def test_minute_bars_postgres(pg_url, pg_schema) -> None:
    await check(pg_url, schema=pg_schema)
