"""The engine API end to end: the real engine (Runtime on its embedded simulator, through
the unmodified ib_async client) serving real views over its Unix socket, and
``desk order`` attaching to it from another process."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
from pathlib import Path

import msgspec
import pytest

from desk.domain import ConnectionState
from desk.engine import api
from desk.engine.client import EngineClient, EngineRequestError, attach
from desk.engine.local import LocalEngine
from desk.order_command import parse_terms
from desk.risk import CHECK_NAMES
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings


def _settings(tmp_path: Path, socket: Path, **overrides) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "override",
        spool_dir=tmp_path / "spool",
        engine_socket=socket,
        _env_file=None,
    )
    base.update(overrides)
    return Settings(**base)


async def _until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sock") / "engine.sock"


@pytest.fixture
async def engine(tmp_path: Path, socket_path: Path):
    rt = Runtime(_settings(tmp_path, socket_path))
    await rt.start()
    try:
        await _until(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, "connected")
        await _until(
            lambda: (
                all((q := rt.quotes.get(i.con_id)) is not None and q.bid > 0 for i in rt.broker.watchlist)
                and len(rt.broker.watchlist) == 2
            ),
            "quotes",
        )
        yield rt
    finally:
        await rt.stop()


def _frames(client: EngineClient, rid: int) -> list[api.QuoteRows]:
    got: list[api.QuoteRows] = []
    client.on_quotes = lambda m: got.append(m) if m.id == rid else None
    return got


async def test_a_view_gets_welcome_then_a_snapshot_then_only_changed_rows(engine: Runtime, socket_path: Path) -> None:
    assert engine.api is not None
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600  # only the user can attach
    client = await EngineClient.connect(socket_path, "test view")
    try:
        w = client.welcome
        assert (w.version, w.pid, w.mode, w.watchlist) == (api.API_VERSION, os.getpid(), "sim", ["SPY", "AAPL"])
        got = []
        client.on_quotes = got.append
        rid = client.watch_quotes(20.0)
        await _until(lambda: len(got) >= 6, "six quote messages")
        first, rest = got[0], got[1:]
        assert first.id == rid and first.full
        assert [r.symbol for r in first.rows] == ["SPY", "AAPL"]
        for row in first.rows:  # the snapshot is the engine's quote store at that moment
            q = engine.quotes.get(row.con_id)
            assert q is not None and row.bid > 0 and row.seq <= q.seq
        assert rest and not any(m.full for m in rest)
        # a delta carries only rows whose quote changed since the row last sent
        last = {r.con_id: r.seq for r in first.rows}
        for m in rest:
            assert m.rows and len({r.con_id for r in m.rows}) == len(m.rows)
            for r in m.rows:
                assert r.seq > last[r.con_id]
                last[r.con_id] = r.seq
        # the watchlist changes: the next message is a full snapshot again
        n = len(got)
        await engine.broker.add_symbol("MSFT")
        await _until(lambda: any(m.full for m in got[n:]), "a snapshot after the watchlist changed")
        snap = next(m for m in got[n:] if m.full)
        assert [r.symbol for r in snap.rows] == ["SPY", "AAPL", "MSFT"]
    finally:
        await client.close()


async def test_two_views_at_once_and_one_leaving_does_not_disturb_the_other(engine: Runtime, socket_path: Path) -> None:
    a = await EngineClient.connect(socket_path, "a")
    b = await EngineClient.connect(socket_path, "b")
    ga, gb = [], []
    a.on_quotes, b.on_quotes = ga.append, gb.append
    a.watch_quotes(20.0)
    b.watch_quotes(4.0)
    await _until(lambda: engine.api.views == 2 and len(ga) >= 2 and len(gb) >= 1, "both streams")
    await a.close()
    await _until(lambda: engine.api.views == 1, "the engine to notice the view left")
    n = len(gb)
    await _until(lambda: len(gb) > n + 1, "the other view's stream to go on")
    report = await b.kill_switch("state")
    assert report.state == "active"
    await b.close()


async def test_orders_through_the_api_are_the_engines_orders(engine: Runtime, socket_path: Path) -> None:
    client = await EngineClient.connect(socket_path, "orders")
    try:
        terms = parse_terms("BUY 3 SPY LMT 100.01".split())
        preview = await client.preview(terms)
        assert [c.name for c in preview.checks] == list(CHECK_NAMES)
        assert preview.order == "BUY 3 SPY LMT 100.01 DAY" and not preview.blocked and preview.gate_allowed
        # the same request in-process gives the same verdict (one definition of the operations)
        local = await LocalEngine(engine).preview(terms)
        assert [(c.name, c.passed) for c in local.checks] == [(c.name, c.passed) for c in preview.checks]

        placed = await client.place(terms)
        assert placed.sent and placed.gateway_status == "Submitted"
        assert engine.orders.rows[placed.order_ref].working  # in the engine's own order book
        listed = {r.order_ref: r for r in (await client.list_orders()).rows}
        assert listed[placed.order_ref].status == "Submitted" and listed[placed.order_ref].quantity == 3

        # another process: `desk order list` finds the running engine and asks it
        env = {**os.environ, "DESK_ENGINE_SOCKET": str(socket_path)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "desk",
            "order",
            "list",
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        rows = {r["order_ref"]: r for r in json.loads(out)}
        assert rows[placed.order_ref]["status"] == "Submitted"
        assert engine.sim is not None and engine.sim.clients == 1  # it did not open a connection of its own

        cancelled = await client.cancel(placed.order_ref)
        assert cancelled.done and cancelled.status == "Cancelled"
        with pytest.raises(EngineRequestError) as again:
            await client.cancel(placed.order_ref)
        assert again.value.code == "refused"

        # the kill switch through the API: the next order is refused by the gate, then allowed
        halted = await client.kill_switch("halt", "api test")
        assert halted.state == "halted" and halted.reason == "api test" and halted.persisted
        refused = await client.place(terms)
        assert not refused.sent and any("kill switch" in r for r in refused.reasons)
        assert (await client.kill_switch("reset")).state == "active"
        with pytest.raises(EngineRequestError, match="kill switch action"):  # in-process: no wire decoder to catch it
            await LocalEngine(engine).kill_switch("explode")  # type: ignore[arg-type]
        with pytest.raises(EngineRequestError, match="action must be one of"):
            await LocalEngine(engine).preview(api.OrderTerms("HOLD", 1, api.ContractTerms("SPY"), "MKT"))
        with pytest.raises(EngineRequestError) as bad:
            await client.preview(parse_terms("BUY 1 NOSUCH LMT 1".split()), wait=1.0)
        assert bad.value.code == "bad_input"
    finally:
        await client.close()


async def _raw(socket_path: Path):
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    frames = api.FrameReader()

    async def read_one() -> msgspec.Struct:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            if not data:
                raise EOFError
            got = frames.feed(data)
            if got:
                assert len(got) == 1
                return api.decode_reply(got[0])

    return reader, writer, read_one


async def test_bad_input_gets_a_clear_error_and_the_view_stays_attached(engine: Runtime, socket_path: Path) -> None:
    # another API version: refused by name, then closed
    with pytest.raises(EngineRequestError) as exc:
        reader, writer, read_one = await _raw(socket_path)
        writer.write(api.encode_frame(api.Hello(api.API_VERSION + 1, "future")))
        first = await read_one()
        assert isinstance(first, api.Failed) and first.code == "version"
        raise EngineRequestError(first.code, first.error)
    assert "speaks API version 1" in str(exc.value)

    reader, writer, read_one = await _raw(socket_path)
    writer.write(api.encode_frame(api.Hello(api.API_VERSION, "raw")))
    assert isinstance(await read_one(), api.Welcome)
    # a malformed request: the error names the problem and carries the request's id
    body = msgspec.msgpack.encode({"t": "place", "id": 7, "terms": {"action": "BUY"}})
    writer.write(len(body).to_bytes(4, "big") + body)
    failed = await read_one()
    assert isinstance(failed, api.Failed) and failed.id == 7 and failed.code == "bad_input"
    assert "malformed message" in failed.error and "terms" in failed.error
    # an unknown message type, and a second Hello
    body = msgspec.msgpack.encode({"t": "launch_rockets", "id": 8})
    writer.write(len(body).to_bytes(4, "big") + body)
    unknown = await read_one()
    assert isinstance(unknown, api.Failed) and unknown.id == 8 and unknown.code == "bad_input"
    writer.write(api.encode_frame(api.Hello(api.API_VERSION, "again")))
    again = await read_one()
    assert isinstance(again, api.Failed) and again.code == "unsupported"
    # still attached: a real request is answered
    writer.write(api.encode_frame(api.KillSwitch(9, "state")))
    ok = await read_one()
    assert isinstance(ok, api.KillSwitchReport) and ok.id == 9
    # a frame announcing more than the limit: refused, then the engine closes (untrustworthy stream)
    writer.write((api.MAX_FRAME + 1).to_bytes(4, "big"))
    too_big = await read_one()
    assert isinstance(too_big, api.Failed) and "exceeds the limit" in too_big.error
    with pytest.raises(EOFError):
        await read_one()
    writer.close()


async def test_one_engine_per_socket_and_a_stale_socket_is_taken_over(engine: Runtime, socket_path: Path, tmp_path: Path) -> None:
    second = Runtime(_settings(tmp_path / "b", socket_path))
    (tmp_path / "b").mkdir()
    try:
        await second._serve_api()
        assert second.api is None and "already running" in second.api_problem
    finally:
        await second.stop()
    # the first engine stops; its socket is gone and attach() says no engine is running
    await engine.api.close()
    engine.api = None
    assert not socket_path.exists() and await attach(socket_path) is None
    # a socket file left behind by a crash (nobody listening) is replaced
    import socket as so

    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.bind(str(socket_path))
    s.close()
    assert socket_path.exists() and await attach(socket_path) is None
    await engine._serve_api()
    assert engine.api is not None and engine.api_problem == ""
    client = await attach(socket_path, "after the crash")
    assert client is not None and client.welcome.watchlist == ["SPY", "AAPL"]
    await client.close()


async def test_loopback_tcp_needs_the_engines_token(tmp_path: Path, socket_path: Path) -> None:
    """DESK_ENGINE_TCP_PORT: the engine also listens on 127.0.0.1; a TCP view must send the
    token the engine wrote beside its socket (mode 0600). Without it, or with a wrong one,
    the Hello is refused with code "auth" and nothing else is served; the token file goes
    when the engine stops."""
    from desk.engine.client import TcpAddress, parse_address, token_path

    from desk.engine.server import EngineServer

    rt = Runtime(_settings(tmp_path, socket_path))  # not started: the Hello is all this test asks of it
    server = EngineServer(rt, socket_path, tcp_port=0)  # any free port (the setting's 0 means no TCP)
    await server.start()
    try:
        host, port = server.tcp_address
        assert host == "127.0.0.1" and port > 0
        tokens = token_path(socket_path)
        assert tokens.name == "engine.token" and stat.S_IMODE(tokens.stat().st_mode) == 0o600
        token = tokens.read_text().strip()
        assert len(token) == 32 and token == server.token
        # the view's address: HOST:PORT, the token read from beside the socket
        address = parse_address(f"127.0.0.1:{port}", socket=socket_path)
        assert address == TcpAddress("127.0.0.1", port, token, tokens) and str(address) == f"127.0.0.1:{port}"
        assert token not in repr(address)
        for wrong in ("", "0" * 32):
            with pytest.raises(EngineRequestError) as refused:
                await EngineClient.connect(TcpAddress("127.0.0.1", port, wrong), "intruder")
            assert refused.value.code == "auth" and str(tokens) in str(refused.value)
        client = await EngineClient.connect(address, "tcp view")
        try:
            assert client.welcome.version == api.API_VERSION and server.views == 1
        finally:
            await client.close()
        # the Unix socket needs no token (its file mode is the access control)
        local = await attach(socket_path, "local view")
        assert local is not None
        await local.close()
    finally:
        await server.close()
    assert not tokens.exists() and not socket_path.exists()
    assert await attach(TcpAddress("127.0.0.1", port, token)) is None


def test_engine_addresses_parse_to_a_socket_or_a_loopback_port(tmp_path: Path) -> None:
    from desk.engine.client import TcpAddress, parse_address, token_path

    sock = tmp_path / "engine.sock"
    assert parse_address("", socket=sock) == sock
    assert parse_address(str(tmp_path / "other.sock"), socket=sock) == tmp_path / "other.sock"
    assert parse_address("127.0.0.1:7001", socket=sock, token="t") == TcpAddress("127.0.0.1", 7001, "t")
    assert parse_address("[::1]:7001", socket=sock, token="t") == TcpAddress("::1", 7001, "t")
    for text, problem in (
        ("127.0.0.1:port", "must be a number"),
        ("127.0.0.1:70000", "must be a number"),
        ("10.0.0.5:7001", "loopback only"),
        ("127.0.0.1:7001", "no token"),
    ):
        with pytest.raises(ValueError, match=problem):
            parse_address(text, socket=sock)
    token_path(sock).write_text("abc\n")
    assert parse_address("localhost:7001", socket=sock).token == "abc"
