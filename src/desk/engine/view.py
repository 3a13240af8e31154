""":class:`RemoteDesk`, the view's copy of an engine it attached to over the engine API
(a :class:`~desk.engine.backend.DeskBackend`), with its parts: :class:`ChainMirror`,
:class:`OpportunitiesMirror` and :class:`RemoteTicket`.

:class:`RemoteDesk` is the view of an engine process (``desk``, ``desk --attach``). It keeps
  a copy of what the engine sends (:class:`~desk.engine.api.DeskState`: the watchlist and
  its quotes, the orders, the positions, the trading state, the status-bar figures and
  the notices), applies the deltas on arrival (dict updates only; the panes repaint on
  their own timers) and sends the view's requests. When the engine goes away it says so
  and re-attaches every :data:`REATTACH_INTERVAL` seconds; the first state after it is
  back is a full one, so nothing is stale.

This module imports :mod:`desk.engine.api`, :mod:`desk.engine.client`,
:mod:`desk.engine.process` and :mod:`desk.domain` only: attaching a view never loads
ib_async, SQLAlchemy or the analytics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from desk.domain import Clock, ConnectionState, Instrument, QuoteStore, RecorderStats, StatusEvent
from desk.domain.chain import ChainError, ChainFlush, ChainRow
from desk.domain.intent import MarginImpact, OrderIntent, RiskInputError
from desk.domain.events import StateChanged, WatchlistChanged
from desk.domain.opportunity import Tracked
from desk.domain.options import OptionQuote
from desk.domain.orders import OrderRow
from desk.engine import api
from desk.engine.backend import EMPTY_POSITIONS, EngineRefused, Listener
from desk.engine.client import EngineAddress, EngineClient, EngineGone, EngineRequestError, TcpAddress
from desk.engine.process import EngineProcess
from desk.risk.engine import RiskReport

__all__ = ["REATTACH_INTERVAL", "ChainMirror", "OpportunitiesMirror", "RemoteDesk", "RemoteTicket"]

log = logging.getLogger("desk.engine")

#: Seconds between attempts to re-attach to an engine that went away.
REATTACH_INTERVAL = 1.0
#: Seconds an engine this view started may take to answer on its socket.
START_TIMEOUT = 60.0
#: Delta rate the terminal view asks for, Hz (the app's flush timer runs at ~6.7 Hz).
VIEW_RATE_HZ = 10.0


class ChainMirror:
    """The view's copy of the engine's option chain (:class:`ChainView`), kept from the
    :class:`~desk.engine.api.ChainState` stream; requests go to the engine through
    ``remote`` (:class:`RemoteDesk`)."""

    def __init__(self, remote: RemoteDesk) -> None:
        self._remote = remote
        self.underlying: Instrument | None = None
        self.expiry: str | None = None
        self.expiries: tuple[str, ...] = ()
        self.rows: list[ChainRow] = []
        self.atm_strike = math.nan
        self.spot = math.nan
        self.forward = math.nan
        self.loading = False
        self.message = ""
        self.message_level = "info"
        self.message_seq = 0
        self.layout_seq = 0
        self.spec = ""
        self._days = math.nan
        self._quotes: dict[int, OptionQuote] = {}
        self._dirty: set[int] = set()
        self._layout = False
        self._computed = False

    def apply(self, st: api.ChainState) -> None:
        """Take one state of the engine's chain."""
        self.underlying = st.underlying
        self.expiry = st.expiry or None
        self.expiries = tuple(st.expiries)
        self.atm_strike, self.spot, self.forward, self._days = st.atm_strike, st.spot, st.forward, st.days
        self.loading = st.loading
        self.message, self.message_level, self.message_seq = st.message, st.message_level, st.message_seq
        self.spec = st.spec
        if st.rows is not None:
            self.rows = list(st.rows)
            self._quotes = {}
            self._layout = True
        if st.layout_seq != self.layout_seq:
            self.layout_seq = st.layout_seq
            self._layout = True
        for q in st.quotes:
            self._quotes[q.instrument.con_id] = q
            self._dirty.add(q.instrument.con_id)
        self._computed = self._computed or st.computed

    def flush(self) -> ChainFlush:
        out = ChainFlush(frozenset(self._dirty), self._layout, self._computed)
        self._dirty, self._layout, self._computed = set(), False, False
        return out

    def days_to_expiry(self) -> float:
        return self._days

    def quote(self, instrument: Instrument | None) -> OptionQuote | None:
        return self._quotes.get(instrument.con_id) if instrument is not None else None

    async def _ask(self, msg: Any) -> None:
        try:
            await self._remote.request(msg)
        except (RuntimeError, ConnectionError) as exc:
            raise ChainError(str(exc)) from None

    async def set_underlying(self, instrument: Instrument) -> None:
        client = self._remote.connection()
        await self._ask(api.ChainSelect(client.next_id(), instrument))

    async def set_expiry(self, expiry: str) -> None:
        client = self._remote.connection()
        await self._ask(api.ChainExpiry(client.next_id(), expiry))

    def _window(self, wider: bool) -> None:
        client = self._remote.client
        if client is None or client.closed.is_set():
            return
        client.send(api.ChainWindow(client.next_id(), wider))  # the next state shows the new window

    def widen(self) -> None:
        self._window(True)

    def narrow(self) -> None:
        self._window(False)


class OpportunitiesMirror:
    """The view's copy of the engine's opportunity list (:class:`OpportunitiesView`), kept
    from the :class:`~desk.engine.api.OpportunityState` stream."""

    def __init__(self) -> None:
        self.enabled = False
        self.seq = 0
        self.simulated = False
        self.tracked: list[Tracked] = []
        self._by_key: dict[str, Tracked] = {}

    def apply(self, st: api.OpportunityState) -> None:
        self.enabled, self.simulated = st.enabled, st.simulated
        self.tracked = list(st.tracked)
        self._by_key = {t.key: t for t in self.tracked}
        self.seq += 1

    def get(self, key: str) -> Tracked | None:
        return self._by_key.get(key)


#: Seconds a preview the engine answered is shown before it is asked again (the market
#: moves; the ticket refreshes every 0.25 s).
PREVIEW_MAX_AGE = 0.25


class RemoteTicket:
    """The order ticket's :class:`~desk.engine.backend.TicketBackend` in an attached view: quotes and deltas
    from the view's copies, the preview, the what-if and the order from the engine."""

    def __init__(self, remote: RemoteDesk) -> None:
        self._remote = remote
        self._listener: Callable[[], None] | None = None
        #: (intent, margin) -> (loop time answered, report, error); the last few asked
        self._answers: dict[tuple[OrderIntent, MarginImpact | None], tuple[float, RiskReport | None, str]] = {}
        self._asking: set[tuple[OrderIntent, MarginImpact | None]] = set()

    @property
    def live(self) -> bool:
        return self._remote.trading().live

    def quote(self, instrument: Instrument) -> tuple[float, float, float]:
        q = self._remote.quotes.get(instrument.con_id)
        if q is not None:
            return q.bid, q.ask, q.last
        oq = self._remote.chains.quote(instrument)
        if oq is not None:
            return oq.bid, oq.ask, oq.last
        return math.nan, math.nan, math.nan

    def delta(self, instrument: Instrument) -> float:
        if instrument.sec_type == "STK":
            return 1.0
        oq = self._remote.chains.quote(instrument)
        greeks = (oq.ours or oq.model) if oq is not None else None
        return float(greeks.delta) if greeks is not None else math.nan

    def on_update(self, fn: Callable[[], None] | None) -> None:
        self._listener = fn

    def preview(self, intent: OrderIntent, margin: MarginImpact | None) -> RiskReport | None:
        key = (intent, margin)
        now = asyncio.get_running_loop().time()
        answer = self._answers.get(key)
        if (answer is None or now - answer[0] > PREVIEW_MAX_AGE) and key not in self._asking:
            self._asking.add(key)
            asyncio.get_running_loop().create_task(self._ask(key))
        if answer is None:
            return None
        if answer[2]:
            raise RiskInputError(answer[2])
        return answer[1]

    async def _ask(self, key: tuple[OrderIntent, MarginImpact | None]) -> None:
        try:
            client = self._remote.connection()
            reply = await self._remote.request(api.PreviewIntent(client.next_id(), key[0], key[1]))
            self._answers[key] = (asyncio.get_running_loop().time(), reply.report, reply.error)
            if len(self._answers) > 32:  # the ticket asks for the intent on screen only
                del self._answers[next(iter(self._answers))]
        except (ConnectionError, RuntimeError) as exc:
            self._answers[key] = (asyncio.get_running_loop().time(), None, f"no preview: {exc}")
        finally:
            self._asking.discard(key)
        if self._listener is not None:
            self._listener()

    async def what_if(self, intent: OrderIntent) -> MarginImpact | None:
        try:
            client = self._remote.connection()
            reply = await self._remote.request(api.WhatIfIntent(client.next_id(), intent))
        except (ConnectionError, RuntimeError):
            return None
        margin: MarginImpact | None = reply.margin
        return margin

    async def submit(self, intent: OrderIntent, confirmation: str | None, margin: MarginImpact | None = None) -> api.PlaceReport:
        client = self._remote.connection()
        report: api.PlaceReport = await self._remote.request(api.PlaceIntent(client.next_id(), intent, confirmation, margin))
        return report

    def gate_summary(self) -> tuple[str, bool]:
        t = self._remote.trading()
        if not self._remote.attached:
            return "orders wait: the engine is away (re-attaching)", False
        return t.gate_line, t.gate_ok


def _utc(t: float) -> datetime | None:
    return datetime.fromtimestamp(t, timezone.utc) if math.isfinite(t) else None


class RemoteDesk:
    """The view's copy of an engine attached over its socket (see the module doc).

    ``path``: the engine's Unix socket, or its loopback TCP port (a
    :class:`~desk.engine.client.TcpAddress`). :meth:`start` raises ``ConnectionError`` with one
    line when no engine answers there. ``owned``: an engine process this view starts
    (``desk``), stopped when the view stops; without it the engine keeps running when
    the view quits (``desk --attach``).
    """

    def __init__(
        self,
        path: EngineAddress | str,
        *,
        clock: Clock | None = None,
        client: str = "desk view",
        owned: EngineProcess | None = None,
    ) -> None:
        self.path: EngineAddress = path if isinstance(path, TcpAddress) else Path(path)
        self.owned = owned
        self.clock = clock or Clock()
        self.quotes = QuoteStore()
        self.client_name = client
        self.client: EngineClient | None = None
        self._listeners: list[Listener] = []
        self._watchlist: list[Instrument] = []
        self._state = ConnectionState.DISCONNECTED
        self._endpoint = "?"
        self._mode = ""
        self._stale: set[int] = set()
        self._restart = ""
        self._ticks = 0
        self._ticks_base = 0
        self._recorder: RecorderStats | None = None
        self._orders: dict[str, OrderRow] = {}
        self._orders_seq = 0
        self._trading = api.TradingStatus()
        self._positions = EMPTY_POSITIONS
        self._positions_seq = 0
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._chain = ChainMirror(self)
        self._opportunities = OpportunitiesMirror()
        self._ticket = RemoteTicket(self)
        #: full states received (1 after attaching, 2 after the first re-attach...)
        self.snapshots = 0

    # --- reads --------------------------------------------------------------------------

    @property
    def watchlist(self) -> list[Instrument]:
        return self._watchlist

    @property
    def state(self) -> ConnectionState:
        """The engine's gateway connection; RECONNECTING while the engine is away."""
        return self._state

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def stale_lines(self) -> set[int]:
        return self._stale

    def restart_status(self) -> str:
        return self._restart

    @property
    def ticks_seen(self) -> int:
        """Ticks the engine applied since this view attached (monotonic across
        re-attaching)."""
        return self._ticks

    def recorder_stats(self) -> RecorderStats | None:
        return self._recorder

    @property
    def orders_seq(self) -> int:
        return self._orders_seq

    @property
    def order_rows(self) -> Mapping[str, OrderRow]:
        return self._orders

    def trading(self) -> api.TradingStatus:
        return self._trading

    @property
    def positions_seq(self) -> int:
        return self._positions_seq

    def positions(self) -> api.Positions:
        return self._positions

    @property
    def chains(self) -> ChainMirror:
        return self._chain

    @property
    def opportunities(self) -> OpportunitiesMirror:
        return self._opportunities

    def ticket_backend(self) -> RemoteTicket:
        return self._ticket

    @property
    def attached(self) -> bool:
        return self.client is not None and not self.client.closed.is_set()

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _emit(self, event: object) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a listener's bug must not stop the stream
                log.exception("view listener failed")

    # --- the connection ------------------------------------------------------------------

    async def _connect(self) -> EngineClient:
        try:
            client = await EngineClient.connect(self.path, self.client_name)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ConnectionError(f"no engine is running on {self.path} (start one with `desk --headless`)") from None
        client.on_state = self._apply
        client.on_chain = self._chain.apply
        client.on_opportunities = self._opportunities.apply
        self.client = client
        self._mode = client.welcome.mode
        self._endpoint = client.welcome.endpoint
        client.send(api.WatchDesk(client.next_id(), VIEW_RATE_HZ))
        client.send(api.WatchChain(client.next_id(), VIEW_RATE_HZ))
        client.send(api.WatchOpportunities(client.next_id(), 4.0))
        return client

    async def start(self) -> None:
        """Attach and start the state stream; ``ConnectionError`` (one line) when no
        engine answers on :attr:`path`, :class:`~desk.engine.backend.EngineRefused` when
        the engine this view started exited refusing its settings."""
        self._stopping = False
        owned = self.owned
        loop = asyncio.get_running_loop()
        if owned is not None:
            if owned.proc is None:
                owned.start()
            self._emit(StatusEvent("info", f"starting the engine (pid {owned.pid}, log {owned.log})…"))
        deadline = loop.time() + START_TIMEOUT
        while True:
            try:
                client = await self._connect()
                break
            except (OSError, EngineGone, asyncio.TimeoutError):
                if owned is None:
                    raise
                if not owned.alive():
                    refused = self._refused()
                    if refused is not None:
                        raise refused from None  # its settings check, as the view's own
                    raise ConnectionError(owned.problem()) from None
                if loop.time() > deadline:
                    raise ConnectionError(
                        f"the engine did not answer on {self.path} within {START_TIMEOUT:g} s (log: {owned.log})"
                    ) from None
                await asyncio.sleep(0.05)
        what = "the engine" if owned is not None else f"the engine on {self.path}"
        self._emit(StatusEvent("info", f"attached to {what} (pid {client.welcome.pid})"))
        self._watcher = loop.create_task(self._watch())

    def _refused(self) -> EngineRefused | None:
        """The engine this view started exited refusing its settings (code 2 and its
        ``desk: invalid setting: ...`` line), else None."""
        owned = self.owned
        if owned is None or owned.returncode != 2:
            return None
        line = owned.last_line()
        return EngineRefused(line) if line.startswith("desk: invalid setting: ") else None

    async def _watch(self) -> None:
        """Notice the engine going away; say so, then re-attach until it is back."""
        while not self._stopping:
            client = self.client
            if client is not None:
                await client.closed.wait()
            if self._stopping:
                return
            self.client = None
            owned = self.owned
            if owned is not None:
                # an engine closes its API as it stops, a moment before it exits
                for _ in range(20):
                    if not owned.alive():
                        break
                    await asyncio.sleep(0.05)
            if owned is not None and not owned.alive():
                await asyncio.sleep(0.2)  # its last log line
                refused = self._refused()
                if refused is not None:  # it checks DESK_DATABASE_URL after views attach
                    self._emit(refused)
                    return
                self._emit(StatusEvent("error", owned.problem()))
            self._state = ConnectionState.RECONNECTING
            self._emit(StateChanged(ConnectionState.RECONNECTING, f"the engine on {self.path} stopped; re-attaching…"))
            while not self._stopping:
                await asyncio.sleep(REATTACH_INTERVAL)
                refused = self._refused()  # an engine slow to exit after refusing
                if refused is not None:
                    self._emit(refused)
                    return
                try:
                    client = await self._connect()
                except (OSError, EngineGone, EngineRequestError, api.ApiError, asyncio.TimeoutError):
                    continue
                self._emit(StatusEvent("info", f"re-attached to the engine (pid {client.welcome.pid})"))
                break

    async def stop(self) -> None:
        """Detach (the engine keeps running and recording), and stop the engine this view
        started (it flushes its recorder)."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        if self.owned is not None:
            await self.owned.stop()

    # --- applying the engine's state -------------------------------------------------------

    def _apply(self, st: api.DeskState) -> None:
        if st.full:
            self.snapshots += 1
        if st.watchlist is not None:
            self._set_watchlist(st.watchlist)
        quotes = self.quotes
        for r in st.quotes:
            quotes.update(
                r.con_id,
                bid=r.bid,
                ask=r.ask,
                last=r.last,
                bid_size=r.bid_size,
                ask_size=r.ask_size,
                volume=r.volume,
                close=r.close,
                time=_utc(r.time),
                ticks=0,
            )
        if st.full:  # count from here: the engine's count includes its past (and restarts at 0)
            self._ticks_base = st.ticks_seen - self._ticks
        quotes.ticks_seen = self._ticks = st.ticks_seen - self._ticks_base
        if st.stale is not None:
            self._stale = set(st.stale)
        self._restart = st.restart
        self._endpoint = st.endpoint
        self._mode = st.mode
        if st.full:
            self._orders = {}
        if st.full or st.orders:
            for row in st.orders:
                self._orders[row.order_ref] = row
            self._orders_seq += 1
        if st.trading is not None:
            self._trading = st.trading
        if st.positions is not None:
            self._positions = st.positions
            self._positions_seq += 1
        if st.recorder is not None or st.full:
            self._recorder = st.recorder
        connection = ConnectionState(st.connection)
        changed_state = connection is not self._state
        self._state = connection
        for n in st.notices:
            if n.state:
                self._emit(StateChanged(ConnectionState(n.state), n.text))
                changed_state = False
            else:
                self._emit(StatusEvent(n.level, n.text))
        if changed_state:
            self._emit(StateChanged(connection, self._endpoint if connection is ConnectionState.CONNECTED else ""))

    def _set_watchlist(self, instruments: list[Instrument]) -> None:
        ids = {i.con_id for i in instruments}
        for ins in self._watchlist:
            if ins.con_id not in ids:
                self.quotes.remove(ins.con_id)
        for ins in instruments:
            self.quotes.ensure(ins)
        changed = [i.con_id for i in instruments] != [i.con_id for i in self._watchlist]
        self._watchlist = list(instruments)
        if changed:
            self._emit(WatchlistChanged(tuple(i.symbol for i in instruments)))

    # --- requests ---------------------------------------------------------------------------

    def connection(self) -> EngineClient:
        """The live connection; ``ConnectionError`` while the engine is away."""
        return self._live()

    async def request(self, msg: Any) -> Any:
        """Send ``msg`` and return the engine's reply; ``RuntimeError`` (one line) when it
        refused, ``ConnectionError`` when the engine is away."""
        return await self._ask(msg)

    def _live(self) -> EngineClient:
        client = self.client
        if client is None or client.closed.is_set():
            raise ConnectionError("the engine is not attached (re-attaching)")
        return client

    async def _ask(self, msg: Any) -> Any:
        try:
            return await self._live().request(msg)
        except EngineRequestError as exc:
            raise RuntimeError(str(exc)) from None

    async def add_symbol(self, symbol: str) -> Instrument:
        client = self._live()
        report = await self._ask(api.AddSymbol(client.next_id(), symbol))
        assert report.instrument is not None
        instrument: Instrument = report.instrument
        if instrument.con_id not in {i.con_id for i in self._watchlist}:  # shown now, not at the next delta
            self._set_watchlist([*self._watchlist, instrument])
        return instrument

    async def remove_symbol(self, symbol: str) -> bool:
        client = self._live()
        report = await self._ask(api.RemoveSymbol(client.next_id(), symbol))
        if report.done:
            self._set_watchlist([i for i in self._watchlist if i.symbol != report.symbol])
        return bool(report.done)

    async def cancel(self, order_ref: str) -> None:
        client = self._live()
        await self._ask(api.Cancel(client.next_id(), order_ref, wait=0.0))

    async def cancel_all(self) -> int:
        client = self._live()
        report = await self._ask(api.CancelAll(client.next_id()))
        return int(report.count)

    async def modify(
        self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None, quantity: int | None = None
    ) -> api.PlaceReport:
        client = self._live()
        report: api.PlaceReport = await self._ask(api.Modify(client.next_id(), order_ref, limit_price, stop_price, quantity))
        return report

    async def kill_switch(self, action: api.KillAction, reason: str) -> api.KillSwitchReport:
        client = self._live()
        report: api.KillSwitchReport = await self._ask(api.KillSwitch(client.next_id(), action, reason))
        self._trading = api.TradingStatus(
            state=report.state,
            reason=report.reason,
            orders_off=self._trading.orders_off,
            live=self._trading.live,
            gate_line=self._trading.gate_line,
            gate_ok=self._trading.gate_ok,
        )
        return report
