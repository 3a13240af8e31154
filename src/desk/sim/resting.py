"""The working single-leg orders of one instrument, in the order a quote reaches them.

The matching engine (:mod:`desk.sim.matching`) keeps one :class:`RestingOrders` per conId
with working orders, so that a market step visits only the limit orders its new quote
can fill instead of every working order. Prices in dollars per share.
"""

from __future__ import annotations

import bisect

from desk.sim.orders import SimOrder

__all__ = ["RestingOrders"]

_EPS = 1e-9


class RestingOrders:
    """The working single-leg orders of one instrument: limit orders by price then time
    (BUY limits highest first, SELL limits lowest first), so a market step only visits
    the orders its quote can reach; every other type (MKT, stops, held orders) is
    checked each step. ``hot`` holds the orders marketable at their last check."""

    __slots__ = ("buys", "sells", "other", "hot")

    def __init__(self) -> None:
        self.buys: list[SimOrder] = []
        self.sells: list[SimOrder] = []
        self.other: list[SimOrder] = []
        self.hot: set[SimOrder] = set()

    def _list(self, order: SimOrder) -> list[SimOrder]:
        if order.order_type != "LMT":
            return self.other
        return self.buys if order.action == "BUY" else self.sells

    def add(self, order: SimOrder) -> None:
        lst = self._list(order)
        if lst is self.other:
            lst.append(order)
            return
        limit = order.lmt_price
        assert limit is not None
        sign = -1.0 if lst is self.buys else 1.0
        bisect.insort(lst, order, key=lambda o: (sign * (o.lmt_price or 0.0), o.perm_id))

    def remove(self, order: SimOrder) -> None:
        self.hot.discard(order)
        for lst in (self.buys, self.sells, self.other):
            if order in lst:
                lst.remove(order)
                return

    def __bool__(self) -> bool:
        return bool(self.buys or self.sells or self.other)

    def reachable(self, bid: float, ask: float) -> list[SimOrder]:
        """Orders the quote may fill, in priority order (limits then the others)."""
        out: list[SimOrder] = []
        if ask > 0:
            for o in self.buys:
                if o.lmt_price is None or o.lmt_price < ask - _EPS:
                    break
                out.append(o)
        if bid > 0:
            for o in self.sells:
                if o.lmt_price is None or o.lmt_price > bid + _EPS:
                    break
                out.append(o)
        if self.hot:  # orders that were marketable and no longer are
            reach = set(out)
            for o in [o for o in self.hot if o not in reach and o.order_type == "LMT"]:
                o.marketable = False
                self.hot.discard(o)
        out.extend(self.other)
        return out
