"""Account, positions and P&L on ib_async, re-subscribed after every (re)connect and after
market data is lost.

ib_async subscribes the account's updates (``reqAccountUpdates``: portfolio and account
values) on connect by itself; P&L subscriptions it does not restore. After each connect
the broker calls :meth:`AccountManager.on_connected`, which issues ``reqPnL`` for the
account and ``reqPnLSingle`` for every position (and for new positions as they appear).
When the broker says market data was lost (:class:`~desk.broker.ib_worker.DataLost`: error
1101, where IB says "market and account data subscription requests must be resubmitted",
a farm back after a blip, a silent feed), :meth:`AccountManager.resubscribe` requests the
account updates, the positions, ``reqPnL`` and every ``reqPnLSingle`` again.

**One instant per figure** (the P&L definitions are :mod:`desk.domain.pnl`, the ones the
simulator reports): IB sends a position's figures from two sources on two schedules: the
Account window's (``updatePortfolio``: unrealized and realized, on a trade or every 3
minutes) and the Portfolio window's (``reqPnLSingle``: daily, unrealized, realized and
value, about every second). Mixing them showed a position's daily and unrealized P&L from
different moments, even of opposite signs. A row therefore takes daily, unrealized,
realized and market value from its ``PnLSingle`` alone (market price = value / (position x
multiplier)), and the average cost from the portfolio; the portfolio's figures only until
the first ``PnLSingle`` of the current position arrives. The account line's daily,
unrealized and realized are ``reqPnL``'s, which IB (and the simulator) compute as the sum
of the positions, closed-today positions included (shown with quantity 0). NetLiquidation
comes with the account values (every 3 minutes at IB): the account line shows it moved on
by the daily P&L since it arrived (``NetLiq then + daily now - daily then``), so NetLiq and
the daily P&L move together.

Figures (:class:`~desk.domain.portfolio.PositionRow`, :class:`AccountFigures`,
:class:`~desk.domain.portfolio.PortfolioGreeks`) are plain values translated from ib_async
objects by pure functions; the UI reads them on its timer. Portfolio Greeks: stock deltas
(1 per share) plus the options' Greeks with the option chain's carry and IV
(:mod:`desk.domain.portfolio`, priced by :mod:`desk.pricing.positions`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ib_async import IB, Contract, PnL, PnLSingle, PortfolioItem

from desk.domain import Clock, Instrument, QuoteStore
from desk.domain.options import Carry
from desk.domain.orders import Fill, Position
from desk.domain.portfolio import (
    AccountFigures,
    PortfolioGreeks,
    PositionGroup,
    PositionPricer,
    PositionRow,
    group_positions,
    stock_greeks,
    sum_greeks,
)

if TYPE_CHECKING:
    from desk.broker.chains import ChainManager

__all__ = [
    "AccountFigures",
    "AccountManager",
    "PortfolioGreeks",
    "PositionGroup",
    "PositionRow",
    "closed_row",
    "position_row",
    "sum_greeks",
]

log = logging.getLogger(__name__)


def _f(value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and abs(x) < 1e300 else math.nan


def _instrument(contract: Contract) -> Instrument:
    from desk.broker.ib_worker import instrument_from_contract

    ins = instrument_from_contract(contract)
    if ins.sec_type == "OPT" and not contract.multiplier:
        ins = dataclasses.replace(ins, multiplier=100)
    return ins


def _current(pnl: PnLSingle | None, position: float) -> bool:
    """True when ``pnl`` is an update of this position (same quantity) with figures."""
    return (
        pnl is not None
        and _f(pnl.position) == position
        and all(math.isfinite(_f(x)) for x in (pnl.dailyPnL, pnl.unrealizedPnL, pnl.value))
    )


def position_row(item: PortfolioItem, pnl: PnLSingle | None = None) -> PositionRow:
    """Translate an ib_async ``PortfolioItem`` and its ``PnLSingle`` into a :class:`PositionRow`:
    P&L and value from the ``PnLSingle`` when it is of the same position (one instant, see
    the module doc), else the portfolio's (daily unknown); average cost from the portfolio."""
    ins = _instrument(item.contract)
    mult = ins.multiplier or 1
    qty = float(item.position)
    avg = _f(item.averageCost) / mult
    if _current(pnl, qty):
        assert pnl is not None
        value = _f(pnl.value)
        price = value / (qty * mult) if qty else _f(item.marketPrice)
        realized = _f(pnl.realizedPnL)
        return PositionRow(
            ins, qty, avg, price, value, _f(pnl.unrealizedPnL), 0.0 if realized != realized else realized, _f(pnl.dailyPnL)
        )
    return PositionRow(
        ins, qty, avg, _f(item.marketPrice), _f(item.marketValue), _f(item.unrealizedPNL), _f(item.realizedPNL), math.nan
    )


def closed_row(instrument: Instrument, pnl: PnLSingle) -> PositionRow | None:
    """The row of a position closed today (``PnLSingle`` with position 0 and some realized or
    daily P&L), or ``None``."""
    if _f(pnl.position) != 0:
        return None
    daily, realized = _f(pnl.dailyPnL), _f(pnl.realizedPnL)
    if not (daily or realized) or not (math.isfinite(daily) or math.isfinite(realized)):
        return None
    return PositionRow(instrument, 0.0, math.nan, math.nan, 0.0, 0.0, realized, daily)


#: account values read into :class:`AccountFigures`
_FIGURE_TAGS = frozenset({"NetLiquidation", "BuyingPower", "ExcessLiquidity", "AvailableFunds"})


class AccountManager:
    """Positions, account figures, P&L subscriptions and portfolio Greeks.

    ``ib``: the broker's ``IB``. ``quotes``: the quote store (underlying prices for the
    Greeks). ``rate``: risk-free rate for the Greeks when there is no chain, continuously
    compounded (0.04 = 4 %). ``chain``: the option chain manager: its carry
    (:meth:`~desk.broker.chains.ChainManager.carry`), its mids and its own IV of the
    contracts in its window are used for option positions. ``option_quotes``: optional
    callable conId -> quote with ``mid`` used before the portfolio's marketPrice (the
    chain's store by default when ``chain`` is given). ``pricer``: prices option positions
    (the engine gives :func:`desk.pricing.positions.price_position`; ``None``: option rows
    carry no Greeks).
    """

    def __init__(
        self,
        ib: IB,
        quotes: QuoteStore,
        *,
        clock: Clock | None = None,
        rate: float = 0.04,
        chain: ChainManager | None = None,
        option_quotes: Callable[[int], object] | None = None,
        pricer: PositionPricer | None = None,
    ) -> None:
        self.ib = ib
        self.quotes = quotes
        self.clock = clock or (chain.clock if chain is not None else Clock())
        self.rate = rate
        self.chain = chain
        if option_quotes is None and chain is not None:
            option_quotes = chain.store.get
        self.option_quotes = option_quotes
        self.pricer = pricer
        self.account = ""
        self._pnl: PnL | None = None
        self._singles: dict[int, PnLSingle] = {}
        self._instruments: dict[int, Instrument] = {}  # every contract held since connect
        self._nlv: tuple[float, float] = (math.nan, math.nan)  # (NetLiquidation, daily P&L when it came)
        #: how many times the subscriptions were requested again after data was lost
        self.resubscribes = 0
        self.seq = 0  # bumped on every change, for cheap redraw decisions
        ib.updatePortfolioEvent += self._on_portfolio
        ib.pnlEvent += self._on_change
        ib.pnlSingleEvent += self._on_change
        ib.accountValueEvent += self._on_account_value

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
            self._remember(item)
            self._single(item.contract.conId)
        self.seq += 1

    def on_broker_event(self, event: object) -> None:
        """Broker listener: request every account subscription again on
        :class:`~desk.broker.ib_worker.DataLost`."""
        from desk.broker.ib_worker import DataLost

        if isinstance(event, DataLost):
            n = self.resubscribe()
            log.info("account: %d P&L subscriptions and the account updates requested again (%s)", n, event.reason)

    def resubscribe(self) -> int:
        """Request the account updates, positions, ``reqPnL`` and every ``reqPnLSingle``
        again (cancelling ib_async's old ones first); returns the P&L subscriptions made.
        Does nothing while disconnected (the connect hook does it then)."""
        ib = self.ib
        if not (self.account and ib.isConnected()):
            return 0
        self.resubscribes += 1
        ib.client.reqAccountUpdates(True, self.account)
        ib.client.reqPositions()
        if self._pnl is not None:
            ib.cancelPnL(self.account)
        self._pnl = ib.reqPnL(self.account)
        con_ids = set(self._singles) | {item.contract.conId for item in ib.portfolio(self.account)}
        for con_id in self._singles:
            ib.cancelPnLSingle(self.account, "", con_id)
        self._singles.clear()
        for con_id in con_ids:
            self._single(con_id)
        self.seq += 1
        return 1 + len(self._singles)

    def _single(self, con_id: int) -> None:
        if con_id and con_id not in self._singles and self.account and self.ib.isConnected():
            self._singles[con_id] = self.ib.reqPnLSingle(self.account, "", con_id)

    def _remember(self, item: PortfolioItem) -> None:
        con_id = item.contract.conId
        if con_id and con_id not in self._instruments:
            self._instruments[con_id] = _instrument(item.contract)

    def _on_portfolio(self, item: PortfolioItem) -> None:
        self._remember(item)
        self._single(item.contract.conId)
        self.seq += 1

    def _on_account_value(self, value: object) -> None:
        if getattr(value, "tag", "") == "NetLiquidation" and getattr(value, "account", self.account) == self.account:
            daily = _f(self._pnl.dailyPnL) if self._pnl is not None else math.nan
            self._nlv = (_f(getattr(value, "value", math.nan)), daily)
        self.seq += 1

    def _on_change(self, *args: object) -> None:
        self.seq += 1

    # ------------------------------------------------------------------ figures

    def figures(self) -> AccountFigures:
        """Account figures now (see :class:`AccountFigures` and the module doc)."""
        values: dict[str, float] = {}
        for v in self.ib.accountValues(self.account):
            if v.tag in _FIGURE_TAGS and v.currency in ("USD", "BASE", ""):
                values.setdefault(v.tag, _f(v.value))
        pnl = self._pnl
        daily = _f(pnl.dailyPnL) if pnl else math.nan
        nlv = values.get("NetLiquidation", math.nan)
        reported, daily_then = self._nlv
        if math.isfinite(reported) and math.isfinite(daily_then) and math.isfinite(daily):
            nlv = reported + daily - daily_then
        return AccountFigures(
            self.account,
            nlv,
            values.get("BuyingPower", math.nan),
            values.get("ExcessLiquidity", math.nan),
            daily,
            _f(pnl.unrealizedPnL) if pnl else math.nan,
            _f(pnl.realizedPnL) if pnl else math.nan,
            values.get("AvailableFunds", math.nan),
            values.get("NetLiquidation", math.nan),
        )

    def rows(self) -> list[PositionRow]:
        """One :class:`PositionRow` per position, then one per position closed today
        (quantity 0), stocks first then options, by symbol, with Greeks."""
        rows = []
        held = set()
        for item in self.ib.portfolio(self.account):
            if not item.position:
                continue
            held.add(item.contract.conId)
            rows.append(position_row(item, self._singles.get(item.contract.conId)))
        for con_id, pnl in self._singles.items():
            ins = self._instruments.get(con_id)
            if con_id in held or ins is None:
                continue
            row = closed_row(ins, pnl)
            if row is not None:
                rows.append(row)
        rows.sort(
            key=lambda r: (
                r.quantity == 0,
                r.instrument.symbol,
                r.instrument.sec_type != "STK",
                r.instrument.expiry,
                r.instrument.strike,
                r.instrument.right,
            )
        )
        return self._with_greeks(rows)

    def positions(self) -> list[Position]:
        """Domain positions (for :class:`desk.risk.MarketContext`), open ones only."""
        return [r.position() for r in self.rows() if r.quantity]

    def greeks(self, rows: list[PositionRow] | None = None) -> PortfolioGreeks:
        """Portfolio Greeks: stock deltas plus option Greeks, summed."""
        rows = self.rows() if rows is None else rows
        return sum_greeks(rows)

    def groups(self, fills: Iterable[Fill], rows: list[PositionRow] | None = None) -> list[PositionGroup]:
        """The positions grouped by the orderRef of the ``fills`` (the fill ledger's) that
        opened them (:func:`desk.domain.portfolio.group_positions`)."""
        return group_positions(self.rows() if rows is None else rows, fills)

    def underlying_price(self, symbol: str) -> float:
        """Mid (or last) of the stock ``symbol`` in the quote store, dollars per share; nan."""
        for q in self.quotes.quotes():
            if q.instrument.symbol == symbol and q.instrument.sec_type == "STK":
                return q.mid if q.mid == q.mid else q.last
        for item in self.ib.portfolio(self.account):
            if item.contract.symbol == symbol and item.contract.secType == "STK":
                return _f(item.marketPrice)
        return math.nan

    def carry(self, instrument: Instrument) -> Carry:
        """The carry to price ``instrument`` with: the option chain's, else the rate alone."""
        if self.chain is not None:
            return self.chain.carry(instrument.symbol, instrument.expiry)
        return Carry(self.rate, 0.0)

    def _with_greeks(self, rows: list[PositionRow]) -> list[PositionRow]:
        now = self.clock.now()
        out = []
        for r in rows:
            ins = r.instrument
            if not r.quantity or ins.sec_type not in ("STK", "OPT"):
                out.append(r)
                continue
            S = self.underlying_price(ins.symbol)
            if ins.sec_type == "STK":
                out.append(stock_greeks(r, S))
                continue
            if self.pricer is None:  # no pricer given: option rows carry no Greeks
                out.append(r)
                continue
            live = self.chain.live_greeks(ins.con_id) if self.chain is not None else None
            price = r.market_price
            if self.option_quotes is not None:
                q = self.option_quotes(ins.con_id)
                mid = getattr(q, "mid", math.nan) if q is not None else math.nan
                if mid == mid and mid > 0:
                    price = mid
            out.append(self.pricer(r, S=S, now=now, price=price, carry=self.carry(ins), chain=live))
        return out
