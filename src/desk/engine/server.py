"""The engine API server: views talk to a running engine over a local Unix socket.

:class:`EngineServer` listens on a Unix stream socket (default: ``engine.sock`` in the
user's runtime directory, :func:`desk.settings.default_engine_socket`), mode 0600
(the default directory is created 0700) so that only the user can attach. Each connection speaks
:mod:`desk.engine.api`: :class:`~desk.engine.api.Hello` first (5 s to send it), then any
number of requests, each answered on its own task so that a slow order (waiting for the
gateway) never holds up a quote stream or another request. The order operations are
:mod:`desk.engine.operations`, the same ones ``desk order`` runs in-process.

What the server refuses, with a :class:`~desk.engine.api.Failed` naming the problem: a
Hello of another API version (then it closes), a malformed message (the connection
stays up: the frame boundary is intact), an unknown request type. A frame larger than
:data:`~desk.engine.api.MAX_FRAME` closes the connection (the stream cannot be trusted
after it). A view that stops reading is dropped once more than ``max_buffer`` bytes wait
for it, so it can never make the engine buffer without bound.

Starting refuses to take over a socket another engine answers on
(:class:`EngineRunning`); a stale socket file left by a crashed engine is removed.

With ``tcp_port`` the engine also listens on ``127.0.0.1:tcp_port`` (loopback only: a
view in a container or another sandbox of the same machine). A TCP port has no file mode,
so a TCP view must send the engine's token in its Hello: 32 random hex characters made at
each start, written to ``engine.token`` beside the socket (mode 0600, removed at close,
:func:`desk.engine.client.token_path`); a Hello without it gets ``Failed(code="auth")``
and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import hmac
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

import msgspec

from desk.domain import ConnectionState, StatusEvent
from desk.domain.events import StateChanged
from desk.engine import api, operations
from desk.engine.client import token_path

__all__ = ["EngineRunning", "EngineServer", "MAX_SOCKET_PATH"]

log = logging.getLogger("desk.engine")

#: Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
#: Seconds between two positions sent to a view, at least (the desk's trading panes refresh at 4 Hz).
POSITIONS_INTERVAL = 0.25
#: Seconds a new connection has to send its Hello.
HELLO_TIMEOUT = 5.0


class EngineRunning(Exception):
    """Another engine already answers on the socket; ``str()`` is one line."""


class EngineServer:
    """Serves the engine API for ``runtime`` (:class:`desk.engine.runtime.Runtime`) on ``path``.

    ``max_buffer``: bytes that may wait to be written to one view before it is dropped.
    """

    def __init__(
        self, runtime: Any, path: Path, *, max_buffer: int = 4 * 1024 * 1024, tcp_port: int | None = None, token: str = ""
    ) -> None:
        self.runtime = runtime
        self.path = Path(path)
        self.max_buffer = max_buffer
        #: loopback TCP port to serve as well (``None``: none; 0: any free one, see :attr:`tcp_address`)
        self.tcp_port = tcp_port
        #: the token TCP views must send (made at start unless given)
        self.token = token
        self._server: asyncio.Server | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def token_file(self) -> Path:
        return token_path(self.path)

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """(host, port) of the TCP listener while it listens, else ``None``."""
        if self._tcp is None or not self._tcp.sockets:
            return None
        host, port = self._tcp.sockets[0].getsockname()[:2]
        return host, port

    @property
    def views(self) -> int:
        """Views attached now."""
        return len(self._connections)

    async def start(self) -> None:
        """Listen. :class:`EngineRunning` if another engine answers on the socket;
        ``OSError`` (with the path in its text) if the socket cannot be created."""
        path = self.path
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise OSError(
                f"engine socket path is {len(os.fsencode(path))} bytes, longer than the "
                f"{MAX_SOCKET_PATH} a Unix socket allows: {path}"
            )
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise OSError(f"{path} exists and is not a socket; not removing it")
            if await _answers(path):
                raise EngineRunning(f"an engine is already running on {path}")
            path.unlink()  # left by an engine that did not stop cleanly
        parent = path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700)
        elif hasattr(os, "getuid") and parent.stat().st_uid != os.getuid():
            raise OSError(f"{parent} belongs to another user; not serving the engine API there")
        self._server = await asyncio.start_unix_server(self._accept, path=str(path))
        os.chmod(path, 0o600)  # owner only (the default directory is 0700 as well)
        log.info("engine API on %s", path)
        if self.tcp_port is not None:
            try:
                await self._start_tcp()
            except OSError:
                await self.close()
                raise

    async def _start_tcp(self) -> None:
        self.token = self.token or secrets.token_hex(16)
        tmp = self.token_file.with_suffix(".token.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(self.token + "\n")
        os.replace(tmp, self.token_file)
        try:
            self._tcp = await asyncio.start_server(self._accept_tcp, "127.0.0.1", self.tcp_port)
        except OSError as exc:
            raise OSError(f"engine API: cannot listen on 127.0.0.1:{self.tcp_port}: {exc.strerror or exc}") from None
        host, port = self.tcp_address or ("127.0.0.1", self.tcp_port)
        log.info("engine API on %s:%d (loopback TCP; views send the token in %s)", host, port, self.token_file)

    async def close(self) -> None:
        """Stop listening, say goodbye to every view, remove the socket file."""
        server, self._server = self._server, None
        tcp, self._tcp = self._tcp, None
        if server is None:
            return
        server.close()
        if tcp is not None:
            tcp.close()
        for conn in list(self._connections):
            conn.close()
        for s in (server, tcp):
            if s is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(s.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.tcp_port is not None:
            with contextlib.suppress(FileNotFoundError):
                self.token_file.unlink()

    async def _accept_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._accept(reader, writer, token=self.token)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str = "") -> None:
        conn = _Connection(self, reader, writer, token)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
            conn.close()


async def _answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    try:
        _r, w = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    w.close()
    with contextlib.suppress(Exception):
        await w.wait_closed()
    return True


def _request_id(body: bytes) -> int:
    """The ``id`` of a message that failed to decode, if it has a readable one, else 0."""
    try:
        raw = msgspec.msgpack.decode(body)
    except msgspec.DecodeError:
        return 0
    rid = raw.get("id") if isinstance(raw, dict) else None
    return rid if isinstance(rid, int) else 0


class _Connection:
    """One attached view."""

    def __init__(self, server: EngineServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str = "") -> None:
        self.server = server
        #: the token this view's Hello must carry (TCP), empty: none (the Unix socket)
        self.token = token
        self.runtime = server.runtime
        self.reader = reader
        self.writer = writer
        self.frames = api.FrameReader()
        self.client = "?"
        self.tasks: set[asyncio.Task[None]] = set()
        self.quotes: asyncio.Task[None] | None = None
        self.desk: asyncio.Task[None] | None = None
        self.chain: asyncio.Task[None] | None = None
        self.chain_rate_hz = 10.0
        self.chain_tap: Any = None
        self.opportunities: asyncio.Task[None] | None = None
        self.rate_hz = 10.0
        self.desk_rate_hz = 10.0
        #: notices for this view's next DeskState (broker events, in order)
        self.notices: list[api.Notice] = []
        self._listening = False
        self.closed = False

    def send(self, msg: msgspec.Struct) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > self.server.max_buffer:
            log.warning("view %s stopped reading (%d bytes waiting): dropped", self.client, transport.get_write_buffer_size())
            self.close()
            return
        self.writer.write(api.encode_frame(msg))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for t in list(self.tasks):
            t.cancel()
        if self.quotes is not None:
            self.quotes.cancel()
        if self.desk is not None:
            self.desk.cancel()
        if self.chain is not None:
            self.chain.cancel()
        if self.opportunities is not None:
            self.opportunities.cancel()
        if self.chain_tap is not None:
            self.runtime.analytics.release(self.chain_tap)
            self.chain_tap = None
        if self._listening:
            self._listening = False
            self.runtime.broker.remove_listener(self._on_broker_event)
        self.writer.close()

    async def _next(self) -> list[bytes]:
        data = await self.reader.read(65536)
        if not data:
            raise EOFError
        return self.frames.feed(data)

    async def run(self) -> None:
        pending: list[bytes] = []
        try:
            try:
                while not pending:
                    pending = await asyncio.wait_for(self._next(), HELLO_TIMEOUT)
            except asyncio.TimeoutError:
                self.send(api.Failed(0, "bad_input", f"no Hello within {HELLO_TIMEOUT:g} s"))
                return
            hello = pending.pop(0)
            if not self._hello(hello):
                return
            while not self.closed:
                for body in pending:
                    self._dispatch(body)
                pending = await self._next()
        except api.ApiError as exc:  # a frame too large: the stream cannot be trusted
            log.warning("view %s: %s; closing", self.client, exc)
            self.send(api.Failed(0, "bad_input", str(exc)))
        except (EOFError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.writer.drain()

    def _hello(self, body: bytes) -> bool:
        try:
            msg = api.decode_request(body)
        except api.ApiError as exc:
            self.send(api.Failed(0, "bad_input", f"expected Hello: {exc}"))
            return False
        if not isinstance(msg, api.Hello):
            self.send(api.Failed(0, "bad_input", f"expected Hello first, got {type(msg).__name__}"))
            return False
        if msg.version != api.API_VERSION:
            self.send(
                api.Failed(0, "version", f"this engine speaks API version {api.API_VERSION}, the view asked for {msg.version}")
            )
            return False
        if self.token and not hmac.compare_digest(msg.token.encode(), self.token.encode()):
            log.warning("TCP view %r refused: %s token", msg.client, "wrong" if msg.token else "no")
            self.send(
                api.Failed(
                    0,
                    "auth",
                    f"{'wrong' if msg.token else 'no'} engine token: a TCP view sends the "
                    f"one in {self.server.token_file} (or DESK_ENGINE_TOKEN)",
                )
            )
            return False
        self.client = msg.client or "view"
        rt = self.runtime
        self.send(
            api.Welcome(
                version=api.API_VERSION,
                pid=os.getpid(),
                mode=rt.settings.mode.value,
                endpoint=rt.endpoint,
                watchlist=[i.symbol for i in rt.broker.watchlist],
            )
        )
        log.info("view %r attached", self.client)
        return True

    def _dispatch(self, body: bytes) -> None:
        try:
            msg = api.decode_request(body)
        except api.ApiError as exc:
            self.send(api.Failed(_request_id(body), "bad_input", str(exc)))
            return
        if isinstance(msg, api.WatchQuotes):
            self._watch_quotes(msg)
            return
        if isinstance(msg, api.WatchDesk):
            self._watch_desk(msg)
            return
        if isinstance(msg, api.WatchChain):
            self._watch_chain(msg)
            return
        if isinstance(msg, api.WatchOpportunities):
            if self.opportunities is not None:
                self.opportunities.cancel()
                self.opportunities = None
            if msg.rate_hz > 0:
                rate = min(max(msg.rate_hz, api.MIN_RATE_HZ), api.MAX_RATE_HZ)
                self.opportunities = asyncio.get_running_loop().create_task(self._stream_opportunities(msg.id, rate))
            return
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            self.send(api.Failed(getattr(msg, "id", 0), "unsupported", f"{type(msg).__name__} is not a request here"))
            return
        task = asyncio.get_running_loop().create_task(self._answer(handler, msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, handler: Any, msg: Any) -> None:
        try:
            reply = await handler(self.runtime, msg)
        except operations.OperationError as exc:
            reply = api.Failed(msg.id, exc.code, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not take the engine down: the view hears of it
            log.exception("view %s: %s failed", self.client, type(msg).__name__)
            reply = api.Failed(msg.id, "failed", f"internal error: {type(exc).__name__}: {exc}")
        self.send(reply)

    # --- quote stream ------------------------------------------------------------------

    def _watch_quotes(self, msg: api.WatchQuotes) -> None:
        if self.quotes is not None:
            self.quotes.cancel()
            self.quotes = None
        if msg.rate_hz <= 0:
            return
        self.rate_hz = min(max(msg.rate_hz, api.MIN_RATE_HZ), api.MAX_RATE_HZ)
        self.quotes = asyncio.get_running_loop().create_task(self._stream_quotes(msg.id))

    async def _stream_quotes(self, req_id: int) -> None:
        """A full snapshot, then the changed rows every 1 / rate seconds (a full one again
        whenever the watchlist itself changed)."""
        rt = self.runtime
        sent: dict[int, int] = {}  # conId -> seq last sent
        order: list[int] | None = None
        while not self.closed:
            instruments = list(rt.broker.watchlist)
            ids = [i.con_id for i in instruments]
            full = ids != order
            rows = []
            for ins in instruments:
                q = rt.quotes.get(ins.con_id)
                seq = q.seq if q is not None else -1
                if not full and sent.get(ins.con_id) == seq:
                    continue
                sent[ins.con_id] = seq
                rows.append(_quote_row(ins, q))
            if full or rows:
                order = ids
                self.send(api.QuoteRows(req_id, full, rows))
            await asyncio.sleep(1.0 / self.rate_hz)

    # --- the terminal view's state stream ------------------------------------------------

    def _on_broker_event(self, event: object) -> None:
        notice = notice_of(event, time.time())
        if notice is not None:
            self.notices.append(notice)
            del self.notices[:-200]  # a view that is far behind gets the latest

    def _watch_desk(self, msg: api.WatchDesk) -> None:
        if self.desk is not None:
            self.desk.cancel()
            self.desk = None
        if msg.rate_hz <= 0:
            return
        self.desk_rate_hz = min(max(msg.rate_hz, api.MIN_RATE_HZ), api.MAX_RATE_HZ)
        if not self._listening:
            self._listening = True
            self.runtime.broker.add_listener(self._on_broker_event)
        self.desk = asyncio.get_running_loop().create_task(self._stream_desk(msg.id))

    async def _stream_desk(self, req_id: int) -> None:
        """A full :class:`~desk.engine.api.DeskState`, then what changed every 1 / rate s."""
        differ = DeskDiffer(self.runtime)
        while not self.closed:
            state = differ.next(req_id, self.notices)
            self.notices = []
            if state is not None:
                self.send(state)
            await asyncio.sleep(1.0 / self.desk_rate_hz)

    # --- the option chain stream -------------------------------------------------------

    def _watch_chain(self, msg: api.WatchChain) -> None:
        if self.chain is not None:
            self.chain.cancel()
            self.chain = None
        if msg.rate_hz <= 0:
            return
        self.chain_rate_hz = min(max(msg.rate_hz, api.MIN_RATE_HZ), api.MAX_RATE_HZ)
        if self.chain_tap is None:
            self.chain_tap = self.runtime.analytics.tap()
        self.chain = asyncio.get_running_loop().create_task(self._stream_chain(msg.id, self.chain_tap))

    async def _stream_chain(self, req_id: int, tap: Any) -> None:
        """A full :class:`~desk.engine.api.ChainState`, then what changed every 1 / rate s."""
        tap.flush()  # what happened before this stream is in the full state
        last: tuple[object, ...] | None = None
        layout_seq = -1
        while not self.closed:
            flush = tap.flush()
            state = chain_state(req_id, tap, flush, full=last is None, layout=flush.layout or tap.layout_seq != layout_seq)
            layout_seq = tap.layout_seq
            head = _chain_head(state)
            if last is None or state.rows is not None or state.quotes or state.computed or head != last:
                self.send(state)
            last = head
            await asyncio.sleep(1.0 / self.chain_rate_hz)

    async def _stream_opportunities(self, req_id: int, rate_hz: float) -> None:
        """The opportunity list now, then again whenever it changed."""
        live = self.runtime.opportunities.live
        seq = None
        while not self.closed:
            if live is None:
                if seq is None:
                    self.send(api.OpportunityState(req_id, enabled=False, seq=0, simulated=False))
                    seq = 0
            elif live.seq != seq:
                seq = live.seq
                self.send(
                    api.OpportunityState(req_id, enabled=True, seq=live.seq, simulated=live.simulated, tracked=live.tracked)
                )
            await asyncio.sleep(1.0 / rate_hz)


def _chain_head(state: api.ChainState) -> tuple[object, ...]:
    return (
        state.underlying,
        state.expiry,
        state.atm_strike,
        state.spot,
        state.forward,
        state.loading,
        state.message_seq,
        state.layout_seq,
        state.spec,
        state.days,
    )


def chain_state(req_id: int, chain: Any, flush: Any, *, full: bool, layout: bool) -> api.ChainState:
    """The :class:`~desk.engine.api.ChainState` of ``chain`` (a
    :class:`~desk.engine.analytics.ChainTap`) after ``flush``: every row and quote of the
    window when ``full`` or ``layout``, else the quotes of ``flush.con_ids``."""
    rows = None
    if full or layout:
        rows = chain.rows
        con_ids = [i.con_id for r in rows for i in (r.call, r.put) if i is not None]
    else:
        con_ids = sorted(flush.con_ids)
    quotes = []
    for con_id in con_ids:
        q = chain.manager.store.get(con_id)
        if q is not None:
            quotes.append(q)
    und = chain.underlying
    return api.ChainState(
        id=req_id,
        full=full,
        underlying=und,
        expiry=chain.expiry or "",
        expiries=list(chain.expiries),
        atm_strike=chain.atm_strike,
        spot=chain.spot,
        forward=chain.forward,
        days=chain.days_to_expiry(),
        loading=chain.loading,
        message=chain.message,
        message_level=chain.message_level,
        message_seq=chain.message_seq,
        layout_seq=chain.layout_seq,
        spec=str(chain.spec),
        computed=bool(flush.computed),
        rows=rows,
        quotes=quotes,
    )


def notice_of(event: object, now: float) -> api.Notice | None:
    """The view's :class:`~desk.engine.api.Notice` of a broker event (``None``: not one
    the view shows as a message; watchlist changes travel as the watchlist itself)."""
    if isinstance(event, StateChanged):
        return api.Notice(
            now, "warning" if event.state is ConnectionState.RECONNECTING else "info", event.detail, state=event.state.value
        )
    if isinstance(event, StatusEvent):
        return api.Notice(now, event.level, event.text)
    return None


class DeskDiffer:
    """Builds the :class:`~desk.engine.api.DeskState` messages of one view: the first is
    full, the next ones carry only what changed since the previous (rows compared by
    their update counters, the order rows by identity: the order book replaces a row
    when it changes)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._full = True
        self._order: list[int] = []
        self._quote_seq: dict[int, int] = {}
        self._stale: list[int] = []
        self._orders: dict[str, object] = {}
        self._orders_seq = -1
        self._trading: api.TradingStatus | None = None
        self._positions_seq: object = None
        self._recorder: object = None
        self._ticks = -1
        self._positions_at = -math.inf

    def next(self, req_id: int, notices: list[api.Notice]) -> api.DeskState | None:
        """The next state (``None`` when nothing changed)."""
        rt = self.runtime
        full, self._full = self._full, False
        changed = full or bool(notices)
        instruments = list(rt.broker.watchlist)
        ids = [i.con_id for i in instruments]
        watchlist = None
        if full or ids != self._order:
            self._order = ids
            self._quote_seq = {}
            watchlist = instruments
            changed = True
        quotes = []
        for ins in instruments:
            q = rt.quotes.get(ins.con_id)
            seq = q.seq if q is not None else -1
            if self._quote_seq.get(ins.con_id) == seq:
                continue
            self._quote_seq[ins.con_id] = seq
            quotes.append(_quote_row(ins, q))
        stale_now = sorted(rt.broker.stale_lines)
        stale = None
        if full or stale_now != self._stale:
            self._stale = stale_now
            stale = stale_now
        orders = []
        book = rt.orders
        if full or book.seq != self._orders_seq:
            self._orders_seq = book.seq
            for ref, row in book.rows.items():
                if full or self._orders.get(ref) is not row:
                    orders.append(row)
                self._orders[ref] = row
        trading = operations.trading_status(rt)
        if not full and trading == self._trading:
            trading_out = None
        else:
            trading_out = self._trading = trading
        positions = None
        seq = operations.positions_seq(rt)
        now = time.monotonic()
        # the chain's IVs move the option positions' Greeks at every recomputation: at most
        # POSITIONS_INTERVAL apart, the rows, groups and Greeks are rebuilt and sent
        if full or (seq != self._positions_seq and now - self._positions_at >= POSITIONS_INTERVAL):
            self._positions_seq, self._positions_at = seq, now
            positions = operations.positions(rt)
        recorder = rt.recorder.stats if rt.recorder is not None else None
        recorder_out = None
        if full or recorder != self._recorder:
            self._recorder = recorder
            recorder_out = recorder
        ticks = rt.quotes.ticks_seen
        changed = (
            changed
            or bool(quotes or orders)
            or stale is not None
            or trading_out is not None
            or positions is not None
            or recorder_out is not None
            or ticks != self._ticks
        )
        if not changed:
            return None
        self._ticks = ticks
        return api.DeskState(
            id=req_id,
            full=full,
            connection=rt.broker.state.value,
            endpoint=rt.endpoint,
            mode=rt.settings.mode.value,
            ticks_seen=ticks,
            restart=rt.broker.restart_status(),
            watchlist=watchlist,
            stale=stale,
            quotes=quotes,
            orders=orders,
            trading=trading_out,
            positions=positions,
            recorder=recorder_out,
            notices=list(notices),
        )


def _quote_row(ins: Any, q: Any) -> api.QuoteRow:
    nan = math.nan
    if q is None:
        return api.QuoteRow(ins.con_id, ins.symbol, nan, nan, nan, nan, nan, nan, nan, nan, -1)
    t = q.time.timestamp() if q.time is not None else nan
    return api.QuoteRow(ins.con_id, ins.symbol, q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.volume, q.close, t, q.seq)


_HANDLERS: dict[type, Any] = {
    api.Preview: operations.preview,
    api.Place: operations.place,
    api.ListOrders: operations.list_orders,
    api.Cancel: operations.cancel,
    api.KillSwitch: operations.kill_switch,
    api.Modify: operations.modify,
    api.CancelAll: operations.cancel_all,
    api.AddSymbol: operations.add_symbol,
    api.RemoveSymbol: operations.remove_symbol,
    api.ChainSelect: operations.chain_select,
    api.ChainExpiry: operations.chain_expiry,
    api.ChainWindow: operations.chain_window,
    api.PreviewIntent: operations.preview_intent,
    api.WhatIfIntent: operations.what_if_intent,
    api.PlaceIntent: operations.place_intent,
}
