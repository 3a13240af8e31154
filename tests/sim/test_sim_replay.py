"""Replay of the recorded GOOG 2015-12-24 day (underlying and the whole option chain)
through the simulated gateway, seen by the real, unmodified ib_async client.

The store is a SQLite file in a temporary folder, filled on demand from
the LEAN folder (tests/lean_data.py: the packaged sample, or DESK_LEAN_DIR) by the replay itself. Known
values, read from the LEAN files by hand (prices in 1/10,000 dollar there):

* ``equity/usa/minute/goog/20151224_quote.zip``: 09:59 bar (``35940000``) bid close
  746.67, ask close 747.51, sizes 100 / 100; 10:00 bar (``36000000``) bid close 746.61,
  ask close 747.63;
* ``..._trade.zip``: 09:59 bar close 746.89, volume 1,405;
* ``equity/usa/daily/goog.zip``: 2015-12-23 close 750.31;
* ``option/usa/minute/goog/20151224_quote_american.zip``: GOOG 750 C 2016-01-15, 09:59 bar
  bid close 12.30, ask close 12.90 (size 26), 10:00 bar 12.20 / 12.90; the 750 P of the
  same expiry 09:59 bid 14.70 / ask 15.60; 342 contracts expire 2016-01-15, 2,192 in all.

A bar starting at ``t`` is known at ``t + 60 s`` (no look-ahead), so at 10:00:30 the
quotes are the 09:59 bars' closes.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from lean_data import lean_dir, needs_full_lean
from ib_async import IB, LimitOrder, MarketOrder, Option, Stock

from desk.sim import SimGateway
from desk.sim.replay_data import ReplayData, ReplayError, load_replay, parse_day
from desk.sim.replay_market import ReplayMarket
from desk.store.lean import option_con_id

LEAN = lean_dir()
XMAS = date(2015, 12, 24)
ET = ZoneInfo("US/Eastern")
GOOG = Stock("GOOG", "SMART", "USD")
C750 = option_con_id("GOOG", "20160115", "C", 750.0)


@pytest.fixture(scope="module")
def replay_data(tmp_path_factory) -> ReplayData:
    url = f"sqlite:///{tmp_path_factory.mktemp('replay') / 'desk.sqlite3'}"
    data = load_replay(url, XMAS, ["GOOG"], start=dtime(10, 0, 30), lean_dir=LEAN, stream=None)
    assert data.imported  # the empty store was filled from the LEAN folder on demand
    return data


@pytest.fixture
async def replay(replay_data) -> AsyncIterator[tuple[SimGateway, IB]]:
    """A replay gateway stepped by the test: each ``gw.step()`` is 15 recorded seconds."""
    market = ReplayMarket(replay_data)
    gw = SimGateway(market=market, clock=market.clock, option_source=market.options, tick_interval=3600.0, speed=15.0 / 3600.0)
    await gw.start()
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
    try:
        yield gw, ib
    finally:
        ib.disconnect()
        await gw.stop()


async def _steps(gw: SimGateway, n: int) -> None:
    for _ in range(n):
        gw.step()
        await asyncio.sleep(0)


async def test_the_clock_is_the_recorded_time(replay) -> None:
    gw, ib = replay
    assert await ib.reqCurrentTimeAsync() == datetime(2015, 12, 24, 15, 0, 30, tzinfo=UTC)
    await _steps(gw, 4)
    assert await ib.reqCurrentTimeAsync() == datetime(2015, 12, 24, 15, 1, 30, tzinfo=UTC)


@needs_full_lean  # the daily bars before the day are not in the packaged sample
async def test_underlying_quotes_are_the_recorded_ones(replay, wait_until) -> None:
    gw, ib = replay
    await ib.qualifyContractsAsync(GOOG)
    assert GOOG.conId == 208813720
    ticker = ib.reqMktData(GOOG)
    await wait_until(lambda: ticker.bid == ticker.bid and ticker.ask > 0, what="the first quote")
    assert (ticker.bid, ticker.ask, ticker.bidSize, ticker.askSize) == (746.67, 747.51, 100, 100)
    assert ticker.last == 746.89  # the 09:59 trade bar's close
    assert ticker.close == 750.31  # previous close: 2015-12-23 daily bar
    assert ticker.open == 749.55  # first regular-hours trade of the day (09:30 bar open)
    await _steps(gw, 4)  # 10:01:30: the 10:00 bars are complete
    await wait_until(lambda: ticker.bid == 746.61, what="the 10:00 bar")
    assert ticker.ask == 747.63
    assert ticker.volume > 100_000


async def test_option_chain_definitions_and_quotes(replay, wait_until) -> None:
    gw, ib = replay
    await ib.qualifyContractsAsync(GOOG)
    (params, *_rest) = await ib.reqSecDefOptParamsAsync("GOOG", "", "STK", GOOG.conId)
    assert params.underlyingConId == "208813720" and params.multiplier == "100"  # ib_async keeps text
    assert len(params.expirations) == 12
    assert params.expirations[0] == "20151224" and params.expirations[-1] == "20180119"
    assert min(params.strikes) == 290 and max(params.strikes) == 1140
    details = await ib.reqContractDetailsAsync(Option("GOOG", "20160115", exchange="SMART"))
    assert len(details) == 342
    call = Option("GOOG", "20160115", 750, "C", "SMART")
    put = Option("GOOG", "20160115", 750, "P", "SMART")
    await ib.qualifyContractsAsync(call, put)
    assert call.conId == C750 and call.localSymbol == "GOOG  160115C00750000" and call.multiplier == "100"
    tc, tp = ib.reqMktData(call), ib.reqMktData(put)
    await wait_until(lambda: tc.ask > 0 and tp.ask > 0 and tc.modelGreeks is not None, what="option quotes")
    assert (tc.bid, tc.ask, tc.askSize) == (12.30, 12.90, 26)
    assert (tp.bid, tp.ask) == (14.70, 15.60)
    g = tc.modelGreeks
    assert 0.10 < g.impliedVol < 0.40 and 0.4 < g.delta < 0.6  # implied from the recorded mid
    assert g.undPrice == pytest.approx((746.67 + 747.51) / 2)
    await _steps(gw, 4)
    await wait_until(lambda: tc.bid == 12.20, what="the 10:00 option bar")
    assert tc.ask == 12.90


@needs_full_lean  # the daily bars before the day are not in the packaged sample
async def test_history_comes_from_the_recorded_bars(replay, wait_until) -> None:
    gw, ib = replay
    await ib.qualifyContractsAsync(GOOG)
    mid = await ib.reqHistoricalDataAsync(GOOG, "", "1800 S", "1 min", "MIDPOINT", True)
    assert mid[-1].date == datetime(2015, 12, 24, 9, 59, tzinfo=ET)  # completed bars only
    assert mid[-1].close == pytest.approx((746.67 + 747.51) / 2)
    trades = await ib.reqHistoricalDataAsync(GOOG, "", "1800 S", "1 min", "TRADES", True)
    assert (trades[-1].close, trades[-1].volume) == (746.89, 1405)
    daily = await ib.reqHistoricalDataAsync(GOOG, "", "1 W", "1 day", "TRADES", True)
    assert [d.date for d in daily][-2:] == [date(2015, 12, 23), date(2015, 12, 24)]
    assert daily[-2].close == 750.31 and daily[-1].close == 746.89  # today so far
    call = Option("GOOG", "20160115", 750, "C", "SMART")
    await ib.qualifyContractsAsync(call)
    bids = await ib.reqHistoricalDataAsync(call, "", "1800 S", "1 min", "BID", True)
    assert bids[-1].close == 12.30
    live = await ib.reqHistoricalDataAsync(GOOG, "", "1800 S", "1 min", "MIDPOINT", True, keepUpToDate=True)
    n = len(live)
    await _steps(gw, 4)
    await wait_until(lambda: len(live) == n + 1, what="the 10:00 bar as an update")
    assert live[-1].date == datetime(2015, 12, 24, 10, 0, tzinfo=ET)
    assert live[-1].close == pytest.approx((746.61 + 747.63) / 2)


async def test_orders_fill_against_the_recorded_quotes(replay, wait_until) -> None:
    _gw, ib = replay
    await ib.qualifyContractsAsync(GOOG)
    buy = ib.placeOrder(GOOG, MarketOrder("BUY", 100))
    await wait_until(lambda: buy.isDone(), what="the stock fill")
    assert buy.orderStatus.status == "Filled"
    assert buy.fills[0].execution.price == 747.51  # the recorded ask
    assert buy.fills[0].execution.time == datetime(2015, 12, 24, 15, 0, 30, tzinfo=UTC)  # recorded time
    call = Option("GOOG", "20160115", 750, "C", "SMART")
    await ib.qualifyContractsAsync(call)
    sell = ib.placeOrder(call, LimitOrder("SELL", 2, 12.30))
    await wait_until(lambda: sell.isDone(), what="the option fill")
    assert sell.fills[0].execution.price == 12.30  # the recorded bid


def test_replay_holds_the_last_state_after_the_data_ends(replay_data) -> None:
    market = ReplayMarket(replay_data)
    assert not market.finished
    for _ in range(8 * 60):  # eight recorded hours, past the last post-market quote (17:00)
        market.step(60.0)
    assert market.finished
    st = market.state("GOOG")
    before = (st.bid, st.ask, st.volume)
    assert market.step(60.0) == []
    assert (st.bid, st.ask, st.volume) == before
    assert st.volume > 500_000 and not math.isnan(st.high) and st.low <= st.last <= st.high


def test_replay_errors(tmp_path, replay_data) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with pytest.raises(ReplayError, match="not in the simulator's universe"):
        load_replay(url, XMAS, ["ZZZZ"], stream=None)
    with pytest.raises(ReplayError, match="has no 2015-12-24 data for GOOG; run desk import lean"):
        load_replay(url, XMAS, ["GOOG"], import_missing=False, stream=None)
    with pytest.raises(ReplayError, match="no LEAN folder"):
        load_replay(url, XMAS, ["GOOG"], lean_dir=tmp_path / "missing", stream=None)
    with pytest.raises(ReplayError, match="has no 2015-12-25 minute data for GOOG"):
        load_replay(url, date(2015, 12, 25), ["GOOG"], lean_dir=LEAN, stream=None)
    with pytest.raises(ReplayError, match="bad date"):
        parse_day("24/12/2015")
    assert parse_day("20151224") == parse_day("2015-12-24") == XMAS


# --- desk sim --replay and desk sim ctl (the command line, out of the box) ----------------------


def test_desk_sim_replay_from_an_empty_store_and_ctl(tmp_path) -> None:
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    env.update(
        DESK_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}", DESK_LEAN_DIR=str(LEAN), XDG_RUNTIME_DIR=str(tmp_path)
    )
    cmd = [
        sys.executable,
        "-m",
        "desk",
        "sim",
        "--port",
        str(port),
        "--replay",
        "2015-12-24",
        "--symbols",
        "GOOG",
        "--speed",
        "60",
        "--start",
        "10:00",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "desk sim control" in line:
                break
        assert any("listening on" in x and "replay of 2015-12-24 GOOG, 2,192 options" in x for x in lines), lines

        async def client() -> tuple[datetime, float, float]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=5)
            try:
                now = await ib.reqCurrentTimeAsync()
                (t,) = await ib.reqTickersAsync(Stock("GOOG", "SMART", "USD", conId=208813720))
                return now, t.bid, t.ask
            finally:
                ib.disconnect()

        now, bid, ask = asyncio.run(client())
        assert datetime(2015, 12, 24, 15, 0, tzinfo=UTC) <= now < datetime(2015, 12, 24, 17, 0, tzinfo=UTC)
        assert 740 < bid < ask < 760  # GOOG's recorded quotes that morning
        ctl = subprocess.run(
            [sys.executable, "-m", "desk", "sim", "ctl", "--port", str(port), "status"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ctl.returncode == 0 and ctl.stdout.startswith("clients 0; outage no; pacing off")
    finally:
        proc.terminate()
        proc.wait(20)
    assert "importing 2015-12-24 of GOOG" in proc.stderr.read()
