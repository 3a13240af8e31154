"""The market_hours pre-trade check, on the desk's exchange calendar (desk.domain.calendar;
the calendar itself is tested in tests/domain/test_domain_calendar.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from risk_testlib import SPY, ctx, lmt, option, quote

from desk.domain.calendar import ExchangeCalendar, nyse_calendar
from desk.risk import OrderIntent, RiskLimits, evaluate


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _check(intent: OrderIntent, when: str, *, enforce: bool = True, hours: ExchangeCalendar | None = None) -> tuple[bool, str]:
    t = at(when)
    q = quote(intent.instrument, 10.0, 10.02, at=t) if not intent.is_combo else None
    report = evaluate(intent, ctx(*([q] if q else []), at=t), RiskLimits(enforce_market_hours=enforce), hours=hours)
    c = report.check("market_hours")
    return c.passed, c.message


def test_market_hours_check_by_order_kind() -> None:
    stock = lmt(SPY, "BUY", 1, 10.01)
    stock_rth = lmt(SPY, "BUY", 1, 10.01, outside_rth=True)
    mkt_rth = OrderIntent(SPY, "BUY", 1, "MKT", outside_rth=True)
    opt_rth = lmt(option("C", 10), "BUY", 1, 10.01, outside_rth=True)
    assert _check(stock, "2024-03-08 15:00") == (True, "XNYS regular session open")
    assert _check(opt_rth, "2024-03-08 15:00")[0]
    assert _check(stock, "2024-03-08 22:00") == (False, "post-market and the order is not outside_rth")
    assert _check(stock_rth, "2024-03-08 22:00")[0]
    assert _check(mkt_rth, "2024-03-08 22:00") == (False, "post-market: only limit orders fill outside regular hours")
    assert _check(opt_rth, "2024-03-08 12:00") == (False, "pre-market: options trade in the regular session only")
    assert _check(stock_rth, "2024-03-09 15:00") == (False, "XNYS closed")
    assert _check(stock, "2099-01-02 15:00") == (False, "no XNYS calendar for 2099-01-02")
    assert _check(stock, "2024-03-09 15:00", enforce=False) == (True, "market hours not enforced (sim)")


def test_holidays_and_half_days_block_orders_as_the_calendar_says() -> None:
    stock, stock_rth = lmt(SPY, "BUY", 1, 10.01), lmt(SPY, "BUY", 1, 10.01, outside_rth=True)
    assert _check(stock_rth, "2026-11-26 15:00") == (False, "XNYS closed")  # Thanksgiving, 10:00 ET
    assert _check(stock, "2026-11-27 17:59")[0]  # day after Thanksgiving, 12:59 ET
    assert _check(stock, "2026-11-27 18:00") == (False, "post-market and the order is not outside_rth")  # 13:00 ET
    assert _check(stock_rth, "2026-11-27 21:59")[0]  # post-market ends 4 h after the early close
    assert _check(stock_rth, "2026-11-27 22:00") == (False, "XNYS closed")


def test_the_check_uses_the_calendar_it_is_given() -> None:
    """The default is the shared XNYS calendar; a caller may pass another one."""
    stock = lmt(SPY, "BUY", 1, 10.01)
    assert _check(stock, "2026-11-26 15:00", hours=nyse_calendar()) == _check(stock, "2026-11-26 15:00")
    assert _check(stock, "2026-11-26 15:00", hours=ExchangeCalendar("XNAS")) == (False, "XNAS closed")
