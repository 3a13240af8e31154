"""The option chain pane: calls | strike | puts, live, on the Line API (one cached Strip per row).

Reads a :class:`~desk.broker.chains.ChainManager` (the broker side: definitions, the
window's market data lines, quotes, our Greeks) and draws, for the selected underlying and
expiry, one line per strike of the window::

    GOOG 748.36  ◂ 2016-01-15 · 22.2d ▸ 4/12  F 748.61  20 strikes  Greeks: ours
      Vega  Theta  Delta   IV%   Last     Bid     Ask    Strike     Bid     Ask    Last   IV%  Delta  Theta  Vega
     0.735 -0.309  0.492  18.5      —   12.70   13.10  ▶ 750 ◀    14.10   14.60      —  18.5 -0.506 -0.299 0.735
    ...
    GOOG 20160115 750 C  bid 12.70×10  ask 13.10×20  vol 15  OI 889  ours IV 18.46% Δ 0.492 …
    [ ] expiry  +/- strikes  g Greeks  s smile  Enter select  z zoom

Columns per side (outermost ones are dropped first when the pane is narrow: volume, open
interest, gamma): bid, ask, last (dollars per share), IV (percent), delta, gamma, theta
(dollars per share per calendar day), vega (dollars per share per vol point), volume and
open interest (contracts). In-the-money cells are shaded (calls below the underlying,
puts above), the strike nearest the underlying carries ``▶ ◀``, and ``*`` next to the
strike marks a stale quote (no update for ``stale_after`` seconds).

Repaint rule (design.md): :meth:`ChainPane.apply` gets the manager's
:class:`~desk.broker.chains.ChainFlush` from the app's flush timer and refreshes only the
rows whose quotes or flags (ATM, ITM, stale) changed; the row cache key is the two quotes'
``seq`` plus those flags, the cursor and the Greeks source.

``s`` swaps the grid for the smile (IV by strike of the window, :mod:`desk.ui.widgets.smile`).
Enter posts :class:`~desk.ui.messages.InstrumentSelected` with the option under the cursor
(the order ticket follows it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from desk.domain import Clock, Instrument
from desk.domain.options import OptionGreeks, OptionQuote
from desk.ui.formatting import MISSING, fmt_price
from desk.ui.messages import InstrumentSelected
from desk.ui.widgets.smile import SmilePoint, smile_lines

if TYPE_CHECKING:
    from desk.broker.chain_window import ChainRow
    from desk.broker.chains import ChainFlush, ChainManager

__all__ = ["ChainColumn", "ChainPane", "SIDE_COLUMNS"]


class ChainColumn(NamedTuple):
    """One column of a side: ``key``, header ``title``, ``width`` cells, ``drop`` order
    (columns with a higher number are dropped first when the pane is narrow; 0 never)."""

    key: str
    title: str
    width: int
    drop: int


#: The put side's columns, from the strike outwards; the call side mirrors them (with bid
#: and ask in the same bid-then-ask order on both sides).
SIDE_COLUMNS: tuple[ChainColumn, ...] = (
    ChainColumn("bid", "Bid", 7, 0),
    ChainColumn("ask", "Ask", 7, 0),
    ChainColumn("last", "Last", 7, 3),
    ChainColumn("iv", "IV%", 5, 0),
    ChainColumn("delta", "Delta", 6, 0),
    ChainColumn("gamma", "Gamma", 7, 4),
    ChainColumn("theta", "Theta", 6, 1),
    ChainColumn("vega", "Vega", 5, 2),
    ChainColumn("volume", "Vol", 6, 6),
    ChainColumn("oi", "OI", 7, 5),
)
_KEYS = tuple(c.key for c in SIDE_COLUMNS)
_INDEX = {key: i for i, key in enumerate(_KEYS)}
_ALL_MISSING = (MISSING,) * len(SIDE_COLUMNS)
_NO_GREEKS = OptionGreeks()
#: Width of the strike column (without the stale flags either side).
STRIKE_WIDTH = 9
#: Fixed lines above the rows (title, column header) and below them (detail, keys/message).
TOP_LINES = 2
BOTTOM_LINES = 2

_KEYS_HINT = "[ ] expiry  +/- strikes  g Greeks  s smile  c centre  Enter select  z zoom"


def _fmt_iv(iv: float) -> str:
    return MISSING if iv != iv else f"{iv * 100:.1f}"


def _fmt_greek(value: float, decimals: int = 3) -> str:
    if value != value:
        return MISSING
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.{decimals}f}"


def _fmt_count(value: float) -> str:
    """Contracts: ``1,234``, ``56.7k``, ``1.23M``."""
    if value != value:
        return MISSING
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    if value >= 100_000:
        return f"{value / 1_000:.0f}k"
    if value >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}"


def _fmt_strike(k: float) -> str:
    return f"{k:g}" if k == k else MISSING


def _fmt_expiry(expiry: str) -> str:
    return f"{expiry[:4]}-{expiry[4:6]}-{expiry[6:8]}" if len(expiry) == 8 else expiry


def visible_columns(width: int) -> tuple[ChainColumn, ...]:
    """The side columns that fit ``width`` cells (both sides and the strike), dropping
    the highest ``drop`` numbers first; never fewer than the ``drop == 0`` ones."""
    columns = list(SIDE_COLUMNS)
    while True:
        if row_width(columns) <= width:
            break
        droppable = [c for c in columns if c.drop > 0]
        if not droppable:
            break
        columns.remove(max(droppable, key=lambda c: c.drop))
    return tuple(columns)


def row_width(columns: tuple[ChainColumn, ...] | list[ChainColumn]) -> int:
    """Cells of one row: 1 gap, the call side, flag, strike, flag, 1 gap, the put side
    (each side's columns are followed by a 1-cell gap)."""
    side = sum(c.width + 1 for c in columns)
    return 1 + side + 1 + STRIKE_WIDTH + 1 + 1 + side


class ChainPane(ScrollView, can_focus=True):
    """The option chain of the selected underlying (see the module docstring).

    ``chains`` is the broker's chain manager (``None``: the pane says the chain is not
    available). ``clock`` decides staleness; ``stale_after`` seconds without an update
    marks a quote stale. The app calls :meth:`apply` on every flush and
    :meth:`show_underlying` when the watchlist selection changes.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="chain.up", tooltip="Previous strike"),
        Binding("down,j", "cursor_down", "Down", show=False, id="chain.down", tooltip="Next strike"),
        Binding("left,h", "side('C')", "Calls", show=False, id="chain.calls", tooltip="Cursor to the call side"),
        Binding("right,l", "side('P')", "Puts", show=False, id="chain.puts", tooltip="Cursor to the put side"),
        Binding("pageup", "page_up", "Page up", show=False, id="chain.page_up", tooltip="One page of strikes up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="chain.page_down", tooltip="One page of strikes down"),
        Binding("home", "cursor_home", "First", show=False, id="chain.first", tooltip="Lowest strike of the window"),
        Binding("end", "cursor_end", "Last", show=False, id="chain.last", tooltip="Highest strike of the window"),
        Binding("c", "centre", "Centre", show=False, id="chain.centre", tooltip="Cursor to the at-the-money strike"),
        Binding("left_square_bracket", "expiry(-1)", "Prev expiry", id="chain.prev_expiry", tooltip="Previous expiry"),
        Binding("right_square_bracket", "expiry(1)", "Next expiry", id="chain.next_expiry", tooltip="Next expiry"),
        Binding("plus,equals_sign", "wider", "Wider", show=False, id="chain.wider", tooltip="More strikes (wider window)"),
        Binding("minus", "narrower", "Narrower", show=False, id="chain.narrower", tooltip="Fewer strikes (narrower window)"),
        Binding("g", "toggle_greeks", "Greeks", id="chain.greeks", tooltip="Toggle Greeks: ours / IB's model"),
        Binding("s", "toggle_smile", "Smile", id="chain.smile", tooltip="Toggle the smile view (IV by strike)"),
        Binding("enter", "select", "Select", show=False, id="chain.select", tooltip="Select the option for the order ticket"),
        Binding("z", "zoom", "Zoom", show=False, id="chain.zoom", tooltip="Maximize the chain pane (again: restore)"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chain--title",
        "chain--header",
        "chain--strike",
        "chain--atm",
        "chain--itm",
        "chain--cursor",
        "chain--cursor-row",
        "chain--stale",
        "chain--missing",
        "chain--empty",
        "chain--detail",
        "chain--hint",
        "chain--warning",
        "chain--error",
        "chain--smile-otm",
        "chain--smile-itm",
        "chain--smile-atm",
        "chain--smile-axis",
    }

    DEFAULT_CSS = """
    ChainPane {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    ChainPane > .chain--title { background: $panel; color: $foreground; text-style: bold; }
    ChainPane > .chain--header { background: $panel; color: $text-muted; text-style: bold; }
    ChainPane > .chain--strike { color: $foreground; text-style: bold; }
    ChainPane > .chain--atm { color: $accent; text-style: bold reverse; }
    ChainPane > .chain--itm { background: $secondary 15%; }
    ChainPane > .chain--cursor { background: $primary 25%; }
    ChainPane:focus > .chain--cursor { background: $primary 50%; }
    ChainPane > .chain--cursor-row { background: $primary 10%; }
    ChainPane > .chain--stale { color: $warning; text-style: bold; }
    ChainPane > .chain--missing { color: $text-disabled; }
    ChainPane > .chain--empty { color: $text-muted; text-style: italic; }
    ChainPane > .chain--detail { background: $panel; color: $foreground; }
    ChainPane > .chain--hint { color: $text-muted; }
    ChainPane > .chain--warning { color: $warning; text-style: bold; }
    ChainPane > .chain--error { color: $error; text-style: bold; }
    ChainPane > .chain--smile-otm { color: $accent; text-style: bold; }
    ChainPane > .chain--smile-itm { color: $text-muted; }
    ChainPane > .chain--smile-atm { color: $warning; }
    ChainPane > .chain--smile-axis { color: $text-muted; }
    """

    #: Seconds the pane waits after a watchlist selection before loading its chain (the
    #: cursor may move on: each load costs two gateway requests).
    UNDERLYING_DEBOUNCE = 0.3

    def __init__(
        self,
        chains: ChainManager | None,
        *,
        clock: Clock | None = None,
        stale_after: float = 30.0,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.chains = chains
        self.clock = clock or Clock()
        self.stale_after = stale_after
        #: Greeks shown: "ours" (desk.pricing) or "ib" (IB's model Greeks)
        self.source = "ours"
        #: "grid" (calls | strike | puts) or "smile"
        self.view = "grid"
        self._rows: list[ChainRow] = []
        self._row_of: dict[int, int] = {}  # conId -> row index
        self._flags: list[tuple[bool, bool, bool, bool, bool]] = []  # atm, itm C, itm P, stale C, stale P
        #: strike -> (fast key: quote seqs + flags, display key: the texts shown, strip)
        self._cache: dict[float, tuple[tuple[object, ...], tuple[object, ...], Strip]] = {}
        self._view = Size(0, 0)  # the content area (without scrollbars), see render_lines
        self._fixed: dict[str, tuple[object, Strip]] = {}  # title/header/detail/hint caches
        self._styles: dict[str, Style] | None = None
        self._columns: tuple[ChainColumn, ...] = SIDE_COLUMNS
        self._smile: list[Strip] | None = None
        self._layout_seq = -1
        self._layout_key: tuple[int | None, str | None] = (None, None)
        self._cursor = 0
        self._side = "C"
        self._last_strike: float | None = None
        self._pending_expiry: str | None = None  # asked for with [ / ], still loading
        #: rows rebuilt since construction (for tests and measurements)
        self.rows_rendered = 0

    # ------------------------------------------------------------------ public API

    @property
    def rows(self) -> list[ChainRow]:
        """The strikes shown, ascending."""
        return list(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_side(self) -> str:
        """``"C"`` or ``"P"``."""
        return self._side

    @property
    def highlighted(self) -> Instrument | None:
        """The option under the cursor (``None`` if there is none)."""
        if not (0 <= self._cursor < len(self._rows)):
            return None
        row = self._rows[self._cursor]
        return row.call if self._side == "C" else row.put

    @property
    def page_rows(self) -> int:
        """Strike rows visible at once."""
        return max(1, self._view_size().height - TOP_LINES - BOTTOM_LINES)

    def show_underlying(self, instrument: Instrument) -> None:
        """Load ``instrument``'s chain (a stock or ETF; options are ignored), debounced."""
        chains = self.chains
        if chains is None or instrument.sec_type == "OPT":
            return
        if chains.underlying is not None and chains.underlying.con_id == instrument.con_id:
            return
        delay = self.UNDERLYING_DEBOUNCE if chains.underlying is not None else 0.0
        self.run_worker(
            self._load_underlying(instrument, delay),
            group="chain-underlying",
            exclusive=True,
            exit_on_error=False,
            description=f"load the option chain of {instrument.symbol}",
        )

    async def _load_underlying(self, instrument: Instrument, delay: float) -> None:
        from desk.broker.chains import ChainError

        if delay:
            await asyncio.sleep(delay)
        assert self.chains is not None
        self._changed()
        try:
            await self.chains.set_underlying(instrument)
        except ChainError:
            pass  # the manager's message says why; the app reports it
        self._changed()

    def apply(self, flush: ChainFlush | None = None) -> int:
        """Repaint what changed: the whole pane after a layout change, else the rows of
        ``flush.con_ids`` and the rows whose ATM / ITM / stale flags changed. Returns the
        number of rows refreshed (all of them on a layout change)."""
        chains = self.chains
        if chains is None:
            return 0
        if chains.layout_seq != self._layout_seq or (flush is not None and flush.layout):
            self._rebuild()
            return len(self._rows)
        refresh: set[int] = set()
        if flush is not None:
            for con_id in flush.con_ids:
                row = self._row_of.get(con_id)
                if row is not None:
                    refresh.add(row)
        flags = self._compute_flags()
        for i, (old, new) in enumerate(zip(self._flags, flags)):
            if old != new:
                refresh.add(i)
        self._flags = flags
        if self.view == "smile":
            if refresh or (flush is not None and flush.computed):
                self._smile = None
                self.refresh()
            self._refresh_fixed()
            return len(refresh)
        repainted = 0
        top = int(self.scroll_y)
        for i in refresh:
            if not (top <= i < top + self.page_rows):
                continue  # off screen: rebuilt from the cache key when scrolled into view
            before = self._cache.get(self._rows[i].strike)
            if before is None or self._row_strip(i) is not before[2]:
                self._refresh_row(i)  # only rows whose text or styles really changed
                repainted += 1
        self._refresh_fixed()
        return repainted

    def move_cursor(self, row: int, side: str | None = None) -> None:
        """Put the cursor on ``row`` (clamped) and ``side`` (``"C"``/``"P"``)."""
        if side is not None and side not in ("C", "P"):
            raise ValueError(f"side must be 'C' or 'P', got {side!r}")
        if not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        old = self._cursor
        self._cursor = row
        if side is not None:
            self._side = side
        self._last_strike = self._rows[row].strike
        self._refresh_row(old)
        self._refresh_row(row)
        self._scroll_cursor_into_view()
        self._refresh_fixed(force=True)
        if self.view == "smile":
            self._smile = None
            self.refresh()

    def row_text(self, row: int) -> str:
        """Plain text of a strike row as rendered (for tests)."""
        return self._row_strip(row).text

    def line_text(self, y: int) -> str:
        """Plain text of line ``y`` of the pane (title 0, header 1, rows, detail, keys)."""
        return self.render_line(y).text

    # ------------------------------------------------------------------ actions

    def action_cursor_up(self) -> None:
        """Cursor one strike down in price (up on screen)."""
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """Cursor one strike up in price (down on screen)."""
        self.move_cursor(self._cursor + 1)

    def action_side(self, side: str) -> None:
        """Cursor to the call (``C``) or put (``P``) side."""
        self.move_cursor(self._cursor, side)

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - self.page_rows)

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + self.page_rows)

    def action_cursor_home(self) -> None:
        self.move_cursor(0)

    def action_cursor_end(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_centre(self) -> None:
        """Cursor to the strike nearest the underlying."""
        self.move_cursor(self._atm_row())

    def action_expiry(self, step: int) -> None:
        """Show the expiry ``step`` places later (earlier when negative).

        Key presses add up while an expiry is still loading: ``]`` ``]`` moves two
        expiries even if the first one's contracts have not arrived yet.
        """
        chains = self.chains
        if chains is None or not chains.expiries:
            return
        expiries = chains.expiries
        base = self._pending_expiry or chains.expiry
        i = expiries.index(base) if base in expiries else 0
        target = expiries[max(0, min(len(expiries) - 1, i + step))]
        if target == base:
            return
        self._pending_expiry = target
        self.run_worker(
            self._set_expiry(target), group="chain-expiry", exclusive=True, exit_on_error=False,
            description=f"show expiry {target}",
        )

    async def _set_expiry(self, expiry: str) -> None:
        from desk.broker.chains import ChainError

        assert self.chains is not None
        try:
            await self.chains.set_expiry(expiry)
        except ChainError:
            pass  # the manager's message says why
        finally:
            if self._pending_expiry == expiry:
                self._pending_expiry = None
        self._changed()

    def action_wider(self) -> None:
        """One step wider strike window (+2 strikes or +1 %)."""
        if self.chains is not None:
            self.chains.widen()
            self._changed()

    def action_narrower(self) -> None:
        """One step narrower strike window."""
        if self.chains is not None:
            self.chains.narrow()
            self._changed()

    def action_toggle_greeks(self) -> None:
        """Show our Greeks or IB's model Greeks."""
        self.source = "ib" if self.source == "ours" else "ours"
        self._cache.clear()
        self._fixed.clear()
        self._smile = None
        self.refresh()

    def action_toggle_smile(self) -> None:
        """Swap the grid and the smile view."""
        self.view = "smile" if self.view == "grid" else "grid"
        self._smile = None
        self._update_virtual_size()
        self.refresh()

    def action_select(self) -> None:
        """Post :class:`InstrumentSelected` with the option under the cursor."""
        if (instrument := self.highlighted) is not None:
            self.post_message(InstrumentSelected(instrument))

    def action_zoom(self) -> None:
        """Maximize the pane (or restore it)."""
        screen = self.screen
        if screen.maximized is self:
            screen.minimize()
        else:
            screen.maximize(self, container=False)

    # ------------------------------------------------------------------ events

    def on_click(self, event: events.Click) -> None:
        """A click on a row moves the cursor there, to the side clicked."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y < TOP_LINES:
            return
        row = int(self.scroll_y) + offset.y - TOP_LINES
        if row < len(self._rows) and self.view == "grid":
            middle = row_width(self._columns) // 2
            self.move_cursor(row, "C" if offset.x + int(self.scroll_x) < middle else "P")

    def on_resize(self, event: events.Resize) -> None:
        self._view = self.scrollable_content_region.size
        columns = visible_columns(self._view.width)
        if columns != self._columns:
            self._columns = columns
            self._cache.clear()
            self._fixed.clear()
        self._smile = None
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        """CSS changed (theme switch, focus): drop styles and every cached strip."""
        super().notify_style_update()
        self._styles = None
        self._cache.clear()
        self._fixed.clear()
        self._smile = None
        self.refresh()

    # ------------------------------------------------------------------ Line API

    def render_line(self, y: int) -> Strip:
        """Line ``y``: title, column header, rows from ``scroll_y`` (or the smile), detail, keys."""
        width, height = self._view_size()
        scroll_x, scroll_y = self.scroll_offset
        base = self._style("base")
        if y == 0:
            return self._crop(self._title_strip(), 0, width)
        if y == height - 1 and height >= TOP_LINES + BOTTOM_LINES + 1:
            return self._crop(self._hint_strip(), 0, width)
        if y == height - 2 and height >= TOP_LINES + BOTTOM_LINES + 1:
            return self._crop(self._detail_strip(), 0, width)
        if self.view == "smile":
            return self._crop(self._smile_strip(y - 1, width, height), 0, width)
        if y == 1:
            return self._crop(self._header_strip(), scroll_x, width)
        row = scroll_y + y - TOP_LINES
        if row < len(self._rows):
            return self._crop(self._row_strip(row), scroll_x, width)
        if row == 0:
            return self._crop(self._empty_strip(), 0, width)
        return Strip.blank(width, base)

    def render_lines(self, crop: Region) -> list[Strip]:
        """Measure the content area once per paint (it is not cheap), then render the lines."""
        self._view = self.scrollable_content_region.size
        return super().render_lines(crop)

    def _view_size(self) -> Size:
        if not self._view.width:
            self._view = self.scrollable_content_region.size
        return self._view

    def _crop(self, strip: Strip, x: int, width: int) -> Strip:
        if x == 0 and strip.cell_length == width:
            return strip
        return strip.crop_extend(x, x + width, self._style("base"))

    # ------------------------------------------------------------------ state

    def _changed(self) -> None:
        """The manager's state changed outside a flush (key press, load finished)."""
        if self.is_mounted:
            self.apply(None)

    def _rebuild(self) -> None:
        chains = self.chains
        assert chains is not None
        keep = self._last_strike
        layout_key = (chains.underlying.con_id if chains.underlying is not None else None, chains.expiry)
        same_chain = layout_key == self._layout_key
        self._layout_key = layout_key
        self._layout_seq = chains.layout_seq
        self._rows = list(chains.rows)
        self._row_of = {}
        for i, row in enumerate(self._rows):
            for ins in (row.call, row.put):
                if ins is not None:
                    self._row_of[ins.con_id] = i
        self._cache.clear()
        self._fixed.clear()
        self._smile = None
        self._flags = self._compute_flags()
        strikes = [r.strike for r in self._rows]
        if keep is not None and keep in strikes and same_chain:
            self._cursor = strikes.index(keep)
        else:
            self._cursor = self._atm_row()
        if self._rows:
            self._last_strike = self._rows[self._cursor].strike
        self._update_virtual_size()
        self.refresh()
        if self.is_mounted:
            # after the next refresh: the new virtual size sets how far the pane can scroll
            self.call_after_refresh(self._scroll_cursor_into_view, True)

    def _update_virtual_size(self) -> None:
        height = TOP_LINES + BOTTOM_LINES + (len(self._rows) if self.view == "grid" else 0)
        self.virtual_size = Size(row_width(self._columns), max(height, TOP_LINES + BOTTOM_LINES + 1))

    def _atm_row(self) -> int:
        chains = self.chains
        if chains is None or not self._rows:
            return 0
        atm = chains.atm_strike
        if atm != atm:
            return len(self._rows) // 2
        return min(range(len(self._rows)), key=lambda i: abs(self._rows[i].strike - atm))

    def _compute_flags(self) -> list[tuple[bool, bool, bool, bool, bool]]:
        chains = self.chains
        if chains is None:
            return []
        spot = chains.spot if chains.spot == chains.spot else chains.forward
        atm = chains.atm_strike
        now = self.clock.time()
        stale_after = self.stale_after
        flags = []
        for row in self._rows:
            k = row.strike
            flags.append((
                k == atm,
                spot == spot and k < spot,
                spot == spot and k > spot,
                self._stale(chains.quote(row.call), now, stale_after),
                self._stale(chains.quote(row.put), now, stale_after),
            ))
        return flags

    @staticmethod
    def _stale(quote: OptionQuote | None, now: float, stale_after: float) -> bool:
        if quote is None or quote.time is None:
            return False
        return now - quote.time.timestamp() > stale_after

    # ------------------------------------------------------------------ rendering

    def _style(self, name: str) -> Style:
        if self._styles is None:
            get = self.get_component_rich_style
            self._styles = {
                "base": self.rich_style,
                "title": get("chain--title"),
                "header": get("chain--header"),
                "cursor": get("chain--cursor"),
                "cursor-row": get("chain--cursor-row"),
                "itm": get("chain--itm"),
                "detail": get("chain--detail"),
                "empty": get("chain--empty"),
                # foreground-only overlays keep the cell's background
                "strike": get("chain--strike", partial=True),
                "atm": get("chain--atm", partial=True),
                "stale": get("chain--stale", partial=True),
                "missing": get("chain--missing", partial=True),
                "hint": get("chain--hint", partial=True),
                "warning": get("chain--warning", partial=True),
                "error": get("chain--error", partial=True),
                "otm": get("chain--smile-otm", partial=True),
                "itm-dot": get("chain--smile-itm", partial=True),
                "atm-line": get("chain--smile-atm", partial=True),
                "axis": get("chain--smile-axis", partial=True),
            }
        return self._styles[name]

    def _cells(self, quote: OptionQuote | None) -> dict[str, str]:
        """The texts of one contract's cells by column key (unpadded)."""
        return dict(zip(_KEYS, self._values(quote)))

    def _values(self, quote: OptionQuote | None) -> tuple[str, ...]:
        """The texts of one contract's cells in :data:`SIDE_COLUMNS` order (the hot path)."""
        if quote is None:
            return _ALL_MISSING
        g = quote.ours if self.source == "ours" else quote.model
        if g is None:
            g = _NO_GREEKS
        bid, ask, last = quote.bid, quote.ask, quote.last
        return (
            f"{bid:,.2f}" if bid == bid else MISSING,
            f"{ask:,.2f}" if ask == ask else MISSING,
            f"{last:,.2f}" if last == last else MISSING,
            _fmt_iv(g.iv),
            _fmt_greek(g.delta),
            _fmt_greek(g.gamma, 4),
            _fmt_greek(g.theta),
            _fmt_greek(g.vega),
            _fmt_count(quote.volume),
            _fmt_count(quote.open_interest),
        )

    def _row_strip(self, row: int) -> Strip:
        """The strip of ``row``: cached by the quotes' ``seq`` and the row's flags; when
        those changed but the texts shown did not (a Greek moved in a decimal not shown),
        the old strip is kept."""
        chains = self.chains
        assert chains is not None
        r = self._rows[row]
        call, put = chains.quote(r.call), chains.quote(r.put)
        flags = self._flags[row] if row < len(self._flags) else (False,) * 5
        cursor = self._side if row == self._cursor else ""
        fast = (
            id(call), call.seq if call is not None else -1, id(put), put.seq if put is not None else -1,
            flags, cursor, self.source, self._columns,
        )
        cached = self._cache.get(r.strike)
        if cached is not None and cached[0] == fast:
            return cached[2]
        columns = self._columns
        call_texts = self._texts(call, r.call is not None, self._call_columns(columns))
        put_texts = self._texts(put, r.put is not None, columns)
        display = (call_texts, put_texts, flags, cursor, columns)
        if cached is not None and cached[1] == display:
            self._cache[r.strike] = (fast, display, cached[2])
            return cached[2]
        strip = self._build_row(r.strike, call_texts, put_texts, flags, cursor)
        self._cache[r.strike] = (fast, display, strip)
        self.rows_rendered += 1
        return strip

    @staticmethod
    def _call_columns(columns: tuple[ChainColumn, ...]) -> tuple[ChainColumn, ...]:
        """The call side's columns left to right: mirrored, but bid before ask."""
        outer = [c for c in reversed(columns) if c.key not in ("bid", "ask")]
        return tuple(outer + [c for c in columns if c.key in ("bid", "ask")])

    def _texts(self, quote: OptionQuote | None, present: bool, columns: tuple[ChainColumn, ...]) -> tuple[str, ...]:
        """The cell texts of one side, padded to the columns' widths (blank for no contract)."""
        if not present:
            return tuple(" " * c.width for c in columns)
        values = self._values(quote)
        out = []
        for c in columns:
            text = values[_INDEX[c.key]]
            width = c.width
            if len(text) > width:
                text = text[: width - 1] + "…"
            out.append(text.rjust(width))
        return tuple(out)

    def _build_row(
        self, strike: float, call_texts: tuple[str, ...], put_texts: tuple[str, ...],
        flags: tuple[bool, bool, bool, bool, bool], cursor: str,
    ) -> Strip:
        style = self._style
        atm, itm_c, itm_p, stale_c, stale_p = flags
        row_bg = style("cursor-row") if cursor else style("base")
        call_bg = style("cursor") if cursor == "C" else (row_bg + style("itm") if itm_c else row_bg)
        put_bg = style("cursor") if cursor == "P" else (row_bg + style("itm") if itm_p else row_bg)
        missing = style("missing")
        segments: list[Segment] = [Segment(" ", row_bg)]

        def side(texts: tuple[str, ...], bg: Style) -> None:
            # one segment per run of cells with the same style (missing values are dimmed)
            dim = bg + missing
            run: list[str] = []
            run_missing = False
            for text in texts:
                is_missing = text.endswith(MISSING)
                if run and is_missing != run_missing:
                    segments.append(Segment("".join(run), dim if run_missing else bg))
                    run = []
                run_missing = is_missing
                run.append(text)
                run.append(" ")
            if run:
                segments.append(Segment("".join(run), dim if run_missing else bg))

        side(call_texts, call_bg)
        stale = row_bg + style("stale")
        segments.append(Segment("*" if stale_c else " ", stale))
        text = _fmt_strike(strike)
        text = f"▶{text}◀" if atm else text
        segments.append(Segment(text.center(STRIKE_WIDTH), row_bg + (style("atm") if atm else style("strike"))))
        segments.append(Segment("*" if stale_p else " ", stale))
        segments.append(Segment(" ", row_bg))
        side(put_texts, put_bg)
        return Strip(segments, row_width(self._columns))

    def _header_strip(self) -> Strip:
        key = ("header", self._columns, self.source)
        cached = self._fixed.get("header")
        if cached is not None and cached[0] == key:
            return cached[1]
        style = self._style("header")
        columns = self._columns
        parts = [" "]
        for c in self._call_columns(columns):
            parts.append(c.title.rjust(c.width) + " ")
        parts.append(" " + "Strike".center(STRIKE_WIDTH) + " ")
        parts.append(" ")
        for c in columns:
            parts.append(c.title.rjust(c.width) + " ")
        text = "".join(parts)
        strip = Strip([Segment(text, style)], len(text))
        self._fixed["header"] = (key, strip)
        return strip

    def _title_strip(self) -> Strip:
        chains = self.chains
        style = self._style("title")
        if chains is None:
            text = " Option chain: not available"
        elif chains.underlying is None:
            text = " Option chain: select a stock in the watchlist"
        else:
            und = chains.underlying.symbol
            spot = fmt_price(chains.spot) if chains.spot == chains.spot else MISSING
            parts = [f" {und} {spot}"]
            if chains.expiry:
                n = len(chains.expiries)
                i = chains.expiries.index(chains.expiry) + 1 if chains.expiry in chains.expiries else 0
                days = chains.days_to_expiry()
                dte = f" · {days:.1f}d" if days == days else ""
                parts.append(f"◂ {_fmt_expiry(chains.expiry)}{dte} ▸ {i}/{n}")
                if chains.forward == chains.forward:
                    parts.append(f"F {chains.forward:,.2f}")
                parts.append(str(chains.spec))
                parts.append(f"Greeks: {'ours' if self.source == 'ours' else 'IB model'}")
                if self.view == "smile":
                    parts.append("smile")
            elif chains.loading:
                parts.append("loading…")
            text = "  ".join(parts)
        key = ("title", text)
        cached = self._fixed.get("title")
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = Strip([Segment(text, style)], len(text))
        self._fixed["title"] = (key, strip)
        return strip

    def _detail_text(self) -> str:
        chains = self.chains
        instrument = self.highlighted
        if chains is None or instrument is None:
            return ""
        quote = chains.quote(instrument)
        if quote is None:
            return f" {instrument.key}: no market data line"
        size = lambda v: MISSING if v != v else f"{v:,.0f}"  # noqa: E731
        text = (
            f" {instrument.key}  bid {fmt_price(quote.bid)}×{size(quote.bid_size)}"
            f"  ask {fmt_price(quote.ask)}×{size(quote.ask_size)}  last {fmt_price(quote.last)}"
            f"  vol {_fmt_count(quote.volume)}  OI {_fmt_count(quote.open_interest)}"
        )
        for name, g in (("ours", quote.ours), ("IB", quote.model)):
            if g is None:
                text += f"  {name}: —"
                continue
            text += (
                f"  {name}: IV {_fmt_iv(g.iv)}% Δ {_fmt_greek(g.delta)} Γ {_fmt_greek(g.gamma, 4)}"
                f" Θ {_fmt_greek(g.theta)} V {_fmt_greek(g.vega)}"
            )
            if name == "ours" and g.iv != g.iv and quote.iv_reason:
                from desk.pricing.chain_analytics import iv_reason_text

                text += f" ({iv_reason_text(quote.iv_reason).lower().replace('_', ' ')})"
        return text

    def _detail_strip(self) -> Strip:
        text = self._detail_text()
        key = ("detail", text)
        cached = self._fixed.get("detail")
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = Strip([Segment(text, self._style("detail"))], len(text))
        self._fixed["detail"] = (key, strip)
        return strip

    def _hint_strip(self) -> Strip:
        chains = self.chains
        message, level = ("", "info") if chains is None else (chains.message, chains.message_level)
        key = ("hint", message, level)
        cached = self._fixed.get("hint")
        if cached is not None and cached[0] == key:
            return cached[1]
        base = self._style("base")
        if message:
            style = base + self._style(level if level in ("warning", "error") else "hint")
            text = " " + message
        else:
            style = base + self._style("hint")
            text = " " + _KEYS_HINT
        strip = Strip([Segment(text, style)], len(text))
        self._fixed["hint"] = (key, strip)
        return strip

    def _empty_strip(self) -> Strip:
        chains = self.chains
        if chains is None:
            text = "  No option chain: the runtime has no chain manager."
        elif chains.underlying is None:
            text = "  Select a stock or ETF in the watchlist to see its options."
        elif chains.loading:
            text = f"  {chains.underlying.symbol}: loading the option chain…"
        elif chains.message:
            text = "  " + chains.message
        else:
            text = "  No strikes to show."
        return Strip([Segment(text, self._style("empty"))], len(text))

    def _smile_strip(self, line: int, width: int, height: int) -> Strip:
        """Line ``line`` of the smile view: its legend at 0 (the pane's line 1), then the plot."""
        if self._smile is None or (self._smile and self._smile[0].cell_length != width):
            self._smile = self._build_smile(width, height - 1 - BOTTOM_LINES)
        if 0 <= line < len(self._smile):
            return self._smile[line]
        return Strip.blank(width, self._style("base"))

    def _build_smile(self, width: int, height: int) -> list[Strip]:
        chains = self.chains
        points: list[SmilePoint] = []
        atm = cursor_k = math.nan
        if chains is not None:
            forward = chains.forward if chains.forward == chains.forward else chains.spot
            atm = chains.atm_strike
            for row in self._rows:
                for ins, is_call in ((row.call, True), (row.put, False)):
                    quote = chains.quote(ins)
                    if quote is None:
                        continue
                    g = quote.greeks(self.source)
                    if g is None or g.iv != g.iv:
                        continue
                    otm = (row.strike >= forward) if is_call else (row.strike < forward)
                    points.append(SmilePoint(row.strike, g.iv, otm if forward == forward else True))
            if 0 <= self._cursor < len(self._rows):
                cursor_k = self._rows[self._cursor].strike
        title = f" IV% by strike ({'ours' if self.source == 'ours' else 'IB model'}): ● out of the money  · in the money  ┊ ATM  │ cursor"
        styles = {
            "otm": self._style("otm"), "itm": self._style("itm-dot"), "atm": self._style("atm-line"),
            "cursor": self._style("atm-line"), "axis": self._style("axis"), "label": self._style("axis"),
            "plot": Style(), "empty": self._style("empty"),
        }
        base = self._style("base")
        strips = [Strip([Segment(title[:width].ljust(width), self._style("header"))], width)]
        for runs in smile_lines(points, width, max(0, height - 1), atm_strike=atm, cursor_strike=cursor_k):
            strips.append(Strip([Segment(text, base + styles.get(kind, Style())) for text, kind in runs], width))
        return strips

    # ------------------------------------------------------------------ helpers

    def _refresh_row(self, row: int) -> None:
        y = row - int(self.scroll_y) + TOP_LINES
        height = self._view_size().height
        if TOP_LINES <= y < height - BOTTOM_LINES:
            self.refresh(Region(0, y, self.size.width, 1))

    def _refresh_fixed(self, force: bool = False) -> None:
        """Repaint the title, detail and keys lines if their text changed (or ``force``)."""
        height = self._view_size().height
        width = self.size.width
        getters: tuple[tuple[str, int, Callable[[], Strip]], ...] = (
            ("title", 0, self._title_strip),
            ("detail", height - 2, self._detail_strip),
            ("hint", height - 1, self._hint_strip),
        )
        for name, y, getter in getters:
            before = self._fixed.get(name)
            strip = getter()  # cached by its text: a new strip means new text
            if (force or before is None or before[1] is not strip) and y >= 0:
                self.refresh(Region(0, y, width, 1))

    def _scroll_cursor_into_view(self, centre: bool = False) -> None:
        if self.view != "grid" or not self._rows:
            return
        top = int(self.scroll_y)
        visible = self.page_rows
        if centre:
            self.scroll_to(y=max(0, self._cursor - visible // 2), animate=False)
        elif self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)
