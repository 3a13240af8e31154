"""Helpers of the desk.risk tests: instruments, quotes and contexts at a known time.

``OPEN`` is Friday 2024-03-08 15:00 UTC (10:00 ET, NYSE regular session).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from desk.domain import Instrument, Quote
from desk.domain.orders import Position
from desk.risk import ComboLeg, MarketContext, OrderIntent, RiskLimits

OPEN = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
EXPIRY = "20240419"

SPY = Instrument("SPY", con_id=756733, primary_exchange="ARCA")
AAPL = Instrument("AAPL", con_id=265598, primary_exchange="NASDAQ")


def option(right: str, strike: float, *, symbol: str = "SPY", expiry: str = EXPIRY, con_id: int | None = None) -> Instrument:
    """An option with a deterministic conId derived from its terms."""
    if con_id is None:
        con_id = 10_000_000 + int(strike * 100) * 10 + (1 if right == "C" else 2) + (int(expiry) % 1000) * 10**7
    return Instrument(symbol, "OPT", con_id=con_id, expiry=expiry, strike=float(strike), right=right, multiplier=100)


def combo(symbol: str, legs: list[tuple[Instrument, str, int]], multiplier: int = 100) -> tuple[Instrument, tuple[ComboLeg, ...]]:
    return Instrument(symbol, "BAG", multiplier=multiplier), tuple(ComboLeg(i, a, r) for i, a, r in legs)


def quote(ins: Instrument, bid: float, ask: float, *, last: float = math.nan, age: float = 0.0, at: datetime = OPEN) -> Quote:
    return Quote(ins, bid=bid, ask=ask, last=last, time=at - timedelta(seconds=age))


def ctx(*quotes: Quote, at: datetime = OPEN, positions: tuple[Position, ...] = (), **kw: object) -> MarketContext:
    kw.setdefault("buying_power", 1_000_000.0)
    kw.setdefault("available_funds", 1_000_000.0)
    kw.setdefault("daily_pnl", 0.0)
    return MarketContext(at, quotes=list(quotes), positions=list(positions), **kw)  # type: ignore[arg-type]


def lmt(ins: Instrument, action: str, qty: int, price: float, **kw: object) -> OrderIntent:
    return OrderIntent(ins, action, qty, "LMT", limit_price=price, **kw)  # type: ignore[arg-type]


LIMITS = RiskLimits()
