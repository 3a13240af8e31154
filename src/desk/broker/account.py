"""Account, positions and P&L on ib_async, re-subscribed after every (re)connect.

ib_async subscribes the account's updates (``reqAccountUpdates``: portfolio and account
values) on connect by itself; P&L subscriptions it does not restore. After each connect
the broker calls :meth:`AccountManager.on_connected`, which issues ``reqPnL`` for the
account and ``reqPnLSingle`` for every position (and for new positions as they appear).

Figures (:class:`PositionRow`, :class:`AccountFigures`, :class:`PortfolioGreeks`) are
plain values translated from ib_async objects by pure functions; the UI reads them on its
timer. Portfolio Greeks are desk's own: the implied volatility of each option position's
market price (IB's ``marketPrice`` from the portfolio, dollars per share) against the
underlying's mid or last from the quote store, then Black-Scholes-Merton Greeks
(:mod:`desk.pricing`; T in ACT/365 years to the close of the expiry session, rate ``r``
continuously compounded, no dividend yield).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
import numpy as np
from ib_async import IB, PnL, PnLSingle, PortfolioItem

from desk.domain import Clock, Instrument, QuoteStore
from desk.domain.orders import Position

__all__ = ["AccountFigures", "AccountManager", "PortfolioGreeks", "PositionRow", "position_row"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One line of the positions pane.

    ``quantity``: signed shares / contracts. ``avg_cost`` and ``market_price``: dollars
    per share (IB's averageCost of an option is per contract; here divided by the
    multiplier). ``market_value``, ``unrealized``, ``realized``, ``daily_pnl``: dollars
    (``nan`` unknown; daily P&L from ``reqPnLSingle``). Greeks of the whole position
    (options only, ``nan`` otherwise or when no IV): ``delta`` in shares of the
    underlying, ``dollar_delta`` dollars per 1.00 = 100 % move (delta x S), ``gamma``
    shares per $1, ``theta`` dollars per calendar day, ``vega`` dollars per vol point.
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
        """The domain :class:`Position` (average cost per share) for the risk engine."""
        return Position(self.instrument, self.quantity, self.avg_cost)


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """Account-wide dollars: ``net_liquidation`` (NetLiquidation), ``buying_power``
    (BuyingPower), ``excess_liquidity`` (ExcessLiquidity), ``daily_pnl`` / ``unrealized``
    / ``realized`` (``reqPnL``). ``nan`` unknown."""

    account: str = ""
    net_liquidation: float = math.nan
    buying_power: float = math.nan
    excess_liquidity: float = math.nan
    daily_pnl: float = math.nan
    unrealized: float = math.nan
    realized: float = math.nan


@dataclass(frozen=True, slots=True)
class PortfolioGreeks:
    """Sums over option positions (units as :class:`PositionRow`). ``priced`` / ``options``:
    option positions with Greeks / all option positions."""

    delta: float = 0.0
    dollar_delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    priced: int = 0
    options: int = 0


def _f(value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and abs(x) < 1e300 else math.nan


def position_row(item: PortfolioItem, pnl: PnLSingle | None = None) -> PositionRow:
    """Translate an ib_async ``PortfolioItem`` (and its ``PnLSingle``) into a :class:`PositionRow`."""
    from desk.broker.ib_worker import instrument_from_contract

    c = item.contract
    ins = instrument_from_contract(c)
    if ins.sec_type == "OPT" and not c.multiplier:
        ins = dataclasses.replace(ins, multiplier=100)
    mult = ins.multiplier or 1
    return PositionRow(
        ins, float(item.position), _f(item.averageCost) / mult, _f(item.marketPrice), _f(item.marketValue),
        _f(item.unrealizedPNL), _f(item.realizedPNL), _f(pnl.dailyPnL) if pnl is not None else math.nan,
    )


class AccountManager:
    """Positions, account figures, P&L subscriptions and portfolio Greeks.

    ``ib``: the broker's ``IB``. ``quotes``: the quote store (underlying prices for the
    Greeks). ``rate``: risk-free rate for the Greeks, continuously compounded (0.04 = 4 %).
    ``option_quotes``: optional callable conId -> quote with ``mid`` (the option chain's
    store) used before the portfolio's marketPrice.
    """

    def __init__(
        self,
        ib: IB,
        quotes: QuoteStore,
        *,
        clock: Clock | None = None,
        rate: float = 0.04,
        option_quotes: Callable[[int], object] | None = None,
    ) -> None:
        self.ib = ib
        self.quotes = quotes
        self.clock = clock or Clock()
        self.rate = rate
        self.option_quotes = option_quotes
        self.account = ""
        self._pnl: PnL | None = None
        self._singles: dict[int, PnLSingle] = {}
        self.seq = 0  # bumped on every change, for cheap redraw decisions
        ib.updatePortfolioEvent += self._on_portfolio
        ib.pnlEvent += self._on_change
        ib.pnlSingleEvent += self._on_change
        ib.accountValueEvent += self._on_change

    async def on_connected(self) -> None:
        """(Re)issue ``reqPnL`` and one ``reqPnLSingle`` per position (ib_async forgets
        them on disconnect)."""
        self._singles.clear()
        self._pnl = None
        accounts = self.ib.managedAccounts()
        if not accounts:
            return
        self.account = accounts[0]
        self._pnl = self.ib.reqPnL(self.account)
        for item in self.ib.portfolio(self.account):
            self._single(item.contract.conId)
        self.seq += 1

    def _single(self, con_id: int) -> None:
        if con_id and con_id not in self._singles and self.account and self.ib.isConnected():
            self._singles[con_id] = self.ib.reqPnLSingle(self.account, "", con_id)

    def _on_portfolio(self, item: PortfolioItem) -> None:
        self._single(item.contract.conId)
        self.seq += 1

    def _on_change(self, *args: object) -> None:
        self.seq += 1

    # ------------------------------------------------------------------ figures

    def figures(self) -> AccountFigures:
        """Account figures now (see :class:`AccountFigures`)."""
        values: dict[str, float] = {}
        for v in self.ib.accountValues(self.account):
            if v.tag in ("NetLiquidation", "BuyingPower", "ExcessLiquidity") and v.currency in ("USD", "BASE", ""):
                values.setdefault(v.tag, _f(v.value))
        pnl = self._pnl
        return AccountFigures(
            self.account,
            values.get("NetLiquidation", math.nan),
            values.get("BuyingPower", math.nan),
            values.get("ExcessLiquidity", math.nan),
            _f(pnl.dailyPnL) if pnl else math.nan,
            _f(pnl.unrealizedPnL) if pnl else math.nan,
            _f(pnl.realizedPnL) if pnl else math.nan,
        )

    def rows(self) -> list[PositionRow]:
        """One :class:`PositionRow` per non-zero position, stocks first then options, by symbol,
        with Greeks for options."""
        rows = [
            position_row(item, self._singles.get(item.contract.conId))
            for item in self.ib.portfolio(self.account)
            if item.position
        ]
        rows.sort(key=lambda r: (r.instrument.symbol, r.instrument.sec_type != "STK", r.instrument.expiry,
                                 r.instrument.strike, r.instrument.right))
        return self._with_greeks(rows)

    def positions(self) -> list[Position]:
        """Domain positions (for :class:`desk.risk.MarketContext`)."""
        return [r.position() for r in self.rows()]

    def greeks(self, rows: list[PositionRow] | None = None) -> PortfolioGreeks:
        """Portfolio Greeks summed over option positions."""
        rows = self.rows() if rows is None else rows
        return sum_greeks(rows)

    def underlying_price(self, symbol: str) -> float:
        """Mid (or last) of the stock ``symbol`` in the quote store, dollars per share; nan."""
        for q in self.quotes.quotes():
            if q.instrument.symbol == symbol and q.instrument.sec_type == "STK":
                return q.mid if q.mid == q.mid else q.last
        for item in self.ib.portfolio(self.account):
            if item.contract.symbol == symbol and item.contract.secType == "STK":
                return _f(item.marketPrice)
        return math.nan

    def _with_greeks(self, rows: list[PositionRow]) -> list[PositionRow]:
        opts = [i for i, r in enumerate(rows) if r.instrument.sec_type == "OPT"]
        if not opts:
            return rows
        from desk.broker.chains import years_to_expiry
        from desk.pricing import bsm_greeks, implied_vol

        now = self.clock.now()
        out = list(rows)
        for i in opts:
            r = rows[i]
            ins = r.instrument
            S = self.underlying_price(ins.symbol)
            price = r.market_price
            if self.option_quotes is not None:
                q = self.option_quotes(ins.con_id)
                mid = getattr(q, "mid", math.nan) if q is not None else math.nan
                if mid == mid and mid > 0:
                    price = mid
            try:
                T = years_to_expiry(ins.expiry, now)
            except Exception:  # unparsable expiry: no Greeks for this row
                continue
            if not (S > 0 and price > 0 and T > 0):
                continue
            is_call = np.array(ins.right == "C")
            iv = float(implied_vol(is_call, price, S, ins.strike, T, self.rate, 0.0).iv)
            if not math.isfinite(iv):
                continue
            g = bsm_greeks(is_call, S, ins.strike, T, self.rate, 0.0, iv)
            size = r.quantity * ins.multiplier
            d = float(g.delta) * size
            out[i] = PositionRow(
                ins, r.quantity, r.avg_cost, r.market_price, r.market_value, r.unrealized, r.realized, r.daily_pnl,
                iv, d, d * S, float(g.gamma) * size, float(g.theta) * size, float(g.vega) * size,
            )
        return out


def sum_greeks(rows: list[PositionRow]) -> PortfolioGreeks:
    """Sum the Greeks of the option rows (rows without Greeks are counted, not summed)."""
    total = [0.0] * 5
    priced = options = 0
    for r in rows:
        if r.instrument.sec_type != "OPT":
            continue
        options += 1
        if not math.isfinite(r.delta):
            continue
        priced += 1
        for k, v in enumerate((r.delta, r.dollar_delta, r.gamma, r.theta, r.vega)):
            total[k] += v
    return PortfolioGreeks(*total, priced=priced, options=options)

