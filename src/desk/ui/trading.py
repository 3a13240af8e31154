"""The desk's trading actions: the order ticket, cancel and modify, the kill switch and
reduce-only, and the blotter / positions refresh (:class:`TradingActions`, a base of
:class:`desk.ui.app.DeskApp`).

Every order goes through the engine's order path (``DeskBackend.ticket_backend()`` for
the ticket, ``cancel`` / ``modify`` / ``kill_switch`` for the rest: the gate, every
pre-trade check and the audit trail are the engine's). A failure is reported in one line
in the status bar and as a notification, never as a traceback. The app keeps the
message handlers (``@on``: Textual registers those per App class) and calls these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from desk.ui.screens.ticket import ConfirmScreen, TicketScreen

if TYPE_CHECKING:
    from desk.engine.backend import DeskBackend


def one_line(exc: BaseException) -> str:
    """The first line of ``exc``'s text, or its type's name when it has none."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


class TradingActions:
    """Order and trading-state actions of the desk app (see the module docstring). The
    app provides ``desk`` (the backend), the panes, ``_report`` and Textual's
    ``push_screen``."""

    desk: DeskBackend
    blotter: Any
    positions: Any
    status_bar: Any
    chain: Any
    watchlist: Any
    _orders_seq: int
    _account_seq: int
    _asked_limit: dict[str, float]

    if TYPE_CHECKING:

        def _report(self, text: str, level: str = "info") -> None: ...

        def push_screen(self, screen: Any, callback: Any = None) -> Any: ...

        @property
        def is_running(self) -> bool: ...

        @property
        def focused(self) -> Any: ...

        @property
        def screen(self) -> Any: ...

    def _refresh_trading(self) -> None:
        """Patch the blotter and positions panes, the trading-state badge and the orders
        banner from the backend (only what changed: its counters say so)."""
        if not self.is_running or not self.blotter.is_mounted:
            return
        desk = self.desk
        trading = desk.trading()
        self.status_bar.set_kill(trading.engaged, trading.reason, state=trading.state)
        self.status_bar.set_orders_off(trading.orders_off)
        if desk.orders_seq != self._orders_seq:
            self._orders_seq = desk.orders_seq
            self.blotter.apply(desk.order_rows.values())
        seq = desk.positions_seq
        if seq != self._account_seq:
            self._account_seq = seq
            p = desk.positions()
            self.positions.apply(p.rows, p.figures, p.greeks, p.groups, p.labels)

    def _selected_instrument(self):
        focused = self.focused
        if focused is self.chain and self.chain.highlighted is not None:
            return self.chain.highlighted
        return self.watchlist.highlighted

    def action_ticket(self, action: str) -> None:
        """Open the order ticket on the selected instrument (``BUY`` or ``SELL``)."""
        instrument = self._selected_instrument()
        if instrument is None:
            self._report("select an instrument first (watchlist row or chain contract)", "warning")
            return
        self.open_ticket(instrument, action)

    def open_ticket(self, instrument, action: str, quantity: int = 1, title: str = "Order ticket", intent=None) -> None:
        """Push the :class:`TicketScreen`; a sent order is reported in the status bar (and
        what the gateway then does with it: working, filled, rejected)."""
        if isinstance(self.screen, TicketScreen):
            return

        def done(result) -> None:
            if result is not None and result.sent:
                self._report(f"sent to the gateway: {result.order} ({result.order_ref})")

        screen = TicketScreen(instrument, action, self.desk.ticket_backend(), quantity=quantity, title=title, intent=intent)
        self.push_screen(screen, done)

    def open_combo_ticket(self, message) -> None:
        """The ticket on an opportunity's combo order (:class:`~desk.ui.messages.ComboSelected`)."""
        intent = message.intent
        self.open_ticket(intent.instrument, intent.action.value, intent.quantity, "Combo ticket", intent=intent)

    @work(group="orders", exit_on_error=False, description="cancel an order")
    async def cancel_order(self, order_ref: str) -> None:
        """Cancel ``order_ref`` through the order service (audit row, then the gateway)."""
        try:
            await self.desk.cancel(order_ref)
        except Exception as exc:
            self._report(f"cancel {order_ref}: {one_line(exc)}", "error")
            return
        self._report(f"cancel sent for {order_ref}")

    @work(group="orders", exit_on_error=False, description="cancel every working order")
    async def cancel_all_orders(self) -> None:
        try:
            n = await self.desk.cancel_all()
        except Exception as exc:
            self._report(f"cancel all: {one_line(exc)}", "error")
            return
        self._report(f"cancel sent for {n} working order(s)")

    @work(group="orders", exit_on_error=False, description="modify an order")
    async def modify_order(self, order_ref: str, **change) -> None:
        """Send a modification of ``order_ref`` (limit_price, stop_price, quantity)."""
        try:  # the engine refuses a modification in live mode (it cannot be confirmed by typing)
            result = await self.desk.modify(order_ref, **change)
        except Exception as exc:
            self._asked_limit.pop(order_ref, None)
            self._report(f"modify {order_ref}: {one_line(exc)}", "error")
            return
        if result.sent:
            what = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in change.items())
            self._report(f"modify sent: {order_ref} {what}")
        else:
            self._asked_limit.pop(order_ref, None)
            self._report("modify refused: " + "; ".join(result.reasons), "error")

    @work(group="orders", exit_on_error=False, description="engage the kill switch")
    async def action_kill_switch(self) -> None:
        """Engage the kill switch: block new orders, reqGlobalCancel, audit row."""
        state = await self.desk.kill_switch("halt", "kill switch key")
        self.status_bar.set_kill(True, state.reason, state=state.state)
        text = "KILL SWITCH ENGAGED: open orders cancelled, new orders blocked"
        self._report(text + (f" ({state.error})" if state.error else ""), "error")

    @work(group="orders", exit_on_error=False, description="set reduce-only")
    async def action_reduce_only(self) -> None:
        """Reduce-only: cancel working orders that add to a position; only reducing orders pass."""
        state = await self.desk.kill_switch("reduce_only", "reduce-only key")
        self.status_bar.set_kill(False, state.reason, state=state.state)
        text = "REDUCE-ONLY: only orders that reduce positions are allowed"
        self._report(text + (f" ({state.error})" if state.error else ""), "warning")

    def action_reset_kill_switch(self) -> None:
        """Ask, then reset the trading state (kill switch or reduce-only) to active."""
        ks = self.desk.trading()
        if not ks.restricted:
            self._report("orders are not restricted (no kill switch, no reduce-only)")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._reset_kill_switch()

        what = "the kill switch" if ks.engaged else "reduce-only"
        self.push_screen(ConfirmScreen(f"Reset {what} and allow orders again? (y / n)"), answered)

    @work(group="orders", exit_on_error=False, description="reset the kill switch")
    async def _reset_kill_switch(self) -> None:
        try:
            await self.desk.kill_switch("reset", "kill switch reset key")
        except (OSError, RuntimeError, ConnectionError) as exc:
            self._report(f"kill switch stays engaged: {exc}", "error")
            return
        self.status_bar.set_kill(False)
        self._report("trading state reset: orders allowed")
