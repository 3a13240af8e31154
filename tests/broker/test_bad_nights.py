"""A real gateway's bad nights, through the unmodified ib_async client against the simulator:
data lost (1101) and farm blips re-request every line, a held client id (326) falls back
to the next id, a gateway that never finishes the handshake says so in one line, and the
feed watchdog's and the restart window's rules."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from datetime import UTC, datetime

import pytest

from desk.broker.health import LineWatchdog
from desk.broker.lifecycle import FarmTracker, RestartWindow, reconnect_delay
from desk.broker.ticks import Line
from desk.domain import ConnectionState, Instrument, StatusEvent
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings


def _settings(tmp_path, **kw) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "o",
        spool_dir=tmp_path / "spool",
        _env_file=None,
    )
    base.update(kw)
    return Settings(**base)


async def wait_for(cond, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def gateway():
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=2, tick_interval=0.05)
    await gw.start()
    yield gw
    await gw.stop()


async def _running(tmp_path, gw, **kw) -> tuple[Runtime, list[StatusEvent]]:
    rt = Runtime(_settings(tmp_path, ib_port=gw.port, **kw))
    notices: list[StatusEvent] = []
    rt.broker.add_listener(lambda ev: notices.append(ev) if isinstance(ev, StatusEvent) else None)
    await rt.start()
    await wait_for(lambda: rt.broker.state is ConnectionState.CONNECTED and len(rt.broker.watchlist) == 2, "connected")
    return rt, notices


def _ticks(rt: Runtime) -> int:
    return sum(q.seq for q in rt.quotes.quotes())


async def test_data_lost_1101_requests_every_line_again(tmp_path, gateway) -> None:
    rt, notices = await _running(tmp_path, gateway)
    try:
        await wait_for(lambda: _ticks(rt) > 20, "quotes")
        gateway.faults.connectivity_lost()
        await asyncio.sleep(0)  # the gateway holds the lines: no tick arrives now
        gateway.faults.connectivity_restored(data_lost=True)  # 1101: the lines are gone at the gateway
        await wait_for(lambda: rt.broker.resubscribes >= 1, "the lines requested again")
        before = _ticks(rt)
        await wait_for(lambda: _ticks(rt) > before + 20, "quotes flowing again after 1101")
        assert any("1101" in n.text and "requesting every line again" in n.text for n in notices)
        # every watchlist line is live at the gateway again
        await wait_for(
            lambda: all((q := rt.quotes.get(i.con_id)) is not None and q.seq > 0 for i in rt.broker.watchlist), "every line"
        )
    finally:
        await rt.stop()


async def test_after_1101_the_account_requests_pnl_and_account_updates_again(tmp_path, gateway) -> None:
    """1101: IB says market *and account* data subscriptions must be requested again (the
    simulator drops them); the account side re-requests reqPnL, reqPnLSingle, the account
    updates and the positions, and the P&L ticks again."""
    from ib_async import LimitOrder, Stock

    gateway.orders.feed.pnl_interval = 0.1
    rt, notices = await _running(tmp_path, gateway)
    try:
        ib = rt.broker.ib
        spy = rt.broker.watchlist[0]
        await wait_for(lambda: (q := rt.quotes.get(spy.con_id)) is not None and q.ask > 0, "SPY quotes")
        [contract] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        trade = ib.placeOrder(contract, LimitOrder("BUY", 10, round(rt.quotes.get(spy.con_id).ask + 0.5, 2)))
        await wait_for(lambda: trade.isDone(), "the fill")
        await wait_for(
            lambda: any(r.quantity == 10 and r.daily_pnl == r.daily_pnl for r in rt.account.rows()), "the position's P&L"
        )
        ticks = {"pnl": 0, "single": 0, "values": 0}
        ib.pnlEvent += lambda *_: ticks.__setitem__("pnl", ticks["pnl"] + 1)
        ib.pnlSingleEvent += lambda *_: ticks.__setitem__("single", ticks["single"] + 1)
        ib.accountValueEvent += lambda *_: ticks.__setitem__("values", ticks["values"] + 1)
        gateway.faults.connectivity_lost()
        gateway.faults.connectivity_restored(data_lost=True)
        await wait_for(lambda: rt.account.resubscribes >= 1, "the account subscriptions requested again")
        before = dict(ticks)
        await wait_for(
            lambda: ticks["pnl"] > before["pnl"] + 3 and ticks["single"] > before["single"] + 3,
            "reqPnL and reqPnLSingle ticking again",
        )
        await wait_for(lambda: ticks["values"] > before["values"], "the account values again")
        assert any("1101" in n.text for n in notices)
    finally:
        await rt.stop()


async def test_a_farm_blip_requests_every_line_again(tmp_path, gateway) -> None:
    """1100 + farm broken, then 1102 + farm OK: the market data farm came back, so every
    line is requested again (real gateways can leave lines silently dead after a blip)."""
    rt, notices = await _running(tmp_path, gateway)
    try:
        await wait_for(lambda: _ticks(rt) > 20, "quotes")
        gateway.faults.connectivity_lost()
        await wait_for(lambda: any(n.code == 2103 for n in notices), "the farm broken notice")
        gateway.faults.connectivity_restored(data_lost=False)
        await wait_for(lambda: rt.broker.resubscribes >= 1, "the lines requested again")
        assert any("market data farm back" in n.text or "2104" in n.text for n in notices)
        before = _ticks(rt)
        await wait_for(lambda: _ticks(rt) > before + 20, "quotes flowing again")
    finally:
        await rt.stop()


async def test_a_held_client_id_falls_back_to_the_next_one(tmp_path, gateway) -> None:
    from ib_async import IB

    holder = IB()
    await holder.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=5)  # a crashed desk's id, still held
    try:
        rt = Runtime(_settings(tmp_path, ib_port=gateway.port, ib_client_id=1, ib_client_id_fallback=2))
        states: list[str] = []
        rt.broker.add_listener(lambda ev: states.append(getattr(ev, "detail", "")))
        await rt.start()
        try:
            await wait_for(lambda: rt.broker.state is ConnectionState.CONNECTED, "connected with another id")
            assert rt.broker.client_id == 2
            assert any("client id 1 is in use at the gateway (IB 326); trying client id 2" in s for s in states), states
        finally:
            await rt.stop()
    finally:
        holder.disconnect()


async def test_a_gateway_that_never_answers_the_handshake_is_one_line(tmp_path) -> None:
    """A socket that accepts and says nothing (a hung gateway, the wrong port)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    rt = Runtime(_settings(tmp_path, ib_port=port, ib_connect_timeout=0.5))
    details: list[str] = []
    rt.broker.add_listener(lambda ev: details.append(getattr(ev, "detail", "")))
    try:
        await rt.start()
        await wait_for(lambda: any("did not answer in time" in d for d in details), "the timeout said")
        line = next(d for d in details if "did not answer in time" in d)
        assert line.startswith(f"gateway at 127.0.0.1:{port} did not answer in time; retrying in") and "\n" not in line
        assert rt.broker.state is ConnectionState.RECONNECTING
    finally:
        await rt.stop()
        stop.set()
        t.join(2)
        for s in held:
            s.close()
        server.close()


# --- pure rules ----------------------------------------------------------------------------


class _Lines:
    """A line owner for the watchdog: the lines it holds and the re-requests it was asked."""

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.asked: list[int] = []

    def market_lines(self):
        return self.lines

    def rerequest(self, line: Line) -> None:
        self.asked.append(line.instrument.con_id)
        line.requested_at = NOW[0]


NOW = [1000.0]


def _line(con_id: int, sec_type: str = "STK", last: float = 990.0) -> Line:
    ins = Instrument(
        "SPY",
        sec_type,
        con_id=con_id,
        expiry="20261218" if sec_type == "OPT" else "",
        strike=600.0 if sec_type == "OPT" else 0.0,
        right="C" if sec_type == "OPT" else "",
        multiplier=100 if sec_type == "OPT" else 1,
    )
    line = Line(ins, None)
    line.ticker = object()
    line.last_tick = last
    return line


def test_the_watchdog_rerequests_silent_lines_a_bounded_number_of_times() -> None:
    live, silent, option = _line(1, last=999.0), _line(2, last=900.0), _line(3, "OPT", last=950.0)
    owner = _Lines([live, silent, option])
    dog = LineWatchdog(
        [owner],
        now=lambda: NOW[0],
        wall=lambda: datetime(2026, 12, 2, 15, tzinfo=UTC),
        market_open=lambda line, when: True,
        stale_after=lambda line: 30.0 if line.instrument.sec_type == "STK" else 120.0,
        max_retries=2,
    )
    report = dog.check()
    assert dog.stale == {2} and owner.asked == [2] and not report.feed_dead  # the option is quiet, not dead
    NOW[0] += 31
    live.last_tick = NOW[0]
    report = dog.check()
    assert owner.asked == [2, 2] and report.died == []
    NOW[0] += 31
    live.last_tick = NOW[0]
    report = dog.check()
    assert owner.asked == [2, 2] and [line.instrument.con_id for line in report.died] == [2]  # said once
    NOW[0] += 31
    live.last_tick = NOW[0]
    assert dog.check().died == []
    silent.last_tick = NOW[0]  # it ticks again: no longer stale, retries reset
    dog.check()
    assert 2 not in dog.stale and silent.retries == 0
    NOW[0] += 200
    report = dog.check()
    assert report.feed_dead and dog.stale == {1, 2, 3}


def test_closed_markets_are_not_watched() -> None:
    owner = _Lines([_line(1, last=0.0)])
    dog = LineWatchdog(
        [owner],
        now=lambda: NOW[0],
        wall=lambda: datetime(2026, 11, 26, 15, tzinfo=UTC),
        market_open=lambda line, when: False,
        stale_after=lambda line: 1.0,
    )
    assert dog.check().stale == set() and owner.asked == []


def test_farm_recovery_is_only_after_a_break() -> None:
    farms = FarmTracker()
    assert not farms.on_code(2104, "Market data farm connection is OK:usfarm")  # the connect notices
    assert not farms.on_code(2103, "Market data farm connection is broken:usfarm")
    assert farms.on_code(2104, "Market data farm connection is OK:usfarm")
    assert not farms.on_code(2105, "HMDS data farm connection is broken:ushmds")
    assert not farms.on_code(2106, "HMDS data farm connection is OK:ushmds")  # history: nothing to re-request


def test_the_restart_window_counts_down_and_is_expected() -> None:
    window = RestartWindow.parse("23:45", "America/New_York", 10)
    before = datetime(2026, 12, 3, 4, 40, tzinfo=UTC)  # 23:40 ET
    assert window.status(before) == "gateway restart in 5:00" and not window.in_window(before)
    inside = datetime(2026, 12, 3, 4, 48, 30, tzinfo=UTC)
    assert window.in_window(inside) and window.status(inside) == "daily gateway restart: reconnects expected, 6:30 left"
    assert window.status(datetime(2026, 12, 3, 12, 0, tzinfo=UTC)) == ""
    for bad, why in (("24:00", "HH:MM"), ("noon", "HH:MM")):
        with pytest.raises(ValueError, match=why):
            RestartWindow.parse(bad)
    rng = random.Random(1)
    assert all(2.0 <= reconnect_delay(9, (0.25, 8.0), near_restart=True, rng=rng) <= 2.4 for _ in range(50))
    assert all(8.0 <= reconnect_delay(9, (0.25, 8.0), near_restart=False, rng=rng) <= 9.6 for _ in range(50))


# --- the simulator's bad nights, end to end ------------------------------------------------


async def test_lines_silently_dead_after_a_farm_blip_tick_again(tmp_path, gateway) -> None:
    rt, notices = await _running(tmp_path, gateway)
    try:
        await wait_for(lambda: _ticks(rt) > 20, "quotes")
        before = rt.broker.resubscribes
        gateway.faults.farm_blip(0.3)  # 2103, then 2104: every line silently dead until re-requested
        await wait_for(lambda: rt.broker.resubscribes > before, "the lines requested again after the 2104")
        seqs = {i.con_id: rt.quotes.get(i.con_id).seq for i in rt.broker.watchlist}
        await wait_for(lambda: all(rt.quotes.get(c).seq > s + 3 for c, s in seqs.items()), "every line ticking")
        assert any(n.code == 2103 for n in notices) and any("market data farm back" in n.text or n.code == 2104 for n in notices)
    finally:
        await rt.stop()


async def test_a_silent_line_is_marked_stale_and_requested_again(tmp_path, gateway) -> None:
    rt, notices = await _running(tmp_path, gateway, stale_stock_seconds=1.0)
    try:
        await wait_for(lambda: _ticks(rt) > 20, "quotes")
        spy = next(i for i in rt.broker.watchlist if i.symbol == "SPY")
        assert gateway.faults.silence("SPY") >= 1  # no message: only silence
        await wait_for(
            lambda: spy.con_id in rt.broker.stale_lines or rt.broker.watchdog.rerequests > 0,
            "the silent line noticed",
            timeout=10,
        )
        seq = rt.quotes.get(spy.con_id).seq
        await wait_for(lambda: rt.quotes.get(spy.con_id).seq > seq + 3, "SPY ticking again after the re-request")
        await wait_for(lambda: spy.con_id not in rt.broker.stale_lines, "no longer stale")
        assert rt.broker.watchdog.rerequests >= 1 and not rt.broker.watchdog.dead
    finally:
        await rt.stop()


async def test_the_nightly_restart_and_a_held_client_id(tmp_path, gateway) -> None:
    rt, notices = await _running(tmp_path, gateway)
    details: list[str] = []
    rt.broker.add_listener(lambda ev: details.append(getattr(ev, "detail", "")))
    try:
        await wait_for(lambda: rt.orders.ready, "reconciled")
        spy = next(i for i in rt.broker.watchlist if i.symbol == "SPY")
        await wait_for(lambda: rt.quotes.get(spy.con_id).bid > 0, "quotes")
        from desk.risk import OrderIntent

        placed = await rt.orders.place(OrderIntent(spy, "BUY", 3, "LMT", limit_price=round(rt.quotes.get(spy.con_id).bid - 5, 2)))
        ref = placed.client_order_id
        await wait_for(lambda: rt.orders.rows[ref].status == "Submitted", "working")
        connects = rt.broker.connects
        await gateway.faults.restart(1.0)  # the port refuses connections for a second
        await wait_for(lambda: rt.broker.connects > connects and rt.orders.ready, "back after the restart", timeout=20)
        assert rt.orders.rows[ref].status == "Submitted" and not rt.orders.rows[ref].gone  # the order survived
        seq = rt.quotes.get(spy.con_id).seq
        await wait_for(lambda: rt.quotes.get(spy.con_id).seq > seq + 3, "quotes after the restart")
        # a crashed client's id held for a second: 326, retried, connected with the same id
        connects = rt.broker.connects
        await gateway.faults.hold_client_ids(1.0)
        await wait_for(lambda: rt.broker.connects > connects and rt.orders.ready, "back after the hold", timeout=20)
        assert rt.broker.client_id == 1
        assert any("in use at the gateway (IB 326" in d for d in details), details
    finally:
        await rt.stop()


async def test_fills_without_order_status_and_executions_that_never_end(tmp_path, gateway) -> None:
    rt, notices = await _running(tmp_path, gateway)
    rt.orders.fetch_timeout = 1.0
    try:
        await wait_for(lambda: rt.orders.ready, "reconciled")
        spy = next(i for i in rt.broker.watchlist if i.symbol == "SPY")
        await wait_for(lambda: rt.quotes.get(spy.con_id).ask > 0, "quotes")
        from desk.risk import OrderIntent

        gateway.faults.set_no_status(True)  # the fill is reported as execDetails only
        placed = await rt.orders.place(
            OrderIntent(spy, "BUY", 2, "LMT", limit_price=round(rt.quotes.get(spy.con_id).ask + 0.5, 2))
        )
        ref = placed.client_order_id
        await wait_for(
            lambda: rt.orders.rows[ref].status == "Filled" and rt.orders.rows[ref].filled == 2, "Filled from the executions alone"
        )
        await rt.audit.drain()
        assert rt.audit.log.current_state(ref) == "filled"
        gateway.faults.set_no_status(False)
        # reqExecutions that never ends: the reconnect waits a bounded time, twice, then says so
        gateway.faults.set_stuck_executions(True)
        before = rt.orders.reconciles
        await gateway.drop_clients()
        await wait_for(lambda: rt.orders.reconciles > before, "the reconcile after the drop", timeout=30)
        assert any("did not answer the day's executions" in n.text for n in notices)
        assert rt.orders.rows[ref].status == "Filled"  # what was known is kept
        gateway.faults.set_stuck_executions(False)
    finally:
        await rt.stop()


async def test_a_refused_handshake_is_given_up_at_once_not_after_the_connect_timeout(tmp_path, gateway) -> None:
    # 326 closes the socket before the API starts; ib_async alone would wait out its whole
    # connect timeout (60 s here) before the desk could try again
    rt, _ = await _running(tmp_path, gateway, ib_connect_timeout=60.0)
    details: list[str] = []
    rt.broker.add_listener(lambda ev: details.append(getattr(ev, "detail", "")))
    try:
        connects = rt.broker.connects
        await gateway.faults.hold_client_ids(1.0)
        await wait_for(lambda: any("in use at the gateway (IB 326" in d for d in details), "the 326 said")
        await wait_for(lambda: rt.broker.connects > connects, "back after the hold", timeout=20)
        assert rt.broker.state is not ConnectionState.DISCONNECTED
    finally:
        await rt.stop()


async def test_recording_resumes_once_per_line_after_1101_and_a_farm_blip(tmp_path, gateway) -> None:
    """The recorder records again after each loss of data, each line is held once at the
    gateway (re-requests replace, never add), no tick row is written twice, and the
    headless stats line says the lines were requested again."""
    import sqlite3

    from desk.cli import format_stats

    rt, _ = await _running(tmp_path, gateway, record=True)
    try:
        await wait_for(lambda: rt.broker.ticks_recorded > 20, "recording")
        gateway.faults.connectivity_lost()
        gateway.faults.connectivity_restored(data_lost=True)  # 1101
        await wait_for(lambda: rt.broker.resubscribes >= 1, "requested again after 1101")
        recorded = rt.broker.ticks_recorded
        await wait_for(lambda: rt.broker.ticks_recorded > recorded + 20, "recording after 1101")
        gateway.faults.farm_blip(0.2)
        await wait_for(lambda: rt.broker.resubscribes >= 2, "requested again after the farm blip")
        recorded = rt.broker.ticks_recorded
        await wait_for(lambda: rt.broker.ticks_recorded > recorded + 20, "recording after the farm blip")
        session = next(s for s in gateway.sessions if s.client_id == rt.broker.client_id)
        held = [ln.stock.con_id for ln in session.subscriptions.values() if hasattr(ln, "stock") and not hasattr(ln, "option")]
        assert sorted(held) == sorted({i.con_id for i in rt.broker.watchlist}), held  # once each
        assert "resubscribed 2x" in format_stats(rt, 0.0)
    finally:
        await rt.stop()
    db = sqlite3.connect(tmp_path / "desk.sqlite3")
    try:
        total = db.execute("SELECT COUNT(*) FROM ticks").fetchone()[0]
        twice = db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM ticks GROUP BY time, con_id, kind, bid, ask, bid_size, ask_size,"
            " price, size HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    finally:
        db.close()
    assert total >= 60 and twice == 0, (total, twice)
