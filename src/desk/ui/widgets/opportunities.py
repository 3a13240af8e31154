"""The opportunities pane: live arbitrage opportunities of the chain on screen, best first.

Reads a :class:`~desk.arbitrage.live.LiveArbitrage` (the app polls it on its flush timer)
and draws one line per opportunity, ranked by total edge after costs::

    Opportunities  7 live · 2 gone   kind: all  min edge: $0  underlying: all   SIMULATED
     Kind        Und   Legs                                   Net/sh  Edge/combo  Size     Total   Best   Age
     butterfly   SPY   +1 C 594 −2 C 595 +1 C 596 Nov27       −0.67     64.40      84   5409.60  5409.60   3s
     conversion  SPY   +100 STK −1 C 595 +1 P 595 Nov27      594.32     34.32      16    549.11   549.11  12s  D
     ...

Columns: kind, underlying, legs (``+`` buy, ``−`` sell, ratio, right, strike, expiry),
net price per share (positive: debit), edge per combo after costs and the number of
combos executable against the displayed sizes (dollars, combos), total edge and the best
total seen (dollars), age since first seen. Flags: ``!`` early-exercise risk of a short
American leg, ``D`` counts estimated dividends, ``~`` stale (a leg's quote older than
``stale_after`` seconds), ``gone`` no longer found (kept a few seconds, dimmed).

Keys: ``f`` kind filter (cycles), ``+``/``-`` minimum edge, ``u`` underlying filter,
Enter opens the order ticket with the combination as one BAG order at the net price
(:class:`~desk.ui.messages.ComboSelected`). The pane repaints on the scanner's ``seq``
and once a second for ages and staleness; lines are cached per row.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from desk.domain import Clock, Instrument
from desk.domain.opportunity import LegAction, Opportunity, OpportunityKind, RiskFlag
from desk.ui.messages import ComboSelected

if TYPE_CHECKING:
    from desk.arbitrage.live import LiveArbitrage, Tracked

__all__ = ["EDGE_STEPS", "ComboConfirmScreen", "OpportunitiesPane", "combo_intent"]

#: Minimum-edge filter steps, dollars per combo after costs.
EDGE_STEPS = (0.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0)
KINDS: tuple[str | None, ...] = (None, *(k.value for k in OpportunityKind))

_HEADER = f" {'Kind':<11} {'Und':<5} {'Legs':<44} {'Net/sh':>8} {'Edge/cmb':>9} {'Size':>5} {'Total':>10} {'Best':>10} {'Age':>5} Flags"


def combo_intent(opp: Opportunity, quantity: int = 1) -> Any:
    """The combo order of ``opp``: a ``desk.risk.OrderIntent`` BUY of ``quantity`` combos
    (secType BAG on SMART, combo multiplier ``opp.multiplier``), one ``ComboLeg`` per leg
    (options: OPT with conId, right, strike, expiry, multiplier; stock: STK, multiplier 1,
    ratio in shares), LMT at ``opp.net_price`` rounded to the cent (dollars per share of
    the combo multiplier; negative = credit), DAY. Raises ``desk.risk.RiskInputError`` if
    a leg has no conId."""
    from desk.risk import ComboLeg, OrderIntent

    m = int(round(opp.multiplier))
    legs = []
    for leg in opp.legs:
        if leg.sec_type == "STK":
            ins = Instrument(opp.symbol, "STK", con_id=leg.con_id)
        else:
            ins = Instrument(opp.symbol, "OPT", con_id=leg.con_id, expiry=leg.expiry, strike=leg.strike,
                             right=leg.right, multiplier=m)
        legs.append(ComboLeg(ins, "BUY" if leg.action is LegAction.BUY else "SELL", leg.ratio))
    bag = Instrument(opp.symbol, "BAG", multiplier=m)
    return OrderIntent(bag, "BUY", quantity, "LMT", limit_price=round(opp.net_price, 2), legs=tuple(legs))


def _legs_text(opp: Opportunity) -> str:
    parts = []
    for leg in opp.legs:
        sign = "+" if leg.action is LegAction.BUY else "−"
        if leg.sec_type == "STK":
            parts.append(f"{sign}{leg.ratio} STK")
        else:
            parts.append(f"{sign}{leg.ratio} {leg.right} {leg.strike:g}")
    expiries = sorted({leg.expiry for leg in opp.legs if leg.expiry})
    tail = "/".join(_short_expiry(e) for e in expiries)
    return " ".join(parts) + (f" {tail}" if tail else "")


def _short_expiry(e: str) -> str:
    try:
        return datetime.strptime(e, "%Y%m%d").strftime("%b%d")
    except ValueError:
        return e


def _age(seconds: float) -> str:
    if seconds < 0 or seconds != seconds:
        return "—"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"


def _money(x: float) -> str:
    return f"{x:,.2f}" if math.isfinite(x) else "—"


class OpportunitiesPane(ScrollView, can_focus=True):
    """The opportunities pane (see the module docstring).

    ``live``: the scanner (``None``: the pane says no scanner runs); ``clock``: for ages
    and staleness; ``stale_after``: seconds after which a leg's quote makes the row stale.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="opps.up", tooltip="Previous opportunity"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="opps.down", tooltip="Next opportunity"),
        Binding("enter", "select", "Trade", id="opps.select", tooltip="Open the order ticket with the whole combination"),
        Binding("f", "cycle_kind", "Kind", id="opps.kind", tooltip="Filter by kind (cycles: all, conversion, ... calendar)"),
        Binding("plus,equals_sign", "min_edge(1)", "Edge+", show=False, id="opps.edge_up", tooltip="Raise the minimum edge"),
        Binding("minus", "min_edge(-1)", "Edge-", show=False, id="opps.edge_down", tooltip="Lower the minimum edge"),
        Binding("u", "cycle_underlying", "Underlying", show=False, id="opps.underlying", tooltip="Filter by underlying (cycles)"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "opportunities--header",
        "opportunities--title",
        "opportunities--row",
        "opportunities--cursor",
        "opportunities--gone",
        "opportunities--stale",
        "opportunities--risk",
        "opportunities--simulated",
    }

    DEFAULT_CSS = """
    OpportunitiesPane .opportunities--header { text-style: bold; color: $text-muted; }
    OpportunitiesPane .opportunities--title { text-style: bold; }
    OpportunitiesPane .opportunities--cursor { background: $primary 40%; }
    OpportunitiesPane .opportunities--gone { color: $text-disabled; }
    OpportunitiesPane .opportunities--stale { color: $warning; }
    OpportunitiesPane .opportunities--risk { color: $warning; }
    OpportunitiesPane .opportunities--simulated { color: $warning; text-style: bold; }
    """

    def __init__(self, live: LiveArbitrage | None, *, clock: Clock | None = None, stale_after: float = 5.0,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.live = live
        self.clock = clock or Clock()
        self.stale_after = float(stale_after)
        self.kind: str | None = None
        self.min_edge_step = 0
        self.underlying: str | None = None
        self.rows: list[Tracked] = []
        self.cursor = 0
        self._seq = -1
        self._second = -1
        self._cache: dict[int, tuple[tuple[Any, ...], Strip]] = {}

    # ------------------------------------------------------------------ state

    @property
    def min_edge(self) -> float:
        """Dollars per combo after costs an opportunity must beat to be listed."""
        return EDGE_STEPS[self.min_edge_step]

    @property
    def selected(self) -> Tracked | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def underlyings(self) -> list[str]:
        live = self.live
        return sorted({t.opportunity.symbol for t in live.tracked}) if live is not None else []

    def refresh_rows(self, force: bool = False) -> bool:
        """Re-read the scanner if it changed (or a second passed: ages); True if repainted.
        Called by the app's flush timer."""
        live = self.live
        second = int(self.clock.time())
        seq = live.seq if live is not None else 0
        if not force and seq == self._seq and second == self._second:
            return False
        self._seq, self._second = seq, second
        key = self.selected.key if self.selected is not None else None
        items = live.tracked if live is not None else []
        self.rows = [
            t for t in items
            if (self.kind is None or t.opportunity.kind.value == self.kind)
            and (self.underlying is None or t.opportunity.symbol == self.underlying)
            and t.opportunity.edge_combo_net > self.min_edge
        ]
        if key is not None:
            self.cursor = next((i for i, t in enumerate(self.rows) if t.key == key), self.cursor)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self.virtual_size = Size(self.size.width, len(self.rows) + 2)
        self.refresh()
        return True

    # ------------------------------------------------------------------ actions

    def action_cursor(self, step: int) -> None:
        if self.rows:
            self.cursor = max(0, min(len(self.rows) - 1, self.cursor + step))
            self.scroll_to_region_cursor()
            self.refresh()

    def scroll_to_region_cursor(self) -> None:
        y = self.cursor + 2
        top = self.scroll_offset.y
        height = max(1, self.size.height)
        if y < top + 2:
            self.scroll_to(y=max(0, y - 2), animate=False)
        elif y >= top + height:
            self.scroll_to(y=y - height + 1, animate=False)

    def action_cycle_kind(self) -> None:
        i = KINDS.index(self.kind)
        self.kind = KINDS[(i + 1) % len(KINDS)]
        self.refresh_rows(force=True)

    def action_min_edge(self, step: int) -> None:
        self.min_edge_step = max(0, min(len(EDGE_STEPS) - 1, self.min_edge_step + step))
        self.refresh_rows(force=True)

    def action_cycle_underlying(self) -> None:
        options: list[str | None] = [None, *self.underlyings()]
        i = options.index(self.underlying) if self.underlying in options else 0
        self.underlying = options[(i + 1) % len(options)]
        self.refresh_rows(force=True)

    def action_select(self) -> None:
        """Post :class:`ComboSelected` with the highlighted opportunity's combo order."""
        t = self.selected
        if t is None:
            self.notify("no opportunity to trade", severity="warning")
            return
        if t.state != "live":
            self.notify("that opportunity is gone", severity="warning")
            return
        try:
            intent = combo_intent(t.opportunity)
        except Exception as exc:  # a leg without a conId: say so, send nothing
            self.notify(f"cannot build the combo order: {exc}", severity="error")
            return
        self.post_message(ComboSelected(intent, t.opportunity, t.simulated))

    # ------------------------------------------------------------------ rendering

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"opportunities--{name}", partial=True)

    def title_text(self) -> str:
        live = self.live
        if live is None:
            return " Opportunities: no scanner running"
        n_live = sum(1 for t in self.rows if t.state == "live")
        n_gone = len(self.rows) - n_live
        sim = "   SIMULATED" if live.simulated else ""
        return (f" {n_live} live · {n_gone} gone   kind: {self.kind or 'all'}  min edge: ${self.min_edge:g}"
                f"  underlying: {self.underlying or 'all'}{sim}")

    def render_line(self, y: int) -> Strip:
        width = max(1, self.size.width)
        if y == 0:
            text = self.title_text()
            style = self._style("simulated") if self.live is not None and self.live.simulated else self._style("title")
            return Strip([Segment(text[:width].ljust(width), style)], width)
        if y == 1:
            return Strip([Segment(_HEADER[:width].ljust(width), self._style("header"))], width)
        i = y - 2 + self.scroll_offset.y
        if not 0 <= i < len(self.rows):
            if not self.rows and y == 2:
                text = " no opportunities beyond costs in the chain on screen" if self.live is not None else ""
                return Strip([Segment(text[:width].ljust(width), self._style("gone"))], width)
            return Strip.blank(width)
        return self._row_strip(i, width)

    def _row_strip(self, i: int, width: int) -> Strip:
        t = self.rows[i]
        opp = t.opportunity
        now = self.clock.now()
        age = _age((now - opp.first_seen).total_seconds())
        stale = t.quote_time is not None and (now - t.quote_time).total_seconds() > self.stale_after
        flags = ("!" if opp.at_risk else "") + ("D" if RiskFlag.DIVIDEND in opp.risks else "") + ("~" if stale else "")
        if t.state != "live":
            flags = "gone " + flags
        key = (t.key, t.state, opp.edge_total, opp.best_edge_total, opp.net_price, age, flags, i == self.cursor, width)
        cached = self._cache.get(i)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = (f" {opp.kind.value:<11} {opp.symbol:<5} {_legs_text(opp)[:44]:<44} {opp.net_price:>8.2f} "
                f"{opp.edge_combo_net:>9.2f} {opp.max_size:>5d} {_money(opp.edge_total):>10} "
                f"{_money(opp.best_edge_total):>10} {age:>5} {flags}")
        style = self._style("row")
        if t.state != "live":
            style += self._style("gone")
        elif stale:
            style += self._style("stale")
        if i == self.cursor:
            style += self._style("cursor")
        strip = Strip([Segment(text[:width].ljust(width), style)], width)
        self._cache[i] = (key, strip)
        return strip


class ComboConfirmScreen(ModalScreen[bool]):
    """Fallback order ticket for a combo (used when the desk has no order ticket that
    takes :class:`ComboSelected`): the legs, the net price, the edge, the risk preview
    from the runtime's :class:`desk.safety.OrderRouter`, and ``y`` / Enter to send it
    through that router (every gate and risk check applies), Escape to cancel.

    ``runtime``: needs ``router`` (``None``: orders disabled, ``router_error`` says why)
    and ``market_context(intent)``. Dismisses with True once sent.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "send", "Send", id="combo.send", tooltip="Send the combo order"),
        Binding("escape,n", "cancel", "Cancel", id="combo.cancel", tooltip="Close without sending"),
    ]

    DEFAULT_CSS = """
    ComboConfirmScreen { align: center middle; }
    ComboConfirmScreen > Static { width: 90; height: auto; border: round $primary; padding: 0 1; background: $panel; }
    """

    def __init__(self, message: ComboSelected, runtime: Any) -> None:
        super().__init__()
        self.combo = message
        self.runtime = runtime
        self.report: Any = None
        self.result: Any = None
        router = getattr(runtime, "router", None)
        if router is not None and hasattr(runtime, "market_context"):
            try:
                self.report = router.preview(message.intent, runtime.market_context(message.intent))
            except Exception as exc:  # preview failure is shown, not raised
                self.report = exc

    def compose(self) -> ComposeResult:
        yield Static(self.text(), id="combo-text")

    def text(self) -> str:
        intent, opp = self.combo.intent, self.combo.opportunity
        lines = [f"[b]{opp.kind.value} {opp.symbol}[/b]" + ("   [b]SIMULATED[/b]" if self.combo.simulated else "")]
        lines += [f"  {leg.action.value} {leg.ratio} {leg.instrument.key}" for leg in intent.legs]
        lines.append(f"  {intent.describe}")
        lines.append(f"  net {opp.net_price:+.2f}/sh   edge after costs ${opp.edge_combo_net:,.2f}/combo "
                     f"× {opp.max_size} available")
        router = getattr(self.runtime, "router", None)
        if router is None:
            lines.append(f"  [b]orders disabled[/b]: {getattr(self.runtime, 'router_error', 'no order router')}")
        elif isinstance(self.report, Exception):
            lines.append(f"  risk preview failed: {self.report}")
        elif self.report is not None:
            summary = self.report.summary()
            lines.append("  risk: " + ("[b]BLOCKED[/b] " + "; ".join(summary.get("reasons", [])) if summary.get("blocked")
                                       else "all checks pass"))
        lines.append("  y / Enter send · Esc cancel")
        return "\n".join(lines)

    def action_cancel(self) -> None:
        self.dismiss(False)

    async def action_send(self) -> None:
        router = getattr(self.runtime, "router", None)
        if router is None:
            self.notify("orders are disabled: " + str(getattr(self.runtime, "router_error", "")), severity="error")
            return
        intent = self.combo.intent
        self.result = await router.submit(intent, self.runtime.market_context(intent))
        if self.result.sent:
            self.notify(f"combo sent: {intent.describe}")
            self.dismiss(True)
        else:
            self.notify(f"combo {self.result.status}: {'; '.join(self.result.reasons)}", severity="error")
