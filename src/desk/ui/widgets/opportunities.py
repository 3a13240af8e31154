"""The opportunities pane: live arbitrage opportunities of the chain on screen, best first.

Reads a :class:`~desk.engine.backend.OpportunitiesView` (what the engine's scanner found;
the engine scans on its own timer, :mod:`desk.engine.analytics`) and draws one line per opportunity, ranked by total edge after costs::

    RISKLESS  7 live · 2 gone · 3 at risk (r)  kind: all  min edge: $0  underlying: all   SIMULATED
     Kind        Und   Legs                                   Net/sh  Edge/combo  Size     Total   Best   Age
     butterfly   SPY   +1 C 594 −2 C 595 +1 C 596 Nov27       −0.67     64.40      84   5409.60  5409.60   3s
     conversion  SPY   +100 STK −1 C 595 +1 P 595 Nov27      594.32     34.32      16    549.11   549.11  12s  D
     ...

Two views, switched with ``r``: **riskless** (the default) lists only the opportunities
that are :attr:`~desk.domain.opportunity.Opportunity.riskless` (no short leg at
early-exercise or dividend risk, an edge beyond the American premium, no stale leg);
**at risk** lists the others, labelled with why (the early-exercise premium of a deep
in-the-money American put is not an arbitrage). The recorder and Redis get both.

Columns: kind, underlying, legs (``+`` buy, ``−`` sell, ratio, right, strike, expiry),
net price per share (positive: debit), edge per combo after costs and the number of
combos executable against the displayed sizes (dollars, combos), total edge and the best
total seen (dollars), age since first seen. Flags: ``!`` early-exercise risk of a short
American leg, ``D`` counts estimated dividends, ``~`` stale (a leg's quote older than the
scanner's ``stale_after`` seconds), ``gone`` no longer found (kept a few seconds,
dimmed); the at-risk view adds the reasons in words.

The cursor follows the opportunity, not the line: the list re-ranks on every scan and
the cursor stays on the same key. When that opportunity is no longer listed the cursor
shows on no line and Enter says it is gone (and opens nothing); a cursor key moves it
again.

Keys: ``r`` riskless / at-risk view, ``f`` kind filter (cycles), ``+``/``-`` minimum
edge, ``u`` underlying filter, Enter opens the combo order ticket
(:class:`desk.ui.screens.ticket.TicketScreen`, through the app on
:class:`~desk.ui.messages.ComboSelected`) with every leg as one BAG order at the net
price. The pane repaints on the scanner's ``seq`` and once a second for ages; lines are
cached per row.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from desk.domain import Clock, Instrument
from desk.domain.opportunity import LegAction, Opportunity, OpportunityKind, RiskFlag
from desk.ui.messages import ComboSelected

if TYPE_CHECKING:
    from desk.domain.opportunity import Tracked
    from desk.engine.backend import OpportunitiesView

__all__ = ["EDGE_STEPS", "RISK_WORDS", "VIEWS", "OpportunitiesPane", "combo_intent", "risk_text"]

#: Minimum-edge filter steps, dollars per combo after costs.
EDGE_STEPS = (0.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0)
KINDS: tuple[str | None, ...] = (None, *(k.value for k in OpportunityKind))
#: The pane's views: riskless opportunities (default) and the others.
VIEWS = ("riskless", "at risk")
#: Why an opportunity is not riskless, in a few words (the at-risk view's labels).
RISK_WORDS = {
    RiskFlag.EARLY_EXERCISE_PUT: "short put early-ex",
    RiskFlag.EARLY_EXERCISE_CALL: "short call early-ex (div)",
    RiskFlag.AMERICAN_PREMIUM: "within Am. premium",
    RiskFlag.DIVIDEND: "div owed on short stock",
    RiskFlag.STALE: "stale leg",
}

_HEADER = (
    f" {'Kind':<11} {'Und':<5} {'Legs':<44} {'Net/sh':>8} {'Edge/cmb':>9} {'Size':>5} {'Total':>10} {'Best':>10} {'Age':>5} Flags"
)
#: Below this width the pane drops Net/sh, Size, Best and Age, so that the flags (and the
#: at-risk reasons) stay on screen.
WIDE = 130
_HEADER_NARROW = f" {'Kind':<11} {'Und':<5} {'Legs':<44} {'Edge/cmb':>9} {'Total':>10} Flags"


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
            ins = Instrument(
                opp.symbol, "OPT", con_id=leg.con_id, expiry=leg.expiry, strike=leg.strike, right=leg.right, multiplier=m
            )
        legs.append(ComboLeg(ins, "BUY" if leg.action is LegAction.BUY else "SELL", leg.ratio))
    bag = Instrument(opp.symbol, "BAG", multiplier=m)
    return OrderIntent(bag, "BUY", quantity, "LMT", limit_price=round(opp.net_price, 2), legs=tuple(legs))


def risk_text(opp: Opportunity) -> str:
    """The reasons ``opp`` is not riskless, e.g. ``short put early-ex, stale leg`` (empty
    when it is riskless): early exercise of a short put or (before a dividend) call, an
    edge within the American premium, dividends owed on the short stock, a stale leg."""
    reasons = opp.risk_reasons
    return ", ".join(words for flag, words in RISK_WORDS.items() if flag in reasons)


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

    ``live``: the engine's opportunities (``None``: the pane says no scanner runs);
    ``clock``: for ages. Staleness is the scanner's (``RiskFlag.STALE``, see
    :class:`desk.arbitrage.live.LiveArbitrage`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="opps.up", tooltip="Previous opportunity"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="opps.down", tooltip="Next opportunity"),
        Binding(
            "enter",
            "select",
            "Trade",
            id="opps.select",
            tooltip="Open the combo order ticket with every leg of the opportunity under the cursor",
        ),
        Binding(
            "r",
            "toggle_view",
            "Riskless/at risk",
            id="opps.view",
            tooltip="Switch between the riskless view (default) and the at-risk view: early-exercise or dividend risk of a short leg, or a stale leg",
        ),
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

    def __init__(
        self,
        live: OpportunitiesView | None,
        *,
        clock: Clock | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.live = live
        self.clock = clock or Clock()
        #: ``riskless`` (default) or ``at risk`` (:data:`VIEWS`)
        self.view = VIEWS[0]
        #: opportunities of the other view that pass the filters (the title shows the count)
        self.other_count = 0
        #: the key of the opportunity under the cursor (identity across re-ranks)
        self.cursor_key: str | None = None
        self._cursor_item: Tracked | None = None  # the last seen of it (to name it once gone)
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
    def cursor_lost(self) -> bool:
        """True when the opportunity the cursor was on is no longer listed."""
        return self.cursor_key is not None and self._index(self.cursor_key) is None

    @property
    def selected(self) -> Tracked | None:
        """The opportunity under the cursor (by key), ``None`` if none or it is gone."""
        i = self._index(self.cursor_key) if self.cursor_key is not None else None
        return self.rows[i] if i is not None else None

    def _index(self, key: str | None) -> int | None:
        return next((i for i, t in enumerate(self.rows) if t.key == key), None)

    def underlyings(self) -> list[str]:
        live = self.live
        return sorted({t.opportunity.symbol for t in live.tracked}) if live is not None else []

    def _passes(self, t: Tracked) -> bool:
        opp = t.opportunity
        return (
            (self.kind is None or opp.kind.value == self.kind)
            and (self.underlying is None or opp.symbol == self.underlying)
            and opp.edge_combo_net > self.min_edge
        )

    def refresh_rows(self, force: bool = False, *, reanchor: bool = False) -> bool:
        """Re-read the scanner if it changed (or a second passed: ages); True if repainted.
        Called by the app's flush timer. The cursor stays on its key; ``reanchor`` (a
        filter or view the user changed) puts it on the first line when its key is no
        longer listed."""
        live = self.live
        second = int(self.clock.time())
        seq = live.seq if live is not None else 0
        if not force and seq == self._seq and second == self._second:
            return False
        self._seq, self._second = seq, second
        items = [t for t in (live.tracked if live is not None else []) if self._passes(t)]
        riskless = self.view == VIEWS[0]
        self.rows = [t for t in items if t.opportunity.riskless == riskless]
        self.other_count = len(items) - len(self.rows)
        i = self._index(self.cursor_key) if self.cursor_key is not None else None
        if i is not None:
            self.cursor = i
        elif self.cursor_key is None or reanchor:
            self.cursor = 0 if reanchor else max(0, min(self.cursor, len(self.rows) - 1))
            self.cursor_key = self.rows[self.cursor].key if self.rows else None
            i = self.cursor if self.rows else None
        if i is not None:
            self._cursor_item = self.rows[i]
        # else: the key is gone; the cursor shows on no line until a key moves it
        self.virtual_size = Size(self.size.width, len(self.rows) + 2)
        if i is not None:
            self.scroll_to_region_cursor()
        self.refresh()
        return True

    # ------------------------------------------------------------------ actions

    def action_cursor(self, step: int) -> None:
        if self.rows:
            if self.cursor_lost:  # the first key press after the opportunity went: back on a line
                self.cursor = max(0, min(len(self.rows) - 1, self.cursor))
            else:
                self.cursor = max(0, min(len(self.rows) - 1, self.cursor + step))
            self.cursor_key = self.rows[self.cursor].key
            self._cursor_item = self.rows[self.cursor]
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

    def action_toggle_view(self) -> None:
        """Riskless view <-> at-risk view."""
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.refresh_rows(force=True, reanchor=True)

    def action_cycle_kind(self) -> None:
        i = KINDS.index(self.kind)
        self.kind = KINDS[(i + 1) % len(KINDS)]
        self.refresh_rows(force=True, reanchor=True)

    def action_min_edge(self, step: int) -> None:
        self.min_edge_step = max(0, min(len(EDGE_STEPS) - 1, self.min_edge_step + step))
        self.refresh_rows(force=True, reanchor=True)

    def action_cycle_underlying(self) -> None:
        options: list[str | None] = [None, *self.underlyings()]
        i = options.index(self.underlying) if self.underlying in options else 0
        self.underlying = options[(i + 1) % len(options)]
        self.refresh_rows(force=True, reanchor=True)

    def action_select(self) -> None:
        """Post :class:`ComboSelected` with the combo order of the opportunity under the
        cursor, by key and as the scanner has it now; say so and post nothing when it is
        gone."""
        key = self.cursor_key
        if key is None:
            self.notify("no opportunity to trade", severity="warning")
            return
        listed = self.selected
        t = self.live.get(key) if self.live is not None else None
        if listed is None or t is None or t.state != "live":
            last = t or listed or self._cursor_item
            what = last.opportunity if last is not None and last.key == key else None
            name = f" ({what.kind.value} {what.symbol} {_legs_text(what)})" if what is not None else ""
            if t is not None and t.state == "live" and listed is None:  # re-classified (a leg went stale...)
                its_view = VIEWS[0] if t.opportunity.riskless else VIEWS[1]
                where = f"now in the {its_view} view" if its_view != self.view else "filtered out"
                self.notify(f"that opportunity is {where}{name}: nothing opened", severity="warning")
            else:
                self.notify(f"that opportunity is gone{name}: nothing opened", severity="warning")
            if listed is None and self.rows:  # back on a line for the next Enter
                self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
                self.cursor_key = self.rows[self.cursor].key
                self._cursor_item = self.rows[self.cursor]
                self.refresh()
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
        if self.view == VIEWS[0]:
            view = f" RISKLESS  {n_live} live · {n_gone} gone · {self.other_count} at risk (r)"
        else:
            view = (
                f" AT RISK  {n_live} live · {n_gone} gone · {self.other_count} riskless (r)"
                "  not arbitrage: early exercise, dividends, stale legs"
            )
        return f"{view}  kind: {self.kind or 'all'}  min edge: ${self.min_edge:g}  underlying: {self.underlying or 'all'}{sim}"

    def render_line(self, y: int) -> Strip:
        width = max(1, self.size.width)
        if y == 0:
            text = self.title_text()
            style = self._style("simulated") if self.live is not None and self.live.simulated else self._style("title")
            return Strip([Segment(text[:width].ljust(width), style)], width)
        if y == 1:
            header = _HEADER if width >= WIDE else _HEADER_NARROW
            return Strip([Segment(header[:width].ljust(width), self._style("header"))], width)
        i = y - 2 + self.scroll_offset.y
        if not 0 <= i < len(self.rows):
            if not self.rows and y == 2:
                text = ""
                if self.live is not None:
                    what = "riskless opportunities" if self.view == VIEWS[0] else "opportunities at risk"
                    text = f" no {what} beyond costs in the chain on screen"
                    if self.other_count:
                        text += f" ({self.other_count} in the {VIEWS[1] if self.view == VIEWS[0] else VIEWS[0]} view: r)"
                return Strip([Segment(text[:width].ljust(width), self._style("gone"))], width)
            return Strip.blank(width)
        return self._row_strip(i, width)

    def _row_strip(self, i: int, width: int) -> Strip:
        t = self.rows[i]
        opp = t.opportunity
        now = self.clock.now()
        age = _age((now - opp.first_seen).total_seconds())
        stale = RiskFlag.STALE in opp.risks
        flags = ("!" if opp.at_risk else "") + ("D" if RiskFlag.DIVIDEND in opp.risks else "") + ("~" if stale else "")
        if t.state != "live":
            flags = "gone " + flags
        if self.view != VIEWS[0]:
            flags = f"{flags:<4} {risk_text(opp)}"
        on_cursor = i == self.cursor and t.key == self.cursor_key
        key = (t.key, t.state, opp.edge_total, opp.best_edge_total, opp.net_price, age, flags, on_cursor, width)
        cached = self._cache.get(i)
        if cached is not None and cached[0] == key:
            return cached[1]
        if width >= WIDE:
            text = (
                f" {opp.kind.value:<11} {opp.symbol:<5} {_legs_text(opp)[:44]:<44} {opp.net_price:>8.2f} "
                f"{opp.edge_combo_net:>9.2f} {opp.max_size:>5d} {_money(opp.edge_total):>10} "
                f"{_money(opp.best_edge_total):>10} {age:>5} {flags}"
            )
        else:
            text = (
                f" {opp.kind.value:<11} {opp.symbol:<5} {_legs_text(opp)[:44]:<44} "
                f"{opp.edge_combo_net:>9.2f} {_money(opp.edge_total):>10} {flags}"
            )
        style = self._style("row")
        if t.state != "live":
            style += self._style("gone")
        elif stale:
            style += self._style("stale")
        if on_cursor:
            style += self._style("cursor")
        strip = Strip([Segment(text[:width].ljust(width), style)], width)
        self._cache[i] = (key, strip)
        return strip
