"""Instruments as the simulator's order engine sees them: tradable definitions, quotes
and marks by conId.

:class:`Instruments` wraps the gateway's ``contract_for`` / ``quote_for`` (stocks and
options of the synthetic universe, or of a replayed day) with a cache, resolves an
order's contract fields to one tradable contract, and gives the mark every account and
margin computation uses. Prices in dollars per share.
"""

from __future__ import annotations

import math
from typing import Any

from desk.sim.contracts import ContractQuery, resolve
from desk.sim.orders import Tradable
from desk.sim.ports import Host, Quote5

__all__ = ["Instruments"]


class Instruments:
    """The engine's view of instruments: definitions and quotes by conId, from
    ``gateway.contract_for(conId)`` and ``gateway.quote_for(conId)`` (stocks and options;
    a replayed day plugs in there too)."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        self._cache: dict[int, Tradable | None] = {}

    def contract(self, con_id: int) -> Tradable | None:
        """The tradable contract with this conId, or ``None`` if unknown."""
        try:
            return self._cache[con_id]
        except KeyError:
            pass
        gw = self.gateway
        d: Any = gw.contract_for(con_id)
        t = Tradable.from_definition(d) if d is not None else None
        if t is not None and t.symbol not in gw.market:  # stock or option's underlying
            t = None
        if t is not None:  # unknown ids are not cached: a source may list them later
            self._cache[con_id] = t
        return t

    def resolve(self, q: ContractQuery) -> Tradable | None:
        """The contract an order's contract fields designate (conId wins; stocks also by
        symbol), or ``None``. Other non-empty fields must agree with the definition."""
        if q.con_id:
            t = self.contract(q.con_id)
            if t is None:
                return None
            if q.symbol and q.symbol.upper() != t.symbol:
                return None
            if q.sec_type and q.sec_type != t.sec_type:
                return None
            if t.is_option and q.right and q.right[0].upper() != t.right:
                return None
            if t.is_option and q.strike and abs(q.strike - t.strike) > 1e-6:
                return None
            return t
        if q.sec_type in ("", "STK"):
            found = resolve(q)
            if found is not None:
                return self.contract(found[0].con_id)
        if q.sec_type == "OPT":  # by terms: must designate exactly one listed option
            options = self.gateway.options.find(q) or []
            if len(options) == 1:
                return self.contract(options[0].con_id)
        return None

    def quote(self, con_id: int) -> Quote5 | None:
        """``(bid, ask, bid_size, ask_size, last)`` now, or ``None`` (``last`` may be
        NaN, a side without a quote 0)."""
        return self.gateway.quote_for(con_id)

    def mark(self, con_id: int) -> float | None:
        """Mark price, dollars per share: a stock's last trade (else its mid), an
        option's mid (else its last); ``None`` without a price."""
        q = self.quote(con_id)
        if q is None:
            return None
        bid, ask, _bs, _as, last = q
        mid = (bid + ask) / 2.0 if bid > 0 and ask > 0 else math.nan
        t = self.contract(con_id)
        if t is not None and t.is_option:
            return mid if mid == mid else (last if last > 0 else None)
        if last > 0:
            return last
        return mid if mid == mid else None
