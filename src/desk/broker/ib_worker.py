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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ib_async import IB, Contract, Stock, Ticker

from desk.broker.lines import LineBudget
from desk.broker.ticks import Line, ib_number, tick_records
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


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The connection state changed; ``detail`` says why (e.g. the error text)."""

    state: ConnectionState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WatchlistChanged:
    """Rows were added to or removed from :attr:`Broker.watchlist`."""

    symbols: tuple[str, ...]


BrokerEvent = StateChanged | WatchlistChanged | StatusEvent
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
        self.ib = IB()
        self.ib.pendingTickersEvent += self._on_pending_tickers
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected

    # ------------------------------------------------------------------ public API

    @property
    def watchlist(self) -> list[Instrument]:
        """Qualified watchlist rows in the user's order."""
        return [self._subs[s].instrument for s in self._wanted if s in self._subs]

    @property
    def wanted_symbols(self) -> list[str]:
        return list(self._wanted)

    def add_listener(self, fn: Callable[[BrokerEvent], None]) -> None:
        self._listeners.append(fn)

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
                await self.ib.connectAsync(
                    self.host,
                    self.port,
                    clientId=self.client_id,
                    timeout=self.connect_timeout,
                    readonly=self.readonly,
                )
            except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
                detail = _describe_connect_error(exc, self.host, self.port)
                delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                attempt += 1
                self._set_state(ConnectionState.RECONNECTING, f"{detail}; retrying in {delay:g} s")
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self.connects += 1
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
            for sub in self._subs.values():
                sub.ticker = None
            self._by_ticker.clear()
            self._set_state(ConnectionState.RECONNECTING, "connection to the gateway lost")
            await asyncio.sleep(self.backoff[0])

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
                        StatusEvent("error", f"{symbol}: unknown symbol, removed from the watchlist (IB error {code}: {text})", code)
                    )
            self._emit(WatchlistChanged(tuple(self._wanted)))
        for symbol in self._wanted:
            sub = self._subs.get(symbol)
            if sub is not None:
                self._subscribe(sub)

    async def _qualify(self, symbol: str) -> Line | None:
        contract = Stock(symbol, "SMART", "USD")
        details = await asyncio.wait_for(self.ib.reqContractDetailsAsync(contract), self.connect_timeout * 2)
        if not details:
            return None
        # prefer a stock/ETF listing; IB may return several listings of one symbol
        chosen = next((d for d in details if d.contract and d.contract.secType == "STK"), details[0])
        qualified = chosen.contract
        assert qualified is not None
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
        self.quotes.ensure(sub.instrument)
        sub.book = [math.nan, math.nan, math.nan, math.nan]
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
        for ticker in tickers:
            sub = by_ticker.get(id(ticker))
            if sub is None:
                continue
            ticks = ticker.ticks
            con_id = sub.instrument.con_id
            symbol = sub.instrument.symbol
            records = tick_records(sub, ticks, symbol, now) if ticks else []
            quotes.update(
                con_id,
                time=ticker.time or None,
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

    def _on_error(self, req_id: int, code: int, text: str, contract: Contract | None) -> None:
        if contract is not None and contract.symbol:
            self._errors[contract.symbol.upper()] = (code, text)
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

