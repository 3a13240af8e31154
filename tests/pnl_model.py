"""A brute-force model of a position's P&L (IB's definitions, see desk.domain.pnl), for the
tests: every opening fill is a lot with its share of the commission, a closing fill reduces
every lot pro rata (what average cost means), and every figure is recomputed from the whole
history. Prices in dollars per share, money in dollars."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def replay(
    days: list[list[tuple[float, float, float]]], closes: list[float], multiplier: float, price: float
) -> dict[str, float]:
    """``days``: per day the fills ``(signed quantity, price, commission)``; ``closes``: the
    price at the end of each day but the last (the reset marks). Figures of the last day
    at ``price``: quantity, avg_cost, unrealized, realized (today), realized_total, daily,
    value, cash (every fill's cash since the start), cash_today."""
    lots: list[list[float]] = []  # [signed quantity, cost in dollars incl. commission]
    realized_total = cash_total = 0.0
    prior_q = prior_close = 0.0
    realized_today = cash_today = 0.0
    for n, fills in enumerate(days):
        realized_today = cash_today = 0.0
        for qty, px, fee in fills:
            cash_today -= qty * px * multiplier + fee
            held = _held(lots)
            closing = 0.0
            if held and (held > 0) != (qty > 0):
                closing = math.copysign(min(abs(qty), abs(held)), qty)
            if closing:
                frac = -closing / held
                cost = sum(c for _, c in lots) * frac
                realized = -closing * px * multiplier - cost - fee * abs(closing) / abs(qty)
                realized_today += realized
                realized_total += realized
                lots = [[q * (1 - frac), c * (1 - frac)] for q, c in lots]
                if not _held(lots):
                    lots = []
            opening = qty - closing
            if opening:
                lots.append([opening, opening * px * multiplier + fee * abs(opening) / abs(qty)])
        cash_total += cash_today
        if n < len(days) - 1:
            prior_q, prior_close = _held(lots), closes[n]
    q = _held(lots)
    cost = sum(c for _, c in lots)
    return {
        "quantity": q,
        "avg_cost": cost / (q * multiplier) if q else 0.0,
        "unrealized": q * price * multiplier - cost if q else 0.0,
        "realized": realized_today,
        "realized_total": realized_total,
        "daily": q * price * multiplier - prior_q * prior_close * multiplier + cash_today,
        "value": q * price * multiplier,
        "cash": cash_total,
        "cash_today": cash_today,
    }


def _held(lots: list[list[float]]) -> float:
    """The lots' total quantity. Pro-rata reduction leaves float dust (3 lots of 3/28 x 28
    sum to 2.9999999999999996): whole quantities are rounded back, so that closing the
    position does not also open a lot of 4e-16 shares."""
    return round(sum(q for q, _ in lots), 9) + 0.0


@dataclass
class LotModel:
    """One contract's fills day by day (:func:`replay` on demand)."""

    multiplier: float
    days: list[list[tuple[float, float, float]]] = field(default_factory=lambda: [[]])
    closes: list[float] = field(default_factory=list)

    def fill(self, quantity: float, price: float, commission: float) -> None:
        self.days[-1].append((quantity, price, commission))

    def new_day(self, close: float) -> None:
        self.closes.append(close)
        self.days.append([])

    def at(self, price: float) -> dict[str, float]:
        return replay(self.days, self.closes, self.multiplier, price)
