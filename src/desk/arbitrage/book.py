"""The opportunity book: identity of opportunities across scans.

Each scan produces fresh :class:`~desk.domain.opportunity.Opportunity` objects. The book
matches them to the ones already known by ``Opportunity.key`` (kind, rule and legs, not
prices), so ``first_seen`` stays at the first scan that found an opportunity, ``last_seen``
moves to the latest, and ``best_edge_total`` keeps the largest total edge seen. An
opportunity missing from a symbol's latest scan is gone (reported once, then forgotten; if
it comes back it is new again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from desk.domain.opportunity import Opportunity


@dataclass(slots=True)
class BookUpdate:
    """What one :meth:`OpportunityBook.update` changed: opportunities first seen now,
    opportunities still present (with their refreshed figures) and opportunities gone."""

    new: list[Opportunity] = field(default_factory=list)
    kept: list[Opportunity] = field(default_factory=list)
    gone: list[Opportunity] = field(default_factory=list)


class OpportunityBook:
    """Current opportunities of every scanned symbol, keyed by ``(symbol, key)``."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[tuple[object, ...], Opportunity]] = {}

    def update(self, symbol: str, opportunities: Iterable[Opportunity], now: datetime) -> BookUpdate:
        """Replace ``symbol``'s opportunities with the latest scan's.

        ``now`` (tz-aware UTC) becomes ``last_seen`` of every opportunity in the scan;
        ``first_seen`` and ``best_edge_total`` carry over from the book for the ones already
        known. Raises ``ValueError`` if an opportunity belongs to another symbol or ``now``
        is naive.
        """
        if now.tzinfo is None:
            raise ValueError("OpportunityBook.update needs a timezone-aware now")
        old = self._by_symbol.get(symbol, {})
        fresh: dict[tuple[object, ...], Opportunity] = {}
        result = BookUpdate()
        for opp in opportunities:
            if opp.symbol != symbol:
                raise ValueError(f"opportunity of {opp.symbol!r} passed to the update of {symbol!r}")
            key = opp.key
            prev = old.get(key) or fresh.get(key)
            if prev is None:
                opp = replace(opp, first_seen=min(opp.first_seen, now), last_seen=now, best_edge_total=opp.edge_total)
                result.new.append(opp)
            else:
                opp = replace(
                    opp,
                    first_seen=prev.first_seen,
                    last_seen=now,
                    best_edge_total=max(prev.best_edge_total, opp.edge_total),
                )
                if key not in fresh:
                    result.kept.append(opp)
            fresh[key] = opp
        result.gone = [opp for key, opp in old.items() if key not in fresh]
        if fresh:
            self._by_symbol[symbol] = fresh
        else:
            self._by_symbol.pop(symbol, None)
        return result

    def current(self, symbol: str | None = None) -> list[Opportunity]:
        """Opportunities of ``symbol`` (or of every symbol), largest ``edge_total`` first."""
        if symbol is None:
            items = [o for book in self._by_symbol.values() for o in book.values()]
        else:
            items = list(self._by_symbol.get(symbol, {}).values())
        items.sort(key=lambda o: o.edge_total, reverse=True)
        return items

    def clear(self, symbol: str | None = None) -> None:
        """Forget ``symbol``'s opportunities (or all)."""
        if symbol is None:
            self._by_symbol.clear()
        else:
            self._by_symbol.pop(symbol, None)

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_symbol.values())
