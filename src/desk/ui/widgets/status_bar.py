"""The status bar: mode badge, connection, gateway, ticks/s, recorder, exchange clock, message.

A dumb widget: the app pushes values in (connection events as they happen, counters
and the clock once a second). Every value has a setter that only touches its own label.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from desk.domain import ConnectionState, RecorderStats
from desk.domain.calendar import NEW_YORK
from desk.settings import Mode
from desk.ui.formatting import fmt_count, fmt_rate

_STATE_TEXT = {
    ConnectionState.CONNECTED: "● connected",
    ConnectionState.CONNECTING: "◌ connecting…",
    ConnectionState.RECONNECTING: "◌ reconnecting…",
    ConnectionState.DISCONNECTED: "○ disconnected",
}


def exchange_time_text(now: datetime) -> str:
    """``HH:MM:SS ET`` of a UTC (tz-aware) time in America/New_York."""
    return now.astimezone(NEW_YORK).strftime("%H:%M:%S ET")


class StatusBar(Horizontal):
    """One line at the bottom of the desk. See the module docstring for the fields."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    StatusBar > Label { padding: 0 1; height: 1; }
    StatusBar > #status-mode { padding: 0; text-style: bold; color: $background; background: $mode-sim; }
    StatusBar > #status-mode.-paper { background: $mode-paper; }
    StatusBar > #status-mode.-live { background: $mode-live; color: white; }
    StatusBar > #status-kill { display: none; padding: 0; text-style: bold reverse; color: $error; }
    StatusBar > #status-kill.-engaged { display: block; }
    StatusBar > #status-kill.-reduce { display: block; color: $warning; }
    StatusBar > #status-orders { display: none; padding: 0; text-style: bold reverse; color: $error; }
    StatusBar > #status-orders.-off { display: block; }
    StatusBar > #status-connection { color: $text-muted; }
    StatusBar > #status-connection.-connected { color: $success; }
    StatusBar > #status-connection.-connecting, StatusBar > #status-connection.-reconnecting { color: $warning; }
    StatusBar > #status-connection.-disconnected { color: $error; }
    StatusBar > #status-endpoint, StatusBar > #status-rate, StatusBar > #status-recorder { color: $text-muted; }
    StatusBar > #status-recorder.-error { color: $error; }
    StatusBar > #status-clock { text-style: bold; }
    StatusBar > #status-feed { display: none; color: $warning; }
    StatusBar > #status-feed.-shown { display: block; }
    StatusBar > #status-message { width: 1fr; color: $text-muted; text-overflow: ellipsis; text-wrap: nowrap; }
    StatusBar > #status-message.-warning { color: $warning; }
    StatusBar > #status-message.-error { color: $error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode: Mode = Mode.SIM
        self.state: ConnectionState = ConnectionState.DISCONNECTED
        self.message: str = ""
        self.message_level: str = "info"
        self.kill_engaged = False
        self.trading_state = "active"
        self.orders_off = ""

    def compose(self) -> ComposeResult:
        yield Label(" SIM ", id="status-mode", markup=False)
        yield Label(" KILL ", id="status-kill", markup=False)
        yield Label(" ORDERS OFF ", id="status-orders", markup=False)
        yield Label(_STATE_TEXT[ConnectionState.DISCONNECTED], id="status-connection", classes="-disconnected", markup=False)
        yield Label("", id="status-endpoint", markup=False)
        yield Label("0 ticks/s", id="status-rate", markup=False)
        yield Label("", id="status-recorder", markup=False)
        yield Label("", id="status-feed", markup=False)
        yield Label("--:--:-- ET", id="status-clock", markup=False)
        yield Label("", id="status-message", markup=False)

    def _label(self, name: str) -> Label:
        return self.query_one(f"#status-{name}", Label)

    def set_mode(self, mode: Mode) -> None:
        """Show the trading mode badge: SIM, PAPER or LIVE (LIVE in the live colour)."""
        self.mode = mode
        label = self._label("mode")
        label.update(f" {mode.value.upper()} ")
        label.set_class(mode is Mode.PAPER, "-paper")
        label.set_class(mode is Mode.LIVE, "-live")

    def set_kill(self, engaged: bool, reason: str = "", *, state: str | None = None) -> None:
        """Show the trading state badge: ``KILL`` when the kill switch is engaged
        (``halted``), ``REDUCE-ONLY`` in reduce-only, nothing when active. ``state`` is the
        trading state's name (default from ``engaged``)."""
        state = state or ("halted" if engaged else "active")
        self.kill_engaged = state == "halted"
        self.trading_state = state
        label = self._label("kill")
        name = {"halted": " KILL ", "reduce_only": " REDUCE-ONLY "}.get(state, " KILL ")
        label.update(name + (f"({reason}) " if state != "active" and reason else ""))
        label.set_class(state == "halted", "-engaged")
        label.set_class(state == "reduce_only", "-reduce")

    def set_orders_off(self, why: str) -> None:
        """Show the ``ORDERS OFF`` banner while ``why`` is not empty (e.g. the audit log is
        down: orders are disabled until it is back)."""
        if why == self.orders_off:
            return
        self.orders_off = why
        label = self._label("orders")
        label.update(f" ORDERS OFF: {why} " if why else " ORDERS OFF ")
        label.set_class(bool(why), "-off")

    def set_connection(self, state: ConnectionState) -> None:
        """Show the broker's connection state, coloured (connected green, reconnecting amber)."""
        self.state = state
        label = self._label("connection")
        label.update(_STATE_TEXT.get(state, state.value))
        for each in ConnectionState:
            label.set_class(each is state, f"-{each.value}")

    def set_endpoint(self, endpoint: str) -> None:
        """Show the gateway's ``host:port``."""
        self._label("endpoint").update(endpoint)

    def set_rate(self, ticks_per_second: float) -> None:
        """Show the tick rate (ticks per second, smoothed)."""
        self._label("rate").update(f"{fmt_rate(ticks_per_second)} ticks/s")

    def set_recorder(self, stats: RecorderStats | None) -> None:
        """Show rows written (queued, spooled) of the tick recorder; ``rec off`` without one."""
        label = self._label("recorder")
        if stats is None:
            label.update("rec off")
            label.set_class(False, "-error")
            return
        text = f"rec {fmt_count(stats.written)} ({fmt_count(stats.queued)} queued"
        if stats.spooled:
            text += f", {fmt_count(stats.spooled)} spooled"
        text += ")"
        label.update(text)
        label.set_class(bool(stats.spooled or stats.last_error), "-error")

    def set_feed(self, stale: int, restart: str = "") -> None:
        """Show the feed's health: how many lines are stale (silent while their market is
        open) and the gateway's daily restart countdown; hidden when both are empty."""
        parts = []
        if stale:
            parts.append(f"{stale} stale line{'s' if stale != 1 else ''}")
        if restart:
            parts.append(restart)
        label = self._label("feed")
        label.update("  ".join(parts))
        label.set_class(bool(parts), "-shown")

    def set_clock(self, now: datetime) -> None:
        """Show ``now`` (UTC, tz-aware) as exchange time ``HH:MM:SS ET``."""
        self._label("clock").update(exchange_time_text(now))

    def set_message(self, text: str, level: str = "info") -> None:
        """Show the latest status message; ``level`` is info, warning or error."""
        self.message = text
        self.message_level = level
        label = self._label("message")
        label.update(text)
        label.set_class(level == "warning", "-warning")
        label.set_class(level == "error", "-error")
