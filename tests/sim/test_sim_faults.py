"""Faults on demand, as the real, unmodified ib_async client sees them: dropped
connections, IB connectivity lost / restored (1100 / 1101 / 1102), pacing (error 100),
and the control socket of ``desk sim``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ib_async import IB, Stock

from desk.sim import SimGateway
from desk.sim.control import ControlServer, control_path, send_control

SPY = Stock("SPY", "SMART", "USD", conId=756733)


@pytest.fixture
async def manual() -> AsyncIterator[SimGateway]:
    """A gateway whose market moves only when the test calls ``step()`` (0.25 s each)."""
    gw = SimGateway(seed=7, tick_interval=3600.0, speed=0.25 / 3600.0)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _client(gw: SimGateway, client_id: int = 1) -> tuple[IB, list[int]]:
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id)
    return ib, codes


async def _step_until_update(gw: SimGateway, count: list[int], wait_until) -> None:
    """Step the market until the client saw at least one more ticker update."""
    before = count[0]
    for _ in range(200):
        gw.step()
        await asyncio.sleep(0.005)
        if count[0] > before:
            return
    await wait_until(lambda: count[0] > before, 1.0, "a ticker update")


async def test_drop_fires_disconnected_event_and_the_gateway_keeps_listening(manual, wait_until) -> None:
    ib, _codes = await _client(manual)
    dropped: list[bool] = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    try:
        assert await manual.faults.drop_clients() == 1
        await wait_until(lambda: dropped, 2.0, "disconnectedEvent")
        assert not ib.isConnected()
        await ib.connectAsync("127.0.0.1", manual.port, clientId=1)  # same client id is free again
        assert ib.isConnected() and manual.clients == 1
    finally:
        ib.disconnect()


async def test_1100_holds_market_data_and_1102_resumes_it(manual, wait_until) -> None:
    ib, codes = await _client(manual)
    try:
        ticker = ib.reqMktData(SPY)
        updates = [0]
        ticker.updateEvent += lambda t: updates.__setitem__(0, updates[0] + 1)
        await _step_until_update(manual, updates, wait_until)

        assert manual.faults.connectivity_lost() == 1
        await wait_until(lambda: 1100 in codes, 2.0, "error 1100")
        assert codes[-3:] == [1100, 2103, 2105]
        held = updates[0]
        for _ in range(40):  # the market moves, nothing reaches the client
            manual.step()
        await ib.reqCurrentTimeAsync()  # a round trip: anything sent before it has arrived
        assert updates[0] == held
        assert manual.faults.outage

        assert manual.faults.connectivity_restored() == (1, 1)
        await wait_until(lambda: 1102 in codes, 2.0, "error 1102")
        await ib.reqCurrentTimeAsync()
        st = manual.market.state("SPY")
        assert (ticker.bid, ticker.ask) == (st.bid, st.ask)  # refreshed, not stale
        assert updates[0] > held
        await _step_until_update(manual, updates, wait_until)
        assert 0 < ticker.bid < ticker.ask
    finally:
        ib.disconnect()


async def test_1101_drops_the_lines_the_client_must_resubscribe(manual, wait_until) -> None:
    ib, codes = await _client(manual)
    try:
        ticker = ib.reqMktData(SPY)
        updates = [0]
        ticker.updateEvent += lambda t: updates.__setitem__(0, updates[0] + 1)
        await _step_until_update(manual, updates, wait_until)
        session = next(iter(manual.sessions))
        assert len(session.subscriptions) == 1
        manual.faults.connectivity_lost()
        assert manual.faults.connectivity_restored(data_lost=True) == (1, 1)
        await wait_until(lambda: 1101 in codes, 2.0, "error 1101")
        assert 1102 not in codes
        assert session.subscriptions == {} and not manual._subs
        for _ in range(40):
            manual.step()
        await ib.reqCurrentTimeAsync()
        stale = updates[0]
        # resubscribing brings the data back
        ib.cancelMktData(SPY)
        again = ib.reqMktData(SPY)
        again_updates = [0]
        again.updateEvent += lambda t: again_updates.__setitem__(0, again_updates[0] + 1)
        await _step_until_update(manual, again_updates, wait_until)
        assert updates[0] >= stale
    finally:
        ib.disconnect()


async def test_outage_for_restores_by_itself(manual, wait_until) -> None:
    ib, codes = await _client(manual)
    try:
        manual.faults.outage_for(0.2)
        await wait_until(lambda: 1102 in codes, 3.0, "the automatic 1102")
        assert codes.index(1100) < codes.index(1102)
        assert not manual.faults.outage
    finally:
        ib.disconnect()


async def test_pacing_refuses_messages_above_the_limit_with_error_100(manual, wait_until) -> None:
    ib, codes = await _client(manual)
    try:
        manual.faults.set_pacing(50)
        ib.client.MaxRequests = 0  # ib_async would otherwise throttle itself to 45/s
        requests = [asyncio.ensure_future(ib.reqContractDetailsAsync(SPY)) for _ in range(80)]
        await wait_until(lambda: 100 in codes, 3.0, "error 100")
        await wait_until(lambda: sum(r.done() for r in requests) == 50, 3.0, "50 answers")
        # one burst (one read of the socket) lands in one one-second window:
        # 50 processed, 30 refused and never answered
        assert manual.faults.paced_messages == 30
        assert sum(r.done() for r in requests) == 50
        assert codes.count(100) == 1
        for r in requests:
            r.cancel()
        manual.faults.set_pacing(None)
        details = await ib.reqContractDetailsAsync(SPY)
        assert details and details[0].contract.conId == 756733
    finally:
        ib.disconnect()


async def test_control_socket_commands(manual, tmp_path, wait_until) -> None:
    ib, codes = await _client(manual)
    server = ControlServer(manual.faults, tmp_path / "ctl.sock")
    path = await server.start()

    async def ctl(command: str) -> str:
        return await asyncio.to_thread(send_control, path, command)

    try:
        assert (await ctl("status")).startswith("clients 1; outage no; pacing off")
        assert await ctl("1100") == "1100 sent to 1 client(s); market data held"
        await wait_until(lambda: 1100 in codes, 2.0, "1100 via the socket")
        assert (await ctl("1102")).startswith("1102 sent to 1 client(s)")
        await wait_until(lambda: 1102 in codes, 2.0, "1102 via the socket")
        assert await ctl("pacing on 10") == "pacing on: 10 messages/s per client (error 100 above)"
        assert manual.faults.pacing_limit == 10
        assert await ctl("pacing off") == "pacing off"
        assert manual.faults.pacing_limit is None
        assert (await ctl("frobnicate")).startswith("error: unknown command")
        assert (await ctl("outage")).startswith("error:")
        dropped: list[bool] = []
        ib.disconnectedEvent += lambda: dropped.append(True)
        assert await ctl("drop") == "dropped 1 connection(s)"
        await wait_until(lambda: dropped, 2.0, "the drop")
    finally:
        ib.disconnect()
        await server.stop()
    assert not path.exists()
    with pytest.raises(OSError):
        send_control(path, "status")


def test_control_path_is_per_port(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control_path(4002) == tmp_path / "desk-sim-4002.sock"
    assert control_path(4002) != control_path(4003)
