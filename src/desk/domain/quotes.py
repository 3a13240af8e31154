"""The quote store: latest :class:`~desk.domain.models.Quote` per conId and a dirty set.

The broker's tick callback only writes here (cheap dict updates) and marks keys dirty;
the UI drains the dirty set on a timer (4-10 Hz) and repaints only those rows. This is
the "store, then flush" rule of design.md: one UI message per batch, never per tick.

The store is used from a single asyncio event loop (the broker's and the UI's, which are
the same loop in the desk); it does no locking.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

from desk.domain.models import Instrument, Quote

Q = TypeVar("Q")


class KeyedQuoteStore(Generic[Q]):
    """Latest quote object per conId plus the set of conIds changed since the last drain.

    The shared mechanics of :class:`QuoteStore` (stocks) and
    :class:`desk.domain.options.OptionChainStore` (options); subclasses set ``quote_type``
    (built as ``quote_type(instrument)``) and define ``update``.
    """

    #: the quote class (or any factory) built as ``quote_type(instrument)``
    quote_type: Callable[[Instrument], Q]

    def __init__(self) -> None:
        self._quotes: dict[int, Q] = {}
        self._dirty: set[int] = set()
        self.ticks_seen = 0  # total tick updates applied, for ticks/s in the status bar
        #: called (no arguments, on the store's loop) when the dirty set goes from empty
        #: to non-empty: a view flushes at once after a quiet spell instead of waiting for
        #: its next timer tick (the first quote of a start paints ~one flush interval sooner)
        self.on_dirty: Callable[[], None] | None = None

    def ensure(self, instrument: Instrument) -> Q:
        """Return the quote of ``instrument`` (by conId), creating an empty (dirty) one."""
        quote = self._quotes.get(instrument.con_id)
        if quote is None:
            quote = self.quote_type(instrument)
            self._quotes[instrument.con_id] = quote
            self._mark(instrument.con_id)
        return quote

    def get(self, con_id: int) -> Q | None:
        return self._quotes.get(con_id)

    def remove(self, con_id: int) -> None:
        self._quotes.pop(con_id, None)
        self._dirty.discard(con_id)

    def clear(self) -> None:
        """Forget every quote."""
        self._quotes.clear()
        self._dirty.clear()

    def __contains__(self, con_id: int) -> bool:
        return con_id in self._quotes

    def __len__(self) -> int:
        return len(self._quotes)

    def quotes(self) -> Iterable[Q]:
        return self._quotes.values()

    def mark_dirty(self, con_id: int) -> None:
        if con_id in self._quotes:
            self._mark(con_id)

    def _mark(self, con_id: int) -> None:
        if not self._dirty and self.on_dirty is not None:
            self._dirty.add(con_id)
            self.on_dirty()
        else:
            self._dirty.add(con_id)

    def drain_dirty(self) -> set[int]:
        """Return and clear the set of conIds changed since the previous drain."""
        dirty, self._dirty = self._dirty, set()
        return dirty


class QuoteStore(KeyedQuoteStore[Quote]):
    """Latest :class:`Quote` per conId (stocks and ETFs), plus the dirty set."""

    quote_type = Quote

    def update(
        self,
        con_id: int,
        *,
        time: datetime | None = None,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        volume: float | None = None,
        close: float | None = None,
        ticks: int = 1,
    ) -> Quote | None:
        """Apply the given fields (``None`` means unchanged) and mark the conId dirty.

        Prices in dollars per share, sizes in shares/contracts. ``nan`` is a valid
        value (the gateway withdrew that side). Returns the quote, or ``None`` for an
        unknown conId (the update is ignored: it belongs to a released subscription).
        """
        quote = self._quotes.get(con_id)
        if quote is None:
            return None
        if last is not None and not _same(last, quote.last):
            if quote.last == quote.last and last == last:  # both not nan
                quote.last_direction = 1 if last > quote.last else -1
            quote.last = last
        if bid is not None:
            quote.bid = bid
        if ask is not None:
            quote.ask = ask
        if bid_size is not None:
            quote.bid_size = bid_size
        if ask_size is not None:
            quote.ask_size = ask_size
        if last_size is not None:
            quote.last_size = last_size
        if volume is not None:
            quote.volume = volume
        if close is not None:
            quote.close = close
        if time is not None:
            quote.time = time
        quote.seq += 1
        self.ticks_seen += ticks
        self._mark(con_id)
        return quote


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
