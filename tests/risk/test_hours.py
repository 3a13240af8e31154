"""NYSE phases from exchange_calendars XNYS, and the market_hours check built on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from risk_testlib import SPY, ctx, lmt, option, quote

from desk.risk import MarketHours, OrderIntent, RiskLimits, evaluate, nyse_hours


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "phase"),
    [
        ("2024-03-08 08:59", "closed"),  # 03:59 ET
        ("2024-03-08 09:00", "pre"),  # 04:00 ET (EST, UTC-5)
        ("2024-03-08 14:29:59", "pre"),
        ("2024-03-08 14:30", "regular"),  # 09:30 ET
        ("2024-03-08 20:59:59", "regular"),
        ("2024-03-08 21:00", "post"),  # 16:00 ET
        ("2024-03-09 00:59", "post"),  # 19:59 ET
        ("2024-03-09 01:00", "closed"),  # 20:00 ET
        ("2024-03-09 15:00", "closed"),  # Saturday
        ("2024-03-11 13:30", "regular"),  # Monday after the DST switch: 09:30 EDT = 13:30 UTC
        ("2024-03-11 13:29", "pre"),
        ("2024-12-25 15:00", "closed"),  # Christmas
        ("2024-11-29 17:59", "regular"),  # day after Thanksgiving: early close 13:00 ET
        ("2024-11-29 18:00", "post"),
        ("2024-11-29 21:59", "post"),  # post-market ends 4 h after the early close
        ("2024-11-29 22:00", "closed"),
        ("1990-01-02 15:00", "unknown"),
        ("2099-01-02 15:00", "unknown"),
    ],
)
def test_phases(when: str, phase: str) -> None:
    assert nyse_hours().phase(at(when)).phase == phase


def test_phase_carries_the_session() -> None:
    p = nyse_hours().phase(at("2024-11-29 19:00"))
    assert p.session == "2024-11-29" and p.close == at("2024-11-29 18:00") and p.extended
    with pytest.raises(ValueError, match="timezone-aware"):
        MarketHours().phase(datetime(2024, 3, 8, 15))


def _check(intent: OrderIntent, when: str, *, enforce: bool = True) -> tuple[bool, str]:
    t = at(when)
    q = quote(intent.instrument, 10.0, 10.02, at=t) if not intent.is_combo else None
    report = evaluate(intent, ctx(*([q] if q else []), at=t), RiskLimits(enforce_market_hours=enforce))
    c = report.check("market_hours")
    return c.passed, c.message


def test_market_hours_check_by_order_kind() -> None:
    stock = lmt(SPY, "BUY", 1, 10.01)
    stock_rth = lmt(SPY, "BUY", 1, 10.01, outside_rth=True)
    mkt_rth = OrderIntent(SPY, "BUY", 1, "MKT", outside_rth=True)
    opt_rth = lmt(option("C", 10), "BUY", 1, 10.01, outside_rth=True)
    assert _check(stock, "2024-03-08 15:00")[0]
    assert _check(opt_rth, "2024-03-08 15:00")[0]
    assert _check(stock, "2024-03-08 22:00") == (False, "post-market and the order is not outside_rth")
    assert _check(stock_rth, "2024-03-08 22:00")[0]
    assert _check(mkt_rth, "2024-03-08 22:00") == (False, "post-market: only limit orders fill outside regular hours")
    assert _check(opt_rth, "2024-03-08 12:00") == (False, "pre-market: options trade in the regular session only")
    assert _check(stock_rth, "2024-03-09 15:00") == (False, "XNYS closed")
    assert _check(stock, "2099-01-02 15:00") == (False, "no XNYS calendar for 2099-01-02")
    assert _check(stock, "2024-03-09 15:00", enforce=False) == (True, "market hours not enforced (sim)")
