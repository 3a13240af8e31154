"""The broker against the simulated gateway, through the real ib_async client."""

from __future__ import annotations

import asyncio
import math

import pytest

from desk.broker import Broker, BrokerError, StateChanged
from desk.domain import ConnectionState, TickRecord
from desk.sim import SimGateway

SYMBOLS = ["SPY", "AAPL", "MSFT"]


async def _wait(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def gateway():
    gw = SimGateway("127.0.0.1", 0, seed=11)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def broker(gateway):
    rows: list[TickRecord] = []
    b = Broker("127.0.0.1", gateway.port, 5, symbols=SYMBOLS, sinks=[rows.append], backoff=(0.1, 0.2, 0.4))
    b.rows = rows  # type: ignore[attr-defined]
    await b.start()
    assert await b.wait_connected(5), f"broker did not connect: {b.state}"
    yield b
    await b.stop()


async def test_watchlist_is_qualified_in_order_and_quotes_stream(broker: Broker) -> None:
    assert [i.symbol for i in broker.watchlist] == SYMBOLS
    assert all(i.con_id > 0 for i in broker.watchlist)
    spy = broker.watchlist[0]
    assert spy.sec_type == "STK" and spy.primary_exchange == "ARCA"
    await _wait(lambda: all(broker.quotes.get(i.con_id).bid > 0 for i in broker.watchlist), what="bids")
    for inst in broker.watchlist:
        q = broker.quotes.get(inst.con_id)
        assert 0 < q.bid < q.ask, (inst.symbol, q.bid, q.ask)
        assert q.close > 0
    seen = broker.quotes.ticks_seen
    await _wait(lambda: broker.quotes.ticks_seen > seen + 20, what="more ticks")


async def test_every_quote_and_trade_tick_reaches_the_sinks(broker: Broker) -> None:
    rows: list[TickRecord] = broker.rows  # type: ignore[attr-defined]
    await _wait(lambda: {r.kind for r in rows} == {"Q", "T"}, timeout=8, what="quote and trade rows")
    con_ids = {i.con_id: i.symbol for i in broker.watchlist}
    for r in rows:
        assert con_ids[r.con_id] == r.symbol
        assert r.time.tzinfo is not None
        if r.kind == "Q":
            assert math.isnan(r.price)
            # the book carried by a quote row is never crossed
            if r.bid > 0 and r.ask > 0:
                assert r.bid < r.ask
        else:
            assert r.price > 0 and r.size > 0
    # consecutive quote rows of one conId differ: a row is written only when the book changes
    last: dict[int, tuple] = {}
    for r in rows:
        if r.kind == "Q":
            book = (r.bid, r.ask, r.bid_size, r.ask_size)
            assert last.get(r.con_id) != book
            last[r.con_id] = book
    assert broker.ticks_recorded == len(rows)


async def test_unknown_symbol_is_refused_and_nothing_changes(broker: Broker) -> None:
    before = [i.symbol for i in broker.watchlist]
    with pytest.raises(BrokerError) as err:
        await broker.add_symbol("ZZZZQ")
    assert "ZZZZQ" in str(err.value) and "200" in str(err.value)
    assert [i.symbol for i in broker.watchlist] == before
    assert not any(q.instrument.symbol == "ZZZZQ" for q in broker.quotes.quotes())


async def test_add_and_remove_symbol(broker: Broker) -> None:
    inst = await broker.add_symbol("nvda")
    assert inst.symbol == "NVDA" and inst.con_id > 0
    assert broker.watchlist[-1] == inst
    await _wait(lambda: broker.quotes.get(inst.con_id).bid > 0, what="NVDA quote")
    with pytest.raises(BrokerError, match="already"):
        await broker.add_symbol("NVDA")
    assert await broker.remove_symbol("NVDA")
    assert "NVDA" not in [i.symbol for i in broker.watchlist]
    assert broker.quotes.get(inst.con_id) is None
    assert not await broker.remove_symbol("NVDA")


async def test_reconnects_and_resubscribes_after_the_gateway_restarts(broker: Broker, gateway: SimGateway) -> None:
    states: list[ConnectionState] = []
    broker.add_listener(lambda e: states.append(e.state) if isinstance(e, StateChanged) else None)
    con_ids = [i.con_id for i in broker.watchlist]
    await _wait(lambda: len(broker.rows) > 10, what="first ticks")  # type: ignore[attr-defined]
    port = gateway.port
    await gateway.stop()
    await _wait(lambda: broker.state is ConnectionState.RECONNECTING, what="reconnecting state")
    await asyncio.sleep(0.5)  # the gateway stays away for a while: connect attempts fail
    restarted = SimGateway("127.0.0.1", port, seed=12)
    await restarted.start()
    try:
        await _wait(lambda: broker.state is ConnectionState.CONNECTED, timeout=8, what="reconnect")
        assert broker.connects == 2
        assert [i.con_id for i in broker.watchlist] == con_ids
        n = len(broker.rows)  # type: ignore[attr-defined]
        await _wait(lambda: len(broker.rows) > n + 10, what="ticks after reconnect")  # type: ignore[attr-defined]
        assert ConnectionState.RECONNECTING in states and states[-1] is ConnectionState.CONNECTED
    finally:
        await broker.stop()
        await restarted.stop()


async def test_reconnects_after_the_gateway_drops_every_client(broker: Broker, gateway: SimGateway) -> None:
    await gateway.drop_clients()
    await _wait(lambda: broker.connects == 2 and broker.state is ConnectionState.CONNECTED, timeout=8, what="reconnect")
    n = len(broker.rows)  # type: ignore[attr-defined]
    await _wait(lambda: len(broker.rows) > n + 10, what="ticks after reconnect")  # type: ignore[attr-defined]


async def test_add_symbol_while_disconnected_says_so() -> None:
    b = Broker("127.0.0.1", 1, 5, symbols=["SPY"], backoff=(5.0,))
    await b.start()
    try:
        await asyncio.sleep(0.2)
        with pytest.raises(BrokerError, match="not connected"):
            await b.add_symbol("AAPL")
    finally:
        await b.stop()
