"""The order ticket as a modal screen: form, live risk preview, payoff chart, submit.

The preview is recomputed on every key and every 0.25 s (market moves) with
:meth:`desk.orders.OrderService.preview`; IB's what-if margin is asked 0.3 s after the
last edit (debounced, in a worker, off the key path) and joins the preview when it
answers for the order still on screen. Enter submits through the router — the only path
to the gateway, where every gate and every check is applied again; the ticket closes
only when the order was sent, otherwise it shows why not.

The backend is :meth:`desk.engine.backend.DeskBackend.ticket_backend`
(:class:`desk.engine.local.LocalTicket` on the engine's order service).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from desk.domain import Instrument, Quote
from desk.risk import MarginImpact, OrderIntent, RiskInputError, RiskReport
from desk.risk.checks import Book, book_of
from desk.ui.widgets.payoff import PayoffChart
from desk.ui.widgets.ticket import RiskPreview, TicketForm, TicketModel

__all__ = ["ConfirmScreen", "TicketScreen"]

#: seconds between preview refreshes while the ticket is open (market changes)
PREVIEW_INTERVAL = 0.25
#: seconds of quiet after an edit before IB's what-if is asked
WHAT_IF_DEBOUNCE = 0.3


class TicketScreen(ModalScreen[Any]):
    """The ticket on ``instrument`` (see the module doc). ``backend``: the engine's
    :class:`~desk.engine.backend.TicketBackend`. Dismisses with the
    :class:`~desk.engine.api.PlaceReport` of a sent order, or ``None`` when closed."""

    DEFAULT_CSS = """
    TicketScreen { align: center middle; }
    TicketScreen > #ticket-box {
        width: 84; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    TicketScreen #ticket-gate { color: $success; }
    TicketScreen #ticket-gate.-off { color: $error; text-style: bold; }
    TicketScreen #ticket-result { color: $warning; }
    TicketScreen #ticket-result.-error { color: $error; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(
        self,
        instrument: Instrument,
        action: str,
        backend: Any,
        *,
        quantity: int = 1,
        title: str = "Order ticket",
        intent: OrderIntent | None = None,
    ) -> None:
        super().__init__()
        self.instrument = instrument
        self.backend = backend
        self.model = TicketModel(
            instrument, action, quantity, live=backend.live, quote=self._bid_ask, legs=intent.legs if intent is not None else ()
        )
        self.initial = intent
        self.title_text = title
        self.margin: tuple[Any, MarginImpact] | None = None  # (intent signature + side, impact)
        self.report: RiskReport | None = None
        self.submitting = False
        self.result: Any = None
        self._what_if_timer = None
        self.what_if_asked = 0
        #: ``waiting`` while IB's what-if is asked, ``none`` when it gave no answer
        self.what_if_state = "waiting"

    def _bid_ask(self) -> tuple[float, float]:
        """(bid, ask) of the instrument, or a combo's net bid / ask built from its legs
        (:func:`desk.risk.checks.book_of`), dollars per share."""
        if self.model.legs:
            book = self._combo_book()
            return book.bid, book.ask
        bid, ask, _ = self.backend.quote(self.instrument)
        return bid, ask

    def _combo_book(self) -> Book:
        quotes = {}
        for leg in self.model.legs:
            bid, ask, last = self.backend.quote(leg.instrument)
            quotes[leg.instrument.con_id] = Quote(leg.instrument, bid=bid, ask=ask, last=last)
        probe = OrderIntent(self.instrument, "BUY", 1, "MKT", legs=self.model.legs)
        return book_of(probe, quotes)

    def _deltas(self, report: RiskReport) -> dict[int, float]:
        return {leg.instrument.con_id: self.backend.delta(leg.instrument) for leg in report.legs}

    def compose(self) -> ComposeResult:
        with Vertical(id="ticket-box") as box:
            box.border_title = f"{self.title_text}: {self.instrument.key}"
            yield Static("", id="ticket-quote", markup=False)
            yield Static("", id="ticket-gate", markup=False)
            yield TicketForm(self.model, id="ticket-form")
            yield RiskPreview(id="ticket-preview")
            yield PayoffChart(id="ticket-payoff")
            yield Static("", id="ticket-result", markup=False)

    def on_mount(self) -> None:
        m = self.model
        if self.initial is not None:
            m.load(self.initial)
        else:
            bid, ask = self._bid_ask()
            # a limit at the side that would fill it: the trader steps it away with Up / Down
            m.set_price("limit", ask if m.action == "BUY" else bid)
        self.query_one(TicketForm).focus()
        self.backend.on_update(self._preview_arrived)
        self.refresh_preview()
        self._schedule_what_if()
        self.set_interval(PREVIEW_INTERVAL, self.refresh_preview, name="ticket-preview")

    def on_unmount(self) -> None:
        self.backend.on_update(None)

    def _preview_arrived(self) -> None:
        """The engine answered a preview this ticket asked for (an attached view)."""
        if self.is_attached:
            self.refresh_preview()

    # ------------------------------------------------------------------ preview

    def _signature(self, intent: OrderIntent) -> tuple:
        return (*intent.signature(), intent.tif.value)

    def refresh_preview(self) -> None:
        """Recompute the risk preview now (quote line, gate line, checks, payoff)."""
        if not self.is_attached:
            return
        if self.model.legs:
            bid, ask = self._bid_ask()
            line = (
                f"net bid {bid:,.2f}   net ask {ask:,.2f}   ({len(self.model.legs)} legs, per combo unit)   "
                f"tick {self.model.tick:g}   multiplier {self.instrument.multiplier}"
            )
        else:
            bid, ask, last = self.backend.quote(self.instrument)
            line = (
                f"bid {bid:,.2f}   ask {ask:,.2f}   last {last:,.2f}   tick {self.model.tick:g}   "
                f"multiplier {self.instrument.multiplier}"
            )
        self.query_one("#ticket-quote", Static).update(line)
        summary, ok = self.backend.gate_summary()
        gate = self.query_one("#ticket-gate", Static)
        gate.update(summary)
        gate.set_class(not ok, "-off")
        preview = self.query_one(RiskPreview)
        payoff = self.query_one(PayoffChart)
        try:
            intent = self.model.intent()
            margin = self.margin[1] if self.margin and self.margin[0] == self._signature(intent) else None
            report = self.backend.preview(intent, margin)
        except RiskInputError as exc:
            self.report = None
            preview.show(None, str(exc))
            payoff.show(None)
            return
        if report is None:  # asked of the engine; shown when it answers
            if self.report is None:
                preview.show(None, "asking the engine for the checks…")
            return
        self.report = report
        asked = self.what_if_state if margin is None else "answered"
        preview.show(report, deltas=self._deltas(report), what_if=asked)
        payoff.show(report.payoff, report.payoff_note if self.instrument.sec_type == "OPT" else "")

    def _schedule_what_if(self) -> None:
        if self._what_if_timer is not None:
            self._what_if_timer.stop()
        self._what_if_timer = self.set_timer(WHAT_IF_DEBOUNCE, self._ask_what_if, name="ticket-what-if")

    def _ask_what_if(self) -> None:
        try:
            intent = self.model.intent()
        except RiskInputError:
            return
        if self.margin and self.margin[0] == self._signature(intent):
            return
        self.what_if_asked += 1
        self.what_if_state = "waiting"
        self._what_if(intent)

    @work(group="ticket-what-if", exclusive=True, exit_on_error=False, description="IB what-if margin of the ticket")
    async def _what_if(self, intent: OrderIntent) -> None:
        impact = await self.backend.what_if(intent)
        if impact is not None:
            self.margin = (self._signature(intent), impact)
        else:
            self.what_if_state = "none"
        self.refresh_preview()

    # ------------------------------------------------------------------ keys

    def on_ticket_form_changed(self, message: TicketForm.Changed) -> None:
        message.stop()
        if message.command == "close":
            if not self.submitting:
                self.dismiss(None)
            return
        if message.command == "submit":
            self.submit()
            return
        self.refresh_preview()
        self._schedule_what_if()

    def _say(self, text: str, error: bool = False) -> None:
        result = self.query_one("#ticket-result", Static)
        result.update(text)
        result.set_class(error, "-error")

    def submit(self) -> None:
        """Validate, then send through the router (in an app worker, so closing the ticket
        can never cancel an order half-way through the router)."""
        if self.submitting:
            return
        try:
            intent = self.model.intent()
        except RiskInputError as exc:
            self._say(f"not sent: {exc}", True)
            return
        # the router decides (gate first, then the checks) and writes the audit row of a
        # refusal too; a blocked preview is simply refused there
        self.refresh_preview()
        self.submitting = True
        self._say("sending…")
        confirmation = self.model.confirmation if self.model.live else None
        self.app.run_worker(
            self._submit(intent, confirmation),
            group="ticket-submit",
            exit_on_error=False,
            description="send the ticket's order through the router",
        )

    async def _submit(self, intent: OrderIntent, confirmation: str | None) -> None:
        try:
            margin = self.margin[1] if self.margin and self.margin[0] == self._signature(intent) else None
            result = await self.backend.submit(intent, confirmation, margin)
        except Exception as exc:  # shown in the ticket, never a traceback
            self.submitting = False
            if self.is_attached:
                self._say(f"not sent: {exc}", True)
            return
        self.submitting = False
        self.result = result
        if result.sent:
            if self.is_attached:
                self.dismiss(result)
            return
        if self.is_attached:
            self._say(f"{result.status}: " + "; ".join(result.reasons), True)


class ConfirmScreen(ModalScreen[bool]):
    """A yes / no question: ``y`` dismisses with True, ``n`` or Escape with False."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static { width: 60; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(self.question, markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
