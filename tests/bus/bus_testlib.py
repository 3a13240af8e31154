"""Helpers of the desk.bus tests (a unique module name, importable from the test modules)."""

from __future__ import annotations

import math
import os
import random
from datetime import datetime, timedelta, timezone

from desk.domain.models import TickRecord
from netfaults import TcpProxy  # noqa: F401  (re-exported for conftest)

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def make_ticks(n: int, *, seed: int = 3) -> list[TickRecord]:
    """``n`` ticks with increasing times, quotes (price/size nan) and trades."""
    rng = random.Random(seed)
    t = datetime(2024, 3, 8, 14, 30, tzinfo=timezone.utc)
    symbols = ["SPY", "QQQ", "AAPL", "BRK B"]
    out = []
    for i in range(n):
        t += timedelta(microseconds=rng.randint(1, 3000))
        s = i % len(symbols)
        mid = round(100 + rng.random() * 10, 4)
        if i % 3:
            out.append(TickRecord(t, 10 + s, symbols[s], "Q", mid - 0.01, mid + 0.01, 100.0, 200.0, math.nan, math.nan))
        else:
            out.append(TickRecord(t, 10 + s, symbols[s], "T", mid - 0.01, math.nan, 3.0, math.nan, mid, 7.0))
    return out


def same_tick(a: TickRecord, b: TickRecord) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return b.time.utcoffset() == timedelta(0)
