"""The IB worker: one ib_async connection, its lifecycle and its subscription registry.

Rules it follows (design.md, "Decisions and why"):

* only ib_async's ``*Async`` methods, on the caller's running event loop (Textual's in the
  desk, a plain asyncio loop in the headless collector);
* the tick callback (``pendingTickersEvent``, which ib_async batches per socket read) only
  updates the :class:`~desk.domain.QuoteStore` and hands :class:`~desk.domain.TickRecord`
  rows to the tick sinks (the recorder's and the Redis publisher's ``submit``), which are
  O(1) appends: no database or Redis round trip happens on this path;
* reconnect is the broker's job: ib_async does not resubscribe after a disconnect, so the
  broker keeps its own registry of wanted symbols and replays it on every connect. Quotes
  are keyed by conId, so the panes keep their rows and simply see them move again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable

from ib_async import IB, Contract, Option, Stock, Ticker

from desk.broker.health import LineWatchdog
from desk.broker.lifecycle import (
    CLIENT_ID_IN_USE,
    DATA_LOST,
    FARM_BROKEN,
    FarmTracker,
    RestartWindow,
    reconnect_delay,
)
from desk.broker.lines import LineBudget
from desk.broker.ticks import Line, ib_number, tick_records
from desk.domain.calendar import nyse_calendar
from desk.domain.events import DataLost, StateChanged, WatchlistChanged
from desk.domain import (
    Clock,
    ConnectionState,
    Instrument,
    QuoteStore,
    StatusEvent,
    TickRecord,
)

log = logging.getLogger(__name__)

#: IB codes that are notices, not failures (TWS API error codes: 2100-2199 are warnings /
#: farm status; 1102 "connectivity restored, data maintained").
_INFO_CODES = frozenset({1102, 2104, 2106, 2107, 2108, 2158})


class BrokerError(Exception):
    """A broker request failed. ``str()`` is one line meant for the user."""


BrokerEvent = StateChanged | WatchlistChanged | StatusEvent | DataLost
TickSink = Callable[[TickRecord], None]


def instrument_from_contract(contract: Contract, min_tick: float = 0.01, long_name: str = "") -> Instrument:
    """Translate a qualified ib_async ``Contract`` into a domain :class:`Instrument`."""
    multiplier = int(float(contract.multiplier)) if contract.multiplier else 1
    return Instrument(
        symbol=contract.symbol,
        sec_type=contract.secType or "STK",
        exchange=contract.exchange or "SMART",
        currency=contract.currency or "USD",
        con_id=contract.conId,
        primary_exchange=contract.primaryExchange or "",
        expiry=contract.lastTradeDateOrContractMonth or "",
        strike=float(contract.strike or 0.0),
        right=contract.right or "",
        multiplier=multiplier,
        local_symbol=contract.localSymbol or "",
        min_tick=min_tick or 0.01,
        long_name=long_name,
    )


class Broker:
    """Connection lifecycle, watchlist registry and tick translation for one gateway.

    ``host``/``port``/``client_id`` address TWS, IB Gateway or desk's simulator.
    ``symbols`` is the initial watchlist (stock/ETF symbols, SMART routed, USD).
    ``sinks`` receive every quote and trade tick as a :class:`TickRecord`.
    ``backoff`` is the reconnect delay schedule in seconds (the last value repeats).

    Use :meth:`start` / :meth:`stop` from a running event loop. Listen with
    :meth:`add_listener` for :class:`StateChanged`, :class:`WatchlistChanged` and
    :class:`StatusEvent` (gateway errors and notices).
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        symbols: Iterable[str] = (),
        quotes: QuoteStore | None = None,
        sinks: Iterable[TickSink] = (),
        clock: Clock | None = None,
        connect_timeout: float = 4.0,
        backoff: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        readonly: bool = False,
        lines: LineBudget | None = None,
        market_data_type: int = 1,
        restart: RestartWindow | None = None,
        client_id_fallback: int = 0,
        stale_stock_seconds: float = 30.0,
        stale_option_seconds: float = 120.0,
        always_open: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.quotes = quotes if quotes is not None else QuoteStore()
        self.clock = clock or Clock()
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self.readonly = readonly
        self.state = ConnectionState.DISCONNECTED
        self.sinks: list[TickSink] = list(sinks)
        #: market data lines, shared with the option chain (desk.broker.chains)
        self.lines = lines if lines is not None else LineBudget(100)
        #: ordered symbols the user wants, whether or not qualified yet
        self._wanted: list[str] = []
        for s in symbols:
            s = s.strip().upper()
            if s and s not in self._wanted:
                self._wanted.append(s)
        self._subs: dict[str, Line] = {}  # symbol -> subscription (qualified)
        self._watched: dict[int, Line] = {}  # conId -> line outside the watchlist (watch_contract)
        self._by_ticker: dict[int, Line] = {}  # id(ticker) -> subscription
        self._listeners: list[Callable[[BrokerEvent], None]] = []
        #: coroutines run after every connect, in order, before the state is CONNECTED
        #: (order reconciliation, account / P&L subscriptions): see add_connect_hook
        self._connect_hooks: list[Callable[[], Awaitable[object]]] = []
        self._errors: dict[str, tuple[int, str]] = {}  # symbol -> last (code, text)
        self._task: asyncio.Task[None] | None = None
        self._disconnected = asyncio.Event()
        self._stopping = False
        self.connects = 0  # successful connects, for tests and the status bar
        self.ticks_recorded = 0
        #: reqMarketDataType sent after every connect (1 live, 2 frozen, 3 delayed, 4 delayed
        #: frozen): TWS does not keep it across connections
        self.market_data_type = market_data_type
        #: the gateway's daily restart (disconnects expected, countdown), or None
        self.restart = restart
        #: after error 326 (client id in use), try up to this many next ids (0: retry the same)
        self.client_id_fallback = client_id_fallback
        self.base_client_id = client_id
        self.farms = FarmTracker()
        #: times every line was re-requested because data was lost (1101, farm blip, silence)
        self.resubscribes = 0
        self._id_in_use = False
        self._loss_pending = False
        self.stale_stock_seconds = stale_stock_seconds
        self.stale_option_seconds = stale_option_seconds
        self.always_open = always_open
        #: silent lines: marked stale, re-requested, reported when they stay dead
        self.watchdog = LineWatchdog(
            [self],
            now=time.monotonic,
            wall=self.clock.now,
            market_open=self._market_open,
            stale_after=self._stale_after,
        )
        self._watch_task: asyncio.Task[None] | None = None
        self._feed_dead_said = False
        self.ib = IB()
        self.ib.pendingTickersEvent += self._on_pending_tickers
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        #: set when the gateway refuses the handshake (326, or the socket closed before the
        #: API started): ib_async itself would wait out its whole connect timeout
        self._refused = asyncio.Event()
        self.ib.client.apiError += self._on_api_error

    # ------------------------------------------------------------------ public API

    @property
    def watchlist(self) -> list[Instrument]:
        """Qualified watchlist rows in the user's order."""
        return [self._subs[s].instrument for s in self._wanted if s in self._subs]

    @property
    def wanted_symbols(self) -> list[str]:
        return list(self._wanted)

    @property
    def messages_received(self) -> int:
        """IB messages ib_async has read and decoded on the current connection, of every
        kind (ticks, option computations, orders, account...): 0 while disconnected, and
        it starts again from 0 at each connect (ib_async's ``connectionStats``)."""
        client = self.ib.client
        return client.connectionStats().numMsgRecv if client.isReady() else 0

    def add_listener(self, fn: Callable[[BrokerEvent], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[BrokerEvent], None]) -> None:
        """Stop calling ``fn`` (a view that detached); no error if it was not listening."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def add_sink(self, sink: TickSink) -> None:
        self.sinks.append(sink)

    def add_connect_hook(self, hook: Callable[[], Awaitable[object]]) -> None:
        """Run ``await hook()`` after every (re)connect, after the market data
        resubscription and before the state turns CONNECTED (hooks run in the order
        added; one that raises is logged and reported, the others still run)."""
        self._connect_hooks.append(hook)

    async def start(self) -> None:
        """Launch the connect / reconnect loop; returns at once."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="desk-broker")
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="desk-broker-watchdog")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the broker is connected and has subscribed its watchlist."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.state is not ConnectionState.CONNECTED:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        """Cancel subscriptions, disconnect and stop reconnecting."""
        self._stopping = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
            self._watch_task = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.ib.isConnected():
            self.ib.disconnect()
        self._set_state(ConnectionState.DISCONNECTED, "stopped")

    async def add_symbol(self, symbol: str) -> Instrument:
        """Qualify ``symbol`` (stock/ETF, SMART, USD), subscribe it and append it to the watchlist.

        Raises :class:`BrokerError` with a one-line reason when the gateway does not know
        the symbol (IB error 200), the symbol is already there, or the broker is not
        connected. On error nothing changes.
        """
        symbol = symbol.strip().upper()
        if not symbol:
            raise BrokerError("no symbol given")
        if symbol in self._subs:
            raise BrokerError(f"{symbol} is already in the watchlist")
        if self.state is not ConnectionState.CONNECTED:
            raise BrokerError(f"{symbol}: not connected to the gateway ({self.state.value}); try again when connected")
        sub = await self._qualify(symbol)
        if sub is None:
            code, text = self._errors.pop(symbol, (200, "No security definition has been found for the request"))
            raise BrokerError(f"{symbol}: unknown symbol (IB error {code}: {text})")
        if not self.lines.acquire("watchlist", sub.instrument.con_id, reclaim=True):
            self._subs.pop(symbol, None)
            raise BrokerError(f"{symbol}: no market data line free ({self.lines.describe()}); raise DESK_MARKET_DATA_LINES")
        if symbol not in self._wanted:
            self._wanted.append(symbol)
        self._subscribe(sub)
        self._emit(WatchlistChanged(tuple(self._wanted)))
        return sub.instrument

    async def watch_contract(
        self, symbol: str, *, expiry: str = "", strike: float = 0.0, right: str = "", timeout: float | None = None
    ) -> Instrument:
        """Qualify a stock (``symbol`` alone) or an option (``expiry`` YYYYMMDD, ``strike``
        dollars per share, ``right`` C or P; SMART, USD) and stream its quotes into the
        quote store without adding a watchlist row (resubscribed after a reconnect). Used
        by ``desk order``. Raises :class:`BrokerError` (one line) when the gateway does not
        know the contract, no market data line is free, or the broker is not connected."""
        symbol = symbol.strip().upper()
        if self.state is not ConnectionState.CONNECTED:
            raise BrokerError(f"{symbol}: not connected to the gateway ({self.state.value})")
        if expiry:
            contract: Contract = Option(symbol, expiry, float(strike), right.upper(), "SMART", currency="USD")
        else:
            contract = Stock(symbol, "SMART", "USD")
        wait = timeout if timeout is not None else self.connect_timeout * 2
        details = await asyncio.wait_for(self.ib.reqContractDetailsAsync(contract), wait)
        chosen = next((d for d in details if d.contract and d.contract.secType == contract.secType), None)
        if chosen is None or chosen.contract is None:
            what = f"{symbol} {expiry} {strike:g} {right}" if expiry else symbol
            code, text = self._errors.pop(symbol, (200, "No security definition has been found for the request"))
            raise BrokerError(f"{what}: unknown contract (IB error {code}: {text})")
        qualified = chosen.contract
        qualified.exchange = "SMART"
        instrument = instrument_from_contract(qualified, chosen.minTick or 0.01, chosen.longName or "")
        if instrument.con_id in self._watched or any(s.instrument.con_id == instrument.con_id for s in self._subs.values()):
            return instrument
        line = Line(instrument, qualified)
        if not self.lines.acquire("watch", instrument.con_id, reclaim=True):
            raise BrokerError(f"{instrument.key}: no market data line free ({self.lines.describe()})")
        self._watched[instrument.con_id] = line
        self._request(line)
        return instrument

    async def remove_symbol(self, symbol: str) -> bool:
        """Cancel the market data of ``symbol`` and drop it from the watchlist.

        Returns False if the symbol was not in the watchlist.
        """
        symbol = symbol.strip().upper()
        if symbol not in self._wanted:
            return False
        self._wanted.remove(symbol)
        sub = self._subs.pop(symbol, None)
        if sub is not None:
            self.lines.release("watchlist", sub.instrument.con_id)
            if sub.ticker is not None:
                self._by_ticker.pop(id(sub.ticker), None)
                if self.ib.isConnected():
                    with contextlib.suppress(Exception):
                        self.ib.cancelMktData(sub.contract)
            self.quotes.remove(sub.instrument.con_id)
        self._emit(WatchlistChanged(tuple(self._wanted)))
        return True

    # ------------------------------------------------------------------ lifecycle

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            self._set_state(
                ConnectionState.CONNECTING if self.connects == 0 and attempt == 0 else ConnectionState.RECONNECTING,
                f"{self.host}:{self.port}",
            )
            try:
                self._disconnected.clear()
                self._id_in_use = False
                await self._connect_once()
            except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
                detail = _describe_connect_error(exc, self.host, self.port)
                if self._id_in_use:
                    detail = self._client_id_taken()
                now = self.clock.now()
                near = self.restart is not None and (self.restart.in_window(now) or bool(self.restart.status(now)))
                if self.restart is not None and self.restart.in_window(now):
                    detail += " (daily gateway restart: expected)"
                delay = reconnect_delay(attempt, self.backoff, near_restart=near)
                attempt += 1
                self._set_state(ConnectionState.RECONNECTING, f"{detail}; retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self.connects += 1
            self.farms.reset()
            with contextlib.suppress(Exception):  # TWS does not keep the market data type
                self.ib.reqMarketDataType(self.market_data_type)
            try:
                await self._resubscribe()
            except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("resubscribe failed: %s", exc)
            for hook in list(self._connect_hooks):
                if not self.ib.isConnected():
                    break
                try:
                    await hook()
                except Exception as exc:  # a failing hook must not stop the connect loop
                    log.warning("connect hook %r failed", hook, exc_info=True)
                    self._emit(StatusEvent("error", f"after connect: {type(exc).__name__}: {exc}"))
            if self.ib.isConnected():
                self._set_state(ConnectionState.CONNECTED, f"{self.host}:{self.port}")
                await self._disconnected.wait()
            if self._stopping:
                break
            for sub in [*self._subs.values(), *self._watched.values()]:
                sub.ticker = None
            self._by_ticker.clear()
            lost = "connection to the gateway lost"
            if self.restart is not None and self.restart.in_window(self.clock.now()):
                lost += " (daily gateway restart: expected)"
            self._set_state(ConnectionState.RECONNECTING, lost)
            await asyncio.sleep(reconnect_delay(0, self.backoff, near_restart=True))

    async def _resubscribe(self) -> None:
        """Qualify what is not yet qualified, then subscribe every wanted symbol."""
        missing = [s for s in self._wanted if s not in self._subs]
        if missing:
            results = await asyncio.gather(*(self._qualify(s) for s in missing))
            for symbol, sub in zip(missing, results):
                if sub is None:
                    code, text = self._errors.pop(symbol, (200, "no security definition"))
                    self._wanted.remove(symbol)
                    self._emit(
                        StatusEvent(
                            "error", f"{symbol}: unknown symbol, removed from the watchlist (IB error {code}: {text})", code
                        )
                    )
            self._emit(WatchlistChanged(tuple(self._wanted)))
        for symbol in self._wanted:
            sub = self._subs.get(symbol)
            if sub is not None:
                self._subscribe(sub)
        for line in self._watched.values():
            self._request(line)

    async def _qualify(self, symbol: str) -> Line | None:
        contract = Stock(symbol, "SMART", "USD")
        details = await asyncio.wait_for(self.ib.reqContractDetailsAsync(contract), self.connect_timeout * 2)
        if not details:
            return None
        # prefer a stock/ETF listing; IB may return several listings of one symbol
        chosen = next((d for d in details if d.contract and d.contract.secType == "STK"), details[0])
        qualified = chosen.contract
        if qualified is None:
            return None
        qualified.exchange = "SMART"
        instrument = instrument_from_contract(qualified, chosen.minTick or 0.01, chosen.longName or "")
        sub = Line(instrument, qualified)
        self._subs[symbol] = sub
        return sub

    def _subscribe(self, sub: Line) -> None:
        if not self.lines.acquire("watchlist", sub.instrument.con_id, reclaim=True):
            text = f"{sub.instrument.symbol}: not subscribed, no market data line free ({self.lines.describe()})"
            self._emit(StatusEvent("error", text))
            return
        self._request(sub)

    def _request(self, sub: Line) -> None:
        self.quotes.ensure(sub.instrument)
        sub.book = [math.nan, math.nan, math.nan, math.nan]
        sub.requested_at = time.monotonic()
        ticker = self.ib.reqMktData(sub.contract, "", False, False)
        sub.ticker = ticker
        self._by_ticker[id(ticker)] = sub

    # ------------------------------------------------------------------ callbacks

    def _on_pending_tickers(self, tickers: set[Ticker]) -> None:
        """Hot path: translate a batch of ticker updates. No I/O here."""
        quotes = self.quotes
        sinks = self.sinks
        by_ticker = self._by_ticker
        now = self.clock.now()
        mono = time.monotonic()
        for ticker in tickers:
            sub = by_ticker.get(id(ticker))
            if sub is None:
                continue
            sub.last_tick = mono
            ticks = ticker.ticks
            con_id = sub.instrument.con_id
            symbol = sub.instrument.symbol
            records = tick_records(sub, ticks, symbol, now) if ticks else []
            quotes.update(
                con_id,
                time=now,  # received now on the broker's clock (ib_async's ticker.time is the wall clock)
                bid=ib_number(ticker.bid),
                ask=ib_number(ticker.ask),
                last=ib_number(ticker.last),
                bid_size=ib_number(ticker.bidSize),
                ask_size=ib_number(ticker.askSize),
                last_size=ib_number(ticker.lastSize),
                volume=ib_number(ticker.volume),
                close=ib_number(ticker.close),
                ticks=max(1, len(ticks)),
            )
            if records:
                self.ticks_recorded += len(records)
                for sink in sinks:
                    for rec in records:
                        sink(rec)

    async def _connect_once(self) -> None:
        """One ``connectAsync``, given up at once when the gateway refuses the handshake
        (error 326 or the socket closed before the API started), else after
        ``connect_timeout``. Raises ConnectionError, OSError or TimeoutError."""
        self._refused.clear()
        connect = asyncio.ensure_future(
            self.ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.connect_timeout,
                readonly=self.readonly,
            )
        )
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait({connect, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
        if not connect.done():
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
            self.ib.disconnect()
            raise ConnectionError("the gateway closed the connection during the handshake")
        connect.result()

    def _on_api_error(self, msg: str) -> None:
        if not self.ib.isConnected() or self.state is not ConnectionState.CONNECTED:
            self._refused.set()

    def _on_error(self, req_id: int, code: int, text: str, contract: Contract | None) -> None:
        if contract is not None and contract.symbol:
            self._errors[contract.symbol.upper()] = (code, text)
        if req_id > 0 and any(t.order.orderId == req_id for t in self.ib.trades()):
            return  # about an order: the order path reports it (a cancel's 202 is not an error)
        if code == CLIENT_ID_IN_USE:
            self._id_in_use = True
            self._refused.set()
            return  # said by the connect loop, with what it does about it
        if code == DATA_LOST:
            self._emit(StatusEvent("warning", f"IB {code}: {text}: requesting every line again", code, self.clock.now()))
            self._schedule_data_lost(f"IB {code}: market data lost")
            return
        if self.farms.on_code(code, text):
            self._emit(StatusEvent("warning", f"IB {code}: {text}: requesting every line again", code, self.clock.now()))
            self._schedule_data_lost(f"IB {code}: market data farm back")
            return
        if code in FARM_BROKEN:
            self._emit(StatusEvent("warning", f"IB {code}: {text}", code, self.clock.now()))
            return
        if code in _INFO_CODES or 2100 <= code < 2200:
            level = "info"
        elif code == 200:
            return  # reported by add_symbol / _resubscribe with the symbol named
        else:
            level = "error" if code < 1100 or code in (1100, 1101, 1300) else "warning"
        self._emit(StatusEvent(level, f"IB {code}: {text}", code, self.clock.now()))

    def _on_disconnected(self) -> None:
        self._disconnected.set()

    # ------------------------------------------------------------------ helpers

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        changed = state is not self.state
        self.state = state
        if changed or detail:
            self._emit(StateChanged(state, detail))

    # ------------------------------------------------------------------ feed health

    def market_lines(self) -> list[Line]:
        """The watchlist's and the watched contracts' lines (desk.broker.health)."""
        return [*self._subs.values(), *self._watched.values()]

    def rerequest(self, line: Line) -> None:
        """Cancel and request ``line`` again."""
        if not self.ib.isConnected():
            return
        if line.ticker is not None:
            self._by_ticker.pop(id(line.ticker), None)
            with contextlib.suppress(Exception):
                self.ib.cancelMktData(line.contract)
            line.ticker = None
        self._request(line)

    @property
    def stale_lines(self) -> set[int]:
        """conIds of the lines silent too long while their market is open."""
        return self.watchdog.stale

    def _market_open(self, line: Line, when) -> bool:
        if self.always_open:
            return True
        try:
            phase = nyse_calendar().phase(when)
        except ValueError:
            return False
        if line.instrument.sec_type == "STK":
            return phase.regular or phase.extended
        return phase.regular

    def _stale_after(self, line: Line) -> float:
        return self.stale_stock_seconds if line.instrument.sec_type == "STK" else self.stale_option_seconds

    def _schedule_data_lost(self, reason: str) -> None:
        if self._loss_pending:
            return
        self._loss_pending = True
        asyncio.get_running_loop().call_soon(self.data_lost, reason)

    def data_lost(self, reason: str) -> int:
        """Market data was lost at the gateway: request every line again (watchlist,
        watched contracts), re-send the market data type, and tell the other owners of
        lines (:class:`DataLost`). Returns how many lines this broker re-requested."""
        self._loss_pending = False
        if not self.ib.isConnected():
            return 0
        with contextlib.suppress(Exception):
            self.ib.reqMarketDataType(self.market_data_type)
        lines = self.market_lines()
        for line in lines:
            self.rerequest(line)
        self.resubscribes += 1
        self._emit(DataLost(reason))
        return len(lines)

    async def _watch(self, interval: float = 1.0) -> None:
        """Every ``interval`` s: the watchdog's check, and what it found said once."""
        while not self._stopping:
            await asyncio.sleep(interval)
            if self.state is not ConnectionState.CONNECTED or not self.ib.isConnected():
                continue
            report = self.watchdog.check()
            if report.feed_dead and not self._feed_dead_said:
                self._feed_dead_said = True
                self._emit(StatusEvent("warning", "no tick on any line while the market is open: requesting every line again"))
                self._emit(DataLost("every line silent"))
            elif not report.stale:
                self._feed_dead_said = False
            for line in report.died:
                self._emit(
                    StatusEvent(
                        "error",
                        f"{line.instrument.key}: no market data after {self.watchdog.max_retries} requests; the line stays dead",
                    )
                )

    def _client_id_taken(self) -> str:
        """What to do after error 326: retry later, or the next client id when allowed."""
        taken = self.client_id
        if self.client_id_fallback and self.client_id < self.base_client_id + self.client_id_fallback:
            self.client_id += 1
            return f"client id {taken} is in use at the gateway (IB 326); trying client id {self.client_id}"
        if self.client_id_fallback:
            self.client_id = self.base_client_id
        return f"client id {taken} is in use at the gateway (IB 326: a crashed client may still hold it)"

    def restart_status(self) -> str:
        """The daily restart countdown for the status bar (empty when none is near)."""
        return self.restart.status(self.clock.now()) if self.restart is not None else ""

    def notify(self, level: str, text: str) -> None:
        """Tell the listeners something the trader should see (a :class:`StatusEvent` of
        ``level`` info, warning or error), e.g. from the order path."""
        self._emit(StatusEvent(level, text))

    def _emit(self, event: BrokerEvent) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a listener must not break the broker
                log.exception("broker listener failed")


def _describe_connect_error(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"gateway at {host}:{port} refused the connection (is TWS / IB Gateway / desk sim running?)"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"gateway at {host}:{port} did not answer in time"
    text = str(exc) or type(exc).__name__
    return f"cannot connect to {host}:{port}: {text}"
