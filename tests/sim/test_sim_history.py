"""Historical bars of the simulated gateway through the real, unmodified ib_async client.

The gateways here tick only when the test calls ``gw.step()`` (timer interval of an hour)
and run on a frozen clock, so every bar is deterministic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB, Stock

from desk.domain import FrozenClock
from desk.sim import SimGateway

ET = ZoneInfo("US/Eastern")
#: Friday 2026-11-20 10:00 US/Eastern: 30 minutes into the session.
FRIDAY_10AM = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SPY = Stock("SPY", "SMART", "USD", conId=756733)


async def _gateway(seed: int = 7, at: datetime = FRIDAY_10AM) -> SimGateway:
    # the timer would fire after an hour: the test steps by hand, 0.25 s of market per step
    gw = SimGateway(seed=seed, clock=FrozenClock(at), tick_interval=3600.0, speed=0.25 / 3600.0)
    await gw.start()
    return gw


@pytest.fixture
async def hist() -> AsyncIterator[tuple[SimGateway, IB]]:
    gw = await _gateway()
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
    try:
        yield gw, ib
    finally:
        ib.disconnect()
        await gw.stop()


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


def mid(gw: SimGateway, symbol: str = "SPY") -> float:
    st = gw.market.state(symbol)
    return (st.bid + st.ask) / 2.0


async def test_minute_bars_of_the_session_end_at_the_current_price(hist) -> None:
    gw, ib = hist
    bars = await ib.reqHistoricalDataAsync(SPY, "", "1 D", "1 min", "MIDPOINT", True)
    # 09:30 .. 09:59 of the synthetic part of today (the model started at 10:00)
    assert len(bars) == 30
    assert bars[0].date == datetime(2026, 11, 20, 9, 30, tzinfo=ET)
    assert bars[-1].date == datetime(2026, 11, 20, 9, 59, tzinfo=ET)
    assert bars[-1].close == pytest.approx(mid(gw), abs=1e-9)
    assert bars[0].open == pytest.approx(gw.market.state("SPY").open, abs=0.011)
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume == -1 and b.barCount == -1  # quote bars carry no volume (IB: -1)
    # the market moves on: the history follows it (live bar of 10:00)
    for _ in range(40):
        gw.step()
    bars = await ib.reqHistoricalDataAsync(SPY, "", "1 D", "1 min", "MIDPOINT", True)
    assert bars[-1].date == datetime(2026, 11, 20, 10, 0, tzinfo=ET)
    assert bars[-1].close == pytest.approx(mid(gw), abs=1e-9)


async def test_daily_bars_meet_the_model_close_and_open(hist) -> None:
    gw, ib = hist
    st = gw.market.state("SPY")
    bars = await ib.reqHistoricalDataAsync(SPY, "", "1 M", "1 day", "TRADES", True)
    days = [b.date for b in bars]
    assert all(isinstance(d, date) and d.weekday() < 5 for d in days)
    assert days == sorted(days) and days[-1] == date(2026, 11, 20)
    assert 20 <= len(bars) <= 23
    thursday, friday = bars[-2], bars[-1]
    assert thursday.date == date(2026, 11, 19)
    assert thursday.close == pytest.approx(st.close)  # the model's previous close (tick 9)
    assert friday.open == pytest.approx(st.open)  # the model's open (tick 14)
    for b in bars[:-1]:  # full synthetic sessions: volume around SPY's daily volume
        assert 20e6 < b.volume < 200e6
        assert b.low <= b.average <= b.high and b.barCount > 0


async def test_bars_are_deterministic_per_seed_and_start_time() -> None:
    async def fetch(seed: int) -> list[tuple]:
        gw = await _gateway(seed)
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
            bars = await ib.reqHistoricalDataAsync(SPY, "", "1 W", "30 mins", "TRADES", True)
            return [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        finally:
            ib.disconnect()
            await gw.stop()

    a, b, c = await fetch(7), await fetch(7), await fetch(8)
    assert len(a) > 50
    assert a == b
    assert a != c


async def test_larger_bars_aggregate_the_minutes(hist) -> None:
    _gw, ib = hist
    minutes = await ib.reqHistoricalDataAsync(SPY, "20261119 16:00:00 US/Eastern", "1 D", "1 min", "TRADES", True)
    fives = await ib.reqHistoricalDataAsync(SPY, "20261119 16:00:00 US/Eastern", "1 D", "5 mins", "TRADES", True)
    hours = await ib.reqHistoricalDataAsync(SPY, "20261119 16:00:00 US/Eastern", "1 D", "1 hour", "TRADES", True)
    assert len(minutes) == 390 and len(fives) == 78
    assert [h.date.strftime("%H:%M") for h in hours] == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    for k, five in enumerate(fives):
        part = minutes[5 * k : 5 * k + 5]
        assert five.date == part[0].date and five.date.minute % 5 == 0
        assert five.open == part[0].open and five.close == part[-1].close
        assert five.high == max(p.high for p in part) and five.low == min(p.low for p in part)
        assert five.volume == sum(p.volume for p in part)
        assert five.barCount == sum(p.barCount for p in part)
    assert sum(h.volume for h in hours) == sum(m.volume for m in minutes)
    assert hours[0].volume == sum(m.volume for m in minutes[:30])


async def test_bid_ask_bars_follow_ibs_definition(hist) -> None:
    _gw, ib = hist
    end = "20261118 16:00:00 US/Eastern"
    bid = await ib.reqHistoricalDataAsync(SPY, end, "1800 S", "1 min", "BID", True)
    ask = await ib.reqHistoricalDataAsync(SPY, end, "1800 S", "1 min", "ASK", True)
    both = await ib.reqHistoricalDataAsync(SPY, end, "1800 S", "30 mins", "BID_ASK", True)
    assert len(bid) == len(ask) == 30 and len(both) == 1
    (bar,) = both
    assert bar.low == min(b.low for b in bid)  # low: lowest bid
    assert bar.high == max(a.high for a in ask)  # high: highest ask
    assert bar.open == pytest.approx(sum((b.open + b.close) / 2 for b in bid) / 30)  # time-average bid
    assert bar.close == pytest.approx(sum((a.open + a.close) / 2 for a in ask) / 30)  # time-average ask
    assert all(a.low > b.low for a, b in zip(ask, bid))


async def test_use_rth_and_epoch_dates() -> None:
    gw = await _gateway(at=datetime(2026, 11, 20, 23, 0, tzinfo=UTC))  # Friday 18:00 US/Eastern
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        for _ in range(3):
            gw.step()  # live bars at 18:00, after the regular session
        everything = await ib.reqHistoricalDataAsync(SPY, "", "2 D", "1 min", "MIDPOINT", False, formatDate=2)
        regular = await ib.reqHistoricalDataAsync(SPY, "", "2 D", "1 min", "MIDPOINT", True, formatDate=2)
    finally:
        ib.disconnect()
        await gw.stop()
    assert all(b.date.tzinfo is not None and b.date.utcoffset() == timedelta(0) for b in everything)
    local = [b.date.astimezone(ET) for b in regular]
    assert len(regular) == 2 * 390  # Thursday and Friday sessions (the model started after the close)
    assert all(
        datetime.combine(t.date(), datetime.min.time()).replace(hour=9, minute=30)
        <= t.replace(tzinfo=None)
        < datetime.combine(t.date(), datetime.min.time()).replace(hour=16)
        for t in local
    )
    extra = [b.date.astimezone(ET) for b in everything[len(regular) :]]
    assert [t.strftime("%d %H:%M") for t in extra] == ["20 18:00"]
    assert everything[-1].close == pytest.approx(mid(gw))


async def test_keep_up_to_date_updates_the_last_bar_and_starts_new_ones(hist, wait_until) -> None:
    gw, ib = hist
    bars = await ib.reqHistoricalDataAsync(SPY, "", "1800 S", "1 min", "MIDPOINT", False, keepUpToDate=True)
    updates: list[bool] = []
    bars.updateEvent += lambda b, has_new_bar: updates.append(has_new_bar)
    assert gw.history.live_requests == 1
    before = bars[-1].date
    gw.step()  # the first live sample opens the 10:00 bar
    await wait_until(lambda: updates, what="an update")
    await wait_until(lambda: bars[-1].close == pytest.approx(mid(gw)), what="the bar to follow the mid")
    assert bars[-1].date > before  # the live 10:00 bar was appended
    n = len(bars)
    gw.clock.advance(60)
    gw.step()
    await wait_until(lambda: len(bars) == n + 1, what="a new bar at 10:01")
    assert bars[-1].date == datetime(2026, 11, 20, 10, 1, tzinfo=ET)
    assert updates[-1] is True
    ib.cancelHistoricalData(bars)
    await wait_until(lambda: gw.history.live_requests == 0, what="the cancel")


async def test_daily_keep_up_to_date_follows_the_day(hist, wait_until) -> None:
    gw, ib = hist
    bars = await ib.reqHistoricalDataAsync(SPY, "", "5 D", "1 day", "MIDPOINT", True, keepUpToDate=True)
    assert bars[-1].date == date(2026, 11, 20)
    for _ in range(20):
        gw.step()
    await wait_until(lambda: bars[-1].close == pytest.approx(mid(gw)), what="today's bar to follow the mid")
    assert bars[-1].high >= bars[-1].close >= bars[-1].low


async def test_head_timestamp(hist) -> None:
    _gw, ib = hist
    head = await ib.reqHeadTimeStampAsync(SPY, "TRADES", True, 1)
    assert isinstance(head, datetime)
    assert datetime(2016, 1, 1, tzinfo=UTC) < head < datetime(2017, 6, 1, tzinfo=UTC)
    assert head.astimezone(ET).strftime("%H:%M") == "09:30"


@pytest.mark.parametrize(
    "end, duration, bar_size, what, keep, text",
    [
        ("", "1 D", "5 secs", "TRADES", False, "bar size"),
        ("", "1 D", "1 min", "ADJUSTED_LAST", False, "whatToShow"),
        ("", "3 X", "1 min", "TRADES", False, "duration"),
        ("20261119 16:00:00 US/Eastern", "1 D", "1 min", "TRADES", True, "keepUpToDate"),
        ("", "20 Y", "1 min", "TRADES", False, "too many bars"),
        ("20000103 16:00:00 US/Eastern", "1 D", "1 min", "TRADES", False, "no data"),
    ],
    ids=["bar-size", "what-to-show", "duration", "end-with-keep", "too-many", "before-history"],
)
async def test_bad_requests_get_error_162(hist, end, duration, bar_size, what, keep, text) -> None:
    gw, ib = hist
    errors = errors_of(ib)
    bars = await ib.reqHistoricalDataAsync(SPY, end, duration, bar_size, what, True, keepUpToDate=keep)
    assert len(bars) == 0
    assert [code for _, code, _ in errors] == [162]
    assert text in errors[0][2] and errors[0][2].startswith("Historical Market Data Service error message:")
    assert gw.history.live_requests == 0


async def test_unknown_contract_is_error_200(hist) -> None:
    _gw, ib = hist
    errors = errors_of(ib)
    bars = await ib.reqHistoricalDataAsync(Stock("ZZZZ", "SMART", "USD"), "", "1 D", "1 min", "TRADES", True)
    assert len(bars) == 0 and [code for _, code, _ in errors] == [200]
