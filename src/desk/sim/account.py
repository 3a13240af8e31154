"""Simulated brokerage accounts: cash, positions with average cost, P&L, Reg T margin,
and the values a gateway reports for an account.

A :class:`SimAccount` is a Reg T margin account in USD. Fills change it through
:meth:`SimAccount.apply_fill`; everything else is computed from the positions and the
marks the caller passes (``mark(conId) -> dollars per share or None``):

* **cash**: starting cash minus purchases plus sales minus commissions (settlement is
  immediate: ``SettledCash`` equals ``TotalCashValue``);
* **positions**: signed quantity and average cost in dollars per share *including
  commissions* (IB's convention: buying 100 at $10.00 with a $1.00 commission gives an
  average cost of $10.01; IB reports an option's ``avgCost`` per contract, i.e. times the
  multiplier, which the encoders here do);
* **marks**: a stock is marked at its last trade price, an option at the mid of its quote
  (the engine's mark function); without a mark, the last known one, else the average cost;
* **NetLiquidation** = cash + stock market value + option market value (short positions
  negative); **EquityWithLoanValue** (Reg T) = cash + stock market value: options have
  no loan value (long options are paid in full);
* **margin** (:func:`desk.risk.margin.reg_t`, the desk's Reg T / CBOE rules):
  ``InitMarginReq``, ``MaintMarginReq``;
  ``AvailableFunds`` = EWL - initial; ``ExcessLiquidity`` = EWL - maintenance;
  ``BuyingPower`` = 4 x AvailableFunds (IB's intraday Reg T stock buying power);
  ``Cushion`` = ExcessLiquidity / NetLiquidation;
* **P&L**: average cost, unrealized, realized (today) and daily P&L follow IB's
  definitions, written once in :mod:`desk.domain.pnl` (the desk uses the same module):
  unrealized = (mark - average cost) x quantity x multiplier; realized of a closing trade
  = (price - average cost) x closed quantity x multiplier minus its commission (IB's
  commissionReport ``realizedPNL``); daily = position x mark now - position x mark at
  the start of the day + the day's net amount traded (sales - purchases - commissions),
  so a position opened today has daily == unrealized; every figure is rounded to the
  cent per position and the account's reqPnL is their sum. The day starts when the
  account is created and at each :meth:`SimAccount.start_day`.

Values are what IB reports through ``reqAccountUpdates`` (updateAccountValue, msg 6,
and updatePortfolio, msg 7), ``reqAccountUpdatesMulti`` (msg 73), ``reqAccountSummary``
(msg 63), ``reqPositions`` (msg 61) and ``reqPnL``/``reqPnLSingle`` (msgs 94/95).
Money in USD with two decimals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from desk.domain.pnl import PnLFigures, PositionPnL, account_figures
from desk.risk.margin import Requirement, reg_t
from desk.sim.codec import encode_fields
from desk.sim.orders import Tradable, fmt_num

__all__ = [
    "AccountSnapshot",
    "Mark",
    "SimAccount",
    "SimPosition",
    "pnl_single",
    "portfolio_value",
    "position",
]

#: Reg-T intraday buying power multiple of available funds for a margin account.
_BUYING_POWER_MULTIPLE = 4.0

#: Account summary tags IB reports without a currency.
_NO_CURRENCY = frozenset(
    {
        "AccountType",
        "Cushion",
        "DayTradesRemaining",
        "DayTradesRemainingT+1",
        "DayTradesRemainingT+2",
        "DayTradesRemainingT+3",
        "DayTradesRemainingT+4",
        "HighestSeverity",
        "LookAheadNextChange",
        "Leverage",
    }
)

#: ``mark(conId)``: dollars per share, or ``None`` / NaN when there is no price.
Mark = Callable[[int], "float | None"]

_PORTFOLIO_VALUE = 7
_POSITION_DATA = 61
_PNL_SINGLE = 95


def _no_mark(con_id: int) -> float | None:
    return None


@dataclass(slots=True)
class SimPosition:
    """A holding of one contract in one account: the contract, its last known ``mark``
    (dollars per share) and its :class:`~desk.domain.pnl.PositionPnL` (``book``: signed
    quantity, average cost including commissions, today's and total realized P&L, the
    position and mark at the start of the day, today's net amount traded). A position
    closed today stays (quantity 0) until the next day so that its daily and realized
    P&L can still be reported."""

    contract: Tradable
    book: PositionPnL = field(default_factory=PositionPnL)
    mark: float = math.nan

    def __post_init__(self) -> None:
        if self.book.multiplier != self.contract.multiplier:
            self.book = dataclasses.replace(self.book, multiplier=float(self.contract.multiplier))

    @property
    def quantity(self) -> float:
        """Signed shares / contracts."""
        return self.book.quantity

    @property
    def avg_cost(self) -> float:
        """Dollars per share including commissions (0 when flat)."""
        return self.book.avg_cost

    @property
    def day_realized(self) -> float:
        """Realized P&L since the start of the day, dollars net of commissions."""
        return self.book.realized

    def price(self, mark: Mark) -> float:
        """The mark now (updating the cached one), else the last one, else avg cost."""
        m = mark(self.contract.con_id)
        if m is not None and m == m and m > 0:
            self.mark = m
            return m
        if self.mark == self.mark:
            return self.mark
        return self.avg_cost

    def market_value(self, price: float) -> float:
        return self.book.market_value(price)

    def unrealized(self, price: float) -> float:
        return self.book.unrealized(price)

    def daily(self, price: float) -> float:
        return self.book.daily(price)

    def figures(self, price: float) -> PnLFigures:
        """Daily, unrealized, realized (today), value at ``price``, to the cent."""
        return self.book.figures(price)


class AccountSnapshot(NamedTuple):
    """An account's figures at one instant, dollars: ``net_liquidation``, ``cash``,
    ``stock_value`` / ``option_value`` (signed market values), ``gross_value`` (sum of
    absolute market values), ``equity_with_loan`` (Reg T: cash + stock value),
    ``initial`` / ``maintenance`` margin, ``unrealized`` / ``realized`` (today) /
    ``daily`` P&L."""

    net_liquidation: float
    cash: float
    stock_value: float
    option_value: float
    gross_value: float
    equity_with_loan: float
    initial: float
    maintenance: float
    unrealized: float
    realized: float
    daily: float

    @property
    def available_funds(self) -> float:
        """Equity with loan value - initial margin, dollars (IB AvailableFunds)."""
        return self.equity_with_loan - self.initial

    @property
    def excess_liquidity(self) -> float:
        """Equity with loan value - maintenance margin, dollars (IB ExcessLiquidity)."""
        return self.equity_with_loan - self.maintenance

    @property
    def buying_power(self) -> float:
        """4 x available funds (Reg T intraday stock buying power), dollars, >= 0."""
        return max(0.0, self.available_funds) * _BUYING_POWER_MULTIPLE


@dataclass(slots=True)
class SimAccount:
    """One simulated account (``account_id`` like IB paper accounts: ``DU1234567``).

    ``cash`` is the cash balance in USD (starting cash when created); ``positions`` by
    conId. ``account_type`` is what IB reports as AccountType.
    """

    account_id: str
    cash: float = 1_000_000.0
    account_type: str = "INDIVIDUAL"
    positions: dict[int, SimPosition] = field(default_factory=dict)
    #: commissions paid since the account started, dollars
    commissions: float = 0.0
    #: cash at the start of the day (daily P&L of positions closed and cash flows)
    sod_cash: float = math.nan

    def __post_init__(self) -> None:
        if not self.account_id:
            raise ValueError("account_id must not be empty")
        if not math.isfinite(self.cash):
            raise ValueError(f"cash must be a finite number of dollars, got {self.cash!r}")
        if self.sod_cash != self.sod_cash:
            self.sod_cash = self.cash

    # --- trading ---------------------------------------------------------------------

    def position_of(self, con_id: int) -> float:
        """Signed quantity held of ``con_id`` (0 if none)."""
        p = self.positions.get(con_id)
        return p.quantity if p is not None else 0.0

    def holdings(self) -> list[tuple[Tradable, float]]:
        """``(contract, signed quantity)`` of every open position."""
        return [(p.contract, p.quantity) for p in self.positions.values() if p.quantity]

    def apply_fill(self, contract: Tradable, quantity: float, price: float, commission: float) -> float | None:
        """Book an execution: ``quantity`` signed (+ bought, - sold) at ``price``
        dollars per share, paying ``commission`` dollars. Returns the realized P&L of
        the part that closed an existing position, net of that part's share of the
        commission, or ``None`` if the execution only opened or added to a position.
        ``ValueError`` for a zero quantity or a non-finite price."""
        if quantity == 0 or not math.isfinite(quantity):
            raise ValueError(f"fill quantity must be non-zero, got {quantity!r}")
        if not math.isfinite(price):
            raise ValueError(f"fill price must be finite, got {price!r}")
        pos = self.positions.get(contract.con_id)
        if pos is None:
            pos = self.positions[contract.con_id] = SimPosition(contract, mark=price)
        pos.book, realized = pos.book.fill(quantity, price, commission)
        self.cash -= quantity * price * contract.multiplier + commission
        self.commissions += commission
        return realized

    def start_day(self, mark: Mark = _no_mark) -> None:
        """Start a new trading day: today's P&L starts from here; positions closed
        before are forgotten."""
        for con_id in [c for c, p in self.positions.items() if p.quantity == 0]:
            del self.positions[con_id]
        for p in self.positions.values():
            p.book = p.book.new_day(p.price(mark))
        self.sod_cash = self.cash

    # --- figures ---------------------------------------------------------------------

    def snapshot(self, mark: Mark = _no_mark) -> AccountSnapshot:
        """The account's figures now (see the module docstring for the definitions)."""
        stock = option = gross = 0.0
        prices: dict[int, float] = {}
        figures = []
        for con_id, p in self.positions.items():
            px = p.price(mark)
            prices[con_id] = px
            mv = p.market_value(px)
            if p.contract.is_option:
                option += mv
            else:
                stock += mv
            gross += abs(mv)
            figures.append(p.figures(px))
        pnl = account_figures(figures)
        req = self.requirement(mark, prices)
        ewl = self.cash + stock
        return AccountSnapshot(
            net_liquidation=self.cash + stock + option,
            cash=self.cash,
            stock_value=stock,
            option_value=option,
            gross_value=gross,
            equity_with_loan=ewl,
            initial=req.initial,
            maintenance=req.maintenance,
            unrealized=pnl.unrealized,
            realized=pnl.realized,
            daily=pnl.daily,
        )

    def requirement(
        self, mark: Mark = _no_mark, prices: dict[int, float] | None = None, extra: Iterable[tuple[Tradable, float]] = ()
    ) -> Requirement:
        """Reg T requirement of the positions, plus ``extra`` ``(contract, signed
        quantity)`` as if they were added (what-if)."""
        qty: dict[int, tuple[Tradable, float]] = {c: (p.contract, p.quantity) for c, p in self.positions.items() if p.quantity}
        for contract, q in extra:
            old = qty.get(contract.con_id, (contract, 0.0))[1]
            qty[contract.con_id] = (contract, old + q)
        known = prices or {}

        def price(con_id: int) -> float:
            if con_id in known:
                return known[con_id]
            p = self.positions.get(con_id)
            if p is not None:
                return p.price(mark)
            m = mark(con_id)
            return m if m is not None and m == m else math.nan

        # an option's underlying is priced by its conId (the stock need not be held)
        und = {c.symbol: c.underlying_con_id for c, _ in qty.values() if c.underlying_con_id}
        return reg_t(qty.values(), price, lambda symbol: price(und[symbol]) if symbol in und else math.nan)

    def sod_equity_with_loan(self) -> float:
        """Equity with loan value at the start of the day: cash then plus the stock
        positions then at their marks then, dollars."""
        return self.sod_cash + sum(
            p.book.prior_quantity * p.book.prior_close * p.contract.multiplier
            for p in self.positions.values()
            if not p.contract.is_option
        )

    def pnl(self, mark: Mark = _no_mark) -> tuple[float, float, float]:
        """``(daily, unrealized, realized)`` P&L of the account, dollars to the cent
        (reqPnL): the sums of the positions' figures (:func:`desk.domain.pnl.account_figures`)."""
        f = account_figures(p.figures(p.price(mark)) for p in self.positions.values())
        return f.daily, f.unrealized, f.realized

    def pnl_single(self, con_id: int, mark: Mark = _no_mark) -> tuple[float, float, float, float, float]:
        """``(position, daily, unrealized, realized, value)`` of one conId, dollars to the
        cent (reqPnLSingle); zeros if the account never held it today."""
        p = self.positions.get(con_id)
        if p is None:
            return 0.0, 0.0, 0.0, 0.0, 0.0
        f = p.figures(p.price(mark))
        return f.position, f.daily, f.unrealized, f.realized, f.value

    def values(self, mark: Mark = _no_mark) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` rows as IB's account updates carry them."""
        s = self.snapshot(mark)
        return self.rows(s)

    def rows(self, s: AccountSnapshot) -> list[tuple[str, str, str]]:
        """The account update rows of snapshot ``s``."""

        def money(x: float) -> str:
            return f"{x:.2f}"

        nlv = money(s.net_liquidation)
        cash = money(s.cash)
        ewl = money(s.equity_with_loan)
        init, maint = money(s.initial), money(s.maintenance)
        avail, excess = money(s.available_funds), money(s.excess_liquidity)
        cushion = s.excess_liquidity / s.net_liquidation if s.net_liquidation > 0 else 0.0
        leverage = s.gross_value / s.net_liquidation if s.net_liquidation > 0 else 0.0
        sma = money(max(0.0, s.equity_with_loan - s.initial))
        return [
            ("AccountCode", self.account_id, ""),
            ("AccountType", self.account_type, ""),
            ("AccountReady", "true", ""),
            ("Currency", "USD", "USD"),
            ("NetLiquidation", nlv, "USD"),
            ("NetLiquidationByCurrency", nlv, "BASE"),
            ("TotalCashValue", cash, "USD"),
            ("TotalCashBalance", cash, "BASE"),
            ("SettledCash", cash, "USD"),
            ("AccruedCash", "0.00", "USD"),
            ("CashBalance", cash, "USD"),
            ("CashBalance", cash, "BASE"),
            ("BuyingPower", money(s.buying_power), "USD"),
            ("EquityWithLoanValue", ewl, "USD"),
            ("PreviousDayEquityWithLoanValue", money(self.sod_equity_with_loan()), "USD"),
            ("GrossPositionValue", money(s.gross_value), "USD"),
            ("StockMarketValue", money(s.stock_value), "USD"),
            ("StockMarketValue", money(s.stock_value), "BASE"),
            ("OptionMarketValue", money(s.option_value), "USD"),
            ("OptionMarketValue", money(s.option_value), "BASE"),
            ("RegTEquity", ewl, "USD"),
            ("RegTMargin", init, "USD"),
            ("SMA", sma, "USD"),
            ("InitMarginReq", init, "USD"),
            ("MaintMarginReq", maint, "USD"),
            ("AvailableFunds", avail, "USD"),
            ("ExcessLiquidity", excess, "USD"),
            ("Cushion", f"{cushion:.6f}", ""),
            ("FullInitMarginReq", init, "USD"),
            ("FullMaintMarginReq", maint, "USD"),
            ("FullAvailableFunds", avail, "USD"),
            ("FullExcessLiquidity", excess, "USD"),
            ("LookAheadNextChange", "0", ""),
            ("LookAheadInitMarginReq", init, "USD"),
            ("LookAheadMaintMarginReq", maint, "USD"),
            ("LookAheadAvailableFunds", avail, "USD"),
            ("LookAheadExcessLiquidity", excess, "USD"),
            ("HighestSeverity", "0", ""),
            ("DayTradesRemaining", "-1", ""),
            ("Leverage", f"{leverage:.4f}", ""),
            ("UnrealizedPnL", money(s.unrealized), "USD"),
            ("UnrealizedPnL", money(s.unrealized), "BASE"),
            ("RealizedPnL", money(s.realized), "USD"),
            ("RealizedPnL", money(s.realized), "BASE"),
        ]

    def summary(self, tags: str, mark: Mark = _no_mark) -> list[tuple[str, str, str]]:
        """Rows for ``reqAccountSummary``: the requested comma-separated ``tags`` that this
        account has (IB answers unknown tags with nothing). ``$LEDGER`` style groups
        return the cash rows. Currencies follow IB: none for counters and types."""
        return self.summary_rows(tags, self.values(mark))

    @staticmethod
    def summary_rows(tags: str, rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Filter account update ``rows`` to the summary ``tags`` (see :meth:`summary`)."""
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        out = []
        ledger = any(t.startswith("$LEDGER") for t in wanted)
        seen: set[str] = set()
        for tag, value, cur in rows:
            if cur == "BASE" or tag in seen:
                continue
            if tag in wanted or (ledger and tag in ("CashBalance", "TotalCashValue", "NetLiquidation")):
                seen.add(tag)
                out.append((tag, value, "" if tag in _NO_CURRENCY else cur))
        return out

    # --- persistence -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able image of the account (positions by conId with their contract)."""
        return {
            "account_id": self.account_id,
            "cash": self.cash,
            "account_type": self.account_type,
            "commissions": self.commissions,
            "sod_cash": self.sod_cash,
            "positions": [
                {
                    "contract": _contract_dict(p.contract),
                    "quantity": p.quantity,
                    "avg_cost": p.avg_cost,
                    "mark": None if p.mark != p.mark else p.mark,
                    "realized_pnl": p.book.realized_total,
                    "day_realized": p.book.realized,
                    "sod_quantity": p.book.prior_quantity,
                    "sod_mark": p.book.prior_close,
                    "day_cash_flow": p.book.day_cash_flow,
                }
                for p in self.positions.values()
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimAccount:
        """Rebuild an account saved by :meth:`to_dict`; ``KeyError``/``TypeError`` on a
        malformed image."""
        acc = cls(
            d["account_id"],
            float(d["cash"]),
            d.get("account_type", "INDIVIDUAL"),
            commissions=float(d.get("commissions", 0.0)),
            sod_cash=float(d.get("sod_cash", d["cash"])),
        )
        for pd in d.get("positions", []):
            c = Tradable(**pd["contract"])
            mark = pd.get("mark")
            book = PositionPnL(
                float(c.multiplier),
                float(pd["quantity"]),
                float(pd["avg_cost"]),
                float(pd["day_realized"]),
                float(pd["realized_pnl"]),
                float(pd["sod_quantity"]),
                float(pd["sod_mark"]),
                float(pd["day_cash_flow"]),
            )
            acc.positions[c.con_id] = SimPosition(c, book, math.nan if mark is None else float(mark))
        return acc


def _contract_dict(c: Tradable) -> dict[str, Any]:
    return dataclasses.asdict(c)


# --- encoders ---------------------------------------------------------------------------


def position(account: str, p: SimPosition) -> bytes:
    """position (61): account, contract (exchange = primary exchange for stocks),
    position, avgCost (per contract for options: avg cost x multiplier)."""
    c = p.contract
    return encode_fields(
        (_POSITION_DATA, 3, account, *c.wire11(c.primary_exchange), fmt_num(p.quantity), fmt_num(p.avg_cost * c.multiplier))
    )


def portfolio_value(account: str, p: SimPosition, price: float) -> bytes:
    """updatePortfolio (7): contract, position, marketPrice (dollars per share),
    marketValue, averageCost (per contract for options), unrealizedPNL, realizedPNL
    (today), account."""
    c = p.contract
    f = p.figures(price)
    return encode_fields(
        (
            _PORTFOLIO_VALUE,
            8,
            *c.wire_portfolio(),
            fmt_num(p.quantity),
            fmt_num(price),
            f"{f.value:.2f}",
            fmt_num(p.avg_cost * c.multiplier),
            f"{f.unrealized:.2f}",
            f"{f.realized:.2f}",
            account,
        )
    )


def pnl_single(req_id: int, pos: float, daily: float, unrealized: float, realized: float, value: float) -> bytes:
    """pnlSingle (95): position, daily, unrealized, realized P&L and market value."""
    return encode_fields(
        (_PNL_SINGLE, req_id, fmt_num(pos), f"{daily:.2f}", f"{unrealized:.2f}", f"{realized:.2f}", f"{value:.2f}")
    )
