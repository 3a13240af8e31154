"""The simulator keeps the desk's exchange calendar (desk.domain.calendar): orders with
``market_hours``, contract details' trading hours, the synthetic past's sessions and
option expiries, driven through the real, unmodified ib_async client on a frozen clock.

At every instant where the simulator holds or expires an order, the desk's own
pre-trade ``market_hours`` check is asked the same question and must give the same
answer: one calendar for both.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, LimitOrder, Option, Stock
from test_sim_orders import CALM, set_quote, spy

from desk.domain import FrozenClock, Instrument, Quote
from desk.domain.calendar import nyse_calendar
from desk.pricing import expiry_instant, time_to_expiry
from desk.risk import MarketContext, OrderIntent, RiskLimits, evaluate
from desk.sim import SimGateway
from desk.sim.chain import expiry_epoch, listed_expiries

ET = ZoneInfo("America/New_York")
#: Thanksgiving 2026, 10:00 ET: NYSE closed all day.
THANKSGIVING_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=ET)
SPY = Instrument("SPY", con_id=756733, primary_exchange="ARCA")


def desk_allows(now: datetime, outside_rth: bool) -> bool:
    """The desk's market_hours check for a SPY limit order at ``now``, hours enforced."""
    intent = OrderIntent(SPY, "BUY", 100, "LMT", limit_price=590.0, outside_rth=outside_rth)
    ctx = MarketContext(now, quotes=[Quote(SPY, bid=600.0, ask=600.02, time=now)], buying_power=1e9, daily_pnl=0.0)
    return evaluate(intent, ctx, RiskLimits(enforce_market_hours=True)).check("market_hours").passed


async def test_thanksgiving_orders_wait_and_day_orders_expire_at_the_half_day_close(wait_until) -> None:
    clock = FrozenClock(THANKSGIVING_10AM)
    gw = SimGateway(seed=7, clock=clock, market_hours=True, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        contract = await spy(ib)
        set_quote(gw, "SPY", 600.00, 600.02)
        day = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02))  # marketable
        ioc = ib.placeOrder(contract, LimitOrder("BUY", 100, 600.02, tif="IOC"))
        rest = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00))
        rest_ext = ib.placeOrder(contract, LimitOrder("BUY", 100, 590.00, outsideRth=True))
        await wait_until(lambda: ioc.isDone() and rest_ext.orderStatus.status == "PreSubmitted", 2.0)
        gw.orders.on_step()  # a market step on the holiday: nothing may work
        # closed all day: IB queues the orders (PreSubmitted) and cancels the IOC
        assert ioc.orderStatus.status == "Cancelled" and not ioc.fills
        assert [t.orderStatus.status for t in (day, rest, rest_ext)] == ["PreSubmitted"] * 3 and not day.fills
        assert not desk_allows(clock.now(), False) and not desk_allows(clock.now(), True)

        clock.advance(18 * 3600)  # Friday 2026-11-27 04:00 ET: pre-market
        gw.orders.on_step()
        await wait_until(lambda: rest_ext.orderStatus.status == "Submitted", 2.0)
        assert day.orderStatus.status == "PreSubmitted" and not day.fills
        assert not desk_allows(clock.now(), False) and desk_allows(clock.now(), True)

        clock.advance(5.5 * 3600)  # 09:30 ET: the regular session
        gw.orders.on_step()
        await wait_until(lambda: day.isDone() and rest.orderStatus.status == "Submitted", 2.0)
        assert day.fills[0].execution.price == 600.02
        assert desk_allows(clock.now(), False) and desk_allows(clock.now(), True)

        clock.advance(3.5 * 3600 - 1)  # 12:59:59 ET: still the session
        gw.orders.on_step()
        assert {o.order_id for o in gw.orders.open_orders()} == {rest.order.orderId, rest_ext.order.orderId}
        assert desk_allows(clock.now(), False)

        clock.advance(1)  # 13:00 ET, the early close: the DAY order expires (not at 16:00)
        gw.orders.on_step()
        await wait_until(lambda: rest.isDone(), 2.0)
        assert rest.orderStatus.status == "Cancelled" and rest_ext.orderStatus.status == "Submitted"
        assert not desk_allows(clock.now(), False) and desk_allows(clock.now(), True)

        clock.advance(4 * 3600)  # 17:00 ET: the post-market of a half day ends 4 h after its close
        gw.orders.on_step()
        await wait_until(lambda: rest_ext.isDone(), 2.0)
        assert rest_ext.orderStatus.status == "Cancelled"
        assert not desk_allows(clock.now(), True)
    finally:
        ib.disconnect()
        await gw.stop()


async def test_contract_details_hours_follow_the_calendar() -> None:
    gw = SimGateway(seed=7, clock=FrozenClock(datetime(2026, 11, 23, 12, 0, tzinfo=ET)), **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        (cd,) = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
        week = nyse_calendar().sessions(date(2026, 11, 23), date(2026, 11, 29))
        assert [s.day for s in week] == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]
        assert [(s.start, s.end) for s in cd.liquidSessions()] == [(s.open, s.close) for s in week]
        assert [(s.start, s.end) for s in cd.tradingSessions()] == [(s.pre_open, s.post_close) for s in week]
        assert "20261126:CLOSED" in cd.liquidHours and "20261127:0930-20261127:1300" in cd.liquidHours
        assert "20261127:0400-20261127:1700" in cd.tradingHours
        (od,) = await ib.reqContractDetailsAsync(Option("SPY", "20261127", 600, "C", "SMART"))
        friday = od.liquidSessions()[-1]
        assert (friday.start, friday.end) == (week[-1].open, week[-1].close + timedelta(minutes=15))  # SPY: 13:15
        assert "20261126:CLOSED" in od.tradingHours
    finally:
        ib.disconnect()
        await gw.stop()


async def test_synthetic_history_has_no_holiday_and_a_short_half_day() -> None:
    gw = SimGateway(seed=7, clock=FrozenClock(datetime(2026, 12, 2, 10, 0, tzinfo=ET)), **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        spy_stk = Stock("SPY", "SMART", "USD", conId=756733)
        minutes = await ib.reqHistoricalDataAsync(spy_stk, "20261127 16:00:00 US/Eastern", "2 D", "1 min", "TRADES", True)
        by_day: dict[date, list[datetime]] = {}
        for b in minutes:
            by_day.setdefault(b.date.astimezone(ET).date(), []).append(b.date)
        assert sorted(by_day) == [date(2026, 11, 25), date(2026, 11, 27)]  # 2 sessions back: not the 26th
        assert len(by_day[date(2026, 11, 25)]) == 390 and len(by_day[date(2026, 11, 27)]) == 210
        assert by_day[date(2026, 11, 27)][-1].astimezone(ET) == datetime(2026, 11, 27, 12, 59, tzinfo=ET)
        daily = await ib.reqHistoricalDataAsync(spy_stk, "20261201 23:59:59 US/Eastern", "1 W", "1 day", "TRADES", True)
        days = [b.date for b in daily]
        assert date(2026, 11, 26) not in days and {date(2026, 11, 25), date(2026, 11, 27)} <= set(days)
        friday = daily[days.index(date(2026, 11, 27))]
        friday_minutes = [b for b in minutes if b.date.astimezone(ET).date() == date(2026, 11, 27)]
        assert friday.close == friday_minutes[-1].close  # the half day closes at its 12:59 bar
        assert friday.high == max(b.high for b in friday_minutes) and friday.low == min(b.low for b in friday_minutes)
        assert friday.volume == pytest.approx(sum(b.volume for b in friday_minutes))
    finally:
        ib.disconnect()
        await gw.stop()


@pytest.mark.parametrize("listed", [date(2026, 11, 21), date(2027, 3, 20), date(2015, 12, 21)])
def test_sim_and_desk_expiry_closes_agree(listed: date) -> None:
    expiries = [d for d, _ in listed_expiries(listed)]
    cal = nyse_calendar()
    for d in expiries:
        e = d.strftime("%Y%m%d")
        assert cal.is_session(d)
        assert expiry_epoch(e) == expiry_instant(e).timestamp() == cal.expiry_close(d).timestamp()
        # the sim's T (epoch seconds / SECONDS_PER_YEAR, as OptionRows.years) is the desk's T
        now = datetime.combine(listed, datetime.min.time(), ET) + timedelta(hours=11)
        assert (expiry_epoch(e) - now.timestamp()) / (365 * 86400) == pytest.approx(time_to_expiry(e, now), rel=1e-12)
    if listed == date(2026, 11, 21):  # weeklies on both 2026 half days (Christmas is a Friday)
        assert {date(2026, 11, 27), date(2026, 12, 24)} <= set(expiries)
        assert expiry_epoch("20261224") == datetime(2026, 12, 24, 13, 0, tzinfo=ET).timestamp()


async def test_a_day_order_beyond_the_calendar_is_rejected_in_one_line(wait_until) -> None:
    gw = SimGateway(seed=7, clock=FrozenClock(datetime(2099, 6, 1, 12, 0, tzinfo=ET)), market_hours=True, **CALM)
    await gw.start()
    ib = IB()
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        trade = ib.placeOrder(await spy(ib), LimitOrder("BUY", 100, 590.00))
        await wait_until(lambda: trade.isDone(), 2.0)
        assert trade.orderStatus.status == "Cancelled" and gw.orders.open_orders() == []
        [text] = [t for code, t in errors if code == 201]  # 2104/2106 farm notices aside
        assert "outside calendar XNYS" in text and "\n" not in text
    finally:
        ib.disconnect()
        await gw.stop()
