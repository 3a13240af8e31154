"""What an order costs in available funds: the number the buying-power check charges.

IB's AvailableFunds is equity with loan value minus initial margin (Reg T), so an order
uses ``cost = change in initial margin - change in equity with loan value`` of it:

* a long option: its premium plus the commission (options have no loan value: equity
  with loan value falls by what is paid, the requirement does not change);
* stock bought: the Reg T initial requirement of the shares (50 %) plus the commission
  (cash turns into stock, which keeps its loan value);
* a short option: its CBOE requirement less the premium received;
* a combo: its legs together, so a spread or a box costs its maximum loss once (the
  spread rules of :mod:`desk.risk.margin`) and a conversion the stock's requirement;
* an order that only reduces a position frees funds (a negative cost).

When IB's what-if has answered for the order and is complete
(:attr:`~desk.risk.context.MarginImpact.complete`) its figures are used
(``initMarginChange - equityWithLoanChange``); otherwise the change in initial margin is
estimated with :func:`desk.risk.margin.initial_margin_change` and the change in equity
with loan value from the order's cash flows. Source: Federal Reserve Regulation T
(12 CFR 220), FINRA Rule 4210, the CBOE Margin Manual; IB's definitions of
AvailableFunds and EquityWithLoanValue ("Account window" of the TWS documentation).

Dollars throughout; prices dollars per share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from desk.domain.models import Instrument
from desk.risk.context import MarketContext
from desk.domain.intent import OrderIntent
from desk.risk.margin import initial_margin_change

__all__ = ["funds_cost"]


def _mark(ctx: MarketContext, ins: Instrument, fallback: float) -> float:
    q = ctx.quotes.get(ins.con_id)
    if q is not None and q.mid == q.mid:
        return q.mid
    pos = ctx.positions.get(ins.con_id)
    if pos is not None and math.isfinite(pos.market_price) and pos.market_price > 0:
        return pos.market_price
    if pos is not None and math.isfinite(pos.avg_cost) and pos.avg_cost > 0:
        return pos.avg_cost
    return fallback


def funds_cost(
    intent: OrderIntent, ctx: MarketContext, trade_prices: Mapping[int, float], commission: float
) -> tuple[float, str]:
    """(cost in dollars of AvailableFunds, where the number comes from) of ``intent``
    filling completely at ``trade_prices`` (dollars per share per conId, see
    :func:`desk.risk.checks.leg_trade_prices`) and paying ``commission`` dollars.
    The cost is ``nan`` when a price it needs is missing."""
    margin = ctx.margin
    if margin is not None and margin.complete:
        return margin.funds_cost, "IB what-if"
    deltas = intent.leg_deltas()
    ewl = -commission if math.isfinite(commission) else 0.0
    for ins, delta in deltas:
        price = trade_prices.get(ins.con_id, math.nan)
        if not math.isfinite(price):
            return math.nan, f"no price for {ins.key}"
        if ins.sec_type == "STK":
            ewl += delta * (_mark(ctx, ins, price) - price) * ins.multiplier
        else:
            ewl -= delta * price * ins.multiplier
    underlying = ctx.underlying_price
    legs = {ins.con_id: ins for ins, _ in deltas}

    def price_of(con_id: int) -> float:
        pos = ctx.positions.get(con_id)
        ins = legs.get(con_id) or (pos.instrument if pos is not None else None)
        if ins is None:
            return math.nan
        return _mark(ctx, ins, trade_prices.get(con_id, math.nan))

    def underlying_of(symbol: str) -> float:
        for p in ctx.positions.values():
            if p.instrument.sec_type == "STK" and p.instrument.symbol == symbol:
                return _mark(ctx, p.instrument, underlying)
        for ins, _ in deltas:
            if ins.sec_type == "STK" and ins.symbol == symbol:
                return _mark(ctx, ins, underlying)
        if math.isfinite(underlying):
            return underlying
        for q in ctx.quotes.values():
            if q.instrument.sec_type == "STK" and q.instrument.symbol == symbol and q.mid == q.mid:
                return q.mid
        return underlying

    change = initial_margin_change(ctx.positions, deltas, price_of, underlying_of)
    if not math.isfinite(change):
        return math.nan, "no price for the margin estimate"
    basis = "Reg T estimate" + ("" if margin is None else ", IB what-if incomplete")
    return change - ewl, basis
