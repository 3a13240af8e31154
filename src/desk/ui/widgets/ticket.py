"""The order ticket: a keyboard-only form (:class:`TicketModel`, :class:`TicketForm`) and
its live risk preview (:class:`RiskPreview`).

:class:`TicketModel` is plain state plus key handling, with no Textual in its logic, so
property and fuzz tests drive it directly. Fields, in Tab order: action (BUY / SELL),
quantity (shares or contracts), order type (LMT, MKT, STP, STP LMT), limit price, stop
price (dollars per share; shown only for the types that take them), TIF (DAY, GTC,
IOC), outside RTH, and in live mode the confirmation (the symbol typed by hand).

Keys: Tab / Shift+Tab next / previous field; Up / Down step the field (prices by the
contract's tick, quantity by 1, the choices cycle); digits, ``.`` and Backspace edit
quantity and prices — a field's value is selected when the cursor arrives on it (and when
the ticket opens), so the first digit replaces it and the first Backspace clears it; ``B`` / ``A`` / ``M`` set the current price field (the limit
otherwise) to bid / ask / mid rounded to the tick; ``t`` cycles TIF, ``o`` the order
type, ``r`` outside RTH, Space flips BUY / SELL; on the confirmation field every
printable key is typed. Enter submits, Escape closes. Validation runs on every key:
:meth:`TicketModel.errors` names each bad field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from desk.domain import Instrument
from desk.domain.orders import round_to_tick
from desk.risk import OrderIntent, RiskInputError, RiskReport

__all__ = ["RiskPreview", "TicketForm", "TicketModel"]

ACTIONS = ("BUY", "SELL")
TYPES = ("LMT", "MKT", "STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")
_EDITABLE = {"quantity": "0123456789", "limit": "0123456789.", "stop": "0123456789."}
_LABELS = {
    "action": "Action",
    "quantity": "Quantity",
    "type": "Type",
    "limit": "Limit",
    "stop": "Stop",
    "tif": "TIF",
    "rth": "Outside RTH",
    "confirm": "Confirm",
}


def _fmt_price(price: float, tick: float) -> str:
    decimals = max(2, min(6, -int(math.floor(math.log10(tick))) if tick > 0 else 2))
    return f"{price:.{decimals}f}"


class TicketModel:
    """State of one order ticket on ``instrument`` (see the module doc).

    ``action``: ``BUY`` or ``SELL``. ``quantity``: initial quantity. ``live``: add the
    confirmation field. ``quote``: callable returning (bid, ask) in dollars per share
    (``nan`` unknown) for the price keys.
    """

    def __init__(
        self, instrument: Instrument, action: str = "BUY", quantity: int = 1, *, live: bool = False, quote=None, legs=()
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be BUY or SELL, got {action!r}")
        self.instrument = instrument
        #: combo legs (desk.risk.ComboLeg) when ``instrument`` is a BAG: its net price may be <= 0
        self.legs = tuple(legs)
        self.tick = instrument.min_tick if instrument.min_tick > 0 else 0.01
        self.live = live
        self.quote = quote or (lambda: (math.nan, math.nan))
        self.action = action
        self.text = {"quantity": str(max(1, int(quantity))), "limit": "", "stop": ""}
        self.order_type = "LMT"
        self.tif = "DAY"
        self.outside_rth = False
        self.confirmation = ""
        self.field = "quantity"
        self.message = ""
        #: the field whose whole value is selected (the next digit replaces it)
        self.selected: str | None = "quantity"

    # ------------------------------------------------------------------ fields

    @property
    def fields(self) -> list[str]:
        """The visible fields, in Tab order."""
        out = ["action", "quantity", "type"]
        if self.order_type in ("LMT", "STP LMT"):
            out.append("limit")
        if self.order_type in ("STP", "STP LMT"):
            out.append("stop")
        out += ["tif", "rth"]
        if self.live:
            out.append("confirm")
        return out

    def value_text(self, name: str) -> str:
        if name == "action":
            return self.action
        if name == "type":
            return self.order_type
        if name == "tif":
            return self.tif
        if name == "rth":
            return "yes" if self.outside_rth else "no"
        if name == "confirm":
            return self.confirmation
        return self.text[name]

    def _price(self, name: str) -> float | None:
        text = self.text[name]
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def errors(self) -> dict[str, str]:
        """Field -> what is wrong with it (empty when the form is complete)."""
        out: dict[str, str] = {}
        q = self.text["quantity"]
        if not q.isdigit() or int(q) <= 0:
            out["quantity"] = "quantity must be a whole number > 0"
        for name in ("limit", "stop"):
            if name not in self.fields:
                continue
            p = self._price(name)
            if p is None or (p <= 0 and not self.legs):
                out[name] = f"{_LABELS[name].lower()} price must be a number > 0"
            elif abs(p / self.tick - round(p / self.tick)) > 1e-6:
                out[name] = f"{_LABELS[name].lower()} price {p:g} is not a multiple of the tick {self.tick:g}"
        return out

    def intent(self) -> OrderIntent:
        """The :class:`OrderIntent` of the form. Raises :class:`RiskInputError` naming the
        first bad field."""
        errors = self.errors()
        if errors:
            raise RiskInputError(next(iter(errors.values())))
        return OrderIntent(
            self.instrument,
            self.action,
            int(self.text["quantity"]),
            self.order_type,
            limit_price=self._price("limit") if "limit" in self.fields else None,
            stop_price=self._price("stop") if "stop" in self.fields else None,
            tif=self.tif,
            outside_rth=self.outside_rth,
            legs=self.legs,
        )

    def load(self, intent: OrderIntent) -> None:
        """Fill the form from ``intent`` (a combo from the opportunities pane, a closing order)."""
        self.action = intent.action.value
        self.text["quantity"] = str(intent.quantity)
        self.order_type = intent.order_type.value
        self.tif = intent.tif.value
        self.outside_rth = intent.outside_rth
        for name, price in (("limit", intent.limit_price), ("stop", intent.stop_price)):
            if price is not None:
                self.text[name] = _fmt_price(round_to_tick(price, self.tick), self.tick)

    # ------------------------------------------------------------------ keys

    def set_price(self, name: str, price: float) -> bool:
        """Set a price field to ``price`` rounded to the tick; False if ``price`` is unknown
        (or not > 0, except for a combo's net price, which may be a credit)."""
        if not (math.isfinite(price) and (price > 0 or self.legs)):
            return False
        self.text[name] = _fmt_price(round_to_tick(price, self.tick), self.tick)
        return True

    def prefill(self, which: str) -> None:
        """``B`` bid, ``A`` ask, ``M`` mid into the current price field (the limit, else the stop)."""
        bid, ask = self.quote()
        two_sided = math.isfinite(bid) and math.isfinite(ask) and (bid > 0 and ask > 0 or bool(self.legs))
        price = {"B": bid, "A": ask, "M": (bid + ask) / 2 if two_sided else math.nan}[which]
        target = self.field if self.field in ("limit", "stop") else ("limit" if "limit" in self.fields else "stop")
        if target not in self.fields:
            self.message = f"{self.order_type} order has no price"
            return
        name = {"B": "bid", "A": "ask", "M": "mid"}[which]
        self.message = "" if self.set_price(target, price) else f"no {name} to copy"

    def _step(self, direction: int) -> None:
        f = self.field
        if f == "action":
            self.action = ACTIONS[(ACTIONS.index(self.action) + 1) % 2]
        elif f == "quantity":
            q = int(self.text["quantity"]) if self.text["quantity"].isdigit() else 0
            self.text["quantity"] = str(max(1, q + direction))
        elif f in ("limit", "stop"):
            p = self._price(f)
            if p is None or p <= 0:
                bid, ask = self.quote()
                p = (bid + ask) / 2 if bid > 0 and ask > 0 else math.nan
                if not self.set_price(f, p):
                    self.message = "no price to step from"
                return
            self.set_price(f, max(self.tick, round_to_tick(p, self.tick) + direction * self.tick))
        elif f == "type":
            self._cycle_type(direction)
        elif f == "tif":
            self.tif = TIFS[(TIFS.index(self.tif) + direction) % len(TIFS)]
        elif f == "rth":
            self.outside_rth = not self.outside_rth

    def _cycle_type(self, direction: int = 1) -> None:
        self.order_type = TYPES[(TYPES.index(self.order_type) + direction) % len(TYPES)]
        if self.field not in self.fields:
            self.field = "type"

    def _move(self, direction: int) -> None:
        fields = self.fields
        i = fields.index(self.field) if self.field in fields else 0
        self.field = fields[(i + direction) % len(fields)]
        self.selected = self.field if self.field in _EDITABLE else None

    def key(self, key: str, character: str | None = None) -> str | None:
        """Apply one key press (Textual's key name and printable character). Returns
        ``"submit"`` for Enter, ``"close"`` for Escape, ``None`` otherwise. Never raises."""
        self.message = ""
        if key == "enter":
            return "submit"
        if key == "escape":
            return "close"
        if key == "tab":
            self._move(1)
        elif key == "shift+tab":
            self._move(-1)
        elif key in ("up", "down"):
            self._step(1 if key == "up" else -1)
            self.selected = None
        elif key == "backspace":
            if self.field == "confirm":
                self.confirmation = self.confirmation[:-1]
            elif self.field in _EDITABLE:
                self.text[self.field] = "" if self.selected == self.field else self.text[self.field][:-1]
            self.selected = None
        elif self.field == "confirm" and character and character.isprintable() and len(self.confirmation) < 12:
            self.confirmation += character
        elif (
            self.field in ("limit", "stop")
            and self.legs
            and character == "-"
            and (not self.text[self.field] or self.selected == self.field)
        ):
            self.text[self.field] = "-"  # a combo's net price may be a credit
            self.selected = None
        elif self.field in _EDITABLE and character and character in _EDITABLE[self.field]:
            if self.selected == self.field:
                self.text[self.field] = ""  # the first key replaces the selected value
                self.selected = None
            if len(self.text[self.field]) < 12 and not (character == "." and "." in self.text[self.field]):
                self.text[self.field] += character
        elif character in ("B", "A", "M"):
            self.prefill(character)
        elif character == "t":
            self.tif = TIFS[(TIFS.index(self.tif) + 1) % len(TIFS)]
        elif character == "o":
            self._cycle_type()
        elif character == "r":
            self.outside_rth = not self.outside_rth
        elif key == "space":
            self.action = ACTIONS[(ACTIONS.index(self.action) + 1) % 2]
        return None


class TicketForm(Widget, can_focus=True):
    """The ticket's fields, one per line, the current one highlighted; keys go to the
    :class:`TicketModel` and each change posts :class:`TicketForm.Changed`."""

    DEFAULT_CSS = """
    TicketForm { height: auto; padding: 0 1; }
    """

    #: documented for the help screen; the keys themselves are handled in on_key
    BINDINGS: list[BindingType] = [
        Binding("tab", "noop", "Next field", show=False, id="ticket.next", tooltip="Next field"),
        Binding("shift+tab", "noop", "Previous field", show=False, id="ticket.prev", tooltip="Previous field"),
        Binding(
            "up,down", "noop", "Step", show=False, id="ticket.step", tooltip="Step price by tick, quantity by 1, cycle a choice"
        ),
        Binding("B,A,M", "noop", "Bid/Ask/Mid", id="ticket.prefill", tooltip="Copy bid / ask / mid into the price"),
        Binding("t", "noop", "TIF", id="ticket.tif", tooltip="Cycle TIF: DAY, GTC, IOC"),
        Binding("o", "noop", "Type", id="ticket.type", tooltip="Cycle order type: LMT, MKT, STP, STP LMT"),
        Binding("r", "noop", "RTH", show=False, id="ticket.rth", tooltip="Toggle outside regular trading hours"),
        Binding("space", "noop", "Buy/Sell", show=False, id="ticket.side", tooltip="Flip BUY / SELL"),
        Binding("enter", "noop", "Submit", id="ticket.submit", tooltip="Send the order (every check must pass)"),
        Binding("escape", "noop", "Close", id="ticket.close", tooltip="Close the ticket, send nothing"),
    ]

    @dataclass
    class Changed(Message):
        """A field changed (or ``command`` is ``submit`` / ``close``)."""

        form: TicketForm
        command: str | None = None

    def __init__(self, model: TicketModel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model

    def action_noop(self) -> None:
        """Bindings above are documentation; on_key did the work."""

    #: keys the form consumes; anything else (ctrl+k kill switch, F1...) goes on to the app
    HANDLED_KEYS = frozenset({"enter", "escape", "tab", "shift+tab", "up", "down", "backspace", "space"})

    def on_key(self, event) -> None:
        if event.key not in self.HANDLED_KEYS and not (event.character and event.character.isprintable()):
            return
        command = self.model.key(event.key, event.character)
        event.stop()
        event.prevent_default()
        self.refresh(layout=True)
        self.post_message(self.Changed(self, command))

    def render(self) -> Text:
        m = self.model
        errors = m.errors()
        text = Text()
        for name in m.fields:
            current = name == m.field and self.has_focus
            label = f"{_LABELS[name]:<12}"
            value = m.value_text(name)
            if name == "confirm":
                value = value + ("▏" if current else "")
                label = f"Type {m.instrument.symbol}"[:12].ljust(12)
            style = "reverse" if current else ""
            if current and m.selected == name:
                style = "reverse underline"
            text.append(("▶ " if name == m.field else "  ") + label, style="bold" if current else "")
            text.append(f" {value:<14}", style=style + (" red" if name in errors else ""))
            if name in errors:
                text.append(f" {errors[name]}", style="red")
            text.append("\n")
        if m.message:
            text.append(m.message, style="yellow")
        return text


def _money(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "—" if not (x == math.inf or x == -math.inf) else ("unlimited" if x > 0 else "-unlimited")
    return f"{x:+,.2f}" if signed else f"{x:,.2f}"


def _px(x: float) -> str:
    return f"{x:,.2f}" if math.isfinite(x) else "—"


def preview_text(
    report: RiskReport | None, error: str = "", *, deltas: dict[int, float] | None = None, what_if: str = "waiting"
) -> Text:
    """The preview's lines: the market (a combo's net bid / ask from its legs), each leg
    (ratio, action, contract, bid / ask, delta per share, position before -> after),
    notional, commission, IB's what-if margin (``what_if``: ``waiting`` while asked,
    ``none`` when IB gave no answer), AvailableFunds before and after with the order's
    cost and where it comes from, then every check with pass / fail and its number.
    ``deltas``: delta per share by conId (``nan`` unknown)."""
    text = Text()
    if report is None:
        text.append(error or "fill in the ticket to see the risk preview", style="yellow")
        return text
    deltas = deltas or {}
    net = "net " if report.intent.is_combo else ""
    text.append(f"Price {_px(report.price)}  {net}bid {_px(report.bid)}  {net}ask {_px(report.ask)}  mid {_px(report.mid)}\n")
    total_delta = 0.0
    known = True
    for leg in report.legs:
        d = deltas.get(leg.instrument.con_id, math.nan)
        if math.isfinite(d):
            total_delta += d * leg.quantity * leg.instrument.multiplier
        else:
            known = False
        if report.intent.is_combo:
            dtext = f"{d:+.2f}" if math.isfinite(d) else "—"
            text.append(
                f"  {leg.ratio:>3}x {leg.action:<4} {leg.instrument.key:<20} {_px(leg.bid):>8} / {_px(leg.ask):<8} "
                f"Δ {dtext:>5}  pos {leg.position_before:+g} → {leg.position_after:+g}\n"
            )
    if not report.intent.is_combo and report.legs:
        leg = report.legs[0]
        text.append(f"Position {leg.position_before:+g} → {leg.position_after:+g}   ")
    # a fraction of a share under 100 gets its decimal: a conversion's -0.2 is not "-0"
    digits = 1 if abs(total_delta) < 100 and abs(total_delta - round(total_delta)) >= 0.05 else 0
    order_delta = f"{total_delta:+,.{digits}f} sh" if known and report.legs else "—"
    text.append(f"Order Δ {order_delta}\n")
    gross = " gross" if report.intent.is_combo else ""
    text.append(f"Notional{gross} ${_money(report.notional)}   Commission ${_money(report.commission)}\n")
    m = report.margin
    if m is not None:
        text.append(
            f"Init margin {_money(m.init_margin_before)} {_money(m.init_margin_change, True)} → {_money(m.init_margin_after)}\n"
            f"Maint margin {_money(m.maint_margin_before)} {_money(m.maint_margin_change, True)} → {_money(m.maint_margin_after)}\n"
        )
    elif what_if == "none":
        text.append("No margin preview from IB (funds below are desk's Reg T estimate)\n", style="yellow")
    else:
        text.append("Margin (IB what-if): asking…\n", style="dim")
    text.append(
        f"Available funds {_money(report.funds_before)} → {_money(report.funds_after)}   "
        f"cost {_money(report.cost)} ({report.cost_basis or '—'})\n"
    )
    for c in report.checks:
        mark, style = ("PASS", "green") if c.passed else ("FAIL", "bold red")
        text.append(f"{mark} ", style=style)
        text.append(f"{c.name:<16} {c.message}\n", style="" if c.passed else "red")
    if report.blocked:
        text.append("Blocked: " + "; ".join(report.reasons), style="bold red")
    return text


class RiskPreview(Static):
    """The live risk preview of the ticket (see :func:`preview_text`)."""

    DEFAULT_CSS = """
    RiskPreview { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.report: RiskReport | None = None

    def show(
        self, report: RiskReport | None, error: str = "", *, deltas: dict[int, float] | None = None, what_if: str = "waiting"
    ) -> None:
        self.report = report
        self.update(preview_text(report, error, deltas=deltas, what_if=what_if))
