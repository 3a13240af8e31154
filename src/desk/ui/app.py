"""The desk's Textual app, built by one factory for the CLI and for the tests.

``create_app(desk)`` returns a :class:`DeskApp` on a
:class:`~desk.engine.backend.DeskBackend`: everything the view reads from and asks of the
engine (:class:`desk.engine.local.LocalDesk` when the engine runs in this process,
:class:`desk.engine.view.RemoteDesk` in a view attached to an engine process).
:mod:`desk.cli` builds the backend (``desk``, ``desk --attach``) and runs the app.

Rules kept here (design.md):

* the first frame paints at once: ``desk.start()`` runs in a worker;
* store, then flush: the backend only writes its QuoteStore; a 0.15 s timer drains the
  dirty conIds once and hands them to the panes, which repaint only those rows;
* engine events (connection state, status messages, watchlist changes: a handful a
  minute, never per tick) arrive as one message each, posted thread-safely;
* quitting stops the backend (an in-process engine flushes its recorder; an attached view
  only detaches: the engine keeps recording) before the app exits;
* errors from the engine or the gateway are shown as notifications and in the status
  bar, never as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from desk.domain import Clock, ConnectionState, StatusEvent
from desk.domain.events import StateChanged, WatchlistChanged
from desk.engine.backend import EngineRefused
from desk.settings import Mode, Settings
from desk.ui.messages import ComboSelected, InstrumentSelected
from desk.ui.meters import RateMeter
from desk.ui.screens.add_symbol import AddSymbolScreen
from desk.ui.screens.help import HelpScreen, HelpSection, binding_rows
from desk.ui.themes import (
    DEFAULT_THEME,
    builtin_themes,
    desk_variable_defaults,
    load_themes,
    project_themes_dir,
)
from desk.ui.screens.events import EventLog, EventLogScreen
from desk.ui.screens.modify import ModifyScreen
from desk.ui.trading import TradingActions, one_line
from desk.ui.widgets.blotter import Blotter
from desk.ui.widgets.chain import ChainPane
from desk.ui.widgets.positions import PositionsPane, PositionTable
from desk.ui.widgets.ticket import TicketForm
from desk.ui.widgets.opportunities import OpportunitiesPane
from desk.ui.widgets.status_bar import StatusBar
from desk.ui.widgets.watchlist import Watchlist

if TYPE_CHECKING:
    from desk.engine.backend import DeskBackend

log = logging.getLogger(__name__)

#: Seconds between quote flushes (store -> panes): 0.15 s is ~6.7 Hz.
FLUSH_INTERVAL = 0.15
#: Seconds between status bar refreshes (clock, ticks/s, recorder counters).
STATUS_INTERVAL = 1.0
#: Seconds between refreshes of the blotter, positions and kill switch badge.
TRADING_INTERVAL = 0.25
#: Seconds ``desk.stop()`` may take on quit before the app exits anyway.
STOP_TIMEOUT = 15.0


class DeskApp(TradingActions, App[int]):
    """The desk: panes in ``#main``, a status bar and the key footer.

    Build it with :func:`create_app`. ``desk`` is the engine as the view sees it
    (:class:`~desk.engine.backend.DeskBackend`), ``settings`` the view's own (theme, keys);
    ``clock`` (default: the backend's) drives the status bar clock and the ticks/s meter,
    so a :class:`~desk.domain.FrozenClock` freezes both.
    """

    CSS_PATH = "desk.tcss"
    TITLE = "desk"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="desk.help", tooltip="Show every key binding"),
        Binding("ctrl+t", "change_theme", "Theme", show=False, id="desk.theme", tooltip="Pick a colour theme"),
        Binding("q", "quit", "Quit", id="desk.quit", tooltip="Stop the desk (flushes the recorder) and quit"),
        Binding(
            "1", "focus_pane('watchlist')", "Watchlist", show=False, id="desk.focus_watchlist", tooltip="Focus the watchlist"
        ),
        Binding("2,c", "focus_pane('chain')", "Chain", show=False, id="desk.focus_chain", tooltip="Focus the option chain"),
        Binding("3", "focus_pane('blotter')", "Orders", show=False, id="desk.focus_blotter", tooltip="Focus the orders blotter"),
        Binding(
            "4", "focus_pane('positions')", "Positions", show=False, id="desk.focus_positions", tooltip="Focus positions and P&L"
        ),
        Binding(
            "b",
            "ticket('BUY')",
            "Buy",
            id="desk.buy",
            tooltip="Order ticket: buy the selected instrument (watchlist row or chain contract)",
        ),
        Binding(
            "s,S",
            "ticket('SELL')",
            "Sell",
            id="desk.sell",
            tooltip="Order ticket: sell the selected instrument (S in the chain, where s is the smile)",
        ),
        Binding(
            "ctrl+k",
            "kill_switch",
            "Kill",
            id="desk.kill",
            tooltip="Kill switch: cancel every open order (reqGlobalCancel) and block new ones",
        ),
        Binding(
            "ctrl+r",
            "reset_kill_switch",
            "Reset kill",
            show=False,
            id="desk.kill_reset",
            tooltip="Reset the kill switch or reduce-only (asks to confirm)",
        ),
        Binding(
            "ctrl+e",
            "reduce_only",
            "Reduce-only",
            show=False,
            id="desk.reduce_only",
            tooltip="Reduce-only: cancel working orders that add to a position; only reducing orders pass",
        ),
        Binding(
            "ctrl+l",
            "event_log",
            "Events",
            show=False,
            id="desk.events",
            tooltip="Event log: every message of the gateway, the feed and the orders, with its time",
        ),
        Binding(
            "5,o",
            "focus_pane('opportunities')",
            "Opportunities",
            show=False,
            id="desk.focus_opportunities",
            tooltip="Focus the arbitrage opportunities",
        ),
    ]

    #: Keys of the command palette, shown in the help (Textual binds it itself).
    PALETTE_HELP: ClassVar[list[tuple[str, str]]] = [
        ("ctrl+p", "Command palette: themes, add / remove symbol, help, quit"),
        ("ctrl+q", "Quit from anywhere, even a text field (same as q)"),
    ]

    @dataclass
    class BrokerNotice(Message):
        """One broker event (StateChanged, StatusEvent or WatchlistChanged) for the UI."""

        event: Any

    def __init__(
        self,
        desk: DeskBackend,
        *,
        settings: Settings,
        clock: Clock | None = None,
        cursor_blink: bool = True,
        animations: bool = True,
    ) -> None:
        super().__init__()
        self.desk = desk
        self.settings: Settings = settings
        self.clock: Clock = clock or desk.clock
        self.cursor_blink = cursor_blink
        if not animations:
            self.animation_level = "none"
        self._rate = RateMeter()
        self._stopped = False
        self.fatal: str | None = None  # the engine refused the settings: `desk` prints it, exits 2
        self._flushed_at = float("-inf")  # time.monotonic() of the last quote flush
        self._stopping = False
        self._startup_warnings: list[str] = []
        self._workspace_ready = False
        self._install_themes()
        #: the watchlist pane (kept as an attribute: timers may fire while the DOM closes)
        self.watchlist = Watchlist(desk.quotes, desk.watchlist, id="watchlist", classes="pane")
        self.watchlist.border_title = "Watchlist"
        #: the option chain pane (follows the watchlist selection)
        self.chain = ChainPane(
            desk.chains,
            clock=self.clock,
            stale_after=self.settings.chain_stale_seconds,
            id="chain",
            classes="pane",
        )
        self.chain.border_title = "Option chain"
        #: the arbitrage opportunities pane (shown when the engine runs a live scanner here)
        self.opportunities = OpportunitiesPane(desk.opportunities, clock=self.clock, id="opportunities", classes="pane")
        self.opportunities.border_title = "Opportunities"
        self.opportunities.display = self.opportunities.live is not None and self.opportunities.live.enabled
        self._chain_message_seq = 0
        self._chain_message = ""
        #: the status bar
        self.status_bar = StatusBar(id="status")
        #: orders blotter and positions / P&L (fed from the backend's orders and positions)
        self.blotter = Blotter(id="blotter", classes="pane")
        self.blotter.border_title = "Orders"
        self.positions = PositionsPane(id="positions", classes="pane")
        self.positions.border_title = "Positions & P&L"
        self._orders_seq: object = None
        self._account_seq: object = None
        self._mode: Mode | None = None
        #: every message the status bar showed (Ctrl+L)
        self.events = EventLog()
        #: the last limit price asked for by +/- per orderRef (quick presses add up)
        self._asked_limit: dict[str, float] = {}

    # ------------------------------------------------------------------ themes

    def _install_themes(self) -> None:
        """Register desk's themes (code, then ``themes/``, then ``DESK_THEMES_DIR``) and pick one."""
        for theme in builtin_themes():
            self.register_theme(theme)
        errors: list[str] = []
        extra = self.settings.themes_dir
        if extra is not None and not extra.expanduser().is_dir():
            errors.append(f"DESK_THEMES_DIR: {extra} is not a folder; using the built-in themes")
        for theme in load_themes([project_themes_dir(), extra], errors=errors):
            self.register_theme(theme)
        self._startup_warnings.extend(f"theme file skipped: {e}" for e in errors)
        wanted = self.settings.theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self._startup_warnings.append(f"DESK_THEME: unknown theme {wanted!r}; using {DEFAULT_THEME}")
            self.theme = DEFAULT_THEME

    def get_css_variables(self) -> dict[str, str]:
        """Textual's variables plus desk's (``$price-up``...), defaulted for themes without them."""
        variables = super().get_css_variables()
        missing = {k: v for k, v in desk_variable_defaults(variables).items() if k not in variables}
        if missing:
            variables = {**variables, **missing}
            self.theme_variables = variables
        return variables

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # #main holds the panes. Today the watchlist; the option chain, order ticket,
        # positions and arbitrage panes will be added here as they are built.
        with Container(id="main"):
            yield self.watchlist
            yield self.chain
            yield self.opportunities
            with Horizontal(id="trading"):
                yield self.blotter
                yield self.positions
        yield self.status_bar
        yield Footer()

    #: from TINY_ROWS to below SHORT_ROWS rows the panes take their short heights
    #: (desk.tcss, ``-short``); under TINY_ROWS the watchlist keeps its rows and the panes
    #: below it are cut (``z`` maximizes one)
    SHORT_ROWS = 44
    TINY_ROWS = 24

    def _set_short(self, height: int) -> None:
        self.set_class(self.TINY_ROWS <= height < self.SHORT_ROWS, "-short")

    def on_resize(self, event: events.Resize) -> None:
        self._set_short(event.size.height)

    def on_mount(self) -> None:
        self._set_short(self.size.height)
        self._show_mode()
        self._workspace_ready = True  # theme changes from here on are the user's
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        status = self.status_bar
        status.set_connection(self.desk.state)
        self._refresh_status()
        self.watchlist.focus()
        for warning in self._startup_warnings:
            self._report(warning, "warning")
        self.desk.add_listener(self._on_broker_event)
        self.desk.quotes.on_dirty = self._quotes_dirty
        self.set_interval(FLUSH_INTERVAL, self._flush_quotes, name="flush-quotes")
        self.set_interval(STATUS_INTERVAL, self._refresh_status, name="status-bar")
        self.set_interval(TRADING_INTERVAL, self._refresh_trading, name="trading-panes")
        self._start_engine()

    def _show_mode(self) -> None:
        """The trading mode in the status bar and as a CSS class (``-mode-live``...): the
        engine's once it is known, the view's settings before."""
        mode = Mode(self.desk.mode) if self.desk.mode else self.settings.mode
        if mode is self._mode:
            return
        if self._mode is not None:
            self.set_class(False, f"-mode-{self._mode.value}")
        self._mode = mode
        self.set_class(True, f"-mode-{mode.value}")
        self.status_bar.set_mode(mode)

    # ------------------------------------------------------------------ engine

    @work(group="runtime", exclusive=True, exit_on_error=False, description="start the engine: simulator, recorder, broker")
    async def _start_engine(self) -> None:
        status = self.status_bar
        status.set_message(f"starting ({(self.desk.mode or self.settings.mode.value)} mode)…")
        try:
            await self.desk.start()
        except EngineRefused as exc:  # invalid settings: the desk stops and cli says the line
            self.fatal = str(exc)
            self.exit(return_code=2)
            return
        except Exception as exc:  # shown to the user, never a traceback on screen
            log.warning("the engine failed to start", exc_info=True)
            self._report(f"could not start: {one_line(exc)}", "error")
            return
        self._show_mode()
        self._sync_watchlist()
        self._refresh_status()

    async def _stop_engine(self) -> None:
        """Stop the backend once (flushing the recorder), bounded by :data:`STOP_TIMEOUT`."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await asyncio.wait_for(self.desk.stop(), STOP_TIMEOUT)
        except Exception:
            log.warning("the engine did not stop cleanly", exc_info=True)

    async def action_quit(self) -> None:
        """Stop the backend (flush the recorder), then exit with code 0."""
        if self._stopping:
            return
        self._stopping = True
        self.status_bar.set_message("stopping: flushing the recorder…")
        self._quit_after_stop()

    @work(group="runtime", exclusive=True, exit_on_error=False, description="stop the engine and quit")
    async def _quit_after_stop(self) -> None:
        await self._stop_engine()
        self.exit(0)

    async def on_unmount(self) -> None:
        # Exits that bypass action_quit (ctrl+q, errors) still stop the backend here:
        # the event loop is alive while the app's Unmount is handled.
        await self._stop_engine()

    # ------------------------------------------------------------------ broker events

    def _on_broker_event(self, event: object) -> None:
        # Called by the broker (on this loop today; post_message is thread-safe should
        # a broker ever call from another thread). Never touches widgets directly.
        self.post_message(self.BrokerNotice(event))

    def on_desk_app_broker_notice(self, message: BrokerNotice) -> None:
        if not self.is_running:
            return
        event = message.event
        if isinstance(event, StateChanged):
            self.status_bar.set_connection(event.state)
            self._refresh_status()
            if event.detail:
                level = "warning" if event.state is ConnectionState.RECONNECTING else "info"
                # the status bar shows the state beside the message; the event log says it
                text = event.detail if event.state is not ConnectionState.CONNECTED else f"connected to {event.detail}"
                logged = text if event.state is ConnectionState.CONNECTED else f"{event.state.value}: {text}"
                self.events.add(self.clock.now(), level, logged)
                self.status_bar.set_message(text, level)
            if event.state is ConnectionState.CONNECTED:
                self._sync_watchlist()
        elif isinstance(event, StatusEvent):
            self._report(event.text, event.level)
        elif isinstance(event, WatchlistChanged):
            self._sync_watchlist()
        elif isinstance(event, EngineRefused):  # the engine checked a setting after attach
            self.fatal = str(event)
            self.exit(return_code=2)

    def warn_at_start(self, text: str) -> None:
        """Say ``text`` (one line) as a warning once the desk is on screen."""
        self._startup_warnings.append(text)

    def _save_workspace(self) -> None:
        """Keep the watchlist and theme for the next run (desk.workspace); a failure is said
        once in the status bar and the event log."""
        from desk.workspace import Workspace, default_workspace_file, load_workspace, save_workspace

        path = self.settings.workspace_file or default_workspace_file()
        saved, _ = load_workspace(path)
        ws = Workspace([i.symbol for i in self.desk.watchlist], self.theme, saved.extra)
        problem = save_workspace(path, ws)
        if problem:
            self._report(problem, "warning")

    def _on_theme_changed(self, theme: object) -> None:
        if self.is_running and self._workspace_ready:
            self._save_workspace()

    def _sync_watchlist(self) -> None:
        """Show the engine's current watchlist rows (idempotent)."""
        rows = self.desk.watchlist
        watchlist = self.watchlist
        if [i.con_id for i in watchlist.instruments] != [i.con_id for i in rows]:
            watchlist.set_instruments(rows)

    def _report(self, text: str, level: str = "info") -> None:
        """Put ``text`` in the status bar and the event log; errors and warnings also as
        notifications."""
        self.events.add(self.clock.now(), level, text)
        self.status_bar.set_message(text, level)
        if level == "error":
            self.notify(text, title="Error", severity="error", timeout=8)
        elif level == "warning":
            self.notify(text, title="Warning", severity="warning", timeout=6)

    # ------------------------------------------------------------------ timers

    def _quotes_dirty(self) -> None:
        """A quote changed after a quiet spell: flush now unless a flush ran within
        :data:`FLUSH_INTERVAL` (then the timer's next tick does), so the first quote
        paints as it arrives and a busy feed still repaints at most about twice per interval."""
        if time.monotonic() - self._flushed_at >= FLUSH_INTERVAL:
            self.call_next(self._flush_quotes)

    def _flush_quotes(self) -> None:
        """Drain the quote store's dirty set once and repaint those rows in every pane."""
        if not self.is_running:
            return
        self._flushed_at = time.monotonic()
        dirty = self.desk.quotes.drain_dirty()
        self.watchlist.set_stale(self.desk.stale_lines)
        self.watchlist.apply_dirty(dirty)
        chains = self.chain.chains
        if chains is not None:
            self.chain.apply(chains.flush())
            if chains.message_seq != self._chain_message_seq:
                self._chain_message_seq = chains.message_seq
                if chains.message:
                    self._report(chains.message, chains.message_level)
                elif self.status_bar.message == self._chain_message:
                    self.status_bar.set_message("")  # the chain's news is over (loaded, fits again)
                self._chain_message = chains.message
        live = self.opportunities.live
        if live is not None:  # the engine scans; the pane shows what it found
            shown = live.enabled
            if self.opportunities.display != shown:
                self.opportunities.display = shown
            self.opportunities.refresh_rows()

    @on(InstrumentSelected)
    def _instrument_selected(self, message: InstrumentSelected) -> None:
        """The chain follows the watchlist's selection (stocks and ETFs; options are the ticket's)."""
        self.chain.show_underlying(message.instrument)

    @on(ComboSelected)
    def _combo_selected(self, message: ComboSelected) -> None:
        """An opportunity to trade: the order ticket opens with the combo."""
        self.open_combo_ticket(message)

    # ------------------------------------------------------------------ trading (the actions: desk.ui.trading)

    @on(PositionsPane.CloseRequested)
    def _close_position(self, message: PositionsPane.CloseRequested) -> None:
        row = message.row
        action = "SELL" if row.quantity > 0 else "BUY"
        self.open_ticket(row.instrument, action, int(abs(row.quantity)), "Closing ticket")

    @on(Blotter.CancelRequested)
    def _cancel_order(self, message: Blotter.CancelRequested) -> None:
        self.cancel_order(message.order_ref)

    @on(Blotter.CancelAllRequested)
    def _cancel_all(self) -> None:
        self.cancel_all_orders()

    @on(Blotter.ModifyRequested)
    def _modify_order(self, message: Blotter.ModifyRequested) -> None:
        """Move a working LMT / STP LMT order's limit by ticks (through the gate and every
        check, see :meth:`desk.orders.OrderService.modify`)."""
        row = self.desk.order_rows.get(message.order_ref)
        if row is None or not row.working or row.order_type not in ("LMT", "STP LMT"):
            self._report("modify: only working limit orders can be moved", "warning")
            return
        tick = 0.01 if row.is_combo else (row.instrument.min_tick or 0.01)
        # from the last price asked for, so quick presses add up while the gateway answers
        base = self._asked_limit.get(message.order_ref, row.limit_price)
        price = round(round(base / tick + message.ticks) * tick, 10)
        self._asked_limit[message.order_ref] = price
        self.modify_order(message.order_ref, limit_price=price)

    @on(Blotter.EditRequested)
    def _edit_order(self, message: Blotter.EditRequested) -> None:
        """Open the modify dialog on a working order (type its price and quantity)."""
        row = self.desk.order_rows.get(message.order_ref)
        if row is None or not row.working:
            self._report("modify: only working orders can be changed", "warning")
            return

        def done(change) -> None:
            if change is not None:
                self.modify_order(row.order_ref, **change)

        self.push_screen(ModifyScreen(row), done)

    def action_focus_pane(self, pane: str) -> None:
        """Focus the ``watchlist``, ``chain``, ``blotter`` or ``positions`` pane."""
        if pane == "blotter":
            self.blotter.focus()
            return
        if pane == "positions":
            self.positions.table.focus()
            return
        target = {"watchlist": self.watchlist, "chain": self.chain, "opportunities": self.opportunities}.get(pane)
        if target is not None:
            target.focus()

    def _refresh_status(self) -> None:
        if not self.is_running or not self.status_bar.is_mounted:
            return
        status = self.status_bar
        status.set_clock(self.clock.now())
        desk = self.desk
        status.set_feed(len(desk.stale_lines), desk.restart_status())
        status.set_rate(self._rate.sample(desk.ticks_seen, self.clock.time()))
        status.set_recorder(desk.recorder_stats())
        status.set_endpoint(desk.endpoint)

    # ------------------------------------------------------------------ watchlist actions

    def action_add_symbol(self) -> None:
        """Ask for a symbol, then add it through the broker."""

        def added(symbol: str | None) -> None:
            if symbol:
                self.add_symbol(symbol)

        self.push_screen(AddSymbolScreen(cursor_blink=self.cursor_blink), added)

    @work(group="broker", exit_on_error=False, description="add a symbol to the watchlist")
    async def add_symbol(self, symbol: str) -> None:
        """Add ``symbol`` through the engine; on failure report it and change nothing."""
        self.status_bar.set_message(f"adding {symbol}…")
        try:
            instrument = await self.desk.add_symbol(symbol)
        except Exception as exc:  # the gateway's or the engine's one line (it names the symbol)
            log.info("add_symbol(%r) failed: %s", symbol, exc)
            self._report(one_line(exc), "error")
            return
        self._sync_watchlist()
        self.watchlist.select_instrument(instrument.con_id)
        self._report(f"added {instrument.key}")
        self._save_workspace()

    @on(Watchlist.RemoveRequested)
    def _remove_requested(self, message: Watchlist.RemoveRequested) -> None:
        self.remove_symbol(message.instrument.symbol)

    def action_remove_highlighted(self) -> None:
        """Remove the watchlist's highlighted symbol."""
        if (instrument := self.watchlist.highlighted) is not None:
            self.remove_symbol(instrument.symbol)

    @work(group="broker", exit_on_error=False, description="remove a symbol from the watchlist")
    async def remove_symbol(self, symbol: str) -> None:
        """Remove ``symbol`` through the engine and say so in the status bar."""
        try:
            removed = await self.desk.remove_symbol(symbol)
        except Exception as exc:
            log.warning("remove_symbol(%r) failed", symbol, exc_info=True)
            self._report(f"{symbol}: {one_line(exc)}", "error")
            return
        self._sync_watchlist()
        if removed:
            self._report(f"removed {symbol}")
            self._save_workspace()
        else:
            self._report(f"{symbol} is not in the watchlist", "warning")

    # ------------------------------------------------------------------ help, palette

    def help_sections(self) -> list[HelpSection]:
        """The help screen's sections: every binding, grouped by pane."""
        return [
            ("Desk", binding_rows(b for b in self.BINDINGS if not _is_trading(b)) + self.PALETTE_HELP),
            ("Watchlist", binding_rows(Watchlist.BINDINGS)),
            ("Option chain", binding_rows(ChainPane.BINDINGS)),
            ("Trading", binding_rows(b for b in self.BINDINGS if _is_trading(b))),
            ("Opportunities", binding_rows(OpportunitiesPane.BINDINGS)),
            ("Add symbol dialog", [("Enter", "Add the symbol")] + binding_rows(AddSymbolScreen.BINDINGS)),
            ("Orders blotter", binding_rows(Blotter.BINDINGS)),
            ("Positions", binding_rows(PositionTable.BINDINGS)),
            ("Order ticket", binding_rows(TicketForm.BINDINGS)),
            ("Help", binding_rows(HelpScreen.BINDINGS)),
        ]

    def action_event_log(self) -> None:
        """Open the event log (or close it if it is open)."""
        if isinstance(self.screen, EventLogScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(EventLogScreen(self.events))

    def action_help(self) -> None:
        """Open the help screen (or close it if it is open)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        # built once and kept (installed): reopening only repaints it, no compose of every table
        if not self.is_screen_installed("help"):
            self.install_screen(HelpScreen(self.help_sections()), "help")
        self.push_screen("help")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (Theme, Quit, Keys, Screenshot...) plus the desk's."""
        yield from super().get_system_commands(screen)
        yield SystemCommand("Add symbol", "Add a symbol to the watchlist", self.action_add_symbol)
        yield SystemCommand("Remove symbol", "Remove the highlighted symbol from the watchlist", self.action_remove_highlighted)
        yield SystemCommand("Help", "Show every key binding, by pane", self.action_help)
        yield SystemCommand("Event log", "Every message of the gateway, the feed and the orders (Ctrl+L)", self.action_event_log)
        yield SystemCommand("Kill switch", "Cancel every open order and block new ones (Ctrl+K)", self.action_kill_switch)
        yield SystemCommand("Reduce-only", "Only orders that reduce positions (Ctrl+E)", self.action_reduce_only)
        yield SystemCommand(
            "Reset trading state",
            "Allow orders again after the kill switch or reduce-only (Ctrl+R)",
            self.action_reset_kill_switch,
        )


#: ids of the desk's trading bindings (listed in their own help section)
_TRADING_IDS = frozenset(
    {"desk.focus_blotter", "desk.focus_positions", "desk.buy", "desk.sell", "desk.kill", "desk.kill_reset", "desk.reduce_only"}
)


def _is_trading(binding: BindingType) -> bool:
    return isinstance(binding, Binding) and binding.id in _TRADING_IDS


def create_app(
    desk: DeskBackend,
    *,
    settings: Settings,
    clock: Clock | None = None,
    cursor_blink: bool = True,
    animations: bool = True,
) -> DeskApp:
    """Build the desk app on ``desk`` (the one factory: CLI and tests use it).

    ``settings``: the view's settings (theme, keys, workspace file). ``clock`` overrides the backend's clock for the UI (status bar clock,
    ticks/s). Tests and snapshots pass ``cursor_blink=False, animations=False`` with a
    :class:`~desk.domain.FrozenClock` for deterministic frames.
    """
    return DeskApp(desk, settings=settings, clock=clock, cursor_blink=cursor_blink, animations=animations)


__all__ = ["DeskApp", "create_app"]
