"""Helpers of the desk.store tests (imported by conftest.py and the test modules).

Kept out of conftest.py so test modules can import them by a unique module name.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import psycopg

from desk.domain.models import TickRecord
from netfaults import TcpProxy  # noqa: F401  (re-exported for conftest)

PG_URL = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_connect(url: str = PG_URL, **kwargs: object) -> psycopg.Connection:
    """A plain psycopg connection to the test database (autocommit)."""
    from desk.store.urls import parse_database_url

    target = parse_database_url(url)
    return psycopg.connect(autocommit=True, connect_timeout=3, **{**target.connect_kwargs, **kwargs})


def make_ticks(n: int, *, seed: int = 1, start: datetime | None = None, con_base: int = 1000) -> list[TickRecord]:
    """``n`` synthetic ticks with strictly increasing times (µs steps), several symbols,
    quotes (price/size nan) and trades, some absent sides, a few infinities."""
    rng = random.Random(seed)
    t = start or datetime(2024, 3, 8, 14, 30, tzinfo=timezone.utc)
    symbols = ["SPY", "QQQ", "AAPL", "BRK B", "Ünï", "GOOG  240119C00140000"]
    out = []
    for i in range(n):
        t += timedelta(microseconds=rng.randint(1, 5000))
        s = rng.randrange(len(symbols))
        mid = 100.0 + rng.random() * 50
        if rng.random() < 0.8:
            bid, ask = mid - 0.01, mid + 0.01
            bid_size, ask_size = float(rng.randint(1, 900)), float(rng.randint(1, 900))
            if i % 97 == 0:
                bid, bid_size = math.nan, math.nan
            row = TickRecord(t, con_base + s, symbols[s], "Q", bid, ask, bid_size, ask_size, math.nan, math.nan)
        else:
            price = mid if i % 211 else math.inf
            row = TickRecord(
                t, con_base + s, symbols[s], "T", math.nan, math.nan, math.nan, math.nan, price, float(rng.randint(1, 500))
            )
        out.append(row)
    return out


def same_value(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def assert_same_rows(expected: Sequence[TickRecord], actual: Sequence[TickRecord]) -> None:
    """Same multiset of rows, value for value (nan == nan), times tz-aware UTC."""
    assert len(actual) == len(expected)
    key = lambda r: (r.time, r.con_id, r.kind)  # noqa: E731
    for exp, got in zip(sorted(expected, key=key), sorted(actual, key=key), strict=True):
        assert got.time.utcoffset() == timedelta(0), got.time
        assert got.time == exp.time
        for field, e, g in zip(TickRecord._fields, exp, got, strict=True):
            assert same_value(e, g), (field, exp, got)


async def check_retention(url: str, **recorder_kw) -> None:
    """Ticks older than ``retention_days`` are deleted when a recorder with the rule
    connects; recent ones are kept, row for row."""
    import asyncio

    from desk.store import TickRecorder, read_ticks

    now = datetime.now(timezone.utc)
    old = make_ticks(300, seed=21, start=now - timedelta(days=40))
    recent = make_ticks(200, seed=22, start=now - timedelta(days=2))
    async with TickRecorder(url, **recorder_kw) as rec:
        rec.submit_many(old + recent)
    async with TickRecorder(url, retention_days=30, **recorder_kw) as rec:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(read_ticks(url, schema=recorder_kw.get("schema"))) != len(recent):
            assert loop.time() < deadline, "old ticks not deleted"
            await asyncio.sleep(0.02)
    assert_same_rows(recent, read_ticks(url, schema=recorder_kw.get("schema")))
