"""The option chain pane: calls | strike | puts, live, on the Line API (one cached Strip per row).

Reads a :class:`~desk.engine.backend.ChainView` (the engine's chain as this view sees it:
definitions, the window, quotes, desk's IV and Greeks computed by the engine's analytics)
and draws, for the selected underlying and
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

Repaint rule (design.md): :meth:`ChainPane.apply` gets the chain's
:class:`~desk.domain.chain.ChainFlush` (what changed since the view last looked) from the
app's flush timer and refreshes only the
rows whose quotes or flags (ATM, ITM, stale) changed; the row cache key is the two quotes'
``seq`` plus those flags, the cursor and the Greeks source.

``s`` swaps the grid for the smile (IV by strike of the window, :mod:`desk.ui.widgets.smile`).
Enter posts :class:`~desk.ui.messages.InstrumentSelected` with the option under the cursor
(the order ticket follows it).

This module holds the widget; the columns, cell texts, row segments and fixed lines are
pure functions in :mod:`desk.ui.widgets.chain_layout`, the look in :mod:`~desk.ui.widgets.chain_styles`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from desk.domain import Clock, Instrument
from desk.domain.options import OptionQuote
from desk.ui.messages import InstrumentSelected
from desk.ui.widgets.chain_layout import (
    BOTTOM_LINES,
    COLUMN_KEYS,
    SIDE_COLUMNS,
    TOP_LINES,
    ChainColumn,
    RowFlags,
    atm_row,
    call_columns,
    changed_rows,
    detail_text,
    empty_text,
    expiry_after,
    header_text,
    hint_line,
    row_flags,
    row_segments,
    row_width,
    rows_by_con_id,
    scroll_target,
    side_texts,
    side_values,
    smile_view,
    title_text,
    visible_columns,
)
from desk.ui.widgets.chain_styles import CHAIN_COMPONENT_CLASSES, CHAIN_CSS, resolve_styles
from desk.ui.widgets.zoom import toggle_zoom

if TYPE_CHECKING:
    from desk.domain.chain import ChainRow
    from desk.domain.chain import ChainFlush
    from desk.engine.backend import ChainView

# ChainColumn, SIDE_COLUMNS, row_width and visible_columns (chain_layout) re-exported
__all__ = ["ChainColumn", "ChainPane", "SIDE_COLUMNS", "row_width", "visible_columns"]


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

    # the component classes and the CSS are in chain_styles, with the style names they map to
    COMPONENT_CLASSES: ClassVar[set[str]] = CHAIN_COMPONENT_CLASSES
    DEFAULT_CSS = CHAIN_CSS

    #: Seconds the pane waits after a watchlist selection before loading its chain (the
    #: cursor may move on: each load costs two gateway requests).
    UNDERLYING_DEBOUNCE = 0.3

    def __init__(
        self,
        chains: ChainView | None,
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
        self._flags: list[RowFlags] = []  # atm, itm C, itm P, stale C, stale P
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
        from desk.domain.chain import ChainError

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
        flags = self._compute_flags()
        refresh = changed_rows(self._row_of, flush.con_ids if flush is not None else None, self._flags, flags)
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
        base = self._pending_expiry or chains.expiry
        target = expiry_after(chains.expiries, base, step)
        if target == base:
            return
        self._pending_expiry = target
        self.run_worker(
            self._set_expiry(target),
            group="chain-expiry",
            exclusive=True,
            exit_on_error=False,
            description=f"show expiry {target}",
        )

    async def _set_expiry(self, expiry: str) -> None:
        from desk.domain.chain import ChainError

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
        toggle_zoom(self)

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
        self._row_of = rows_by_con_id(self._rows)
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
        return atm_row(self._rows, chains.atm_strike)

    def _compute_flags(self) -> list[RowFlags]:
        chains = self.chains
        if chains is None:
            return []
        return row_flags(chains, self._rows, self.clock.time(), self.stale_after)

    # ------------------------------------------------------------------ rendering

    def _style(self, name: str) -> Style:
        if self._styles is None:
            self._styles = resolve_styles(self.get_component_rich_style, self.rich_style)
        return self._styles[name]

    def _cells(self, quote: OptionQuote | None) -> dict[str, str]:
        """The texts of one contract's cells by column key (unpadded)."""
        return dict(zip(COLUMN_KEYS, side_values(quote, self.source)))

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
            id(call),
            call.seq if call is not None else -1,
            id(put),
            put.seq if put is not None else -1,
            flags,
            cursor,
            self.source,
            self._columns,
        )
        cached = self._cache.get(r.strike)
        if cached is not None and cached[0] == fast:
            return cached[2]
        columns = self._columns
        call_texts = side_texts(call, r.call is not None, call_columns(columns), self.source)
        put_texts = side_texts(put, r.put is not None, columns, self.source)
        display = (call_texts, put_texts, flags, cursor, columns)
        if cached is not None and cached[1] == display:
            self._cache[r.strike] = (fast, display, cached[2])
            return cached[2]
        strip = Strip(row_segments(r.strike, call_texts, put_texts, flags, cursor, self._style), row_width(columns))
        self._cache[r.strike] = (fast, display, strip)
        self.rows_rendered += 1
        return strip

    def _fixed_strip(self, name: str, key: object, build: Callable[[], tuple[str, Style]]) -> Strip:
        """Fixed line ``name`` (one segment of ``build()``'s text and style), rebuilt only
        when its ``key`` changed."""
        cached = self._fixed.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        text, style = build()
        strip = Strip([Segment(text, style)], len(text))
        self._fixed[name] = (key, strip)
        return strip

    def _header_strip(self) -> Strip:
        columns = self._columns
        return self._fixed_strip(
            "header", ("header", columns, self.source), lambda: (header_text(columns), self._style("header"))
        )

    def _title_strip(self) -> Strip:
        text = title_text(self.chains, self.source, self.view)
        return self._fixed_strip("title", ("title", text), lambda: (text, self._style("title")))

    def _detail_strip(self) -> Strip:
        text = detail_text(self.chains, self.highlighted)
        return self._fixed_strip("detail", ("detail", text), lambda: (text, self._style("detail")))

    def _hint_strip(self) -> Strip:
        chains = self.chains
        message, level = ("", "info") if chains is None else (chains.message, chains.message_level)
        text, style = hint_line(message, level)
        return self._fixed_strip("hint", ("hint", message, level), lambda: (text, self._style("base") + self._style(style)))

    def _empty_strip(self) -> Strip:
        text = empty_text(self.chains)
        return Strip([Segment(text, self._style("empty"))], len(text))

    def _smile_strip(self, line: int, width: int, height: int) -> Strip:
        """Line ``line`` of the smile view: its legend at 0 (the pane's line 1), then the plot."""
        if self._smile is None or (self._smile and self._smile[0].cell_length != width):
            self._smile = self._build_smile(width, height - 1 - BOTTOM_LINES)
        if 0 <= line < len(self._smile):
            return self._smile[line]
        return Strip.blank(width, self._style("base"))

    def _build_smile(self, width: int, height: int) -> list[Strip]:
        lines = smile_view(self.chains, self._rows, self._cursor, self.source, width, height, self._style)
        return [Strip(segments, width) for segments in lines]

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
        y = scroll_target(self._cursor, int(self.scroll_y), self.page_rows, centre)
        if y is not None:
            self.scroll_to(y=y, animate=False)
