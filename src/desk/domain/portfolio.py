"""Positions as the desk shows them: rows, portfolio Greeks and groups by order.

Plain values and pure functions (no ib_async, no pricing here): :class:`PositionRow` is one
position with IB's P&L figures and desk's Greeks, :func:`sum_greeks` the portfolio's
Greeks, :func:`group_positions` the positions grouped by the order (orderRef) whose fills
opened them. :mod:`desk.broker.account` translates the rows from ib_async objects; the
views receive them over the engine API.

Greeks (:func:`desk.pricing.positions.price_position`, the :class:`PositionPricer` the
engine gives the broker's account): the option's IV of its price (the chain's mid when the
chain quotes it) against the underlying price, with the carry the option chain uses for
that underlying and expiry (rate and parity-implied dividend yield:
:meth:`desk.broker.chains.ChainManager.carry`) and the chain's solver
(:func:`desk.pricing.contract_greeks`); a contract the chain has in its window takes the
chain's own IV and Greeks, so one contract has one IV on the desk. A stock position's delta
is its share count (1 per share; gamma, vega and theta 0), so a conversion (+100 shares,
-1 call, +1 put of one strike and expiry) sums to about 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from desk.domain import Instrument
from desk.domain.options import Carry, OptionGreeks
from desk.domain.orders import Fill, Position
from desk.domain.pnl import attribute, cents, open_lots

__all__ = [
    "UNGROUPED",
    "AccountFigures",
    "PortfolioGreeks",
    "PositionGroup",
    "PositionPricer",
    "PositionRow",
    "group_positions",
    "stock_greeks",
    "sum_greeks",
]

#: orderRef of the group of positions no fill the desk saw explains (held from before).
UNGROUPED = ""


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One line of the positions pane.

    ``quantity``: signed shares / contracts (0 for a position closed today, kept for its
    realized and daily P&L). ``avg_cost`` and ``market_price``: dollars per share (IB's
    averageCost of an option is per contract; here divided by the multiplier).
    ``market_value``, ``unrealized``, ``realized`` (today), ``daily_pnl``: dollars (``nan``
    unknown), IB's figures from one ``reqPnLSingle`` update (see :mod:`desk.domain.pnl` for
    the definitions). Greeks of the whole position (``nan`` when not priced): ``iv``
    (options; annual fraction), ``delta`` in shares of the underlying (a stock: its
    shares), ``dollar_delta`` dollars per 1.00 = 100 % move (delta x S), ``gamma`` shares
    per $1, ``theta`` dollars per calendar day, ``vega`` dollars per vol point.
    """

    instrument: Instrument
    quantity: float
    avg_cost: float
    market_price: float
    market_value: float
    unrealized: float
    realized: float
    daily_pnl: float = math.nan
    iv: float = math.nan
    delta: float = math.nan
    dollar_delta: float = math.nan
    gamma: float = math.nan
    theta: float = math.nan
    vega: float = math.nan

    def position(self) -> Position:
        """The domain :class:`Position` (average cost and mark per share) for the risk engine."""
        return Position(self.instrument, self.quantity, self.avg_cost, market_price=self.market_price)

    @property
    def is_option(self) -> bool:
        return self.instrument.sec_type == "OPT"

    def scaled(self, quantity: float) -> PositionRow:
        """The part ``quantity`` (same sign) of this position: money and Greeks pro rata by
        quantity (the whole row when ``quantity`` is the position, or for a row closed today)."""
        if not self.quantity or quantity == self.quantity:
            return self
        f = quantity / self.quantity
        return dataclasses.replace(
            self,
            quantity=quantity,
            market_value=self.market_value * f,
            unrealized=self.unrealized * f,
            realized=self.realized * f,
            daily_pnl=self.daily_pnl * f,
            delta=self.delta * f,
            dollar_delta=self.dollar_delta * f,
            gamma=self.gamma * f,
            theta=self.theta * f,
            vega=self.vega * f,
        )


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """Account-wide dollars (``nan`` unknown): ``net_liquidation`` (IB's NetLiquidation moved
    on by the daily P&L since it arrived, see :mod:`desk.broker.account`;
    ``net_liquidation_reported`` as IB last sent it), ``buying_power`` (BuyingPower),
    ``excess_liquidity`` (ExcessLiquidity), ``daily_pnl`` / ``unrealized`` / ``realized``
    (today; ``reqPnL``: the sums over the positions, :mod:`desk.domain.pnl`),
    ``available_funds`` (AvailableFunds: equity with loan value - initial margin)."""

    account: str = ""
    net_liquidation: float = math.nan
    buying_power: float = math.nan
    excess_liquidity: float = math.nan
    daily_pnl: float = math.nan
    unrealized: float = math.nan
    realized: float = math.nan
    available_funds: float = math.nan
    net_liquidation_reported: float = math.nan


@dataclass(frozen=True, slots=True)
class PortfolioGreeks:
    """Sums over the positions (units as :class:`PositionRow`): stock deltas (1 per share)
    and option Greeks. ``priced`` / ``options``: option positions with Greeks / all option
    positions; ``stock_shares``: the signed shares of stock in the sum."""

    delta: float = 0.0
    dollar_delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    priced: int = 0
    options: int = 0
    stock_shares: float = 0.0


def stock_greeks(row: PositionRow, price: float) -> PositionRow:
    """A stock row with its Greeks: delta = shares, dollar delta = shares x ``price``
    (dollars per share; the row's market price when ``price`` is ``nan``), gamma, theta and
    vega 0."""
    S = price if math.isfinite(price) and price > 0 else row.market_price
    return dataclasses.replace(
        row, delta=row.quantity, dollar_delta=row.quantity * S if math.isfinite(S) else math.nan, gamma=0.0, theta=0.0, vega=0.0
    )


def sum_greeks(rows: Iterable[PositionRow]) -> PortfolioGreeks:
    """Sum the Greeks of stock and option rows (option rows without Greeks are counted,
    not summed; other kinds are left out)."""
    total = [0.0] * 5
    priced = options = 0
    shares = 0.0
    for r in rows:
        kind = r.instrument.sec_type
        if kind == "OPT":
            options += 1
        elif kind != "STK":
            continue
        if not math.isfinite(r.delta):
            continue
        if kind == "OPT":
            priced += 1
        else:
            shares += r.quantity
        for k, v in enumerate((r.delta, r.dollar_delta, r.gamma, r.theta, r.vega)):
            if math.isfinite(v):
                total[k] += v
    delta, dollar_delta, gamma, theta, vega = total
    return PortfolioGreeks(delta, dollar_delta, gamma, theta, vega, priced=priced, options=options, stock_shares=shares)


# --- groups by order -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionGroup:
    """Positions opened by one order (``order_ref``, IB orderRef; :data:`UNGROUPED` for
    what no fill the desk saw explains). ``legs``: the part of each position the order's
    fills still hold (money and Greeks pro rata by quantity); ``daily_pnl``,
    ``unrealized``, ``realized``, ``market_value`` dollars and ``greeks`` the sums over the
    legs; ``combo`` True when the order had legs in more than one contract."""

    order_ref: str
    legs: tuple[PositionRow, ...]
    daily_pnl: float
    unrealized: float
    realized: float
    market_value: float
    greeks: PortfolioGreeks

    @property
    def combo(self) -> bool:
        return len(self.legs) > 1


def _sum(values: Iterable[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return cents(sum(vals)) if vals else math.nan


def _signed(fill: Fill) -> float:
    return fill.shares if fill.side.upper() in ("BOT", "BUY") else -fill.shares


def group_positions(
    rows: Sequence[PositionRow], fills: Iterable[Fill], sort_key: Callable[[PositionGroup], Any] | None = None
) -> list[PositionGroup]:
    """Group ``rows`` by the orderRef of the fills that opened them.

    Each contract's fills (``fills`` in execution order; a combo's own BAG executions are
    skipped, its legs count) give the lots still open, first in first out
    (:func:`desk.domain.pnl.open_lots`); the position is split among their orders, newest
    lots first, and what they do not cover is :data:`UNGROUPED`
    (:func:`desk.domain.pnl.attribute`). A row closed today goes to the order of its last
    fill. Groups come newest order first (the order of their last fill), the ungrouped
    last, unless ``sort_key`` is given."""
    by_con: dict[int, list[Fill]] = {}
    last_seen: dict[str, int] = {}
    for i, f in enumerate(fills):
        if f.instrument.sec_type == "BAG" or not f.instrument.con_id:
            continue
        by_con.setdefault(f.instrument.con_id, []).append(f)
        last_seen[f.order_ref] = i
    parts: dict[str, list[PositionRow]] = {}
    for row in rows:
        con_fills = by_con.get(row.instrument.con_id, [])
        if not row.quantity:
            ref = con_fills[-1].order_ref if con_fills else UNGROUPED
            parts.setdefault(ref, []).append(row)
            continue
        lots = open_lots((f.order_ref, _signed(f), f.price) for f in con_fills)
        for ref, qty in attribute(row.quantity, lots).items():
            parts.setdefault(ref, []).append(row.scaled(qty))
    groups = [
        PositionGroup(
            ref,
            tuple(legs),
            _sum(r.daily_pnl for r in legs),
            _sum(r.unrealized for r in legs),
            _sum(r.realized for r in legs),
            _sum(r.market_value for r in legs),
            sum_greeks(legs),
        )
        for ref, legs in parts.items()
    ]
    if sort_key is None:
        groups.sort(key=lambda g: (g.order_ref == UNGROUPED, -last_seen.get(g.order_ref, -1)))
    else:
        groups.sort(key=sort_key)
    return groups


class PositionPricer(Protocol):
    """Adds the Greeks of a whole option position to its row: what the broker's account calls
    (:func:`desk.pricing.positions.price_position` in the engine, which injects it, so the
    broker computes nothing itself).

    ``S`` the underlying price and ``price`` the option's (dollars per share, ``nan`` if
    unknown); ``now`` an aware datetime; ``carry`` the rate and dividend yield to price
    with; ``chain`` the chain's own per-share Greeks of the contract when it has them.
    Returns the row unchanged when no IV can be found; never raises for bad market data.
    """

    def __call__(
        self, row: PositionRow, *, S: float, now: datetime, price: float, carry: Carry, chain: OptionGreeks | None
    ) -> PositionRow: ...
