"""Option exercise in the simulated gateway: exerciseOptions (21) and, at expiry,
automatic exercise of in-the-money long options and assignment of short ones.

One :class:`Exercises` lives on each :class:`~desk.sim.matching.OrderEngine` (as
``engine.exercises``); the engine registers :meth:`Exercises.handle` for message 21 in
its ``handlers()`` and calls :meth:`Exercises.on_step` on every market step.

exerciseOptions (21)
    ``21, 2, reqId, conId, symbol, secType, lastTradeDate, strike, right, multiplier,
    exchange, currency, localSymbol, tradingClass, exerciseAction, exerciseQuantity,
    account, override`` (ib_async ``client.exerciseOptions``). ``exerciseAction`` 1
    exercises, 2 lets the options lapse; the quantity (contracts) must not exceed the
    long position. Errors are error 321 (``Error validating request``) naming the problem.
Expiry (OCC exercise by exception)
    At the expiry's close (:meth:`desk.domain.calendar.ExchangeCalendar.expiry_close`)
    every option position of that expiry is settled against the underlying's mark: in
    the money by $0.01 or more, a long position is exercised and a short one assigned;
    otherwise it expires worthless.
Position and cash effects (dollars; multiplier shares per contract)
    A call exercised (or a put assigned) buys ``multiplier x contracts`` shares at the
    strike, a put exercised (or a call assigned) sells them; cash moves by strike x
    shares. The option position is closed at a price of 0: its premium goes to the
    realized P&L (IB instead folds it into the stock's cost basis). No commission.
    Position / portfolio / account updates go out as after a fill.
"""

from __future__ import annotations

import logging
from datetime import datetime

from desk.domain.calendar import nyse_calendar
from desk.sim import messages as m
from desk.sim.account import SimAccount
from desk.sim.orders import Tradable
from desk.sim.ports import Client, OrderBook

__all__ = ["EXERCISE_OPTIONS", "Exercises"]

log = logging.getLogger("desk.sim.orders")

#: client -> server message id of exerciseOptions
EXERCISE_OPTIONS = 21
#: IB's "Error validating request" (the code IB answers a refused exercise with)
VALIDATION_ERROR = 321
#: OCC exercise by exception: in the money by at least this much (dollars per share)
ITM_THRESHOLD = 0.01


class Exercises:
    """Exercise, lapse and expiry settlement of one engine's accounts."""

    def __init__(self, engine: OrderBook) -> None:
        self.engine = engine
        #: expiry (YYYYMMDD) -> its close, UTC (None outside the calendar)
        self._closes: dict[str, datetime | None] = {}

    def handle(self, session: Client, fields: list[str]) -> None:
        """exerciseOptions (21) from ``session`` (layout in the module docstring)."""
        try:
            req_id = int(fields[2])
        except (IndexError, ValueError):
            req_id = -1
        try:
            con_id = int(fields[3])
            action = int(fields[14])
            qty = int(float(fields[15]))
            account_id = fields[16].strip()
        except (IndexError, ValueError):
            self._error(session, req_id, "malformed exerciseOptions message")
            return
        eng = self.engine
        account = eng.gateway.account(account_id)
        if account is None:
            self._error(session, req_id, f"account {account_id!r} is not managed here")
            return
        option = eng.instruments.contract(con_id)
        if option is None or not option.is_option:
            self._error(session, req_id, f"conId {con_id} is not an option")
            return
        held = account.position_of(con_id)
        if action not in (1, 2):
            self._error(session, req_id, f"exerciseAction must be 1 or 2, got {action}")
            return
        if qty <= 0 or qty > held:
            self._error(session, req_id, f"cannot exercise {qty} {option.describe()}: long position is {held:g}")
            return
        if action == 1:
            if not self._deliver(account, option, qty):
                self._error(session, req_id, f"no underlying for {option.describe()}")
                return
        else:
            account.apply_fill(option, -qty, 0.0, 0.0)
            self._dirty(account, option.con_id)
        log.info("%s %d %s (%s)", "exercised" if action == 1 else "lapsed", qty, option.describe(), account_id)

    def _error(self, session: Client, req_id: int, text: str) -> None:
        self.engine.send_session(
            session, m.error(req_id, VALIDATION_ERROR, f"Error validating request:-'exerciseOptions' : cause - {text}")
        )

    def _deliver(self, account: SimAccount, option: Tradable, contracts: float) -> bool:
        """Close ``contracts`` (signed: + long exercised, - short assigned) of ``option``
        at 0 and book the stock at the strike. False without an underlying."""
        stock = self.engine.instruments.contract(option.underlying_con_id)
        if stock is None:
            return False
        shares = contracts * option.multiplier * (1 if option.right == "C" else -1)
        account.apply_fill(option, -contracts, 0.0, 0.0)
        account.apply_fill(stock, shares, option.strike, 0.0)
        self._dirty(account, option.con_id, stock.con_id)
        return True

    def _dirty(self, account: SimAccount, *con_ids: int) -> None:
        self.engine.mark_dirty(account.account_id, *con_ids)

    def on_step(self) -> None:
        """Settle the option positions whose expiry's close has passed."""
        eng = self.engine
        now = eng.gateway.clock.now()
        for account in eng.gateway.accounts:
            for option, qty in account.holdings():
                if option.is_option:
                    close = self._close_of(option.expiry)
                    if close is not None and now >= close:
                        self._settle(account, option, qty)

    def _close_of(self, expiry: str) -> datetime | None:
        if expiry not in self._closes:
            try:
                self._closes[expiry] = nyse_calendar().expiry_close(expiry)
            except ValueError:
                self._closes[expiry] = None
        return self._closes[expiry]

    def _settle(self, account: SimAccount, option: Tradable, qty: float) -> None:
        spot = self.engine.instruments.mark(option.underlying_con_id)
        if spot is None:
            return  # wait for a price of the underlying
        intrinsic = spot - option.strike if option.right == "C" else option.strike - spot
        if intrinsic >= ITM_THRESHOLD - 1e-9:
            self._deliver(account, option, qty)
            what = "exercised" if qty > 0 else "assigned"
        else:
            account.apply_fill(option, -qty, 0.0, 0.0)
            self._dirty(account, option.con_id)
            what = "expired worthless"
        log.info("expiry: %g %s %s at %g (%s)", qty, option.describe(), what, spot, account.account_id)
