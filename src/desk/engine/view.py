"""What the terminal view reads and asks of an engine: :class:`DeskBackend`, and
:class:`RemoteDesk`, the view's copy of an engine it attached to over the engine API.

The terminal view (:mod:`desk.ui`) is written against :class:`DeskBackend` only. Two
implementations:

* :class:`desk.engine.local.LocalDesk`: the engine's objects in the view's own process
  (``desk`` today, and the tests on the real engine over the embedded simulator);
* :class:`RemoteDesk`: a view attached to an engine process (``desk --attach``). It keeps
  a copy of what the engine sends (:class:`~desk.engine.api.DeskState`: the watchlist and
  its quotes, the orders, the positions, the trading state, the status-bar figures and
  the notices), applies the deltas on arrival (dict updates only; the panes repaint on
  their own timers) and sends the view's requests. When the engine goes away it says so
  and re-attaches every :data:`REATTACH_INTERVAL` seconds; the first state after it is
  back is a full one, so nothing is stale.

This module imports :mod:`desk.engine.api`, :mod:`desk.engine.client` and
:mod:`desk.domain` only: attaching a view never loads ib_async, SQLAlchemy or the
analytics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from desk.domain import Clock, ConnectionState, Instrument, QuoteStore, RecorderStats, StatusEvent
from desk.domain.events import StateChanged, WatchlistChanged
from desk.domain.orders import OrderRow
from desk.domain.portfolio import AccountFigures, PortfolioGreeks
from desk.engine import api
from desk.engine.client import EngineClient, EngineGone, EngineRequestError

__all__ = ["DeskBackend", "RemoteDesk", "REATTACH_INTERVAL", "EMPTY_POSITIONS"]

log = logging.getLogger("desk.engine")

#: Seconds between attempts to re-attach to an engine that went away.
REATTACH_INTERVAL = 1.0
#: Delta rate the terminal view asks for, Hz (the app's flush timer runs at ~6.7 Hz).
VIEW_RATE_HZ = 10.0
#: Positions of an account nothing is known of yet.
EMPTY_POSITIONS = api.Positions(rows=[], figures=AccountFigures(), greeks=PortfolioGreeks(), groups=[], labels={})

#: A listener of the view's events: StateChanged, StatusEvent, WatchlistChanged.
Listener = Callable[[object], None]


class DeskBackend(Protocol):
    """Everything the terminal view reads from and asks of an engine.

    Reads are cheap (the view's copy, or the engine's own objects in-process); requests
    are coroutines that raise an exception whose ``str()`` is one line for the user.
    Units as in :mod:`desk.engine.api`.
    """

    #: the clock of the view (status bar, ticks/s)
    clock: Clock
    #: latest quote per conId of the watchlist, with the dirty set the panes drain
    quotes: QuoteStore

    @property
    def watchlist(self) -> list[Instrument]: ...

    @property
    def state(self) -> ConnectionState:
        """The gateway connection (DISCONNECTED too while the engine is away)."""
        ...

    @property
    def endpoint(self) -> str:
        """The gateway's ``host:port``."""
        ...

    @property
    def mode(self) -> str:
        """Trading mode of the engine: ``sim``, ``paper`` or ``live``."""
        ...

    @property
    def stale_lines(self) -> set[int]:
        """conIds whose market data lines are silent."""
        ...

    def restart_status(self) -> str:
        """The gateway's daily restart line for the status bar (empty: none near)."""
        ...

    @property
    def ticks_seen(self) -> int:
        """Ticks the engine applied since it started (the status bar's ticks/s)."""
        ...

    def recorder_stats(self) -> RecorderStats | None:
        """The tick recorder's counters (``None``: not recording)."""
        ...

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn`` with each StateChanged, StatusEvent and WatchlistChanged."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def add_symbol(self, symbol: str) -> Instrument: ...

    async def remove_symbol(self, symbol: str) -> bool: ...

    @property
    def orders_seq(self) -> int:
        """Changes whenever :attr:`order_rows` changed."""
        ...

    @property
    def order_rows(self) -> Mapping[str, OrderRow]:
        """The day's orders by orderRef."""
        ...

    def trading(self) -> api.TradingStatus: ...

    async def cancel(self, order_ref: str) -> None: ...

    async def cancel_all(self) -> int: ...

    async def modify(self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None,
                     quantity: int | None = None) -> api.PlaceReport: ...

    async def kill_switch(self, action: api.KillAction, reason: str) -> api.KillSwitchReport: ...

    @property
    def positions_seq(self) -> object:
        """Changes whenever :meth:`positions` may have changed."""
        ...

    def positions(self) -> api.Positions: ...

    @property
    def chains(self) -> Any | None:
        """The option chain (:class:`desk.broker.chains.ChainManager`) when the engine runs
        in this process; ``None`` in an attached view (not on the engine API yet)."""
        ...

    @property
    def opportunities(self) -> Any | None:
        """The live arbitrage scanner (:class:`desk.arbitrage.live.LiveArbitrage`) in-process,
        else ``None``."""
        ...

    def ticket_backend(self) -> Any | None:
        """What the order ticket needs (:class:`desk.engine.local.TicketBackend`)
        in-process, else ``None``."""
        ...


def _utc(t: float) -> datetime | None:
    return datetime.fromtimestamp(t, timezone.utc) if math.isfinite(t) else None


class RemoteDesk:
    """The view's copy of an engine attached over its socket (see the module doc).

    ``path``: the engine's Unix socket. :meth:`start` raises ``ConnectionError`` with one
    line when no engine answers there.
    """

    def __init__(self, path: Path | str, *, clock: Clock | None = None, client: str = "desk view") -> None:
        self.path = Path(path)
        self.clock = clock or Clock()
        self.quotes = QuoteStore()
        self.client_name = client
        self.client: EngineClient | None = None
        self.welcome: api.Welcome | None = None
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
        #: full states received (1 after attaching, 2 after the first re-attach...)
        self.snapshots = 0
        #: set whenever a state was applied (tests wait on it)
        self.updated = asyncio.Event()

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
    def chains(self) -> None:
        return None

    @property
    def opportunities(self) -> None:
        return None

    def ticket_backend(self) -> None:
        return None

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
        self.client = client
        self.welcome = client.welcome
        self._mode = client.welcome.mode
        self._endpoint = client.welcome.endpoint
        client.send(api.WatchDesk(client.next_id(), VIEW_RATE_HZ))
        return client

    async def start(self) -> None:
        """Attach and start the state stream; ``ConnectionError`` (one line) when no
        engine answers on :attr:`path`."""
        self._stopping = False
        client = await self._connect()
        self._emit(StatusEvent("info", f"attached to the engine on {self.path} (pid {client.welcome.pid})"))
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Notice the engine going away; say so, then re-attach until it is back."""
        while not self._stopping:
            client = self.client
            if client is not None:
                await client.closed.wait()
            if self._stopping:
                return
            self.client = None
            self._state = ConnectionState.RECONNECTING
            self._emit(StateChanged(ConnectionState.RECONNECTING, f"the engine on {self.path} stopped; re-attaching…"))
            while not self._stopping:
                await asyncio.sleep(REATTACH_INTERVAL)
                try:
                    client = await self._connect()
                except (OSError, EngineGone, EngineRequestError, api.ApiError, asyncio.TimeoutError):
                    continue
                self._emit(StatusEvent("info", f"re-attached to the engine (pid {client.welcome.pid})"))
                break

    async def stop(self) -> None:
        """Detach (the engine keeps running and recording)."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    # --- applying the engine's state -------------------------------------------------------

    def _apply(self, st: api.DeskState) -> None:
        if st.full:
            self.snapshots += 1
        if st.watchlist is not None:
            self._set_watchlist(st.watchlist)
        quotes = self.quotes
        for r in st.quotes:
            quotes.update(r.con_id, bid=r.bid, ask=r.ask, last=r.last, bid_size=r.bid_size, ask_size=r.ask_size,
                          volume=r.volume, close=r.close, time=_utc(r.time), ticks=0)
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
        self.updated.set()

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

    async def modify(self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None,
                     quantity: int | None = None) -> api.PlaceReport:
        client = self._live()
        report: api.PlaceReport = await self._ask(api.Modify(client.next_id(), order_ref, limit_price, stop_price,
                                                             quantity))
        return report

    async def kill_switch(self, action: api.KillAction, reason: str) -> api.KillSwitchReport:
        client = self._live()
        report: api.KillSwitchReport = await self._ask(api.KillSwitch(client.next_id(), action, reason))
        self._trading = api.TradingStatus(state=report.state, reason=report.reason,
                                          orders_off=self._trading.orders_off, live=self._trading.live,
                                          gate_line=self._trading.gate_line, gate_ok=self._trading.gate_ok)
        return report
