"""The simulated gateway against the real, unmodified ib_async client (no mocks)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from ib_async import IB, Contract, LimitOrder, Stock

from desk.domain import FrozenClock
from desk.sim import SimGateway
from desk.sim.universe import UNIVERSE


def on_grid(price: float, tick: float = 0.01) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


def collect_errors(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


# --- connection ------------------------------------------------------------------------


async def test_connect_is_fast_and_complete(gateway: SimGateway) -> None:
    ib = IB()
    errors = collect_errors(ib)
    t0 = time.perf_counter()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=1, raiseSyncErrors=True)
    elapsed = time.perf_counter() - t0
    try:
        assert elapsed < 1.0, f"connectAsync took {elapsed:.3f}s"
        assert ib.isConnected()
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.client.getReqId() >= 1  # nextValidId arrived
        assert ib.positions() == [] and ib.openTrades() == []
        values = {v.tag: v.value for v in ib.accountValues() if v.currency in ("USD", "")}
        assert float(values["NetLiquidation"]) > 0
        farm_codes = {code for _, code, _ in errors}
        assert {2104, 2106, 2158} <= farm_codes
        assert gateway.clients == 1 and gateway.client_ids == [1]
    finally:
        ib.disconnect()


async def test_current_time_comes_from_the_clock() -> None:
    at = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)
    gw = SimGateway(seed=1, clock=FrozenClock(at))
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=3)
        assert await ib.reqCurrentTimeAsync() == at
    finally:
        ib.disconnect()
        await gw.stop()


async def test_account_summary(ib: IB) -> None:
    rows = await ib.accountSummaryAsync()
    tags = {r.tag: r for r in rows}
    assert tags["NetLiquidation"].currency == "USD"
    assert float(tags["BuyingPower"].value) > float(tags["NetLiquidation"].value)
    assert tags["AccountType"].value == "INDIVIDUAL"


# --- contracts -------------------------------------------------------------------------


async def test_qualify_spy_and_aapl(ib: IB) -> None:
    spy, aapl = Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD")
    result = await ib.qualifyContractsAsync(spy, aapl)
    assert result == [spy, aapl]
    assert (spy.conId, spy.primaryExchange, spy.tradingClass) == (756733, "ARCA", "SPY")
    assert (aapl.conId, aapl.primaryExchange, aapl.tradingClass) == (265598, "NASDAQ", "NMS")
    assert aapl.exchange == "SMART" and aapl.localSymbol == "AAPL"


async def test_qualify_by_con_id_and_by_isin(ib: IB) -> None:
    by_id = Contract(conId=272093)
    by_isin = Contract(secIdType="ISIN", secId="US67066G1040", exchange="SMART")
    await ib.qualifyContractsAsync(by_id, by_isin)
    assert by_id.symbol == "MSFT" and by_id.secType == "STK"
    assert by_isin.symbol == "NVDA" and by_isin.conId == 4815747


async def test_contract_details(ib: IB) -> None:
    (cd,) = await ib.reqContractDetailsAsync(Stock("META", "SMART", "USD"))
    assert cd.contract.conId == 107113386
    assert cd.longName == "META PLATFORMS INC-CLASS A"
    assert cd.minTick == 0.01
    assert cd.timeZoneId == "US/Eastern"
    assert cd.stockType == "COMMON"
    assert cd.secIdList[0].tag == "ISIN"
    assert "LMT" in cd.orderTypes.split(",") and "NASDAQ" in cd.validExchanges.split(",")
    assert cd.tradingSessions() and cd.liquidHours


async def test_contract_details_on_primary_exchange(ib: IB) -> None:
    (cd,) = await ib.reqContractDetailsAsync(Stock("SPY", "ARCA", "USD"))
    assert cd.contract.exchange == "ARCA" and cd.contract.primaryExchange == "ARCA"


@pytest.mark.parametrize(
    "contract",
    [
        Stock("ZZZZ", "SMART", "USD"),
        Stock("SPY", "SMART", "EUR"),
        Stock("SPY", "NOWHERE", "USD"),
        Contract(conId=1, exchange="SMART"),
        Contract(
            secType="OPT",
            symbol="SPY",
            lastTradeDateOrContractMonth="20200117",
            strike=1.0,
            right="C",
            exchange="SMART",
            currency="USD",
        ),
    ],
    ids=["unknown-symbol", "wrong-currency", "wrong-exchange", "unknown-conid", "option"],
)
async def test_unknown_contract_is_error_200(ib: IB, contract: Contract) -> None:
    errors = collect_errors(ib)
    result = await ib.qualifyContractsAsync(contract)
    assert result == [None]
    assert [code for _, code, _ in errors] == [200]
    assert "No security definition" in errors[0][2]


async def test_matching_symbols(ib: IB) -> None:
    found = await ib.reqMatchingSymbolsAsync("AM")
    assert found is not None
    assert {d.contract.symbol for d in found} >= {"AMZN", "AMD"}


# --- market data -----------------------------------------------------------------------


async def test_streaming_ticks(ib: IB, wait_until) -> None:
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    ticker = ib.reqMktData(spy)
    seen: list[tuple[float, float, float, float]] = []
    ticker.updateEvent += lambda t: seen.append((t.bid, t.ask, t.last, t.volume))
    await wait_until(lambda: len(seen) >= 8, 3.0, "8 ticker updates")
    first_volume = seen[0][3]
    await wait_until(lambda: ticker.volume > first_volume, 3.0, "volume to grow")
    assert ticker.marketDataType == 1
    assert ticker.minTick == 0.01
    assert ticker.close == 600.0
    assert ticker.high >= ticker.low > 0
    for bid, ask, last, _volume in seen:
        assert 0 < bid < ask
        assert on_grid(bid) and on_grid(ask) and on_grid(last)
    volumes = [v for *_, v in seen]
    assert volumes == sorted(volumes)
    assert ticker.bidSize >= 100 and ticker.askSize >= 100
    assert ticker.lastTimestamp is not None


async def test_cancel_stops_ticks(ib: IB, gateway: SimGateway, wait_until) -> None:
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    ticker = ib.reqMktData(aapl)
    count = 0

    def on_update(_t) -> None:
        nonlocal count
        count += 1

    ticker.updateEvent += on_update
    await wait_until(lambda: count >= 3, 3.0, "ticks")
    assert ib.cancelMktData(aapl)
    await wait_until(lambda: not gateway._subs, 2.0, "the gateway to drop the line")
    after = count
    await asyncio.sleep(0.3)
    assert count == after


async def test_generic_tick_233_gives_rt_volume(ib: IB, wait_until) -> None:
    nvda = Stock("NVDA", "SMART", "USD")
    await ib.qualifyContractsAsync(nvda)
    ticker = ib.reqMktData(nvda, "233,236")
    await wait_until(lambda: ticker.rtTime is not None and ticker.vwap > 0, 3.0, "RT volume")
    assert ticker.shortableShares > 0
    assert 100 < ticker.vwap < 200


async def test_snapshot_answers_once(ib: IB, gateway: SimGateway) -> None:
    qqq = Stock("QQQ", "SMART", "USD")
    await ib.qualifyContractsAsync(qqq)
    (ticker,) = await asyncio.wait_for(ib.reqTickersAsync(qqq), 2.0)
    assert 0 < ticker.bid < ticker.ask and ticker.close == 520.0 and ticker.volume > 0
    assert not gateway._subs  # a snapshot holds no line


async def test_unknown_contract_market_data_is_error_200(ib: IB) -> None:
    errors = collect_errors(ib)
    ib.reqMktData(Contract(conId=999, symbol="NOPE", secType="STK", exchange="SMART", currency="USD"))
    await asyncio.sleep(0.2)
    assert [code for _, code, _ in errors] == [200]


async def test_duplicate_ticker_id_is_error_322(ib: IB, gateway: SimGateway) -> None:
    errors = collect_errors(ib)
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    req_id = ib.client.getReqId()
    ib.client.reqMktData(req_id, spy, "", False, False, [])
    ib.client.reqMktData(req_id, spy, "", False, False, [])
    await asyncio.sleep(0.2)
    assert (req_id, 322) in [(r, c) for r, c, _ in errors]
    assert len(gateway._subs["SPY"]) == 1  # the first line keeps streaming


async def test_max_tickers_is_error_101(connect, gateway: SimGateway) -> None:
    gateway.max_tickers = 2
    ib = await connect(5)
    errors = collect_errors(ib)
    contracts = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM")]
    await ib.qualifyContractsAsync(*contracts)
    for c in contracts:
        ib.reqMktData(c)
    await asyncio.sleep(0.2)
    assert [code for _, code, _ in errors] == [101]


async def test_delayed_type_request_still_gets_live_data(gateway: SimGateway, ib: IB, wait_until) -> None:
    gateway.delayed_data = False  # an account with live subscriptions (desk.sim.delayed)
    ib.reqMarketDataType(3)
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    ticker = ib.reqMktData(spy)
    await wait_until(lambda: ticker.bid > 0, 2.0, "a bid")
    assert ticker.marketDataType == 1  # IB returns live data when it is available


async def test_two_clients_stream_at_once(connect, wait_until) -> None:
    ib1, ib2 = await connect(1), await connect(2)
    t1 = ib1.reqMktData((await ib1.qualifyContractsAsync(Stock("TSLA", "SMART", "USD")))[0])
    t2 = ib2.reqMktData((await ib2.qualifyContractsAsync(Stock("TSLA", "SMART", "USD")))[0])
    t3 = ib2.reqMktData((await ib2.qualifyContractsAsync(Stock("MSFT", "SMART", "USD")))[0])
    start = (t1.volume, t2.volume)
    await wait_until(lambda: t1.volume > start[0] and t2.volume > start[1] and t3.bid > 0, 3.0, "both clients to stream")
    ib1.disconnect()
    updates = 0

    def on_update(_t) -> None:
        nonlocal updates
        updates += 1

    t3.updateEvent += on_update
    await wait_until(lambda: updates >= 3, 2.0, "the second client to keep streaming")
    assert ib2.isConnected()


async def test_client_disconnect_frees_its_lines(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(4)
    spy = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    ib.reqMktData(spy)
    await wait_until(lambda: "SPY" in gateway._subs, 2.0)
    ib.disconnect()
    await wait_until(lambda: gateway.clients == 0 and not gateway._subs, 2.0, "cleanup")
    assert not gateway.sessions


# --- orders (the order engine's own tests: tests/sim/test_sim_orders.py) ----------------


async def test_invalid_order_is_rejected_with_201(ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    spy = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    trade = ib.placeOrder(spy, LimitOrder("BUY", 0, 500.0))
    await wait_until(lambda: trade.isDone(), 2.0, "the rejection")
    assert trade.orderStatus.status == "Cancelled"
    assert 201 in [code for _, code, _ in errors]


# --- client ids, faults, restarts ------------------------------------------------------


async def test_duplicate_client_id_is_refused_with_326(connect, gateway: SimGateway) -> None:
    first = await connect(7)
    second = IB()
    errors = collect_errors(second)
    t0 = time.perf_counter()
    with pytest.raises((asyncio.TimeoutError, ConnectionError)):
        await second.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=0.5)
    assert time.perf_counter() - t0 < 2.0
    assert [code for _, code, _ in errors] == [326]
    assert "already in use" in errors[0][2]
    assert not second.isConnected()
    # the first connection is untouched
    assert first.isConnected() and gateway.client_ids == [7]
    assert await asyncio.wait_for(first.reqCurrentTimeAsync(), 1.0)


async def test_drop_clients_then_reconnect(connect, gateway: SimGateway, wait_until) -> None:
    ib = await connect(1)
    dropped = asyncio.Event()
    ib.disconnectedEvent += dropped.set
    assert await gateway.drop_clients() == 1
    await asyncio.wait_for(dropped.wait(), 2.0)
    assert not ib.isConnected()
    await wait_until(lambda: gateway.clients == 0, 2.0)
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=1)
    assert ib.isConnected() and gateway.clients == 1
    spy = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
    ticker = ib.reqMktData(spy)
    await wait_until(lambda: ticker.bid > 0, 2.0)


async def test_stop_and_restart_on_the_same_port() -> None:
    gw = SimGateway(seed=7)
    port = await gw.start()
    ib = IB()
    dropped = asyncio.Event()
    ib.disconnectedEvent += dropped.set
    await ib.connectAsync("127.0.0.1", port, clientId=1)
    await gw.stop()
    await asyncio.wait_for(dropped.wait(), 2.0)
    with pytest.raises(OSError):
        await IB().connectAsync("127.0.0.1", port, clientId=2, timeout=0.5)
    gw2 = SimGateway(port=port, seed=7)
    assert await gw2.start() == port
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        assert ib.isConnected()
    finally:
        ib.disconnect()
        await gw2.stop()


async def test_stop_is_idempotent_and_gateway_restartable() -> None:
    gw = SimGateway(seed=7)
    await gw.start()
    await gw.stop()
    await gw.stop()
    port = await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", port, clientId=1)
    finally:
        ib.disconnect()
        await gw.stop()


async def test_all_universe_symbols_qualify(ib: IB) -> None:
    contracts = [Stock(s, "SMART", "USD") for s in UNIVERSE]
    result = await ib.qualifyContractsAsync(*contracts)
    assert [c.conId for c in result] == [s.con_id for s in UNIVERSE.values()]


async def test_a_paused_market_stands_still_until_stepped_or_resumed() -> None:
    """``paused``: each line gets its opening quote and then nothing moves while the
    market timer runs; ``step()`` by hand moves it once; clearing ``paused`` resumes it."""
    gw = SimGateway(seed=7, tick_interval=0.01, paused=True)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=5)
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        ticker = ib.reqMktData(spy)
        while not (ticker.bid > 0 and ticker.last > 0):
            await asyncio.wait_for(ticker.updateEvent, 5)
        sent, timer = gw.ticks_sent, gw.timer_ticks
        while gw.timer_ticks < timer + 20:  # twenty periods of the market timer
            await asyncio.sleep(0.01)
        assert gw.ticks_sent == sent  # paused: the timer ran and sent nothing

        def shown():
            return ticker.bid, ticker.ask, ticker.last, ticker.bidSize, ticker.askSize, ticker.volume

        opening = shown()
        steps = 1
        while gw.step() == 0:  # a 0.01 s step moves nothing now and then
            steps += 1
            assert steps < 200
        while shown() == opening:
            await asyncio.wait_for(ticker.updateEvent, 5)
        stepped = gw.ticks_sent
        gw.paused = False
        while gw.ticks_sent == stepped:
            await asyncio.sleep(0.01)
        assert gw.ticks_sent > stepped  # resumed
    finally:
        ib.disconnect()
        await gw.stop()
