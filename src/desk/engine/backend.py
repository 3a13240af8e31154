"""What the terminal view reads and asks of an engine: :class:`DeskBackend` and the
panes' parts of it (:class:`ChainView`, :class:`OpportunitiesView`, :class:`TicketBackend`).

The terminal view (:mod:`desk.ui`) is written against these protocols only. Two
implementations: :class:`desk.engine.local.LocalDesk` (the engine's objects in the view's
own process: ``DESK_ENGINE_API=0``, and the UI tests on the real engine) and
:class:`desk.engine.view.RemoteDesk` (a view of an engine process: ``desk``,
``desk --attach``). Units as in :mod:`desk.engine.api`: prices dollars per share (a
combo's net per unit), times UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from desk.domain import Clock, ConnectionState, Instrument, QuoteStore, RecorderStats
from desk.domain.chain import ChainFlush, ChainRow
from desk.domain.intent import MarginImpact, OrderIntent
from desk.domain.opportunity import Tracked
from desk.domain.options import OptionQuote
from desk.domain.orders import OrderRow
from desk.domain.portfolio import AccountFigures, PortfolioGreeks
from desk.engine import api
from desk.risk.engine import RiskReport

__all__ = ["EMPTY_POSITIONS", "ChainView", "DeskBackend", "EngineRefused", "Listener", "OpportunitiesView", "TicketBackend"]

#: Positions of an account nothing is known of yet.
EMPTY_POSITIONS = api.Positions(rows=[], figures=AccountFigures(), greeks=PortfolioGreeks(), groups=[], labels={})


class EngineRefused(ConnectionError):
    """The engine a view started exited at once, refusing its settings (exit code 2):
    ``str()`` is the engine's one line, ``desk: invalid setting: ...`` (no password). The
    view stops and says it, as it would have before starting anything. Raised by
    ``start()`` when the engine exits before it answers; emitted to the listeners when it
    exits after the view attached (it checks ``DESK_DATABASE_URL`` while it connects)."""


#: A listener of the view's events: StateChanged, StatusEvent, WatchlistChanged.
Listener = Callable[[object], None]


class ChainView(Protocol):
    """The option chain as the chain pane reads it: the engine's chain (one underlying,
    one expiry, a strike window around the money), and :meth:`flush` with what changed
    since this view last looked. Prices dollars per share; ``days_to_expiry`` calendar
    days. Requests raise :class:`~desk.domain.chain.ChainError` (one line) when refused."""

    @property
    def underlying(self) -> Instrument | None: ...

    @property
    def expiry(self) -> str | None: ...

    @property
    def expiries(self) -> tuple[str, ...]: ...

    @property
    def rows(self) -> list[ChainRow]: ...

    @property
    def atm_strike(self) -> float: ...

    @property
    def spot(self) -> float: ...

    @property
    def forward(self) -> float: ...

    @property
    def loading(self) -> bool: ...

    @property
    def message(self) -> str: ...

    @property
    def message_level(self) -> str: ...

    @property
    def message_seq(self) -> int: ...

    @property
    def layout_seq(self) -> int: ...

    @property
    def spec(self) -> object:
        """The strike window; ``str()`` is ``20 strikes`` or ``±10 %``."""
        ...

    def days_to_expiry(self) -> float: ...

    def quote(self, instrument: Instrument | None) -> OptionQuote | None: ...

    def flush(self) -> ChainFlush: ...

    async def set_underlying(self, instrument: Instrument) -> None: ...

    async def set_expiry(self, expiry: str) -> None: ...

    def widen(self) -> None: ...

    def narrow(self) -> None: ...


class OpportunitiesView(Protocol):
    """The engine's live arbitrage opportunities as the opportunities pane reads them."""

    @property
    def enabled(self) -> bool:
        """The engine runs a scanner (the pane is shown)."""
        ...

    @property
    def seq(self) -> int:
        """Changes whenever :attr:`tracked` changed."""
        ...

    @property
    def simulated(self) -> bool: ...

    @property
    def tracked(self) -> list[Tracked]:
        """Live opportunities by total edge (largest first), then gone ones."""
        ...

    def get(self, key: str) -> Tracked | None: ...


class TicketBackend(Protocol):
    """What the order ticket needs from the engine. Prices dollars per share (a combo's
    net per unit). :meth:`preview` answers at once: the engine's
    :class:`~desk.risk.RiskReport` of the intent, or ``None`` while it is being asked
    (then the function given to :meth:`on_update` is called when it arrives); it raises
    :class:`~desk.domain.intent.RiskInputError` when the intent cannot be evaluated."""

    @property
    def live(self) -> bool:
        """Orders need the symbol typed to confirm (live mode)."""
        ...

    def quote(self, instrument: Instrument) -> tuple[float, float, float]:
        """(bid, ask, last), ``nan`` unknown."""
        ...

    def delta(self, instrument: Instrument) -> float:
        """Delta per share (1 for a stock, the chain's for an option, ``nan`` unknown)."""
        ...

    def preview(self, intent: OrderIntent, margin: MarginImpact | None) -> RiskReport | None: ...

    async def what_if(self, intent: OrderIntent) -> MarginImpact | None: ...

    async def submit(
        self, intent: OrderIntent, confirmation: str | None, margin: MarginImpact | None = None
    ) -> api.PlaceReport: ...

    def gate_summary(self) -> tuple[str, bool]:
        """(one line for the ticket's gate row, orders possible now)."""
        ...

    def on_update(self, fn: Callable[[], None] | None) -> None: ...


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

    async def modify(
        self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None, quantity: int | None = None
    ) -> api.PlaceReport: ...

    async def kill_switch(self, action: api.KillAction, reason: str) -> api.KillSwitchReport: ...

    @property
    def positions_seq(self) -> object:
        """Changes whenever :meth:`positions` may have changed."""
        ...

    def positions(self) -> api.Positions: ...

    @property
    def chains(self) -> ChainView | None:
        """The engine's option chain as this view sees it (``None``: the engine has none)."""
        ...

    @property
    def opportunities(self) -> OpportunitiesView | None:
        """The engine's live arbitrage opportunities (``None``: the engine scans none)."""
        ...

    def ticket_backend(self) -> TicketBackend:
        """What the order ticket needs from the engine."""
        ...
