"""Shared pieces of the UI tests: the fake runtime, settings (imported by
name, so no test depends on which conftest pytest put first on sys.path)."""


from __future__ import annotations

from datetime import UTC, datetime


from desk.broker import BrokerError
from desk.domain import ConnectionState, FrozenClock, Instrument, QuoteStore, RecorderStats
from desk.domain.events import StateChanged, WatchlistChanged
from desk.engine.api import Positions, TradingStatus
from desk.engine.backend import EMPTY_POSITIONS
from desk.settings import Mode, Settings

#: 09:45:00 ET (EDT, UTC-4) on Tuesday 2026-03-10.
FROZEN_AT = datetime(2026, 3, 10, 13, 45, 0, tzinfo=UTC)

UNIVERSE = {
    sym: Instrument(sym, con_id=1000 + i, primary_exchange="ARCA" if i < 3 else "NASDAQ")
    for i, sym in enumerate(["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC"])
}

#: the watchlist of a FakeRuntime built without symbols
SYMBOLS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA"]


class FakeBroker:
    """The UI-facing surface of desk.broker.Broker over a fixed universe."""

    def __init__(self, quotes: QuoteStore, symbols: list[str], universe: dict[str, Instrument] | None = None) -> None:
        self.universe = universe if universe is not None else UNIVERSE
        self.quotes = quotes
        self.state = ConnectionState.DISCONNECTED
        self.host = "127.0.0.1"
        self.port = 4002
        self._listeners = []
        self._rows: list[Instrument] = []
        self.calls: list[tuple[str, str]] = []
        for symbol in symbols:
            self._rows.append(self.universe[symbol])
            quotes.ensure(self.universe[symbol])

    @property
    def watchlist(self) -> list[Instrument]:
        return list(self._rows)

    def add_listener(self, fn) -> None:
        self._listeners.append(fn)

    def emit(self, event) -> None:
        for fn in self._listeners:
            fn(event)

    def set_state(self, state: ConnectionState, detail: str = "") -> None:
        self.state = state
        self.emit(StateChanged(state, detail))

    async def add_symbol(self, symbol: str) -> Instrument:
        self.calls.append(("add", symbol))
        symbol = symbol.strip().upper()
        if symbol not in self.universe:
            raise BrokerError(
                f"{symbol}: unknown symbol (IB error 200: No security definition has been found for the request)"
            )
        instrument = self.universe[symbol]
        if instrument in self._rows:
            raise BrokerError(f"{symbol} is already in the watchlist")
        self._rows.append(instrument)
        self.quotes.ensure(instrument)
        self.emit(WatchlistChanged(tuple(i.symbol for i in self._rows)))
        return instrument

    async def remove_symbol(self, symbol: str) -> bool:
        self.calls.append(("remove", symbol))
        for instrument in self._rows:
            if instrument.symbol == symbol:
                self._rows.remove(instrument)
                self.quotes.remove(instrument.con_id)
                self.emit(WatchlistChanged(tuple(i.symbol for i in self._rows)))
                return True
        return False


class FakeRecorder:
    def __init__(self) -> None:
        self.stats = RecorderStats(received=1500, written=1234, queued=56)


class FakeRuntime:
    """A :class:`desk.engine.view.DeskBackend` over a fixed universe and fixed quotes, for
    the snapshot and widget tests that need the same frame every run (no order path: the
    trading tests run on the real engine, ``trading_stack``). ``start`` connects the fake
    broker at once; ``chains`` / ``opportunities`` may be set to the real chain manager or
    scanner over recorded data."""

    def __init__(
        self, settings: Settings, *, clock=None, symbols=None, universe=None, recorder=True, start_error=None
    ) -> None:
        self.settings = settings
        self.clock = clock or FrozenClock(FROZEN_AT)
        self.quotes = QuoteStore()
        self.broker = FakeBroker(self.quotes, symbols if symbols is not None else list(SYMBOLS), universe)
        self.recorder = FakeRecorder() if recorder else None
        self.start_error = start_error
        self.started = 0
        self.stopped = 0
        self.chains = None
        self.opportunities = None

    @property
    def endpoint(self) -> str:
        return f"{self.broker.host}:{self.broker.port}"

    @property
    def watchlist(self) -> list[Instrument]:
        return self.broker.watchlist

    @property
    def state(self) -> ConnectionState:
        return self.broker.state

    @property
    def mode(self) -> str:
        return self.settings.mode.value

    @property
    def stale_lines(self) -> set[int]:
        return set()

    def restart_status(self) -> str:
        return ""

    @property
    def ticks_seen(self) -> int:
        return self.quotes.ticks_seen

    def recorder_stats(self) -> RecorderStats | None:
        return self.recorder.stats if self.recorder is not None else None

    def add_listener(self, fn) -> None:
        self.broker.add_listener(fn)

    async def add_symbol(self, symbol: str) -> Instrument:
        return await self.broker.add_symbol(symbol)

    async def remove_symbol(self, symbol: str) -> bool:
        return await self.broker.remove_symbol(symbol)

    #: None: the app's "not applied yet" too, so the blotter and positions panes stay as
    #: they start (no order path, no account here)
    orders_seq = None
    order_rows: dict = {}
    positions_seq = None

    def trading(self) -> TradingStatus:
        return TradingStatus(gate_line="fake engine: no order path", gate_ok=False)

    def positions(self) -> Positions:
        return EMPTY_POSITIONS

    async def cancel(self, order_ref: str) -> None:
        raise RuntimeError("no order path in this test")

    async def cancel_all(self) -> int:
        raise RuntimeError("no order path in this test")

    async def modify(self, order_ref: str, **change):
        raise RuntimeError("no order path in this test")

    async def kill_switch(self, action, reason):
        raise RuntimeError("no order path in this test")

    def ticket_backend(self):
        raise RuntimeError("no order path in this test (the ticket tests run on the real engine)")

    async def start(self) -> None:
        self.started += 1
        if self.start_error is not None:
            raise self.start_error
        self.broker.set_state(ConnectionState.CONNECTED, self.endpoint)

    async def stop(self) -> None:
        self.stopped += 1
        self.broker.set_state(ConnectionState.DISCONNECTED, "stopped")


def make_settings(**overrides) -> Settings:
    base = dict(mode=Mode.SIM, record=False, theme="desk-dark", _env_file=None)
    base.update(overrides)
    return Settings(**base)


def desk_app(runtime, **kwargs):
    """The desk app as the CLI builds it: on a real engine (:class:`desk.runtime.Runtime`,
    wrapped in :class:`desk.engine.local.LocalDesk`) or on a :class:`FakeRuntime`, with
    frames made deterministic (no cursor blink, no animations)."""
    from desk.engine.local import LocalDesk
    from desk.runtime import Runtime
    from desk.ui import create_app

    desk = LocalDesk(runtime) if isinstance(runtime, Runtime) else runtime
    return create_app(desk, settings=runtime.settings, cursor_blink=False, animations=False, **kwargs)
