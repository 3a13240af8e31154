"""Clients of the engine API over its socket: :class:`EngineClient`, :func:`attach`.

:class:`desk.engine.local.LocalEngine` is the same interface in-process. This module
imports only :mod:`desk.engine.api` (msgspec and desk's plain domain values), so attaching
is cheap for a view.

A view written against :class:`EngineView` works with either: ``desk order`` uses an
:class:`EngineClient` when an engine is running (:func:`attach`) and otherwise starts its
own engine objects and wraps them in a :class:`LocalEngine`; the tests use both against
the real engine over the embedded simulator.

Every method returns the API's reply struct (:mod:`desk.engine.api`) or raises
:class:`EngineRequestError` carrying the :class:`~desk.engine.api.Failed` code and its
one-line text. :class:`EngineGone` says the engine went away (the socket closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from desk.engine import api

__all__ = [
    "EngineAddress",
    "EngineClient",
    "EngineGone",
    "EngineRequestError",
    "EngineView",
    "TcpAddress",
    "attach",
    "parse_address",
    "token_path",
]

log = logging.getLogger("desk.engine")

#: Hosts a TCP engine address may name: the engine listens on loopback only.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TcpAddress:
    """An engine's loopback TCP port, and the engine's token to attach with (see
    :func:`token_path`). ``str()`` gives ``host:port``."""

    host: str
    port: int
    token: str = field(default="", repr=False)
    #: the engine's token file the token was read from: read again at each connect (an
    #: engine makes a new token at each start, so a view re-attaching after a restart needs it)
    token_file: Path | None = None

    def current_token(self) -> str:
        """The token to send now: :attr:`token_file`'s if it can be read, else :attr:`token`."""
        if self.token_file is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                return self.token_file.read_text(encoding="ascii").strip()
        return self.token

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


#: Where an engine listens: its Unix socket, or a loopback TCP port.
EngineAddress = Path | TcpAddress


def token_path(socket: Path) -> Path:
    """The token file an engine serving TCP writes beside its Unix socket ``socket``
    (``engine.token`` for ``engine.sock``; mode 0600, removed when the engine stops)."""
    return socket.with_suffix(".token")


def parse_address(text: str, *, socket: Path, token: str = "") -> EngineAddress:
    """``desk --attach``'s ADDRESS: empty for the Unix socket ``socket``; ``HOST:PORT``
    (``127.0.0.1``, ``localhost`` or ``[::1]``) for an engine's loopback TCP port, with
    ``token`` or else the one in :func:`token_path` of ``socket``; anything else a
    socket path. Raises ``ValueError`` (one line) for a port that is not a number, a
    host that is not loopback, or a TCP address with no token to be found."""
    text = text.strip()
    if not text:
        return socket
    host, sep, port = text.rpartition(":")
    if not sep or "/" in text or not host:
        return Path(text).expanduser()
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"engine address {text!r}: the port must be a number from 1 to 65535")
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"engine address {text!r}: an engine listens on loopback only ({', '.join(LOOPBACK_HOSTS)})")
    if token:
        return TcpAddress(host, int(port), token)
    try:
        token = token_path(socket).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise ValueError(
            f"engine address {text!r}: no token (DESK_ENGINE_TOKEN is empty and {token_path(socket)} cannot be read)"
        ) from None
    return TcpAddress(host, int(port), token, token_path(socket))


class EngineRequestError(Exception):
    """The engine answered :class:`~desk.engine.api.Failed`; ``code`` as there."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EngineGone(ConnectionError):
    """The engine closed the connection (it stopped, or dropped this view)."""


class EngineView(Protocol):
    """What a view may ask an engine (either client below)."""

    async def preview(
        self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0
    ) -> api.PreviewReport: ...

    async def place(self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0) -> api.PlaceReport: ...

    async def list_orders(self) -> api.OrderList: ...

    async def cancel(self, order_ref: str, *, wait: float = 5.0) -> api.CancelReport: ...

    async def kill_switch(self, action: api.KillAction = "state", reason: str = "") -> api.KillSwitchReport: ...


class EngineClient:
    """A connection to a running engine (see :func:`attach`).

    ``on_quotes`` receives every :class:`~desk.engine.api.QuoteRows` of a
    :meth:`watch_quotes` stream, on the client's loop.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        welcome: api.Welcome,
        frames: api.FrameReader,
        pending: list[bytes],
    ) -> None:
        self.welcome = welcome
        self._reader = reader
        self._writer = writer
        self._frames = frames
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[msgspec.Struct]] = {}
        self.on_quotes: Callable[[api.QuoteRows], None] | None = None
        #: receives every :class:`~desk.engine.api.DeskState` of a WatchDesk stream
        self.on_state: Callable[[api.DeskState], None] | None = None
        #: receives every :class:`~desk.engine.api.ChainState` of a WatchChain stream
        self.on_chain: Callable[[api.ChainState], None] | None = None
        #: receives every :class:`~desk.engine.api.OpportunityState` of a WatchOpportunities stream
        self.on_opportunities: Callable[[api.OpportunityState], None] | None = None
        #: set when the connection is gone
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(pending))

    @classmethod
    async def connect(cls, path: EngineAddress | str, client: str = "view", *, timeout: float = 5.0) -> EngineClient:
        """Attach to the engine on the Unix socket ``path`` (or its loopback TCP port, a
        :class:`TcpAddress`). ``OSError`` when nothing listens there;
        :class:`EngineRequestError` when the engine refuses the Hello (``code="version"``,
        or ``"auth"``: a wrong token); :class:`EngineGone` if it closes first."""
        if isinstance(path, TcpAddress):
            opening = asyncio.open_connection(path.host, path.port)
            token = path.current_token()
        else:
            opening = asyncio.open_unix_connection(str(path))
            token = ""
        reader, writer = await asyncio.wait_for(opening, timeout)
        frames = api.FrameReader()
        try:
            writer.write(api.encode_frame(api.Hello(api.API_VERSION, client, token)))
            bodies: list[bytes] = []
            while not bodies:
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    raise EngineGone(f"the engine on {path} closed the connection")
                bodies = frames.feed(data)
            first = api.decode_reply(bodies.pop(0))
        except BaseException:
            writer.close()
            raise
        if isinstance(first, api.Failed):
            writer.close()
            raise EngineRequestError(first.code, first.error)
        if not isinstance(first, api.Welcome):
            writer.close()
            raise api.ApiError(f"expected Welcome, got {type(first).__name__}")
        return cls(reader, writer, first, frames, bodies)

    async def _read(self, pending: list[bytes]) -> None:
        try:
            while True:
                for body in pending:
                    self._deliver(api.decode_reply(body))
                data = await self._reader.read(65536)
                if not data:
                    break
                pending = self._frames.feed(data)
        except (ConnectionError, api.ApiError) as exc:
            log.warning("engine connection: %s", exc)
        finally:
            self.closed.set()
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(EngineGone("the engine closed the connection"))
            self._waiting.clear()

    def _deliver(self, msg: msgspec.Struct) -> None:
        if isinstance(msg, api.QuoteRows):
            if self.on_quotes is not None:
                self.on_quotes(msg)
            return
        if isinstance(msg, api.DeskState):
            if self.on_state is not None:
                self.on_state(msg)
            return
        if isinstance(msg, api.ChainState):
            if self.on_chain is not None:
                self.on_chain(msg)
            return
        if isinstance(msg, api.OpportunityState):
            if self.on_opportunities is not None:
                self.on_opportunities(msg)
            return
        fut = self._waiting.pop(getattr(msg, "id", 0), None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif isinstance(msg, api.Failed):
            log.warning("engine: %s: %s", msg.code, msg.error)

    def send(self, msg: msgspec.Struct) -> None:
        """Send a message without waiting for an answer."""
        if self.closed.is_set():
            raise EngineGone("the engine connection is closed")
        self._writer.write(api.encode_frame(msg))

    def next_id(self) -> int:
        return next(self._ids)

    async def request(self, msg: Any) -> msgspec.Struct:
        """Send a request (its ``id`` must be unique on this connection: :meth:`next_id`)
        and return the engine's reply; :class:`EngineRequestError` on a Failed."""
        fut: asyncio.Future[msgspec.Struct] = asyncio.get_running_loop().create_future()
        self._waiting[msg.id] = fut
        self.send(msg)
        reply = await fut
        if isinstance(reply, api.Failed):
            raise EngineRequestError(reply.code, reply.error)
        return reply

    async def preview(self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0) -> api.PreviewReport:
        reply = await self.request(api.Preview(self.next_id(), terms, confirmation, wait))
        assert isinstance(reply, api.PreviewReport)
        return reply

    async def place(self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0) -> api.PlaceReport:
        reply = await self.request(api.Place(self.next_id(), terms, confirmation, wait))
        assert isinstance(reply, api.PlaceReport)
        return reply

    async def list_orders(self) -> api.OrderList:
        reply = await self.request(api.ListOrders(self.next_id()))
        assert isinstance(reply, api.OrderList)
        return reply

    async def cancel(self, order_ref: str, *, wait: float = 5.0) -> api.CancelReport:
        reply = await self.request(api.Cancel(self.next_id(), order_ref, wait))
        assert isinstance(reply, api.CancelReport)
        return reply

    async def kill_switch(self, action: api.KillAction = "state", reason: str = "") -> api.KillSwitchReport:
        reply = await self.request(api.KillSwitch(self.next_id(), action, reason))
        assert isinstance(reply, api.KillSwitchReport)
        return reply

    def watch_quotes(self, rate_hz: float = 10.0) -> int:
        """Start (or re-rate; ``rate_hz=0`` stops) the watchlist quote stream; rows go to
        :attr:`on_quotes`. Returns the stream's request id."""
        rid = self.next_id()
        self.send(api.WatchQuotes(rid, rate_hz))
        return rid

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


async def attach(path: EngineAddress | str, client: str = "view", *, timeout: float = 5.0) -> EngineClient | None:
    """The running engine on ``path``, or ``None`` when none listens there (no socket
    file, or a stale one; nothing on the TCP port). Other refusals (another API version,
    a wrong token) raise as :meth:`EngineClient.connect` does."""
    if not isinstance(path, TcpAddress) and not Path(path).exists():
        return None
    try:
        return await EngineClient.connect(path, client, timeout=timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
