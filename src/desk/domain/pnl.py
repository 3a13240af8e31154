"""Position P&L: the one definition of average cost, unrealized, realized and daily P&L,
used by the simulator's accounts (:mod:`desk.sim.account`: what it reports through
``reqPnL`` / ``reqPnLSingle`` / ``updatePortfolio`` / account values) and by the desk
(:mod:`desk.broker.account`: the account line as the sum of the positions, the P&L of a
group of positions).

Definitions (Interactive Brokers: TWS API "Profit And Loss" (reqPnL / reqPnLSingle,
https://interactivebrokers.github.io/tws-api/pnl.html) and the TWS help "Profit and Loss"
and "Portfolio Values" pages of the Portfolio / Account windows). Prices are dollars per
share, ``m`` the multiplier (shares per contract: 1 for stocks, 100 for US equity
options), quantities signed (+ long, - short), money in dollars:

* **average cost** (``avg_cost``, dollars per share) = (execution prices of the opening
  trades + their commissions) / quantity. IB: "dividing your cost (execution price +
  commission) by the quantity of your position". Closing trades do not change it; a trade
  through zero (a flip) closes the old position and opens the new one at its price.
* **unrealized** = (market price - average cost) x position x m. IB: "the difference
  between the current market value and the average price of your position".
* **realized** (of today) = for every closing trade, closed quantity x (close price -
  average cost) x m, less the closing trade's commission (the opening commission is in
  the average cost). IB: "(execution price + commissions to open the position) -
  (execution price + commissions to close the position)". It starts at 0 each day.
* **daily** (the Portfolio window's P&L, ``reqPnLSingle`` dailyPnL) = position now x price
  now x m - position at the reset x price at the reset x m + net amount traded today.
  IB: "PositionNow * PriceNow - positionAtResetTime * priceAtResetTime + NetAmountTraded".
  The net amount traded is today's cash of the trades in that contract: sales - purchases
  - commissions (IB does not say whether its NetAmountTraded is net of commissions; desk
  takes the cash actually paid, so that an account's daily P&L is exactly the change of
  its net liquidation value since the reset). The price at the reset is the prior close
  (the mark at :meth:`PositionPnL.new_day`). So:

  - a position held from before today, not traded: daily = (price - prior close) x
    position x m;
  - a position opened today: daily = (price - fill price) x quantity x m - commissions,
    which is its unrealized P&L: **for a position opened today daily == unrealized**
    (before commissions both are (price - fill price) x quantity x m);
  - a position closed today keeps its row (quantity 0, as TWS's "show zero position
    rows") with the day's P&L of the closing trades measured from the prior close (or
    the fill price, for a lot opened today).

* **account**: ``reqPnL``'s daily, unrealized and realized are the sums over every
  contract held or traded today, positions closed today included (their daily P&L
  carries today's realized part), of the position figures, each rounded to the cent
  first: :func:`account_figures`. So the account line and the sum of the positions agree
  to the cent, and the account's daily P&L = net liquidation now - net liquidation at the
  reset.

Everything here is plain arithmetic on floats (no I/O, no clock); :class:`PositionPnL` is
immutable: :meth:`PositionPnL.fill` and :meth:`PositionPnL.new_day` return a new one.
:func:`open_lots` and :func:`attribute` split a position among the orders (orderRef) whose
fills opened it, first in first out, for grouping positions by order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Lot", "PnLFigures", "PositionPnL", "account_figures", "attribute", "cents", "open_lots"]


def cents(x: float) -> float:
    """``x`` dollars rounded to the cent (half away from zero, as IB's two-decimal
    figures); ``nan`` stays ``nan``."""
    if not math.isfinite(x):
        return x
    return math.copysign(math.floor(abs(x) * 100.0 + 0.5 + 1e-9) / 100.0, x) + 0.0


class PnLFigures(NamedTuple):
    """One position's (or the account's) P&L at one price, dollars rounded to the cent:
    ``daily``, ``unrealized``, ``realized`` (today) and the market ``value`` (position x
    price x multiplier); ``position`` signed shares / contracts (the account: 0)."""

    daily: float
    unrealized: float
    realized: float
    value: float
    position: float = 0.0


@dataclass(frozen=True, slots=True)
class PositionPnL:
    """One contract's position and P&L state (see the module doc for the definitions).

    ``multiplier``: shares per contract. ``quantity`` signed shares / contracts;
    ``avg_cost`` dollars per share including the opening commissions (0 when flat);
    ``realized`` today's realized P&L and ``realized_total`` since the first fill, dollars
    net of commissions; ``prior_quantity`` / ``prior_close`` the position and the price
    (dollars per share) at the reset; ``day_cash_flow`` today's net amount traded,
    dollars (sales - purchases - commissions).
    """

    multiplier: float = 1.0
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0
    realized_total: float = 0.0
    prior_quantity: float = 0.0
    prior_close: float = 0.0
    day_cash_flow: float = 0.0

    def fill(self, quantity: float, price: float, commission: float = 0.0) -> tuple[PositionPnL, float | None]:
        """Book an execution of ``quantity`` (signed: + bought, - sold) at ``price``
        dollars per share paying ``commission`` dollars. Returns the new state and the
        realized P&L of the part that closed a position (net of that part's share of the
        commission, pro rata by quantity), or ``None`` when the trade only opened or
        added. ``ValueError`` for a zero or non-finite quantity, a non-finite price or
        commission."""
        if quantity == 0 or not math.isfinite(quantity):
            raise ValueError(f"fill quantity must be non-zero, got {quantity!r}")
        if not math.isfinite(price):
            raise ValueError(f"fill price must be finite, got {price!r}")
        if not math.isfinite(commission):
            raise ValueError(f"commission must be finite, got {commission!r}")
        mult = self.multiplier
        old, avg = self.quantity, self.avg_cost
        closing = 0.0
        if old and (old > 0) != (quantity > 0):
            closing = math.copysign(min(abs(quantity), abs(old)), quantity)
        opening = quantity - closing
        realized: float | None = None
        qty = old
        if closing:
            share = commission * abs(closing) / abs(quantity)
            realized = -closing * (price - avg) * mult - share
            qty = old + closing
            if qty == 0:
                avg = 0.0
        if opening:
            share = commission * abs(opening) / abs(quantity)
            basis = qty * avg * mult + opening * price * mult + share
            qty += opening
            avg = basis / (qty * mult)
        got = realized or 0.0
        return dataclasses.replace(
            self,
            quantity=qty,
            avg_cost=avg,
            realized=self.realized + got,
            realized_total=self.realized_total + got,
            day_cash_flow=self.day_cash_flow - quantity * price * mult - commission,
        ), realized

    def new_day(self, close: float) -> PositionPnL:
        """The state at the reset (start of a new day): ``close`` (dollars per share) becomes
        the prior close, today's realized P&L and traded cash start at 0."""
        return dataclasses.replace(self, prior_quantity=self.quantity, prior_close=close, realized=0.0, day_cash_flow=0.0)

    def market_value(self, price: float) -> float:
        """Position x ``price`` x multiplier, dollars (signed)."""
        return self.quantity * price * self.multiplier

    def unrealized(self, price: float) -> float:
        """(``price`` - average cost) x position x multiplier, dollars; 0 when flat."""
        if self.quantity == 0:
            return 0.0
        return (price - self.avg_cost) * self.quantity * self.multiplier

    def daily(self, price: float) -> float:
        """Position now x ``price`` x m - position at the reset x prior close x m + net
        amount traded today, dollars."""
        mult = self.multiplier
        return self.quantity * price * mult - self.prior_quantity * self.prior_close * mult + self.day_cash_flow

    def figures(self, price: float) -> PnLFigures:
        """:class:`PnLFigures` at ``price`` (dollars per share), each rounded to the cent."""
        return PnLFigures(
            cents(self.daily(price)),
            cents(self.unrealized(price)),
            cents(self.realized),
            cents(self.market_value(price)),
            self.quantity,
        )


def account_figures(positions: Iterable[PnLFigures]) -> PnLFigures:
    """The account's daily, unrealized, realized P&L and market value: the sums of the
    positions' figures (already rounded to the cent), rounded to the cent; ``position`` 0.
    ``nan`` figures are skipped (a position without a price yet)."""
    total = [0.0, 0.0, 0.0, 0.0]
    for f in positions:
        for k, v in enumerate(f[:4]):
            if math.isfinite(v):
                total[k] += v
    return PnLFigures(*(cents(x) for x in total))


# --- lots by order ---------------------------------------------------------------------------


class Lot(NamedTuple):
    """Part of a position opened by one order: ``order_ref`` (IB orderRef; ``""`` unknown),
    signed ``quantity`` still open, its fill ``price`` (dollars per share)."""

    order_ref: str
    quantity: float
    price: float


def open_lots(fills: Iterable[tuple[str, float, float]]) -> list[Lot]:
    """The lots still open after ``fills`` of one contract, oldest first.

    ``fills``: ``(order_ref, signed quantity, price)`` in execution order. A fill against
    the open side closes the oldest lots first (first in, first out); what it has beyond
    them opens a lot of its own on the other side."""
    lots: list[Lot] = []
    for ref, qty, price in fills:
        if not qty or not math.isfinite(qty):
            continue
        while qty and lots and (lots[0].quantity > 0) != (qty > 0):
            head = lots[0]
            take = math.copysign(min(abs(qty), abs(head.quantity)), qty)
            left = head.quantity + take
            qty -= take
            if left == 0:
                lots.pop(0)
            else:
                lots[0] = head._replace(quantity=left)
        if qty:
            lots.append(Lot(ref, qty, price))
    return lots


def attribute(position: float, lots: Iterable[Lot]) -> dict[str, float]:
    """Split a signed ``position`` among orders: ``{order_ref: signed quantity}``.

    The newest ``lots`` on the position's side are taken first until the position is
    covered; what the lots do not cover (a position from before the fills the desk saw)
    goes to ``""``. Lots on the other side (fills that no longer match the position) are
    ignored. The quantities add up to ``position``."""
    out: dict[str, float] = {}
    need = position
    for lot in reversed(list(lots)):
        if not need:
            break
        if (lot.quantity > 0) != (need > 0) or not lot.quantity:
            continue
        take = math.copysign(min(abs(lot.quantity), abs(need)), need)
        out[lot.order_ref] = out.get(lot.order_ref, 0.0) + take
        need -= take
    if need:
        out[""] = out.get("", 0.0) + need
    return out
