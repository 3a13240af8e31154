"""Faults on demand for the simulated gateway: what a real TWS / IB Gateway does to its
API clients when things go wrong (its "bad nights"), so the desk's recovery paths can be
exercised through the unmodified ib_async client.

:class:`FaultInjector` (one per gateway, ``gateway.faults``; every method runs on the
gateway's event loop: from another thread use ``EmbeddedSim.call(lambda gw:
gw.faults.farm_blip(3))``):

* :meth:`~FaultInjector.drop_clients`: close every client socket (TWS exiting or the
  network dropping); the gateway keeps listening, clients see ``disconnectedEvent``;
* :meth:`~FaultInjector.connectivity_lost`: IB's servers unreachable while the socket to
  TWS stays up: error **1100** (reqId -1) plus farm notices 2103/2105 to every client, and
  market data stops (every stock and option line is held, the market keeps moving);
* :meth:`~FaultInjector.connectivity_restored`: **1102** "restored - data maintained" (the
  held lines resume with a refresh of their quote, since the market moved meanwhile;
  ib_async re-requests the account summary by itself) or, with ``data_lost=True``,
  **1101** "restored - data lost" (the held lines are gone, and so are the account
  updates, positions, reqPnL and reqPnLSingle subscriptions: the client must request
  market and account data again), then the farm-OK notices 2104/2106/2158. No account
  data (P&L, account values) goes out during the outage;
* :meth:`~FaultInjector.farm_blip`: a data farm broken -> OK cycle, as IB's farms do at
  night and after network blips: **2103** "Market data farm connection is broken:usfarm",
  then after N seconds (default 3) **2104** "... is OK:usfarm", and every market data line
  open at either message stays **silently dead** (no tick, no error; the client still
  holds it) until the client requests it again (a new reqMktData, with or without a
  cancel first: the new line ticks). ``farm="ushmds"``: 2105 / 2106, and every
  keepUpToDate historical request stops updating (a new request updates again);
  ``farm="secdefnj"``: 2157 / 2158 only. A client connecting while a farm is broken gets
  the farm's broken notice instead of its OK notice;
* :meth:`~FaultInjector.silence`: one subscription (by conId, stock or option, or by stock
  symbol) stops ticking with no message; it ticks again when requested again;
* :meth:`~FaultInjector.restart`: TWS's daily restart: every client dropped and the API
  port closed for N seconds (connections refused), then open again. Orders, accounts,
  executions and order id counters are kept (as IB keeps them on its servers); the
  market keeps moving, and fills meanwhile are told to nobody (clients recover them with
  reqExecutions);
* :meth:`~FaultInjector.hold_client_ids`: what TWS does after a client crashed: every
  client dropped and, for N seconds, a client connecting with one of their ids gets error
  **326** "Unable to connect as the client id is already in use. Retry with a unique
  client id." and its socket closed; other ids connect;
* :meth:`~FaultInjector.set_no_status`: fills send execDetails and commissionReport but no
  orderStatus and no openOrder (the order's state still changes: reqOpenOrders,
  reqCompletedOrders and reconnects tell the truth);
* :meth:`~FaultInjector.set_stuck_executions`: reqExecutions answers its execDetails and
  commissionReport rows but never execDetailsEnd (ib_async's reqExecutionsAsync, and the
  startup sync of connectAsync, wait until their timeout); turning it off ends the
  requests held so far with a late execDetailsEnd;
* :meth:`~FaultInjector.set_pacing`: enforce IB's limit of 50 messages per second per
  client: once a client has sent ``limit`` messages within one second, the rest of that
  second's messages are **not processed** and the client gets error **100** "Max rate of
  messages per second has been exceeded" (once per second, reqId -1). ib_async throttles
  itself to 45 requests/s, so only clients that disabled that (``client.MaxRequests = 0``)
  or other API clients trip it. Off by default.

Faults that are set stay set until turned off (also across ``restart``);
:meth:`~FaultInjector.status` lists every active one. Seconds are wall-clock seconds.
The control socket of ``desk sim`` (:mod:`desk.sim.control`) runs :data:`COMMANDS`
through :meth:`~FaultInjector.execute`. Error texts are IB's (TWS API "Message Codes").
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Union

from desk.sim import messages as m

# the control socket moved to desk.sim.control; these names stay importable from here
from desk.sim.control import ControlServer, control_path, ctl_command, open_control, send_control  # noqa: F401
from desk.sim.market import Changed
from desk.sim.messages import Code
from desk.sim.ports import Client, Host, OptionLine, Subscription

Line = Union[Subscription, OptionLine]

__all__ = [
    "COMMANDS",
    "CONNECTIVITY_LOST",
    "FARMS",
    "MAX_RATE_EXCEEDED",
    "RESTORED_DATA_LOST",
    "RESTORED_DATA_MAINTAINED",
    "Farm",
    "FaultInjector",
    "ctl_help",
]

log = logging.getLogger("desk.sim")

MAX_RATE_EXCEEDED = 100
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_MAINTAINED = 1102
MKT_DATA_FARM_BROKEN = Code.MKT_DATA_FARM_BROKEN
HMDS_FARM_BROKEN = Code.HMDS_FARM_BROKEN
SEC_DEF_FARM_BROKEN = Code.SEC_DEF_FARM_BROKEN


@dataclass(frozen=True)
class Farm:
    """One of IB's data farms as TWS reports it: ``name`` (``usfarm``) and the codes of
    its broken / OK notices (texts: :data:`desk.sim.messages.TEXT`)."""

    name: str
    broken: int
    ok: int

    def notice(self, ok: bool) -> bytes:
        """The notice to a client (error 4, reqId -1), e.g. 2103 ``Market data farm
        connection is broken:usfarm``."""
        return m.error(-1, self.ok if ok else self.broken)


#: The farms a US gateway reports at connect: market data, historical data (HMDS), sec-def.
FARMS = {
    "usfarm": Farm("usfarm", Code.MKT_DATA_FARM_BROKEN, Code.MKT_DATA_FARM_OK),
    "ushmds": Farm("ushmds", Code.HMDS_FARM_BROKEN, Code.HMDS_FARM_OK),
    "secdefnj": Farm("secdefnj", Code.SEC_DEF_FARM_BROKEN, Code.SEC_DEF_FARM_OK),
}
_FARM_NAMES = {
    "usfarm": "usfarm",
    "market": "usfarm",
    "mkt": "usfarm",
    "hmds": "ushmds",
    "ushmds": "ushmds",
    "history": "ushmds",
    "secdef": "secdefnj",
    "sec-def": "secdefnj",
    "secdefnj": "secdefnj",
}

TEXTS = {
    MAX_RATE_EXCEEDED: "Max rate of messages per second has been exceeded:max={} rec={} (1)",
    CONNECTIVITY_LOST: "Connectivity between IB and Trader Workstation has been lost.",
    RESTORED_DATA_LOST: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    RESTORED_DATA_MAINTAINED: "Connectivity between IB and Trader Workstation has been restored - data maintained. "
    "All data farms are connected: usfarm; ushmds; secdefnj.",
}

#: The control commands (``desk sim ctl --port P COMMAND``, :meth:`FaultInjector.execute`):
#: (syntax, what it does). Words are case-insensitive; SECONDS are wall-clock seconds.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("drop", "close every client connection (the gateway keeps listening)"),
    ("1100 | lost", "connectivity lost (error 1100, 2103, 2105): market data held"),
    ("1102 | restored", "restored, data maintained (1102): held lines resume with fresh quotes"),
    ("1101", "restored, data lost (1101): held lines are dropped, clients must request them again"),
    ("outage SECONDS [1101]", "1100 now, 1102 (or 1101) after SECONDS"),
    (
        "farm [usfarm|hmds|secdef] [SECONDS]",
        "farm broken -> OK blip: 2103 now, 2104 after SECONDS (default 3); every market data line "
        "stays silently dead until requested again (hmds: 2105/2106, keepUpToDate bars stop; "
        "secdef: 2157/2158)",
    ),
    (
        "silent CONID|SYMBOL",
        "the lines of that conId (stock or option) or stock symbol stop ticking without a message until requested again",
    ),
    (
        "restart SECONDS",
        "daily restart: every client dropped, the port closed (connections refused) "
        "for SECONDS, then open again; orders, accounts and executions kept",
    ),
    (
        "hold-id SECONDS [ID ...]",
        "a crash as TWS sees it: every client dropped, and for SECONDS their "
        "client ids (and the IDs given) get error 326 and the socket closed",
    ),
    ("no-status on|off", "fills send execDetails and commissionReport only (no orderStatus, no openOrder)"),
    (
        "stuck-executions on|off",
        "reqExecutions sends its rows but never execDetailsEnd; off ends the requests held with a late execDetailsEnd",
    ),
    ("pacing on [N] | pacing off", "refuse client messages above N per second (default 50) with error 100"),
    ("status", "one line: clients, outage, pacing, market data lines, every active fault"),
    ("help", "the command list"),
)

_REFRESH = int(Changed.BID | Changed.ASK | Changed.TRADE | Changed.HIGH | Changed.LOW)
#: longest fault duration accepted, seconds
MAX_SECONDS = 3600.0
#: seconds between attempts to listen again after a restart when the port is taken
REOPEN_RETRY = 1.0

#: IB's limit: messages per second an API client may send.
DEFAULT_PACING_LIMIT = 50


def ctl_help(width: int = 100) -> str:
    """The control commands as text, descriptions wrapped to ``width`` columns
    (``desk sim ctl --help``)."""
    import textwrap

    col = max(len(c) for c, _ in COMMANDS) + 4
    return "\n".join(
        textwrap.fill(what, width, initial_indent=f"  {c:<{col - 2}}", subsequent_indent=" " * col) for c, what in COMMANDS
    )


def _seconds(value: float | str, what: str) -> float:
    """``value`` as seconds in [0, :data:`MAX_SECONDS`]; ``ValueError`` saying so."""
    try:
        s = float(value)
    except ValueError:
        raise ValueError(f"{what} SECONDS must be a number, got {value!r}") from None
    if not 0 <= s <= MAX_SECONDS:
        raise ValueError(f"{what} SECONDS must be in [0, {MAX_SECONDS:g}], got {value}")
    return s


class _Pace:
    __slots__ = ("window", "count", "warned", "rejected")

    def __init__(self) -> None:
        self.window = 0.0
        self.count = 0
        self.warned = False
        self.rejected = 0


class FaultInjector:
    """Fault injection for one :class:`~desk.sim.gateway.SimGateway` (see the module
    docstring). Every method runs on the gateway's event loop. The gateway calls the
    hooks :meth:`allow`, :meth:`client_id_held`, :meth:`farm_notices`,
    :meth:`fill_status` and :meth:`executions_end`; none is on the tick path (dead lines
    are simply taken out of the fan-out)."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        #: messages per second enforced per client, ``None`` when pacing is off
        self.pacing_limit: int | None = None
        #: True between :meth:`connectivity_lost` and :meth:`connectivity_restored`
        self.outage = False
        #: messages refused by pacing since start (all clients)
        self.paced_messages = 0
        #: farms broken now (:data:`FARMS` names)
        self.farms_broken: set[str] = set()
        #: True while the API port is closed by :meth:`restart`
        self.restarting = False
        #: fills since start whose orderStatus / openOrder :meth:`set_no_status` withheld
        self.withheld_status = 0
        self.no_status = False
        self.stuck_executions = False
        self._pace: weakref.WeakKeyDictionary[Client, _Pace] = weakref.WeakKeyDictionary()
        self._held: list[Line] = []  # lines held by an outage
        self._dead: set[Line] = set()  # lines silently dead (farm blip, silence)
        self._held_ids: dict[int, float] = {}  # clientId -> monotonic time it is free again
        self._stuck: list[tuple[Client, int]] = []  # reqExecutions without their End
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._due: dict[str, float] = {}  # timer name -> monotonic time it fires

    # --- timers -------------------------------------------------------------------------

    def _after(self, name: str, seconds: float, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` (awaited if it returns a coroutine) after ``seconds``, replacing a
        pending timer of that name."""
        self._cancel(name)

        async def later() -> None:
            await asyncio.sleep(seconds)
            self._timers.pop(name, None)
            self._due.pop(name, None)
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("fault timer %s failed", name)

        self._timers[name] = asyncio.get_running_loop().create_task(later(), name=f"desk-sim-{name}")
        self._due[name] = time.monotonic() + seconds

    def _cancel(self, name: str) -> None:
        task = self._timers.pop(name, None)
        self._due.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _left(self, name: str) -> str:
        due = self._due.get(name)
        return "" if due is None else f" in {max(0.0, due - time.monotonic()):.1f} s"

    def close(self) -> None:
        """Cancel every pending timer (the gateway stops)."""
        for name in list(self._timers):
            self._cancel(name)

    # --- connections --------------------------------------------------------------------

    async def drop_clients(self, timeout: float = 2.0) -> int:
        """Close every client connection (the gateway keeps listening); how many."""
        n = await self.gateway.drop_clients(timeout)
        log.info("fault: dropped %d client connection(s)", n)
        return n

    async def restart(self, seconds: float) -> int:
        """TWS's daily restart: stop listening (connection attempts are refused), drop
        every client, and listen again on the same port after ``seconds`` (retried every
        second if the port was taken meanwhile). Orders, accounts, executions and order id
        counters are kept. Returns the connections dropped; ``ValueError`` if ``seconds``
        is outside [0, 3600]. A second call while restarting postpones the reopening."""
        seconds = _seconds(seconds, "restart")
        self.restarting = True
        n = await self.gateway.close_listener()
        log.info("fault: restart: %d client(s) dropped, port %d closed for %g s", n, self.gateway.port, seconds)
        self._after("restart", seconds, self._reopen)
        return n

    async def _reopen(self) -> None:
        try:
            await self.gateway.open_listener()
        except OSError as exc:
            log.warning("fault: restart: cannot listen on port %d again (%s); retrying", self.gateway.port, exc)
            self._after("restart", REOPEN_RETRY, self._reopen)
            return
        self.restarting = False
        log.info("fault: restart over: listening on port %d again", self.gateway.port)

    async def hold_client_ids(self, seconds: float, ids: tuple[int, ...] = ()) -> tuple[int, list[int]]:
        """A client crash as TWS sees it: drop every client and, for ``seconds``, refuse
        their client ids (and ``ids``) with error 326 "client id is already in use" and
        close the socket; other ids connect. Returns ``(connections dropped, ids held)``;
        ``ValueError`` if ``seconds`` is outside [0, 3600]."""
        seconds = _seconds(seconds, "hold-id")
        held = sorted(set(self.gateway.client_ids) | {int(i) for i in ids})
        until = time.monotonic() + seconds
        for cid in held:  # before the drop: a client reconnecting at once is refused too
            self._held_ids[cid] = until
        n = await self.gateway.drop_clients()
        log.info("fault: dropped %d client(s); client id(s) %s held for %g s", n, held, seconds)
        return n, held

    def client_id_held(self, client_id: int) -> bool:
        """Hook of startApi: True if ``client_id`` is held by :meth:`hold_client_ids`."""
        held = self._held_ids
        if not held:
            return False
        until = held.get(client_id)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del held[client_id]
        return False

    def _held_ids_now(self) -> list[int]:
        now = time.monotonic()
        for cid in [c for c, until in self._held_ids.items() if until <= now]:
            del self._held_ids[cid]
        return sorted(self._held_ids)

    # --- market data lines --------------------------------------------------------------

    def _broadcast(self, data: bytes) -> int:
        n = 0
        for s in list(self.gateway.sessions):
            if s.client_id is not None:
                s.send(data)
                n += 1
        return n

    def _lines(self) -> Iterator[Line]:
        """Every streaming line of every connection that is not silently dead."""
        dead = self._dead
        for s in list(self.gateway.sessions):
            for line in list(s.subscriptions.values()):
                if line not in dead:
                    yield line

    @staticmethod
    def _open(line: Line) -> bool:
        """The line's connection is up and the client has not cancelled it."""
        session = line.session
        return session.transport is not None and session.subscriptions.get(line.req_id) is line

    def _kill(self, lines: list[Line]) -> int:
        """Take ``lines`` out of the fan-out without telling anyone (silently dead)."""
        self._prune()
        for line in lines:
            self.gateway.unsubscribe(line)
            self._dead.add(line)
        return len(lines)

    def _prune(self) -> None:
        self._dead = {line for line in self._dead if self._open(line)}

    @property
    def dead_lines(self) -> int:
        """Market data lines open on the client side that the simulator keeps silent."""
        self._prune()
        return len(self._dead)

    def silence(self, target: int | str) -> int:
        """Silence the lines of one instrument: a conId (stock or option) or a stock
        symbol. No message is sent; each stays dead until the client requests it again
        (a new reqMktData ticks). Returns the lines silenced (0 if none is open)."""
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target)
        if isinstance(target, int):
            hits = [ln for ln in self._lines() if (ln.option.con_id if isinstance(ln, OptionLine) else ln.stock.con_id) == target]
        else:
            symbol = target.strip().upper()
            hits = [ln for ln in self._lines() if not isinstance(ln, OptionLine) and ln.stock.symbol == symbol]
        n = self._kill(hits)
        log.info("fault: %d line(s) of %s silenced", n, target)
        return n

    # --- data farms ---------------------------------------------------------------------

    @staticmethod
    def farm(name: str) -> Farm:
        """The :class:`Farm` for ``usfarm`` / ``market``, ``hmds`` / ``ushmds``, ``secdef`` /
        ``secdefnj``; ``ValueError`` for another name."""
        key = _FARM_NAMES.get(name.strip().lower())
        if key is None:
            raise ValueError(f"unknown farm {name!r}: usfarm, hmds or secdef")
        return FARMS[key]

    def _farm_data_off(self, farm: Farm) -> int:
        if farm.name == "usfarm":
            return self._kill(list(self._lines()))
        if farm.name == "ushmds":
            return self.gateway.history.silence_updates()
        return 0

    def farm_broken(self, farm: str = "usfarm") -> tuple[int, int]:
        """Send the farm's broken notice (2103, 2105 or 2157) to every client; usfarm:
        every market data line goes silently dead; ushmds: keepUpToDate historical requests
        stop. Returns ``(clients told, lines or requests stopped)``."""
        f = self.farm(farm)
        self.farms_broken.add(f.name)
        lines = self._farm_data_off(f)
        n = self._broadcast(f.notice(False))
        log.info("fault: %d told to %d client(s); %d line(s) silently dead", f.broken, n, lines)
        return n, lines

    def farm_ok(self, farm: str = "usfarm") -> tuple[int, int]:
        """Send the farm's OK notice (2104, 2106 or 2158) to every client. The lines dead
        since the broken notice stay dead, and so do lines requested while it was broken.
        Returns ``(clients told, lines or requests stopped now)``."""
        f = self.farm(farm)
        self._cancel(f"farm {f.name}")
        lines = self._farm_data_off(f) if f.name in self.farms_broken else 0
        self.farms_broken.discard(f.name)
        n = self._broadcast(f.notice(True))
        log.info("fault: %d told to %d client(s); %d dead line(s) in all", f.ok, n, self.dead_lines)
        return n, lines

    def farm_blip(self, seconds: float = 3.0, farm: str = "usfarm") -> tuple[int, int]:
        """:meth:`farm_broken` now and :meth:`farm_ok` after ``seconds`` (on the gateway's
        loop). Returns what :meth:`farm_broken` returned; ``ValueError`` for an unknown
        farm or ``seconds`` outside [0, 3600]."""
        seconds = _seconds(seconds, "farm")
        f = self.farm(farm)
        told = self.farm_broken(f.name)
        self._after(f"farm {f.name}", seconds, lambda: self.farm_ok(f.name))
        return told

    def farm_notices(self) -> bytes:
        """Hook of startApi: the farm notices a connecting client gets (OK, or broken for
        a farm broken now), in IB's order 2104/2106/2158."""
        return b"".join(f.notice(f.name not in self.farms_broken) for f in FARMS.values())

    # --- IB connectivity ----------------------------------------------------------------

    def connectivity_lost(self) -> int:
        """Send 1100 (and farm-broken 2103/2105) to every client and hold market data
        (stock and option lines). Returns the number of clients told. A second call while
        already out only repeats the message."""
        if not self.outage:
            self.outage = True
            self._held = list(self._lines())
            for line in self._held:
                self.gateway.unsubscribe(line)
        data = (
            m.error(-1, CONNECTIVITY_LOST, TEXTS[CONNECTIVITY_LOST])
            + FARMS["usfarm"].notice(False)
            + FARMS["ushmds"].notice(False)
        )
        n = self._broadcast(data)
        log.info("fault: connectivity lost (1100) told to %d client(s)", n)
        return n

    def connectivity_restored(self, data_lost: bool = False) -> tuple[int, int]:
        """End an outage: 1102 (held market data lines resume) or, with ``data_lost``,
        1101 (held lines and account subscriptions are dropped; clients must request
        them again), then the farm-OK notices. Returns ``(clients told, lines resumed or dropped)``; does
        nothing but send the message when there is no outage. Lines silenced meanwhile
        stay dead."""
        self._cancel("restore")
        lines = 0
        if self.outage:
            self.outage = False
            held, self._held = self._held, []
            for line in held:
                if not self._open(line) or line in self._dead:
                    continue
                lines += 1
                if data_lost:
                    del line.session.subscriptions[line.req_id]
                else:
                    self._resume(line)
        if data_lost:  # IB: "market and account data subscription requests must be resubmitted"
            self.gateway.orders.drop_account_subscriptions()
        code = RESTORED_DATA_LOST if data_lost else RESTORED_DATA_MAINTAINED
        n = self._broadcast(m.error(-1, code, TEXTS[code]) + self.farm_notices())
        log.info(
            "fault: connectivity restored (%d) told to %d client(s), %d line(s) %s",
            code,
            n,
            lines,
            "dropped" if data_lost else "resumed",
        )
        return n, lines

    def _resume(self, line: Line) -> None:
        """Stream a held line again, first with its current quote: the market moved during
        the outage, and a stream of changes alone would leave stale fields."""
        gw = self.gateway
        if isinstance(line, OptionLine):
            gw.options.resubscribe(line, refresh=True)
            return
        gw.subscribe(line)
        if line.delayed or line.stock.symbol not in gw.market:
            return  # delayed lines catch up with the stream
        st = gw.market.state(line.stock.symbol)
        parts, _rt, _rtt = gw.encoder.encode(line.stock, st.change(_REFRESH), gw.epoch_ms())
        out: list[bytes] = []
        m.render(parts, line.rid, out)
        line.session.send(b"".join(out))

    def outage_for(self, seconds: float, data_lost: bool = False) -> int:
        """:meth:`connectivity_lost` now and :meth:`connectivity_restored` after
        ``seconds`` (on the gateway's loop). Returns the clients told."""
        n = self.connectivity_lost()
        self._after("restore", seconds, lambda: self.connectivity_restored(data_lost))
        return n

    # --- orders and executions ----------------------------------------------------------

    def set_no_status(self, on: bool) -> None:
        """While on, fills send execDetails and commissionReport but no orderStatus and no
        openOrder (see :meth:`fill_status`)."""
        self.no_status = bool(on)

    def fill_status(self, data: bytes) -> bytes:
        """Hook of the order engine: the orderStatus / openOrder frames of one fill, or
        nothing while no-status is on."""
        if not self.no_status or not data:
            return data
        self.withheld_status += 1
        return b""

    def set_stuck_executions(self, on: bool) -> int:
        """While on, reqExecutions sends its rows but no execDetailsEnd. Turning it off
        sends the late execDetailsEnd of every request held (still connected); returns
        how many were ended."""
        self.stuck_executions = bool(on)
        if on:
            return 0
        stuck, self._stuck = self._stuck, []
        n = 0
        for session, req_id in stuck:
            if session.transport is not None:
                session.send(m.exec_details_end(req_id))
                n += 1
        return n

    def executions_end(self, session: Client, req_id: int) -> bytes:
        """Hook of reqExecutions: its execDetailsEnd frame, or nothing while
        stuck-executions is on (the request is remembered)."""
        if not self.stuck_executions:
            return m.exec_details_end(req_id)
        self._stuck = [held for held in self._stuck if held[0].transport is not None]
        self._stuck.append((session, req_id))
        return b""

    # --- pacing -------------------------------------------------------------------------

    def set_pacing(self, limit: int | None = DEFAULT_PACING_LIMIT) -> None:
        """Enforce ``limit`` messages per second per client (``None``: off)."""
        if limit is not None and limit <= 0:
            raise ValueError("pacing limit must be positive")
        self.pacing_limit = limit
        self._pace = weakref.WeakKeyDictionary()

    def allow(self, session: Client) -> bool:
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

    # --- status and control commands ----------------------------------------------------

    def active(self) -> list[str]:
        """Every fault active now, one short phrase each (empty when none); the outage and
        pacing are reported by :meth:`status` itself."""
        out = []
        for name in sorted(self.farms_broken):
            timer = f"farm {name}"
            out.append(f"farm {name} broken" + (f" (OK{self._left(timer)})" if timer in self._due else ""))
        dead = self.dead_lines
        if dead:
            out.append(f"{dead} dead line{'s' if dead != 1 else ''}")
        if self.restarting:
            out.append(f"restart (listening again{self._left('restart')})")
        held = self._held_ids_now()
        if held:
            left = max(self._held_ids.values()) - time.monotonic()
            out.append(f"hold-id {' '.join(map(str, held))} ({max(0.0, left):.1f} s)")
        if self.no_status:
            out.append(f"no-status ({self.withheld_status} withheld)")
        if self.stuck_executions:
            held_reqs = sum(1 for session, _ in self._stuck if session.transport is not None)
            out.append(f"stuck-executions ({held_reqs} held)")
        return out

    def status(self) -> str:
        """One line: clients, outage, pacing, market data lines, tick messages sent since the
        start (every client) and :meth:`active`."""
        gw = self.gateway
        lines = sum(len(s.subscriptions) for s in gw.sessions)
        pacing = f"on ({self.pacing_limit}/s, {self.paced_messages} refused)" if self.pacing_limit else "off"
        outage = "no"
        if self.outage:
            outage = f"yes (restored{self._left('restore')})" if "restore" in self._due else "yes"
        return (
            f"clients {gw.clients}; outage {outage}; pacing {pacing}; market data lines {lines}; "
            f"tick messages sent {gw.ticks_sent}; faults: {', '.join(self.active()) or 'none'}"
        )

    async def execute(self, line: str) -> str:
        """Run one control command (:data:`COMMANDS`); returns the one-line answer,
        ``error: ...`` for an unknown or malformed command."""
        words = line.strip().lower().split()
        if not words:
            return "error: empty command; try help"
        cmd, args = words[0], words[1:]
        try:
            return await self._execute(cmd, args)
        except ValueError as e:
            return f"error: {e}"

    async def _execute(self, cmd: str, args: list[str]) -> str:
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
            seconds = _seconds(args[0], "outage")
            if not 0 < seconds <= MAX_SECONDS:
                return "error: outage SECONDS must be in (0, 3600]"
            lost = len(args) > 1 and args[1] == "1101"
            n = self.outage_for(seconds, lost)
            return f"1100 sent to {n} client(s); {'1101' if lost else '1102'} in {seconds:g} s"
        if cmd == "farm":
            return self._farm_command(args)
        if cmd == "silent":
            if len(args) != 1:
                return "error: silent needs one CONID or SYMBOL, e.g. silent SPY"
            n = self.silence(args[0])
            if not n:
                return f"error: no live market data line of {args[0].upper()}"
            return f"{n} line(s) of {args[0].upper()} silent until requested again"
        if cmd == "restart":
            if len(args) != 1:
                return "error: restart needs SECONDS, e.g. restart 10"
            seconds = _seconds(args[0], "restart")
            n = await self.restart(seconds)
            return f"restart: dropped {n} connection(s); port {self.gateway.port} closed, listening again in {seconds:g} s"
        if cmd == "hold-id":
            if not args:
                return "error: hold-id needs SECONDS [ID ...], e.g. hold-id 10"
            seconds = _seconds(args[0], "hold-id")
            if not all(a.lstrip("-").isdigit() for a in args[1:]):
                return "error: hold-id SECONDS [ID ...]: client ids are integers"
            n, held = await self.hold_client_ids(seconds, tuple(int(a) for a in args[1:]))
            ids = " ".join(map(str, held)) or "none"
            return f"dropped {n} connection(s); client id(s) {ids} refused with 326 for {seconds:g} s"
        if cmd == "no-status":
            on = _on_off(cmd, args)
            self.set_no_status(on)
            return (
                "no-status on: fills send execDetails and commissionReport only"
                if on
                else "no-status off: fills send orderStatus again"
            )
        if cmd == "stuck-executions":
            on = _on_off(cmd, args)
            n = self.set_stuck_executions(on)
            return (
                "stuck-executions on: reqExecutions gets no execDetailsEnd"
                if on
                else f"stuck-executions off: {n} held request(s) ended"
            )
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
            return "commands: " + " | ".join(c for c, _ in COMMANDS)
        return f"error: unknown command {cmd!r}; try help"

    def _farm_command(self, args: list[str]) -> str:
        farm, seconds = "usfarm", 3.0
        for a in args:
            if a.replace(".", "", 1).isdigit():
                seconds = float(a)
            else:
                farm = a
        f = self.farm(farm)
        n, lines = self.farm_blip(seconds, f.name)
        what = {"usfarm": "market data line(s)", "ushmds": "keepUpToDate request(s)"}.get(f.name)
        dead = f"; {lines} {what} silently dead until requested again" if what else ""
        return f"{f.broken} sent to {n} client(s){dead}; {f.ok} in {seconds:g} s"


def _on_off(cmd: str, args: list[str]) -> bool:
    if args[:1] == ["on"] and len(args) == 1:
        return True
    if args[:1] == ["off"] and len(args) == 1:
        return False
    raise ValueError(f"{cmd} on | {cmd} off")
