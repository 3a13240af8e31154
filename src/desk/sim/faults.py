"""Faults on demand for the simulated gateway: what a real TWS / IB Gateway does to its
API clients when things go wrong, so the desk's recovery paths can be exercised.

:class:`FaultInjector` (one per gateway, ``gateway.faults``):

* :meth:`~FaultInjector.drop_clients`: close every client socket (TWS exiting or the
  network dropping); the gateway keeps listening, clients see ``disconnectedEvent``;
* :meth:`~FaultInjector.connectivity_lost`: IB's servers unreachable while the socket to
  TWS stays up: error **1100** (reqId -1) plus farm notices 2103/2105 to every client, and
  market data stops (subscriptions are held, the market keeps moving);
* :meth:`~FaultInjector.connectivity_restored`: **1102** "restored - data maintained" (the
  held subscriptions resume with a refresh of bid, ask, last, volume, high and low, since
  the market moved meanwhile; ib_async re-requests the account summary by itself) or, with
  ``data_lost=True``, **1101** "restored - data lost" (the held subscriptions are gone: the
  client must request market data again), then the farm-OK notices 2104/2106/2158;
* :meth:`~FaultInjector.set_pacing`: enforce IB's limit of 50 messages per second per
  client: once a client has sent ``limit`` messages within one second, the rest of that
  second's messages are **not processed** and the client gets error **100** "Max rate of
  messages per second has been exceeded" (once per second, reqId -1). ib_async throttles
  itself to 45 requests/s, so only clients that disabled that (``client.MaxRequests = 0``)
  or other API clients trip it. Off by default.

:class:`ControlServer` listens on a Unix socket (``desk sim`` opens one per port, see
:func:`control_path`) for one-line commands, answered with one line:

=======================  ==============================================================
``drop``                 close every client connection
``1100`` / ``lost``      connectivity lost (error 1100), market data held
``1102`` / ``restored``  restored, data maintained (1102); held lines resume
``1101``                 restored, data lost (1101); held lines are dropped
``outage S [1101]``      1100 now, 1102 (or 1101) after S seconds
``pacing on [N]``        enforce N messages/s per client (default 50); ``pacing off``
``status``               one line: clients, outage, pacing, lines
``help``                 the command list
=======================  ==============================================================

Error texts are IB's (TWS API "Message Codes").
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from desk.sim import messages as m
from desk.sim.market import Changed

if TYPE_CHECKING:
    from desk.sim.gateway import SimGateway
    from desk.sim.session import Session, Subscription

__all__ = [
    "CONNECTIVITY_LOST",
    "MAX_RATE_EXCEEDED",
    "RESTORED_DATA_LOST",
    "RESTORED_DATA_MAINTAINED",
    "ControlServer",
    "FaultInjector",
    "control_path",
    "send_control",
]

log = logging.getLogger("desk.sim")

MAX_RATE_EXCEEDED = 100
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_MAINTAINED = 1102
MKT_DATA_FARM_BROKEN = 2103
HMDS_FARM_BROKEN = 2105

TEXTS = {
    MAX_RATE_EXCEEDED: "Max rate of messages per second has been exceeded:max={} rec={} (1)",
    CONNECTIVITY_LOST: "Connectivity between IB and Trader Workstation has been lost.",
    RESTORED_DATA_LOST: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    RESTORED_DATA_MAINTAINED: "Connectivity between IB and Trader Workstation has been restored - data maintained. "
                              "All data farms are connected: usfarm; ushmds; secdefnj.",
    MKT_DATA_FARM_BROKEN: "Market data farm connection is broken:usfarm",
    HMDS_FARM_BROKEN: "HMDS data farm connection is broken:ushmds",
}

_REFRESH = int(Changed.BID | Changed.ASK | Changed.TRADE | Changed.HIGH | Changed.LOW)

#: IB's limit: messages per second an API client may send.
DEFAULT_PACING_LIMIT = 50


class _Pace:
    __slots__ = ("window", "count", "warned", "rejected")

    def __init__(self) -> None:
        self.window = 0.0
        self.count = 0
        self.warned = False
        self.rejected = 0


class FaultInjector:
    """Fault injection for one :class:`~desk.sim.gateway.SimGateway` (see the module
    docstring). Every method runs on the gateway's event loop."""

    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway
        #: messages per second enforced per client, ``None`` when pacing is off
        self.pacing_limit: int | None = None
        #: True between :meth:`connectivity_lost` and :meth:`connectivity_restored`
        self.outage = False
        #: messages refused by pacing since start (all clients)
        self.paced_messages = 0
        self._pace: weakref.WeakKeyDictionary[Session, _Pace] = weakref.WeakKeyDictionary()
        self._held: dict[str, list[Subscription]] = {}
        self._restore_task: asyncio.Task[None] | None = None

    # --- connections --------------------------------------------------------------------

    async def drop_clients(self, timeout: float = 2.0) -> int:
        """Close every client connection (the gateway keeps listening); how many."""
        n = await self.gateway.drop_clients(timeout)
        log.info("fault: dropped %d client connection(s)", n)
        return n

    # --- IB connectivity ----------------------------------------------------------------

    def _broadcast(self, data: bytes) -> int:
        n = 0
        for s in list(self.gateway.sessions):
            if s.client_id is not None:
                s.send(data)
                n += 1
        return n

    def connectivity_lost(self) -> int:
        """Send 1100 (and farm-broken 2103/2105) to every client and hold market data.
        Returns the number of clients told. A second call while already out only
        repeats the message."""
        gw = self.gateway
        if not self.outage:
            self.outage = True
            self._held = gw._subs
            gw._subs = {}
        data = b"".join(m.error(-1, c, TEXTS[c]) for c in (CONNECTIVITY_LOST, MKT_DATA_FARM_BROKEN, HMDS_FARM_BROKEN))
        n = self._broadcast(data)
        log.info("fault: connectivity lost (1100) told to %d client(s)", n)
        return n

    def connectivity_restored(self, data_lost: bool = False) -> tuple[int, int]:
        """End an outage: 1102 (held market data lines resume) or, with ``data_lost``,
        1101 (held lines are dropped; clients must request them again), then the
        farm-OK notices. Returns ``(clients told, lines resumed or dropped)``; does
        nothing but send the message when there is no outage."""
        if self._restore_task is not None and self._restore_task is not asyncio.current_task():
            self._restore_task.cancel()
        self._restore_task = None
        gw = self.gateway
        lines = 0
        if self.outage:
            self.outage = False
            held, self._held = self._held, {}
            for subs in held.values():
                for sub in subs:
                    session = sub.session
                    alive = session.transport is not None and session.subscriptions.get(sub.req_id) is sub
                    if not alive:
                        continue
                    lines += 1
                    if data_lost:
                        del session.subscriptions[sub.req_id]
                    else:
                        gw._subscribe(sub)
                        self._refresh(sub)
        code = RESTORED_DATA_LOST if data_lost else RESTORED_DATA_MAINTAINED
        n = self._broadcast(m.error(-1, code, TEXTS[code]) + m.farm_status())
        log.info("fault: connectivity restored (%d) told to %d client(s), %d line(s) %s", code, n, lines,
                 "dropped" if data_lost else "resumed")
        return n, lines

    def _refresh(self, sub: Subscription) -> None:
        """Send a resumed line the current bid, ask, last and volume: the market moved
        during the outage, and a stream of changes alone would leave stale fields."""
        gw = self.gateway
        if getattr(sub, "delayed", False) or sub.stock.symbol not in gw.market:
            return  # delayed lines catch up with the stream
        st = gw.market.state(sub.stock.symbol)
        parts, _rt, _rtt = gw.encoder.encode(sub.stock, st.change(_REFRESH), gw.epoch_ms())
        out: list[bytes] = []
        m.render(parts, sub.rid, out)
        sub.session.send(b"".join(out))

    def outage_for(self, seconds: float, data_lost: bool = False) -> int:
        """:meth:`connectivity_lost` now and :meth:`connectivity_restored` after
        ``seconds`` (on the gateway's loop). Returns the clients told."""
        n = self.connectivity_lost()
        if self._restore_task is not None:
            self._restore_task.cancel()

        async def later() -> None:
            await asyncio.sleep(seconds)
            self.connectivity_restored(data_lost)

        self._restore_task = asyncio.get_running_loop().create_task(later(), name="desk-sim-restore")
        return n

    # --- pacing -------------------------------------------------------------------------

    def set_pacing(self, limit: int | None = DEFAULT_PACING_LIMIT) -> None:
        """Enforce ``limit`` messages per second per client (``None``: off)."""
        if limit is not None and limit <= 0:
            raise ValueError("pacing limit must be positive")
        self.pacing_limit = limit
        self._pace = weakref.WeakKeyDictionary()

    def allow(self, session: Session) -> bool:
        """Count one incoming message of ``session``; ``False`` if it must be dropped
        (pacing on and the client is over the limit in the current one-second window,
        in which case error 100 has been sent once for that window)."""
        limit = self.pacing_limit
        if limit is None:
            return True
        p = self._pace.get(session)
        if p is None:
            p = self._pace[session] = _Pace()
        now = time.monotonic()
        if now - p.window >= 1.0:
            p.window = now
            p.count = 0
            p.warned = False
        p.count += 1
        if p.count <= limit:
            return True
        p.rejected += 1
        self.paced_messages += 1
        if not p.warned:
            p.warned = True
            session.send(m.error(-1, MAX_RATE_EXCEEDED, TEXTS[MAX_RATE_EXCEEDED].format(limit, p.count)))
            log.info("fault: client %s over %d messages/s: error 100", session.peer, limit)
        return False

    # --- control commands ---------------------------------------------------------------

    def status(self) -> str:
        gw = self.gateway
        lines = sum(len(s.subscriptions) for s in gw.sessions)
        pacing = f"on ({self.pacing_limit}/s, {self.paced_messages} refused)" if self.pacing_limit else "off"
        return (f"clients {gw.clients}; outage {'yes' if self.outage else 'no'}; pacing {pacing}; "
                f"market data lines {lines}")

    async def execute(self, line: str) -> str:
        """Run one control command (see the module docstring); returns the one-line
        answer, ``error: ...`` for an unknown or malformed command."""
        words = line.strip().lower().split()
        if not words:
            return "error: empty command; try help"
        cmd, args = words[0], words[1:]
        try:
            if cmd == "drop":
                return f"dropped {await self.drop_clients()} connection(s)"
            if cmd in ("1100", "lost"):
                return f"1100 sent to {self.connectivity_lost()} client(s); market data held"
            if cmd in ("1102", "restored", "restore"):
                n, lines = self.connectivity_restored(False)
                return f"1102 sent to {n} client(s); {lines} line(s) resumed"
            if cmd == "1101":
                n, lines = self.connectivity_restored(True)
                return f"1101 sent to {n} client(s); {lines} line(s) dropped"
            if cmd == "outage":
                if not args:
                    return "error: outage needs SECONDS, e.g. outage 5 or outage 5 1101"
                seconds = float(args[0])
                if not 0 < seconds <= 3600:
                    return "error: outage SECONDS must be in (0, 3600]"
                lost = len(args) > 1 and args[1] == "1101"
                n = self.outage_for(seconds, lost)
                return f"1100 sent to {n} client(s); {'1101' if lost else '1102'} in {seconds:g} s"
            if cmd == "pacing":
                if args[:1] == ["off"]:
                    self.set_pacing(None)
                    return "pacing off"
                if args[:1] == ["on"]:
                    limit = int(args[1]) if len(args) > 1 else DEFAULT_PACING_LIMIT
                    self.set_pacing(limit)
                    return f"pacing on: {limit} messages/s per client (error 100 above)"
                return "error: pacing on [N] | pacing off"
            if cmd == "status":
                return self.status()
            if cmd == "help":
                return "commands: drop | 1100 | 1102 | 1101 | outage SECONDS [1101] | pacing on [N] | pacing off | status"
        except ValueError as e:
            return f"error: {e}"
        return f"error: unknown command {cmd!r}; try help"


# --- control socket ---------------------------------------------------------------------


def control_path(port: int) -> Path:
    """The control socket of ``desk sim --port PORT``: ``$XDG_RUNTIME_DIR/desk-sim-PORT.sock``
    (the temporary directory when XDG_RUNTIME_DIR is unset)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"desk-sim-{port}.sock"


class ControlServer:
    """A Unix-socket server taking one command line per connection and answering one
    line (``FaultInjector.execute``). Only the local user can connect (mode 0600)."""

    def __init__(self, faults: FaultInjector, path: str | Path) -> None:
        self.faults = faults
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> Path:
        """Listen; an existing stale socket file at the path is replaced. ``OSError`` if
        the folder is not writable."""
        if self.path.exists():
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        os.chmod(self.path, 0o600)
        return self.path

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            answer = await self.faults.execute(line.decode(errors="replace"))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def send_control(path: str | Path, command: str, timeout: float = 10.0) -> str:
    """Send one command to a control socket and return the answer line (blocking).
    ``OSError`` (e.g. ``FileNotFoundError``, ``ConnectionRefusedError``) when no simulator
    listens there."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.strip().encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace").strip()


async def open_control(gateway: SimGateway) -> ControlServer | None:
    """Start the control socket of a gateway at :func:`control_path` of its port and print
    how to use it; ``None`` (with a warning on stderr) when Unix sockets are unavailable
    or the folder is not writable."""
    import sys

    server = ControlServer(gateway.faults, control_path(gateway.port))
    try:
        path = await server.start()
    except (OSError, NotImplementedError, AttributeError) as exc:
        print(f"desk sim: no control socket ({exc}); faults need the Python API", file=sys.stderr)
        return None
    print(f"desk sim control: desk sim ctl --port {gateway.port} drop|1100|1102|1101|outage S|pacing on|status"
          f"  (socket {path})", flush=True)
    return server


def ctl_command(port: int, words: list[str]) -> int:
    """``desk sim ctl [--port P] COMMAND``: send one command to a running ``desk sim``,
    print the answer; exit code 0, 1 if no simulator listens, 2 if the command failed."""
    import sys

    path = control_path(port)
    try:
        answer = send_control(path, " ".join(words))
    except OSError as exc:
        print(f"desk: no simulator control socket at {path} ({exc.strerror or exc}); is `desk sim --port {port}` "
              "running?", file=sys.stderr)
        return 1
    print(answer)
    return 2 if answer.startswith("error:") else 0
