"""Layout and texts of the option chain pane (:mod:`desk.ui.widgets.chain`), without the widget.

The columns of a side and which of them fit a width, the cell texts of one contract, the
segments of a strike row, the texts of the fixed lines (title, column header, detail,
empty pane), the per-row flags (ATM, ITM, stale) and the smile's points. Pure functions
of the chain manager's state and plain values: no Textual here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from rich.segment import Segment
from rich.style import Style

from desk.domain import Instrument
from desk.domain.options import OptionGreeks, OptionQuote
from desk.ui.formatting import MISSING, fmt_price
from desk.ui.widgets.smile import SmilePoint, smile_lines

if TYPE_CHECKING:
    from desk.domain.chain import ChainRow
    from desk.engine.backend import ChainView

__all__ = [
    "BOTTOM_LINES",
    "COLUMN_KEYS",
    "KEYS_HINT",
    "SIDE_COLUMNS",
    "STRIKE_WIDTH",
    "TOP_LINES",
    "ChainColumn",
    "RowFlags",
    "atm_row",
    "call_columns",
    "changed_rows",
    "detail_text",
    "empty_text",
    "expiry_after",
    "header_text",
    "hint_line",
    "is_stale",
    "row_flags",
    "row_segments",
    "row_width",
    "rows_by_con_id",
    "scroll_target",
    "side_texts",
    "side_values",
    "smile_points",
    "smile_view",
    "title_text",
    "visible_columns",
]


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
#: The column keys in :data:`SIDE_COLUMNS` order.
COLUMN_KEYS = tuple(c.key for c in SIDE_COLUMNS)
_INDEX = {key: i for i, key in enumerate(COLUMN_KEYS)}
_ALL_MISSING = (MISSING,) * len(SIDE_COLUMNS)
_NO_GREEKS = OptionGreeks()
#: Width of the strike column (without the stale flags either side).
STRIKE_WIDTH = 9
#: Fixed lines above the rows (title, column header) and below them (detail, keys/message).
TOP_LINES = 2
BOTTOM_LINES = 2

KEYS_HINT = "[ ] expiry  +/- strikes  g Greeks  s smile  c centre  Enter select  z zoom"

#: Per strike row: at the money, call in the money, put in the money, call stale, put stale.
RowFlags = tuple[bool, bool, bool, bool, bool]


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


# ---------------------------------------------------------------------- columns


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


def call_columns(columns: tuple[ChainColumn, ...]) -> tuple[ChainColumn, ...]:
    """The call side's columns left to right: mirrored, but bid before ask."""
    outer = [c for c in reversed(columns) if c.key not in ("bid", "ask")]
    return tuple(outer + [c for c in columns if c.key in ("bid", "ask")])


# ---------------------------------------------------------------------- cells and rows


def side_values(quote: OptionQuote | None, source: str) -> tuple[str, ...]:
    """The texts of one contract's cells in :data:`SIDE_COLUMNS` order (the hot path);
    ``source`` ``"ours"`` shows our Greeks, anything else IB's model Greeks."""
    if quote is None:
        return _ALL_MISSING
    g = quote.ours if source == "ours" else quote.model
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


def side_texts(quote: OptionQuote | None, present: bool, columns: tuple[ChainColumn, ...], source: str) -> tuple[str, ...]:
    """The cell texts of one side, padded to the columns' widths (blank for no contract)."""
    if not present:
        return tuple(" " * c.width for c in columns)
    values = side_values(quote, source)
    out = []
    for c in columns:
        text = values[_INDEX[c.key]]
        width = c.width
        if len(text) > width:
            text = text[: width - 1] + "…"
        out.append(text.rjust(width))
    return tuple(out)


def row_segments(
    strike: float,
    call_texts: tuple[str, ...],
    put_texts: tuple[str, ...],
    flags: RowFlags,
    cursor: str,
    style: Callable[[str], Style],
) -> list[Segment]:
    """The segments of one strike row (``row_width`` cells); ``cursor`` is ``"C"``/``"P"``
    on the cursor's row (else ``""``), ``style`` gives the pane's style by name."""
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
    return segments


def is_stale(quote: OptionQuote | None, now: float, stale_after: float) -> bool:
    """True if ``quote`` had no update for more than ``stale_after`` seconds at ``now``."""
    if quote is None or quote.time is None:
        return False
    return now - quote.time.timestamp() > stale_after


def row_flags(chains: ChainView, rows: Sequence[ChainRow], now: float, stale_after: float) -> list[RowFlags]:
    """The :data:`RowFlags` of each row (ITM against the spot, else the forward)."""
    spot = chains.spot if chains.spot == chains.spot else chains.forward
    atm = chains.atm_strike
    flags = []
    for row in rows:
        k = row.strike
        flags.append(
            (
                k == atm,
                spot == spot and k < spot,
                spot == spot and k > spot,
                is_stale(chains.quote(row.call), now, stale_after),
                is_stale(chains.quote(row.put), now, stale_after),
            )
        )
    return flags


def rows_by_con_id(rows: Sequence[ChainRow]) -> dict[int, int]:
    """conId -> index of its row, for both sides of every row."""
    row_of: dict[int, int] = {}
    for i, row in enumerate(rows):
        for ins in (row.call, row.put):
            if ins is not None:
                row_of[ins.con_id] = i
    return row_of


def changed_rows(
    row_of: Mapping[int, int], con_ids: Iterable[int] | None, old: Sequence[RowFlags], new: Sequence[RowFlags]
) -> set[int]:
    """The rows to refresh: those of ``con_ids`` (quotes changed; ``None``: none) and those
    whose flags changed from ``old`` to ``new``."""
    refresh: set[int] = set()
    if con_ids is not None:
        for con_id in con_ids:
            row = row_of.get(con_id)
            if row is not None:
                refresh.add(row)
    for i, (before, after) in enumerate(zip(old, new)):
        if before != after:
            refresh.add(i)
    return refresh


def atm_row(rows: Sequence[ChainRow], atm_strike: float) -> int:
    """Index of the row nearest ``atm_strike`` (the middle one if it is NaN; 0 for none)."""
    if not rows:
        return 0
    if atm_strike != atm_strike:
        return len(rows) // 2
    return min(range(len(rows)), key=lambda i: abs(rows[i].strike - atm_strike))


def scroll_target(cursor: int, top: int, visible: int, centre: bool = False) -> int | None:
    """The first row to show so that row ``cursor`` is in view (``visible`` rows from
    ``top``): the cursor centred if ``centre``, else ``None`` when it is already in view."""
    if centre:
        return max(0, cursor - visible // 2)
    if cursor < top:
        return cursor
    if cursor >= top + visible:
        return cursor - visible + 1
    return None


def expiry_after(expiries: Sequence[str], base: str | None, step: int) -> str:
    """The expiry ``step`` places after ``base`` in ``expiries`` (before it when
    negative), clamped to the list (from the first one if ``base`` is not in it)."""
    i = expiries.index(base) if base in expiries else 0
    return expiries[max(0, min(len(expiries) - 1, i + step))]


# ---------------------------------------------------------------------- fixed lines


def header_text(columns: tuple[ChainColumn, ...]) -> str:
    """The column header line: call titles, ``Strike``, put titles."""
    parts = [" "]
    for c in call_columns(columns):
        parts.append(c.title.rjust(c.width) + " ")
    parts.append(" " + "Strike".center(STRIKE_WIDTH) + " ")
    parts.append(" ")
    for c in columns:
        parts.append(c.title.rjust(c.width) + " ")
    return "".join(parts)


def title_text(chains: ChainView | None, source: str, view: str) -> str:
    """The title line: underlying and spot, expiry (days to it, position), forward, the
    window, the Greeks source and the view."""
    if chains is None:
        return " Option chain: not available"
    if chains.underlying is None:
        return " Option chain: select a stock in the watchlist"
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
        parts.append(f"Greeks: {'ours' if source == 'ours' else 'IB model'}")
        if view == "smile":
            parts.append("smile")
    elif chains.loading:
        parts.append("loading…")
    return "  ".join(parts)


def detail_text(chains: ChainView | None, instrument: Instrument | None) -> str:
    """The detail line of ``instrument`` (the option under the cursor): its quote and
    both sets of Greeks (``""`` for none)."""
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


def hint_line(message: str, level: str) -> tuple[str, str]:
    """The keys line and its style name: the manager's ``message`` (styled by its
    ``level`` when that is ``warning`` or ``error``), else the key hints."""
    if message:
        return " " + message, level if level in ("warning", "error") else "hint"
    return " " + KEYS_HINT, "hint"


def empty_text(chains: ChainView | None) -> str:
    """What the pane says when it has no strike rows."""
    if chains is None:
        return "  No option chain: the engine has none."
    if chains.underlying is None:
        return "  Select a stock or ETF in the watchlist to see its options."
    if chains.loading:
        return f"  {chains.underlying.symbol}: loading the option chain…"
    if chains.message:
        return "  " + chains.message
    return "  No strikes to show."


# ---------------------------------------------------------------------- smile


def _smile_title(source: str) -> str:
    """The legend line of the smile view."""
    return f" IV% by strike ({'ours' if source == 'ours' else 'IB model'}): ● out of the money  · in the money  ┊ ATM  │ cursor"


def smile_points(chains: ChainView, rows: Sequence[ChainRow], source: str) -> list[SmilePoint]:
    """The rows' options with an IV (``source``'s Greeks), OTM against the forward (the
    spot when there is no forward; every point OTM when there is neither)."""
    points: list[SmilePoint] = []
    forward = chains.forward if chains.forward == chains.forward else chains.spot
    for row in rows:
        for ins, is_call in ((row.call, True), (row.put, False)):
            quote = chains.quote(ins)
            if quote is None:
                continue
            g = quote.greeks(source)
            if g is None or g.iv != g.iv:
                continue
            otm = (row.strike >= forward) if is_call else (row.strike < forward)
            points.append(SmilePoint(row.strike, g.iv, otm if forward == forward else True))
    return points


def smile_view(
    chains: ChainView | None,
    rows: Sequence[ChainRow],
    cursor: int,
    source: str,
    width: int,
    height: int,
    style: Callable[[str], Style],
) -> list[list[Segment]]:
    """The smile view's lines as segments, each ``width`` cells: the legend, then
    ``height - 1`` lines of plot (:func:`~desk.ui.widgets.smile.smile_lines`) with the ATM
    strike and the strike of row ``cursor`` marked; ``style`` gives the pane's style by name."""
    points: list[SmilePoint] = []
    atm = cursor_k = math.nan
    if chains is not None:
        points = smile_points(chains, rows, source)
        atm = chains.atm_strike
        if 0 <= cursor < len(rows):
            cursor_k = rows[cursor].strike
    title = _smile_title(source)
    styles = {
        "otm": style("otm"),
        "itm": style("itm-dot"),
        "atm": style("atm-line"),
        "cursor": style("atm-line"),
        "axis": style("axis"),
        "label": style("axis"),
        "plot": Style(),
        "empty": style("empty"),
    }
    base = style("base")
    lines = [[Segment(title[:width].ljust(width), style("header"))]]
    for runs in smile_lines(points, width, max(0, height - 1), atm_strike=atm, cursor_strike=cursor_k):
        lines.append([Segment(text, base + styles.get(kind, Style())) for text, kind in runs])
    return lines
