"""Greeks of an option position (see :mod:`desk.domain.portfolio` for the rows).

The engine prices positions here, not in the broker (which only translates ib_async
objects) and not in the view (which receives the priced rows over the engine API).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime

from desk.domain.options import Carry, OptionGreeks, exercise_style
from desk.domain.portfolio import PositionRow
from desk.pricing.chain import contract_greeks
from desk.pricing.chain_analytics import years_to_expiry

__all__ = ["option_greeks", "price_position"]


def price_position(
    row: PositionRow, *, S: float, now: datetime, price: float, carry: Carry, chain: OptionGreeks | None = None
) -> PositionRow:
    """:func:`option_greeks` with ``T`` the years (ACT/365) from ``now`` (aware datetime, UTC)
    to the option's expiry close (:func:`desk.pricing.chain_analytics.years_to_expiry`): the
    :class:`desk.domain.portfolio.PositionPricer` the engine gives the account. A row whose
    expiry is not a date comes back without Greeks."""
    try:
        T = years_to_expiry(row.instrument.expiry, now)
    except (ValueError, TypeError, KeyError):
        return row
    return option_greeks(row, S=S, T=T, price=price, carry=carry, chain=chain)


def option_greeks(
    row: PositionRow, *, S: float, T: float, price: float, carry: Carry, chain: OptionGreeks | None = None
) -> PositionRow:
    """An option row with the Greeks of the whole position (see the module doc).

    ``chain``: the chain's own per-share Greeks of this contract (used as they are, with the
    underlying price they were computed at); otherwise the IV of ``price`` (dollars per
    share) at spot ``S``, ``T`` years (ACT/365) and ``carry``. The row is returned without
    Greeks when neither gives an IV."""
    ins = row.instrument
    size = row.quantity * ins.multiplier
    if chain is not None and math.isfinite(chain.iv):
        und = chain.und_price if math.isfinite(chain.und_price) else S
        iv, d, g, v, t = chain.iv, chain.delta, chain.gamma, chain.vega, chain.theta
    else:
        if not (S > 0 and price > 0 and T > 0 and ins.strike > 0):
            return row
        res = contract_greeks(ins.right == "C", ins.strike, price, S, T, carry, exercise=exercise_style(ins.symbol))
        if not math.isfinite(res.iv):
            return row
        und = S
        iv, d, g, v, t = res.iv, res.delta, res.gamma, res.vega, res.theta
    delta = d * size
    return dataclasses.replace(row, iv=iv, delta=delta, dollar_delta=delta * und, gamma=g * size, theta=t * size, vega=v * size)
