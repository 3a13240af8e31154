"""The watchlist pane: a Line-API grid of live quotes, one cached Strip per row.

Why not ``DataTable``: any ``update_cell`` invalidates the render cache of every visible
cell (design.md measured ~90 ms per frame for 50x10). Here each row is one
:class:`~textual.strip.Strip`, cached with the key ``(id(quote), quote.seq, cursor?,
flash)``; only rows whose quote changed are rebuilt, and :meth:`Watchlist.apply_dirty`
(called by the app's flush timer with the conIds drained from the
:class:`~desk.domain.QuoteStore`) repaints only those rows' lines.

Line 0 of the widget is a fixed header; row ``i`` of the watchlist is drawn at screen line
``i - scroll_y + 1``. Prices are dollars per share with the decimals of the instrument's
``min_tick``; sizes and volume in shares. The "Last" cell carries an arrow for the
direction of the last trade (▲ up, ▼ down) and flashes for a few flushes when it moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from desk.domain import Instrument, Quote, QuoteStore
from desk.ui.formatting import MISSING, fmt_change, fmt_pct, fmt_price, fmt_size, fmt_volume
from desk.ui.messages import InstrumentSelected


class Column(NamedTuple):
    """One watchlist column: ``key``, header ``title``, ``width`` in cells, ``align`` ``<`` or ``>``."""

    key: str
    title: str
    width: int
    align: str


#: The watchlist's columns, left to right.
COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 9, "<"),
    Column("bid", "Bid", 10, ">"),
    Column("ask", "Ask", 10, ">"),
    Column("last", "Last", 12, ">"),
    Column("change", "Chg", 9, ">"),
    Column("change_pct", "Chg%", 8, ">"),
    Column("bid_size", "Bid Sz", 8, ">"),
    Column("ask_size", "Ask Sz", 8, ">"),
    Column("volume", "Volume", 10, ">"),
)
#: Cells between columns, and before the first one.
GAP = 1
#: Width of a full row in cells.
ROW_WIDTH = GAP + sum(c.width + GAP for c in COLUMNS)
#: How many flushes a moved "Last" cell stays highlighted (0.15 s each in the desk).
FLASH_FLUSHES = 4

_ARROWS = {1: "▲", -1: "▼", 0: " "}


def _sign(value: float) -> int:
    if value > 0:
        return 1
    if value < 0:
        return -1
    return 0  # zero or nan


class Watchlist(ScrollView, can_focus=True):
    """Live quotes of the watchlist's instruments, with a keyboard cursor.

    ``quotes`` is the store the broker writes; the widget only reads it. Set the rows
    with :meth:`set_instruments`; repaint changed rows with :meth:`apply_dirty`. Moving
    the cursor posts :class:`~desk.ui.messages.InstrumentSelected` (superseding). The
    add / remove actions are the app's (they need the broker): ``a`` and ``d`` are
    bound here: ``a`` runs the app's ``add_symbol`` action, ``d`` posts
    :class:`Watchlist.RemoveRequested` for the highlighted row.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="watchlist.up", tooltip="Move the cursor up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="watchlist.down", tooltip="Move the cursor down"),
        Binding("home,g", "cursor_home", "First", show=False, id="watchlist.first", tooltip="First row"),
        Binding("end,G", "cursor_end", "Last", show=False, id="watchlist.last", tooltip="Last row"),
        Binding("pageup", "page_up", "Page up", show=False, id="watchlist.page_up", tooltip="One page up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="watchlist.page_down", tooltip="One page down"),
        Binding("enter", "select", "Select", show=False, id="watchlist.select", tooltip="Select the instrument"),
        Binding("a,plus,insert", "app.add_symbol", "Add", id="watchlist.add", tooltip="Add a symbol"),
        Binding("d,delete", "remove_highlighted", "Remove", id="watchlist.remove", tooltip="Remove the highlighted symbol"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "watchlist--header",
        "watchlist--cursor",
        "watchlist--symbol",
        "watchlist--up",
        "watchlist--down",
        "watchlist--flash-up",
        "watchlist--flash-down",
        "watchlist--missing",
        "watchlist--stale",
        "watchlist--empty",
    }

    DEFAULT_CSS = """
    Watchlist {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
    }
    Watchlist > .watchlist--header { background: $panel; color: $text-muted; text-style: bold; }
    Watchlist > .watchlist--cursor { background: $primary 15%; }
    Watchlist:focus > .watchlist--cursor { background: $primary 40%; }
    Watchlist > .watchlist--symbol { text-style: bold; }
    Watchlist > .watchlist--up { color: $price-up; }
    Watchlist > .watchlist--down { color: $price-down; }
    Watchlist > .watchlist--flash-up { background: $price-up 35%; text-style: bold; }
    Watchlist > .watchlist--flash-down { background: $price-down 35%; text-style: bold; }
    Watchlist > .watchlist--missing { color: $text-disabled; }
    Watchlist > .watchlist--stale { color: $warning; text-style: bold; }
    Watchlist > .watchlist--empty { color: $text-muted; text-style: italic; }
    """

    @dataclass
    class RemoveRequested(Message):
        """The user asked to remove ``instrument`` from the watchlist (the app asks the broker)."""

        instrument: Instrument

    def __init__(
        self,
        quotes: QuoteStore,
        instruments: Iterable[Instrument] = (),
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.quotes = quotes
        self._rows: list[Instrument] = []
        self._index: dict[int, int] = {}  # conId -> row index
        self._cache: dict[int, tuple[tuple[object, ...], Strip]] = {}  # conId -> (key, strip)
        self._header: Strip | None = None
        self._styles: dict[str, Style] | None = None
        self._seen_last: dict[int, float] = {}  # conId -> last price seen at the previous flush
        #: conIds whose line is stale (silent while its market is open): ``~`` after the symbol
        self.stale: frozenset[int] = frozenset()
        self._flash: dict[int, list[int]] = {}  # conId -> [flushes left, direction]
        self._unseen: set[int] = set()  # rows whose first last the flushes have not seen
        self._cursor = 0
        self._selected_con_id: int | None = None
        #: rows rebuilt since construction (for tests and measurements)
        self.rows_rendered = 0
        self.set_instruments(instruments)

    # ------------------------------------------------------------------ public API

    @property
    def instruments(self) -> Sequence[Instrument]:
        """The rows, top to bottom."""
        return tuple(self._rows)

    @property
    def cursor_row(self) -> int:
        """Index of the highlighted row (0 when the watchlist is empty)."""
        return self._cursor

    @property
    def highlighted(self) -> Instrument | None:
        """The instrument under the cursor, ``None`` when the watchlist is empty."""
        if 0 <= self._cursor < len(self._rows):
            return self._rows[self._cursor]
        return None

    @property
    def page_rows(self) -> int:
        """Rows visible at once (the widget's height minus the header)."""
        return max(1, self.scrollable_content_region.height - 1)

    def set_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Replace the rows (e.g. after the broker's ``WatchlistChanged``).

        The cursor stays on the same instrument if it is still there, else on the same
        row index (clamped).
        """
        current = self.highlighted
        rows = list(instruments)
        self._rows = rows
        self._index = {instrument.con_id: i for i, instrument in enumerate(rows)}
        keep = set(self._index)
        for store in (self._cache, self._seen_last, self._flash):
            for con_id in [c for c in store if c not in keep]:
                del store[con_id]
        # rows whose first last price the flush has not seen yet (it may come before the row
        # exists, and its dirty mark is then gone): checked each flush, so the next move flashes
        self._unseen = {c for c in keep if (last := self._seen_last.get(c)) is None or last != last}
        if current is not None and current.con_id in self._index:
            self._cursor = self._index[current.con_id]
        else:
            self._cursor = min(self._cursor, max(0, len(rows) - 1))
        self.virtual_size = Size(ROW_WIDTH, len(rows) + 1)
        self._cache.clear()  # cursor flags may have moved with the rows
        self.refresh()
        if self.is_mounted:
            self._scroll_cursor_into_view()
            self._post_selection()

    def set_stale(self, con_ids: Iterable[int]) -> None:
        """Mark the rows of ``con_ids`` stale (and unmark the others), repainting those that
        changed."""
        stale = frozenset(con_ids)
        if stale == self.stale:
            return
        changed = stale ^ self.stale
        self.stale = stale
        for con_id in changed:
            if con_id in self._index:
                self._refresh_row(self._index[con_id])

    def apply_dirty(self, con_ids: Iterable[int]) -> int:
        """Repaint the rows of ``con_ids`` (drained from the quote store) and age flashes.

        Call once per flush, even with nothing dirty, so flashes end on time. Returns
        the number of rows refreshed.
        """
        refresh: set[int] = set()
        if self._unseen:
            for con_id in list(self._unseen):
                quote = self.quotes.get(con_id)
                if quote is not None and quote.last == quote.last:
                    self._seen_last[con_id] = quote.last
                    self._unseen.discard(con_id)
        for con_id in [c for c, state in self._flash.items() if state[0] > 0]:
            state = self._flash[con_id]
            state[0] -= 1
            if state[0] == 0:
                refresh.add(con_id)
        for con_id in con_ids:
            if con_id not in self._index:
                continue
            refresh.add(con_id)
            quote = self.quotes.get(con_id)
            if quote is None:
                continue
            last, previous = quote.last, self._seen_last.get(con_id)
            if previous is not None and last == last and previous == previous and last != previous:
                self._flash[con_id] = [FLASH_FLUSHES, 1 if last > previous else -1]
            self._seen_last[con_id] = last
            if last == last:
                self._unseen.discard(con_id)
        for con_id in refresh:
            self._refresh_row(self._index[con_id])
        return len(refresh)

    def move_cursor(self, row: int) -> None:
        """Highlight ``row`` (clamped), scroll it into view and post the selection."""
        if not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        old = self._cursor
        self._cursor = row
        if old != row:
            self._refresh_row(old)
            self._refresh_row(row)
        self._scroll_cursor_into_view()
        self._post_selection()

    def select_instrument(self, con_id: int) -> bool:
        """Move the cursor to the row of ``con_id``; False if it is not in the watchlist."""
        if con_id not in self._index:
            return False
        self.move_cursor(self._index[con_id])
        return True

    def row_text(self, row: int) -> str:
        """Plain text of a row as rendered (for tests and the clipboard)."""
        return self._row_strip(row).text

    def header_text(self) -> str:
        """Plain text of the header line."""
        return self._header_strip().text

    # ------------------------------------------------------------------ actions

    def action_cursor_up(self) -> None:
        """Move the cursor one row up."""
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        """Move the cursor one row down."""
        self.move_cursor(self._cursor + 1)

    def action_cursor_home(self) -> None:
        """Move the cursor to the first row."""
        self.move_cursor(0)

    def action_cursor_end(self) -> None:
        """Move the cursor to the last row."""
        self.move_cursor(len(self._rows) - 1)

    def action_page_up(self) -> None:
        """Move the cursor one page up."""
        self.move_cursor(self._cursor - self.page_rows)

    def action_page_down(self) -> None:
        """Move the cursor one page down."""
        self.move_cursor(self._cursor + self.page_rows)

    def action_select(self) -> None:
        """Post :class:`InstrumentSelected` for the highlighted row."""
        if (instrument := self.highlighted) is not None:
            self.post_message(InstrumentSelected(instrument))

    def action_remove_highlighted(self) -> None:
        """Ask the app to remove the highlighted instrument (no confirmation)."""
        if (instrument := self.highlighted) is not None:
            self.post_message(self.RemoveRequested(instrument))

    # ------------------------------------------------------------------ events

    def on_mount(self) -> None:
        """Announce the initially highlighted instrument."""
        self._post_selection()

    def on_click(self, event: events.Click) -> None:
        """A click on a row moves the cursor there."""
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(int(self.scroll_y) + offset.y - 1)

    def notify_style_update(self) -> None:
        """CSS changed (theme switch, focus): drop styles and every cached strip."""
        super().notify_style_update()
        self._styles = None
        self._header = None
        self._cache.clear()
        self.refresh()

    # ------------------------------------------------------------------ Line API

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the widget: the header at 0, then the rows from ``scroll_y``."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._style("base")
        if y == 0:
            strip = self._header_strip()
        else:
            row = scroll_y + y - 1
            if row < len(self._rows):
                strip = self._row_strip(row)
            elif row == 0:
                strip = self._empty_strip()
            else:
                return Strip.blank(width, base)
        if scroll_x == 0 and strip.cell_length == width:
            return strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    # ------------------------------------------------------------------ rendering

    def _style(self, name: str) -> Style:
        if self._styles is None:
            get = self.get_component_rich_style
            base = self.rich_style
            self._styles = {
                "base": base,
                "header": get("watchlist--header"),
                "cursor": get("watchlist--cursor"),
                "empty": get("watchlist--empty"),
                "flash-up": get("watchlist--flash-up"),
                "flash-down": get("watchlist--flash-down"),
                # foreground-only overlays: keep the row's (cursor) background
                "symbol": get("watchlist--symbol", partial=True),
                "up": get("watchlist--up", partial=True),
                "down": get("watchlist--down", partial=True),
                "missing": get("watchlist--missing", partial=True),
                "stale": get("watchlist--stale", partial=True),
            }
        return self._styles[name]

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self._style("header")
            gap = Segment(" " * GAP, style)
            segments = [gap]
            for column in COLUMNS:
                title = column.title.rjust(column.width) if column.align == ">" else column.title.ljust(column.width)
                segments.append(Segment(title, style))
                segments.append(gap)
            self._header = Strip(segments, ROW_WIDTH)
        return self._header

    def _empty_strip(self) -> Strip:
        text = "  No symbols. Press a to add one."
        return Strip([Segment(text, self._style("empty"))], len(text))

    def _row_strip(self, row: int) -> Strip:
        instrument = self._rows[row]
        con_id = instrument.con_id
        quote = self.quotes.get(con_id)
        if quote is None:
            quote = Quote(instrument)
        flash = self._flash.get(con_id)
        flash_dir = flash[1] if flash is not None and flash[0] > 0 else 0
        stale = con_id in self.stale
        key = (id(quote), quote.seq, row == self._cursor, flash_dir, stale)
        cached = self._cache.get(con_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._build_row(quote, row == self._cursor, flash_dir, stale)
        self._cache[con_id] = (key, strip)
        self.rows_rendered += 1
        return strip

    def _build_row(self, quote: Quote, is_cursor: bool, flash_dir: int, stale: bool = False) -> Strip:
        style = self._style
        row_style = style("cursor") if is_cursor else style("base")
        up, down, missing = row_style + style("up"), row_style + style("down"), row_style + style("missing")
        by_sign = {1: up, -1: down, 0: row_style}
        tick = quote.instrument.min_tick
        change = quote.change
        change_style = by_sign[_sign(change)]
        direction = quote.last_direction
        last_style = by_sign[direction]
        if flash_dir:
            last_style = style("flash-up" if flash_dir > 0 else "flash-down") + style("up" if flash_dir > 0 else "down")

        gap = Segment(" " * GAP, row_style)
        segments: list[Segment] = [gap]

        def cell(text: str, column: Column, cell_style: Style) -> None:
            if len(text) > column.width:
                text = text[: column.width - 1] + "…"
            padded = text.rjust(column.width) if column.align == ">" else text.ljust(column.width)
            segments.append(Segment(padded, missing if text == MISSING else cell_style))
            segments.append(gap)

        c = COLUMNS
        cell(quote.instrument.key + (" ~" if stale else ""), c[0], row_style + style("stale" if stale else "symbol"))
        cell(fmt_price(quote.bid, tick), c[1], row_style)
        cell(fmt_price(quote.ask, tick), c[2], row_style)
        last = fmt_price(quote.last, tick)
        if last != MISSING:
            last = f"{last} {_ARROWS.get(direction, ' ')}"
        cell(last, c[3], last_style)
        cell(fmt_change(change, tick), c[4], change_style)
        cell(fmt_pct(quote.change_pct), c[5], change_style)
        cell(fmt_size(quote.bid_size), c[6], row_style)
        cell(fmt_size(quote.ask_size), c[7], row_style)
        cell(fmt_volume(quote.volume), c[8], row_style)
        return Strip(segments, ROW_WIDTH)

    # ------------------------------------------------------------------ helpers

    def _refresh_row(self, row: int) -> None:
        """Repaint the screen line of ``row`` if it is visible."""
        y = row - int(self.scroll_y) + 1
        if 1 <= y < self.scrollable_content_region.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        visible = self.page_rows
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    def _post_selection(self) -> None:
        instrument = self.highlighted
        con_id = instrument.con_id if instrument is not None else None
        if instrument is not None and con_id != self._selected_con_id:
            self.post_message(InstrumentSelected(instrument))
        self._selected_con_id = con_id
