"""Orders survive a simulator crash: ``desk sim --state FILE`` journals every order and
execution event durably (desk.sim.journal), and order ids, permIds and execIds are never
handed out twice across restarts, with or without a state file.

The crash tests run the real ``desk sim`` in a subprocess, ``kill -9`` it (no clean exit)
and talk to it with the unmodified ib_async client; nextValidId is read straight off the
socket by a bare TWS API handshake so that ib_async's own id bookkeeping cannot hide it.
The in-process tests take "what a crash leaves on disk" as a copy of the files of a
running gateway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Stock, StopOrder

from desk.sim import SimGateway, journal
from desk.sim.codec import encode_fields

CALM = {"tick_interval": 3600.0, "speed": 0.25 / 3600.0}  # stepped by hand
ACCOUNT = "DU1234567"
CLIENT = 5


# --- helpers -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DeskSim:
    """``python -m desk sim`` on a port, with ``--state FILE`` if given."""

    def __init__(self, cwd: Path, port: int, state: Path | None) -> None:
        self.cwd, self.port, self.state = cwd, port, state
        self.proc: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "desk", "sim", "--port", str(self.port), "--seed", "7"]
        return cmd + (["--state", str(self.state)] if self.state is not None else [])

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
        self.proc = subprocess.Popen(
            self.command(), env=env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        if "listening" not in line:
            self.proc.kill()
            pytest.fail(f"desk sim did not start: {line!r} {self.proc.stderr.read()}")

    def kill9(self) -> str:
        """SIGKILL (no clean exit, no last snapshot); returns what it wrote on stderr."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.returncode == -signal.SIGKILL
        err = self.proc.stderr.read()
        self.proc = None
        return err

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def raw_next_valid_id(port: int, client_id: int, timeout: float = 10.0) -> int:
    """The nextValidId the gateway sends a client at startApi (bare handshake, no
    ib_async); the connection is closed again."""

    def run() -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            payload = b"v157..178"
            sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)
            sock.sendall(encode_fields((71, 2, client_id, "")))
            buf = b""
            while True:
                while len(buf) >= 4 and len(buf) - 4 >= struct.unpack_from(">I", buf)[0]:
                    n = struct.unpack_from(">I", buf)[0]
                    fields = buf[4 : 4 + n].split(b"\0")
                    buf = buf[4 + n :]
                    if fields[0] == b"9":
                        return int(fields[2])
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed before nextValidId")
                buf += data

    return await asyncio.to_thread(run)


def cash_of(ib: IB) -> float:
    return next(
        float(v.value) for v in ib.accountValues() if v.tag == "TotalCashValue" and v.currency == "USD" and v.account == ACCOUNT
    )


def expected_cash(ib: IB, start: float = 1_000_000.0) -> float:
    """Starting cash less what the fills cost: + sales, - purchases, - commissions."""
    cash = start
    for f in ib.fills():
        if f.contract.secType == "BAG":
            continue
        mult = float(f.contract.multiplier or 1)
        sign = -1 if f.execution.side == "BOT" else 1
        cash += sign * f.execution.shares * f.execution.price * mult
        cash -= f.commissionReport.commission
    return cash


def executions_of(ib: IB) -> dict[str, tuple]:
    return {
        f.execution.execId: (
            f.execution.orderRef,
            f.execution.permId,
            f.execution.side,
            f.execution.shares,
            f.execution.price,
            round(f.commissionReport.commission, 4),
        )
        for f in ib.fills()
    }


def working_of(ib: IB) -> dict[str, tuple]:
    return {
        t.order.orderRef: (
            t.order.orderId,
            t.order.permId,
            t.orderStatus.status,
            t.order.action,
            t.order.totalQuantity,
            t.order.orderType,
            t.order.lmtPrice,
            t.order.auxPrice,
            t.contract.conId,
        )
        for t in ib.openTrades()
    }


def positions_of(ib: IB) -> dict[int, tuple[float, float]]:
    return {p.contract.conId: (p.position, round(p.avgCost, 6)) for p in ib.positions() if p.position}


# --- kill -9 with --state -------------------------------------------------------------------


async def test_kill_9_loses_no_order_execution_account_or_id(tmp_path: Path) -> None:
    state = tmp_path / "sim-state.json"
    port = _free_port()
    sim = DeskSim(tmp_path, port, state)
    ib = IB()
    try:
        await sim.start()
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        spy, qqq, aapl = await ib.qualifyContractsAsync(
            Stock("SPY", "SMART", "USD"), Stock("QQQ", "SMART", "USD"), Stock("AAPL", "SMART", "USD")
        )
        # the longest-dated 600 call: a same-day one can be worth less than the
        # working limit below late in the session, and would fill
        details = await ib.reqContractDetailsAsync(Option("SPY", "", 600, "C", "SMART"))
        call = max((d.contract for d in details), key=lambda c: c.lastTradeDateOrContractMonth)
        [t_spy] = await ib.reqTickersAsync(spy)
        low = round(t_spy.bid * 0.8, 2)

        # fills: a purchase, and a purchase then a partial sale (realized P&L)
        fills = [
            ib.placeOrder(spy, MarketOrder("BUY", 20, orderRef="fill-spy")),
            ib.placeOrder(aapl, MarketOrder("BUY", 30, orderRef="fill-aapl")),
        ]
        await wait_for(lambda: all(t.orderStatus.status == "Filled" for t in fills), "fills")
        sale = ib.placeOrder(aapl, MarketOrder("SELL", 10, orderRef="sell-aapl"))
        await wait_for(lambda: sale.orderStatus.status == "Filled", "the sale")
        # working orders: limits on a stock and an option, a stop held PreSubmitted
        working = [
            ib.placeOrder(spy, LimitOrder("BUY", 10, low, orderRef="work-spy")),
            ib.placeOrder(qqq, LimitOrder("BUY", 5, round(low / 2, 2), orderRef="work-qqq", tif="GTC")),
            ib.placeOrder(call, LimitOrder("BUY", 2, 0.05, orderRef="work-call")),
            ib.placeOrder(spy, StopOrder("BUY", 3, round(t_spy.ask * 1.5, 2), orderRef="work-stop")),
        ]
        gone = ib.placeOrder(spy, LimitOrder("BUY", 1, low, orderRef="gone"))
        await wait_for(
            lambda: all(t.orderStatus.status in ("Submitted", "PreSubmitted") for t in [*working, gone]), "working orders"
        )
        ib.cancelOrder(gone.order)
        modified = working[0]
        modified.order.lmtPrice = round(low - 1.0, 2)
        ib.placeOrder(spy, modified.order)  # a modify: same orderId and permId
        await wait_for(lambda: gone.orderStatus.status == "Cancelled", "the cancel")
        await ib.reqOpenOrdersAsync()  # the modify is acknowledged before this answers
        # the last id this client used is a what-if: it never shows as an order
        await ib.whatIfOrderAsync(spy, LimitOrder("BUY", 1, low))
        last_id = ib.client.getReqId() - 1
        await wait_for(
            lambda: len(ib.fills()) == 3 and all(f.commissionReport.commission > 0 for f in ib.fills()), "commission reports"
        )
        await wait_for(lambda: math.isclose(cash_of(ib), expected_cash(ib), abs_tol=0.01), "the account's cash after the fills")
        before_working = working_of(ib)
        before_execs = executions_of(ib)
        before_positions = positions_of(ib)
        before_cash = cash_of(ib)
        used_ids = {t.order.orderId for t in ib.trades()} | {last_id}
        used_perms = {t.order.permId for t in ib.trades()}
        assert set(before_working) == {"work-spy", "work-qqq", "work-call", "work-stop"}
        assert before_working["work-stop"][2] == "PreSubmitted"
        assert before_working["work-spy"][6] == round(low - 1.0, 2)
        assert len(before_execs) == 3 and len(before_positions) == 2

        # the crash: everything the client has been told is on disk already
        sim.kill9()
        await wait_for(lambda: not ib.isConnected(), "the client to see the crash")
        await sim.start()

        next_id = await raw_next_valid_id(port, CLIENT)
        assert next_id > max(used_ids)
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        assert working_of(ib) == before_working  # ids, permIds, status, prices, refs
        assert executions_of(ib) == before_execs  # execIds and commissions
        assert positions_of(ib) == before_positions
        assert cash_of(ib) == pytest.approx(before_cash, abs=0.005)
        done = {t.order.orderRef: t.orderStatus.status for t in ib.trades() if t.orderStatus.status in ("Filled", "Cancelled")}
        assert done == {"fill-spy": "Filled", "fill-aapl": "Filled", "sell-aapl": "Filled", "gone": "Cancelled"}

        # a new order gets a fresh id and permId; a new fill a fresh execId
        fresh = ib.placeOrder(spy, LimitOrder("BUY", 1, low, orderRef="after"))
        bought = ib.placeOrder(spy, MarketOrder("BUY", 1, orderRef="after-fill"))
        await wait_for(
            lambda: fresh.orderStatus.status == "Submitted" and bought.orderStatus.status == "Filled", "the orders after restart"
        )
        assert fresh.order.orderId > max(used_ids) and bought.order.orderId > max(used_ids)
        assert not {fresh.order.permId, bought.order.permId} & used_perms
        new_execs = set(executions_of(ib)) - set(before_execs)
        assert len(new_execs) == 1

        # cancelling an old order by its id cancels that order and no other
        [old] = [t for t in ib.openTrades() if t.order.orderRef == "work-qqq"]
        assert old.order.orderId == before_working["work-qqq"][0]
        ib.cancelOrder(old.order)
        await wait_for(lambda: old.orderStatus.status == "Cancelled", "the old cancel")
        open_now = {t.order.orderRef: t.orderStatus.status for t in await ib.reqAllOpenOrdersAsync()}
        assert open_now == {"work-spy": "Submitted", "work-call": "Submitted", "work-stop": "PreSubmitted", "after": "Submitted"}
        after_working = working_of(ib)
        after_execs = executions_of(ib)
        last_after = max(t.order.orderId for t in ib.trades())

        # and what happened after the restart survives a second crash too
        sim.kill9()
        await wait_for(lambda: not ib.isConnected(), "the client to see the second crash")
        await sim.start()
        assert await raw_next_valid_id(port, CLIENT) > last_after
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        assert working_of(ib) == after_working
        assert executions_of(ib) == after_execs
    finally:
        ib.disconnect()
        sim.close()


async def test_restart_without_state_hands_out_ids_above_the_previous_run(tmp_path: Path) -> None:
    """No --state: orders are gone with the process, but nextValidId, permIds and execIds
    still grow (seeded from the wall clock), so a desk that remembers the old orders never
    meets their ids again."""
    port = _free_port()
    sim = DeskSim(tmp_path, port, None)
    ib = IB()
    try:
        await sim.start()
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        trades = [ib.placeOrder(spy, MarketOrder("BUY", 5, orderRef=f"old-{i}")) for i in range(3)]
        await wait_for(lambda: all(t.orderStatus.status == "Filled" for t in trades), "fills")
        old_ids = {t.order.orderId for t in trades}
        old_perms = {t.order.permId for t in trades}
        old_execs = set(executions_of(ib))
        sim.kill9()
        await wait_for(lambda: not ib.isConnected(), "the client to see the crash")
        await sim.start()
        assert await raw_next_valid_id(port, CLIENT) > max(old_ids)
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        assert ib.fills() == []  # nothing kept without a state file
        new = ib.placeOrder(spy, MarketOrder("BUY", 5, orderRef="new"))
        await wait_for(lambda: new.orderStatus.status == "Filled", "the new fill")
        assert new.order.orderId > max(old_ids)
        assert new.order.permId > max(old_perms)
        assert not set(executions_of(ib)) & old_execs
    finally:
        ib.disconnect()
        sim.close()


async def test_torn_last_line_is_ignored_and_a_corrupt_line_is_one_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "sim-state.json"
    jpath = journal.journal_path(state)
    port = _free_port()
    sim = DeskSim(tmp_path, port, state)
    ib = IB()
    try:
        await sim.start()
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        kept = ib.placeOrder(spy, LimitOrder("BUY", 1, 100.00, orderRef="kept"))
        await wait_for(lambda: kept.orderStatus.status == "Submitted", "the order")
        sim.kill9()
        lines = jpath.read_bytes().splitlines(keepends=True)
        assert lines and all(line.endswith(b"\n") for line in lines)
        # a batch cut short by the crash (never fsynced, so never acknowledged)
        torn = lines[-1][: len(lines[-1]) // 2]
        with jpath.open("ab") as f:
            f.write(torn)
        await wait_for(lambda: not ib.isConnected(), "the client to see the crash")
        await sim.start()
        await ib.connectAsync("127.0.0.1", port, clientId=CLIENT)
        assert [(t.order.orderRef, t.order.permId) for t in ib.openTrades()] == [("kept", kept.order.permId)]
        # two more orders: two more journal lines
        more = [ib.placeOrder(spy, LimitOrder("BUY", 1, 100.00, orderRef=f"more-{i}")) for i in range(2)]
        await wait_for(lambda: all(t.orderStatus.status == "Submitted" for t in more), "two more orders")
        err = sim.kill9()
        warnings = [line for line in err.splitlines() if line.strip()]
        assert len(warnings) == 1 and "torn last line" in warnings[0], err
        assert str(jpath) in warnings[0] and "Traceback" not in err

        lines = jpath.read_bytes().splitlines(keepends=True)
        assert len(lines) >= 2
        lines[0] = b'{"n": 1, "orders": [{"client_id": 5, "gar\n'  # corrupt, not last
        jpath.write_bytes(b"".join(lines))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
        result = await asyncio.to_thread(
            subprocess.run, sim.command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
        assert result.stderr.startswith(f"desk: {jpath} line 1: corrupt simulator journal")
        assert "Traceback" not in result.stderr
    finally:
        ib.disconnect()
        sim.close()


# --- in process: what a crash leaves on disk is a copy of the files -------------------------


def set_quote(gw: SimGateway, symbol: str, bid: float, ask: float, size: int = 1000) -> None:
    s = gw.market.state(symbol)
    tick = s.stock.min_tick
    s.bid_t, s.ask_t, s.last_t = round(bid / tick), round(ask / tick), round(ask / tick)
    s.bid_size = s.ask_size = size
    s.mid = (bid + ask) / 2.0


def crash_copy(state: Path, to: Path) -> Path:
    """The state files of a running gateway as a crash would leave them."""
    to.mkdir()
    shutil.copyfile(state, to / state.name)
    shutil.copyfile(journal.journal_path(state), journal.journal_path(to / state.name))
    return to / state.name


def comparable(image: dict) -> dict:
    image = dict(image)
    image.pop("journal_seq", None)
    return json.loads(json.dumps(image))


async def restored_image(path: Path) -> tuple[dict, SimGateway]:
    gw = SimGateway(seed=7, state_file=path, **CALM)
    await gw.start()
    return comparable(gw.orders.state()), gw


async def trade_a_while(gw: SimGateway, ib: IB, n: int) -> list:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    set_quote(gw, "SPY", 600.00, 600.02)
    trades = []
    for i in range(n):
        if i % 3 == 0:
            trades.append(ib.placeOrder(spy, LimitOrder("BUY", 10, 600.02, orderRef=f"f{i}")))
        else:
            trades.append(ib.placeOrder(spy, LimitOrder("BUY", 10, 590.00, orderRef=f"w{i}")))
    await wait_for(lambda: all(t.orderStatus.status in ("Filled", "Submitted") for t in trades), "the orders")
    await ib.reqOpenOrdersAsync()
    return trades


async def test_compaction_keeps_everything_and_a_crash_copy_restores_the_same_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "COMPACT_BYTES", 4096)  # compact every few batches
    state = tmp_path / "s.json"
    gw = SimGateway(seed=7, state_file=state, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        await trade_a_while(gw, ib, 30)
        store = gw.orders.journal
        assert store is not None and store.snapshots > 2  # compacted along the way
        assert journal.journal_path(state).stat().st_size > 0  # and journaled since
        live = comparable(gw.orders.state())
        copy = crash_copy(state, tmp_path / "crash")
    finally:
        ib.disconnect()
        await gw.stop()
    image, gw2 = await restored_image(copy)
    try:
        assert image == live
        assert len(image["orders"]) == 30 and len(image["executions"]) == 10
    finally:
        await gw2.stop()


async def test_a_crash_between_snapshot_and_truncation_replays_nothing_twice(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    gw = SimGateway(seed=7, state_file=state, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        await trade_a_while(gw, ib, 9)
        old_journal = journal.journal_path(state).read_bytes()
        assert old_journal.count(b"\n") >= 9
        gw.orders.journal.snapshot()  # the snapshot now holds every batch
        live = comparable(gw.orders.state())
    finally:
        ib.disconnect()
        await gw.stop()
    crash = tmp_path / "crash"
    crash.mkdir()
    shutil.copyfile(state, crash / "s.json")  # the new snapshot, the old journal
    journal.journal_path(crash / "s.json").write_bytes(old_journal)
    image, gw2 = await restored_image(crash / "s.json")
    try:
        assert image == live
        assert len({e["exec_id"] for e in image["executions"]}) == len(image["executions"]) == 3
    finally:
        await gw2.stop()


async def test_end_of_day_is_journaled(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    gw = SimGateway(seed=7, state_file=state, **CALM)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1)
        await trade_a_while(gw, ib, 6)
        assert gw.orders.end_of_day() == 4  # the DAY orders that were working
        live = comparable(gw.orders.state())
        copy = crash_copy(state, tmp_path / "crash")
    finally:
        ib.disconnect()
        await gw.stop()
    image, gw2 = await restored_image(copy)
    try:
        assert image == live
        assert image["executions"] == [] and image["completed"] == []
        assert all(o["status"] in ("Filled", "Cancelled") for o in image["orders"])
        [acc] = image["accounts"]
        assert acc["sod_cash"] == acc["cash"]
    finally:
        await gw2.stop()


async def test_torn_line_logs_one_warning_and_a_busy_file_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "s.json"
    gw = SimGateway(seed=7, state_file=state, **CALM)
    await gw.start()
    try:
        other = SimGateway(seed=7, state_file=state, **CALM)
        with pytest.raises(ValueError, match="in use by another simulator"):
            await other.start()
        assert not other.running
    finally:
        await gw.stop()
    with journal.journal_path(state).open("ab") as f:
        f.write(b'{"n": 5, "orders": [{"cli')
    with caplog.at_level(logging.WARNING, logger="desk.sim"):
        gw = SimGateway(seed=7, state_file=state, **CALM)
        await gw.start()
        await gw.stop()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and "torn last line" in records[0].getMessage()
    assert records[0].exc_info is None
    assert journal.journal_path(state).read_bytes() == b""  # compacted at the start


def test_clock_ids_grow_and_stay_below_two_to_the_31() -> None:
    t = journal.ID_EPOCH + 3600.0
    assert journal.clock_id(t + 1.0) - journal.clock_id(t) == journal.IDS_PER_SECOND
    for now in (journal.ID_EPOCH - 1e6, t, time.time(), time.time() + 20 * 365 * 86400):
        assert 1 <= journal.clock_id(now) <= journal.ID_SPAN < 2**31 - 2**27
