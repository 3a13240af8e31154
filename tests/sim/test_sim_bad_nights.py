"""A real gateway's bad nights, as the real, unmodified ib_async client sees them: farm
broken -> OK blips that leave lines silently dead, a silent line, the daily restart, a
client id held after a crash (326), fills without orderStatus, reqExecutions without
execDetailsEnd, and ``desk sim ctl`` driving them from the command line.

Ticks are counted over a bounded number of market steps of a gateway whose market moves
only when the test calls ``step()``; a round trip (reqCurrentTime) after the steps proves
that everything the gateway sent before it has arrived."""

from __future__ import annotations

import asyncio
import re
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from ib_async import IB, Contract, LimitOrder, MarketOrder, Option, Stock, Ticker

from desk.domain import FrozenClock
from desk.sim import EmbeddedSim, SimGateway
from desk.sim.faults import COMMANDS, ctl_help

SPY = Stock("SPY", "SMART", "USD", conId=756733)
QQQ = Stock("QQQ", "SMART", "USD", conId=320227571)
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)

IN_USE = "Unable to connect as the client id is already in use. Retry with a unique client id."


@pytest.fixture
async def manual() -> AsyncIterator[SimGateway]:
    """A gateway whose market moves only when the test calls ``step()`` (0.25 s each)."""
    gw = SimGateway(seed=7, tick_interval=3600.0, speed=0.25 / 3600.0)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


class Client:
    """A connected ib_async client and the errors it saw after connecting."""

    def __init__(self) -> None:
        self.ib = IB()
        self.errors: list[tuple[int, int, str]] = []
        self.ib.errorEvent += lambda req_id, code, text, contract: self.errors.append((req_id, code, text))

    @property
    def codes(self) -> list[int]:
        return [code for _, code, _ in self.errors]

    async def connect(self, gw: SimGateway, client_id: int = 1, **kwargs: object) -> Client:
        await self.ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, **kwargs)
        self.errors.clear()  # the farm-OK notices of the handshake
        return self


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., object]]:
    made: list[Client] = []

    async def make(gw: SimGateway, client_id: int = 1, **kwargs: object) -> Client:
        c = Client()
        made.append(c)
        return await c.connect(gw, client_id, **kwargs)

    yield make
    for c in made:
        c.ib.disconnect()


def counter(ticker: Ticker) -> list[int]:
    """``[n]``: ticker updates seen since now."""
    n = [0]
    ticker.updateEvent += lambda t: n.__setitem__(0, n[0] + 1)
    return n


async def step_until(gw: SimGateway, cond: Callable[[], bool], what: str, max_steps: int = 400, timeout: float = 5.0) -> None:
    """Step the market until ``cond()`` holds; fail after ``max_steps`` steps or ``timeout``."""
    deadline = time.monotonic() + timeout
    for _ in range(max_steps):
        if cond():
            return
        if time.monotonic() > deadline:
            break
        gw.step()
        await asyncio.sleep(0.005)
    if not cond():
        pytest.fail(f"not seen within {max_steps} market steps / {timeout} s: {what}")


async def quiet_steps(gw: SimGateway, ib: IB, steps: int = 40) -> None:
    """Move the market ``steps`` steps, then a round trip: whatever the gateway sent for
    them has arrived."""
    for _ in range(steps):
        gw.step()
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2.0)


async def atm_call(ib: IB, gw: SimGateway) -> Contract:
    params = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", SPY.conId)
    expiry = next(p for p in params if p.exchange == "SMART").expirations[2]
    mid = (gw.market.state("SPY").bid + gw.market.state("SPY").ask) / 2
    strikes = gw.options.source.listing.chain("SPY").expiry(expiry).strikes
    (call,) = await ib.qualifyContractsAsync(Option("SPY", expiry, min(strikes, key=lambda k: abs(k - mid)), "C", "SMART"))
    return call


# --- farm blips -----------------------------------------------------------------------------


async def test_farm_blip_leaves_every_line_silently_dead_until_requested_again(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    call = await atm_call(ib, manual)
    spy, qqq, opt = ib.reqMktData(SPY), ib.reqMktData(QQQ), ib.reqMktData(call)
    n_spy, n_qqq, n_opt = counter(spy), counter(qqq), counter(opt)
    await step_until(manual, lambda: n_spy[0] and n_qqq[0] and n_opt[0], "all three lines ticking")

    assert manual.faults.farm_blip(0.2) == (1, 3)  # one client told, three lines dead
    assert "farm usfarm broken (OK in" in manual.faults.status()
    await step_until(manual, lambda: 2104 in c.codes, "the 2104 after 0.2 s")
    assert c.errors == [
        (-1, 2103, "Market data farm connection is broken:usfarm"),
        (-1, 2104, "Market data farm connection is OK:usfarm"),
    ]
    await ib.reqCurrentTimeAsync()
    dead = n_spy[0], n_qqq[0], n_opt[0]

    # other lines tick (a line requested after the OK) while the three stay dead, without a word
    aapl = ib.reqMktData(AAPL)
    n_aapl = counter(aapl)
    await step_until(manual, lambda: n_aapl[0] >= 5, "a new line ticking after the 2104")
    await quiet_steps(manual, ib)
    assert (n_spy[0], n_qqq[0], n_opt[0]) == dead
    assert c.codes == [2103, 2104]
    assert manual.faults.dead_lines == 3
    assert "3 dead lines" in manual.faults.status()

    # requested again they tick: SPY by cancel + request, QQQ and the option by a new request alone
    ib.cancelMktData(SPY)
    assert ib.reqMktData(SPY) is spy  # ib_async keeps one Ticker per contract
    ib.reqMktData(QQQ)
    ib.reqMktData(call)
    await step_until(
        manual,
        lambda: n_spy[0] > dead[0] and n_qqq[0] > dead[1] and n_opt[0] > dead[2],
        "every line ticking again after the re-request",
    )
    assert manual.faults.dead_lines == 2  # the superseded QQQ and option lines, never cancelled
    assert 0 < spy.bid < spy.ask and 0 < opt.bid < opt.ask


async def test_lines_requested_while_the_farm_is_broken_are_dead_after_the_ok(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    assert manual.faults.farm_broken() == (1, 0)
    aapl = ib.reqMktData(AAPL)
    n = counter(aapl)
    await step_until(manual, lambda: n[0] > 0, "the line answered while broken")
    # a client connecting meanwhile is told the farm is broken, the others are OK
    late = Client()
    await late.ib.connectAsync("127.0.0.1", manual.port, clientId=2)
    try:
        assert [code for _, code, _ in late.errors] == [2103, 2106, 2158]
    finally:
        late.ib.disconnect()
    await step_until(manual, lambda: manual.clients == 1, "the late client gone")
    assert manual.faults.farm_ok() == (1, 1)
    await ib.reqCurrentTimeAsync()
    before = n[0]
    spy = ib.reqMktData(SPY)
    n_spy = counter(spy)
    await step_until(manual, lambda: n_spy[0] >= 5, "a line requested after the OK")
    await quiet_steps(manual, ib)
    assert n[0] == before
    assert c.codes == [2103, 2104] and manual.faults.farms_broken == set()


async def test_hmds_farm_blip_stops_keep_up_to_date_bars(clients) -> None:
    # synthetic history has bars in sessions only: a frozen clock 30 minutes into one
    friday_10am = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    manual = SimGateway(seed=7, clock=FrozenClock(friday_10am), tick_interval=3600.0, speed=0.25 / 3600.0)
    await manual.start()
    try:
        await _hmds_blip(manual, await clients(manual))
    finally:
        await manual.stop()


async def _hmds_blip(manual: SimGateway, c: Client) -> None:
    ib = c.ib
    bars = await ib.reqHistoricalDataAsync(SPY, "", "1800 S", "1 min", "MIDPOINT", useRTH=False, keepUpToDate=True)
    n = [0]
    bars.updateEvent += lambda b, has_new: n.__setitem__(0, n[0] + 1)
    await step_until(manual, lambda: n[0] > 0, "a keepUpToDate update")
    assert manual.faults.farm_blip(0.1, "hmds") == (1, 1)
    await step_until(manual, lambda: 2106 in c.codes, "2106")
    assert c.errors == [
        (-1, 2105, "HMDS data farm connection is broken:ushmds"),
        (-1, 2106, "HMDS data farm connection is OK:ushmds"),
    ]
    # market data is untouched, the bars are not
    spy = ib.reqMktData(SPY)
    n_spy = counter(spy)
    await ib.reqCurrentTimeAsync()
    before = n[0]
    await step_until(manual, lambda: n_spy[0] >= 5, "market data ticking")
    await quiet_steps(manual, ib)
    assert n[0] == before
    again = await ib.reqHistoricalDataAsync(SPY, "", "1800 S", "1 min", "MIDPOINT", useRTH=False, keepUpToDate=True)
    n2 = [0]
    again.updateEvent += lambda b, has_new: n2.__setitem__(0, n2[0] + 1)
    await step_until(manual, lambda: n2[0] > 0, "the new request updating")


async def test_secdef_farm_blip_is_notices_only(manual, clients) -> None:
    c = await clients(manual)
    assert manual.faults.farm_blip(0.05, "secdef") == (1, 0)
    await step_until(manual, lambda: 2158 in c.codes, "2158")
    assert c.errors == [
        (-1, 2157, "Sec-def data farm connection is broken:secdefnj"),
        (-1, 2158, "Sec-def data farm connection is OK:secdefnj"),
    ]
    (details,) = await c.ib.reqContractDetailsAsync(SPY)
    assert details.contract.conId == SPY.conId


async def test_1100_holds_option_lines_too_and_1102_refreshes_them(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    opt = ib.reqMktData(await atm_call(ib, manual))
    n = counter(opt)
    await step_until(manual, lambda: n[0] > 0, "option ticks")
    manual.faults.connectivity_lost()
    await quiet_steps(manual, ib)
    held = n[0]
    await quiet_steps(manual, ib)
    assert n[0] == held
    assert manual.faults.connectivity_restored() == (1, 1)
    await ib.reqCurrentTimeAsync()
    assert n[0] > held  # the refresh: the quote and Greeks of now
    quote = manual.quote_for(opt.contract.conId)
    assert (opt.bid, opt.ask) == (round(quote.bid, 2), round(quote.ask, 2))
    assert opt.modelGreeks is not None and 0 < opt.modelGreeks.delta < 1


# --- a silent line ----------------------------------------------------------------------------


async def test_silent_line_stops_without_a_message_and_ticks_when_requested_again(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    spy, qqq = ib.reqMktData(SPY), ib.reqMktData(QQQ)
    n_spy, n_qqq = counter(spy), counter(qqq)
    await step_until(manual, lambda: n_spy[0] and n_qqq[0], "both lines ticking")
    assert manual.faults.silence(SPY.conId) == 1
    await ib.reqCurrentTimeAsync()
    dead, alive = n_spy[0], n_qqq[0]
    await step_until(manual, lambda: n_qqq[0] >= alive + 5, "QQQ ticking on")
    await quiet_steps(manual, ib)
    assert n_spy[0] == dead
    assert c.errors == []
    assert manual.faults.silence(SPY.conId) == 0  # nothing left to silence
    ib.reqMktData(SPY)
    await step_until(manual, lambda: n_spy[0] > dead, "SPY ticking after the re-request")
    # by symbol, through the command
    assert await manual.faults.execute("silent qqq") == "1 line(s) of QQQ silent until requested again"
    assert (await manual.faults.execute("silent ZZZZ")).startswith("error: no live market data line")


# --- the daily restart ----------------------------------------------------------------------


async def test_restart_refuses_connections_then_accepts_with_orders_and_fills_kept(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    filled = ib.placeOrder(SPY, MarketOrder("BUY", 1, orderRef="night-fill"))
    resting = ib.placeOrder(SPY, LimitOrder("BUY", 1, 1.00, orderRef="night-rest"))
    await step_until(manual, lambda: filled.isDone() and resting.orderStatus.status == "Submitted", "a fill and a resting order")
    exec_id = filled.fills[0].execution.execId
    perm_id = resting.orderStatus.permId
    dropped = asyncio.Event()
    ib.disconnectedEvent += dropped.set

    assert await manual.faults.restart(0.5) == 1
    await asyncio.wait_for(dropped.wait(), 2.0)
    assert manual.faults.restarting and "restart (listening again in" in manual.faults.status()
    with pytest.raises(ConnectionRefusedError):
        await IB().connectAsync("127.0.0.1", manual.port, clientId=2, timeout=2)

    refused = 0
    deadline = time.monotonic() + 5.0
    while True:
        try:
            await ib.connectAsync("127.0.0.1", manual.port, clientId=1, timeout=2)
            break
        except ConnectionRefusedError:
            refused += 1
            if time.monotonic() > deadline:
                pytest.fail("the port did not open again within 5 s of a 0.5 s restart")
            await asyncio.sleep(0.05)
    assert not manual.faults.restarting
    # the working order and the day's executions are still there; order ids go on
    (trade,) = ib.openTrades()
    assert (trade.order.permId, trade.order.orderRef) == (perm_id, "night-rest")
    assert exec_id in {f.execution.execId for f in ib.fills()}
    assert ib.client.getReqId() > resting.order.orderId
    assert manual.faults.status().endswith("faults: none")


async def test_restart_through_embedded_sim_call() -> None:
    with EmbeddedSim(seed=7) as sim:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=1)
        dropped = asyncio.Event()
        ib.disconnectedEvent += dropped.set
        assert await asyncio.to_thread(sim.call, lambda gw: gw.faults.restart(0.3)) == 1
        await asyncio.wait_for(dropped.wait(), 2.0)
        deadline = time.monotonic() + 5.0
        while not ib.isConnected():
            try:
                await ib.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=2)
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "not listening again"
                await asyncio.sleep(0.05)
        assert await asyncio.to_thread(sim.call, lambda gw: gw.faults.restarting) is False
        ib.disconnect()


# --- a held client id -------------------------------------------------------------------------


async def test_held_client_id_gets_326_until_the_hold_ends(manual, clients) -> None:
    c = await clients(manual)
    dropped = asyncio.Event()
    c.ib.disconnectedEvent += dropped.set
    t0 = time.monotonic()
    assert await manual.faults.hold_client_ids(0.6) == (1, [1])
    await asyncio.wait_for(dropped.wait(), 2.0)
    assert "hold-id 1 (" in manual.faults.status()

    retry = Client()
    with pytest.raises((asyncio.TimeoutError, ConnectionError)):
        await retry.ib.connectAsync("127.0.0.1", manual.port, clientId=1, timeout=1)
    assert retry.errors == [(-1, 326, IN_USE)]
    assert not retry.ib.isConnected()
    other = await clients(manual, 3)  # other ids connect fine meanwhile
    assert other.ib.isConnected() and manual.client_ids == [3]

    attempts = 1
    deadline = time.monotonic() + 5.0
    while True:
        retry.errors.clear()
        try:
            await retry.ib.connectAsync("127.0.0.1", manual.port, clientId=1, timeout=1)
            break
        except (asyncio.TimeoutError, ConnectionError):
            assert retry.errors == [(-1, 326, IN_USE)]
            attempts += 1
            assert time.monotonic() < deadline, "client id 1 still refused 5 s after a 0.6 s hold"
            await asyncio.sleep(0.05)
    try:
        assert time.monotonic() - t0 >= 0.6  # never accepted before the hold ended
        assert manual.client_ids == [1, 3]
        assert await asyncio.wait_for(retry.ib.reqCurrentTimeAsync(), 2.0)
    finally:
        retry.ib.disconnect()


# --- fills without orderStatus, reqExecutions without its end --------------------------------


async def test_no_status_fills_arrive_as_executions_only(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    manual.faults.set_no_status(True)
    seen: list[str] = []
    ib.orderStatusEvent += lambda trade: seen.append(trade.orderStatus.status)
    trade = ib.placeOrder(SPY, MarketOrder("BUY", 1, orderRef="ns-1"))
    await step_until(
        manual, lambda: trade.fills and trade.fills[0].commissionReport.commission > 0, "the execution and its commission report"
    )
    await ib.reqCurrentTimeAsync()
    (fill,) = trade.fills
    assert fill.execution.shares == 1 and fill.execution.orderRef == "ns-1"
    assert fill.commissionReport.commission == pytest.approx(1.00)
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.filled == 0
    assert "Filled" not in seen
    assert manual.faults.withheld_status == 1 and "no-status (1 withheld)" in manual.faults.status()
    # the order is filled all the same: the completed orders say so
    done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 2.0)
    assert [t.orderStatus.status for t in done if t.order.permId == fill.execution.permId] == ["Filled"]

    manual.faults.set_no_status(False)
    again = ib.placeOrder(SPY, MarketOrder("BUY", 1))
    await step_until(manual, lambda: again.orderStatus.status == "Filled", "orderStatus back")


async def test_stuck_executions_never_end_until_turned_off(manual, clients) -> None:
    c = await clients(manual)
    ib = c.ib
    trade = ib.placeOrder(SPY, MarketOrder("BUY", 1))
    await step_until(manual, lambda: trade.isDone(), "a fill")
    exec_id = trade.fills[0].execution.execId

    manual.faults.set_stuck_executions(True)
    pending = asyncio.ensure_future(ib.reqExecutionsAsync())
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done
    assert await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2.0)  # everything else is answered
    # the startup sync of a client connecting now times out on its executions
    late = IB()
    with pytest.raises(ConnectionError, match="executions request timed out"):
        await late.connectAsync("127.0.0.1", manual.port, clientId=2, timeout=0.5, raiseSyncErrors=True)
    await step_until(manual, lambda: manual.clients == 1, "the late client gone")
    assert "stuck-executions (1 held)" in manual.faults.status()  # the late client's request is moot

    assert manual.faults.set_stuck_executions(False) == 1
    fills = await asyncio.wait_for(pending, 2.0)  # the late execDetailsEnd
    assert [f.execution.execId for f in fills] == [exec_id]
    fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 2.0)
    assert [f.execution.execId for f in fills] == [exec_id]


async def test_status_lists_every_active_fault_and_commands_check_their_arguments(manual, clients) -> None:
    await clients(manual)
    f = manual.faults
    assert f.status() == "clients 1; outage no; pacing off; market data lines 0; tick messages sent 0; faults: none"
    assert (await f.execute("farm hmds 30")).startswith("2105 sent to 1 client(s); 0 keepUpToDate")
    assert await f.execute("no-status on") == "no-status on: fills send execDetails and commissionReport only"
    assert await f.execute("stuck-executions on") == "stuck-executions on: reqExecutions gets no execDetailsEnd"
    status = f.status()
    assert status.startswith(
        "clients 1; outage no; pacing off; market data lines 0; tick messages sent 0; faults: farm ushmds broken (OK in"
    )
    assert status.endswith("no-status (0 withheld), stuck-executions (0 held)")
    assert (await f.execute("farm hmds 0")).endswith("2106 in 0 s")
    await step_until(manual, lambda: not f.farms_broken, "the farm OK")
    assert await f.execute("no-status off") == "no-status off: fills send orderStatus again"
    assert await f.execute("stuck-executions off") == "stuck-executions off: 0 held request(s) ended"
    assert f.status().endswith("faults: none")
    for bad in (
        "farm moonfarm",
        "farm -1",
        "restart",
        "restart 5000",
        "hold-id",
        "hold-id x",
        "no-status maybe",
        "stuck-executions",
        "silent",
    ):
        assert (await f.execute(bad)).startswith("error:"), bad
    assert f.status().endswith("faults: none")
    help_text = await f.execute("help")
    assert all(syntax in help_text for syntax, _ in COMMANDS)


# --- desk sim ctl from the command line ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctl(port: int, env: dict[str, str], *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desk", "sim", "ctl", "--port", str(port), *words],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ctl_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "desk", "sim", "ctl", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "commands:" in result.stdout
    for syntax, _ in COMMANDS:
        assert syntax in result.stdout, syntax
    assert result.stdout.rstrip().endswith(ctl_help().splitlines()[-1].strip())


async def test_desk_sim_ctl_farm_blip_and_restart(tmp_path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", "sim", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    c = Client()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            if "desk sim control" in line or (not line and proc.poll() is not None):
                break
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        await c.ib.connectAsync("127.0.0.1", port, clientId=1)
        c.errors.clear()
        spy = c.ib.reqMktData(SPY)
        n = counter(spy)
        deadline = time.monotonic() + 5
        while not n[0]:
            assert time.monotonic() < deadline, "no SPY ticks"
            await asyncio.sleep(0.02)

        farm = await asyncio.to_thread(_ctl, port, env, "farm", "0.3")
        assert farm.returncode == 0 and farm.stdout.strip() == (
            "2103 sent to 1 client(s); 1 market data line(s) silently dead until requested again; 2104 in 0.3 s"
        )
        deadline = time.monotonic() + 5
        while 2104 not in c.codes:
            assert time.monotonic() < deadline, "no 2104"
            await asyncio.sleep(0.02)
        assert c.codes == [2103, 2104]
        status = await asyncio.to_thread(_ctl, port, env, "status")
        assert status.stdout.strip().endswith("faults: 1 dead line")

        dropped = asyncio.Event()
        c.ib.disconnectedEvent += dropped.set
        restart = await asyncio.to_thread(_ctl, port, env, "restart", "1")
        assert restart.returncode == 0
        assert restart.stdout.strip() == f"restart: dropped 1 connection(s); port {port} closed, listening again in 1 s"
        await asyncio.wait_for(dropped.wait(), 5.0)
        with pytest.raises(ConnectionRefusedError):
            await IB().connectAsync("127.0.0.1", port, clientId=2, timeout=2)
        deadline = time.monotonic() + 10
        while not c.ib.isConnected():
            try:
                await c.ib.connectAsync("127.0.0.1", port, clientId=1, timeout=2)
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "not listening again"
                await asyncio.sleep(0.1)
        status = await asyncio.to_thread(_ctl, port, env, "status")
        assert re.fullmatch(
            r"clients 1; outage no; pacing off; market data lines 0; tick messages sent \d+; faults: none", status.stdout.strip()
        ), status.stdout
        bad = await asyncio.to_thread(_ctl, port, env, "hold-id")
        assert bad.returncode == 2 and bad.stdout.startswith("error:")
    finally:
        c.ib.disconnect()
        proc.terminate()
        proc.wait(20)
