"""The market data lines of the option chain's window, and their ticks.

:class:`ChainLines` is the base class of :class:`desk.broker.chains.ChainManager` that owns
its lines; the manager loads the definitions and contracts, flushes and computes our Greeks,
and sets the state both use in its ``__init__``.

* **lines**: only the window's contracts are subscribed (``reqMktData`` with generic tick
  101, option open interest), within the :class:`~desk.broker.lines.LineBudget` shared
  with the watchlist. A window that needs more lines than are free is trimmed from the
  far strikes in and the manager says so in ``ChainManager.message``; lines are
  released when the window moves, the expiry changes or the underlying changes, and
  given back to the watchlist on demand (the budget's reclaimer). After a reconnect
  every line of the window is requested again (ib_async does not resubscribe). A
  window's requests go out in one burst; ib_async paces them at 45 per second, under
  IB's 50 messages per second.
* **quotes**: ticker updates (``pendingTickersEvent``) are translated into the
  :class:`~desk.domain.options.OptionChainStore` (bid, ask, last, sizes, volume, open
  interest, IB's model Greeks from ``tickOptionComputation`` type 13) and marked dirty;
  quote and trade ticks also go to the broker's tick sinks (recorder, Redis).
* **feed health**: the window's lines are watched by :mod:`desk.broker.health`, which
  re-requests silent ones (:meth:`ChainLines.rerequest`).

Units: prices in dollars per share. Times are UTC.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from desk.broker.chain_support import ServerClock, greeks_from_computation
from desk.broker.chain_window import ChainRow, ExpiryContracts, nearest_index, should_recentre, window_strikes
from desk.broker.lines import LineBudget
from desk.broker.ticks import Line, ib_number, tick_records
from desk.domain import ConnectionState, Instrument, TickRecord
from desk.domain.options import OptionChainStore, WindowSpec

if TYPE_CHECKING:
    from ib_async import Ticker

    from desk.broker.ib_worker import Broker

__all__ = ["CHAIN_OWNER", "GENERIC_TICKS", "ChainLines"]

log = logging.getLogger("desk.broker.chains")  # the chain's one logger, as before the split

#: Owner name of the chain's lines in the :class:`LineBudget`.
CHAIN_OWNER = "chain"
#: Generic ticks asked with each option line: 101 = option open interest (tick types 27/28).
GENERIC_TICKS = "101"


class ChainLines:
    """The window's lines of a :class:`~desk.broker.chains.ChainManager` (its base class;
    see the module docstring): re-centring the window, fitting it to the line budget,
    requesting and cancelling lines, the budget's reclaimer, feed health, and the ticker
    updates of the lines into :attr:`store`."""

    # state set by ChainManager.__init__ (and kept up to date by the manager)
    broker: Broker | None
    budget: LineBudget
    store: OptionChainStore
    spec: WindowSpec
    clock: ServerClock
    record: bool
    underlying: Instrument | None
    rows: list[ChainRow]
    spot: float
    forward: float
    anchor: float | None
    trimmed: int
    layout_seq: int
    message: str
    message_level: str
    message_seq: int
    _lines: dict[int, Line]
    _by_ticker: dict[int, Line]
    _layout_flag: bool
    _need_compute: bool
    # a property of ChainManager: the selected expiry's contracts
    contracts: ExpiryContracts | None

    # ------------------------------------------------------------------ window and lines

    def _centre_price(self) -> float:
        """Spot if known; else the parity forward; else IB's model underlying price."""
        if self.spot == self.spot and self.spot > 0:
            return self.spot
        if self.forward == self.forward:
            return self.forward
        for quote in self.store.quotes():
            if quote.model is not None and quote.model.und_price > 0:
                return quote.model.und_price
        return math.nan

    def _recentre(self, force: bool = False) -> bool:
        contracts = self.contracts
        if contracts is None or not contracts.strikes:
            return False
        price = self._centre_price()
        strikes = contracts.strikes
        if not force and not should_recentre(strikes, self.anchor, price):
            return False
        chosen = window_strikes(strikes, price, self.spec)
        centre = strikes[nearest_index(strikes, price)] if price == price else chosen[len(chosen) // 2]
        self.anchor = centre if price == price else None
        wanted = [contracts.row(k) for k in chosen]
        rows = self._fit_budget(wanted, centre)
        was_trimmed, self.trimmed = self.trimmed, len(wanted) - len(rows)
        if rows != self.rows:
            self.rows = rows
            self._layout_flag = True
            self.layout_seq += 1
        self._apply_lines()
        self._budget_message(len(wanted), was_trimmed)
        self._need_compute = True
        return True

    def _fit_budget(self, rows: list[ChainRow], centre: float) -> list[ChainRow]:
        """Drop the strikes farthest from ``centre`` until the window's lines fit the budget."""
        available = self.budget.available_to(CHAIN_OWNER)
        if sum((r.call is not None) + (r.put is not None) for r in rows) <= available:
            return rows
        kept: list[ChainRow] = []
        used = 0
        for r in sorted(rows, key=lambda r: (abs(r.strike - centre), r.strike)):
            cost = (r.call is not None) + (r.put is not None)
            if used + cost > available:
                break
            kept.append(r)
            used += cost
        return sorted(kept, key=lambda r: r.strike)

    def _budget_message(self, wanted: int, was_trimmed: int) -> None:
        """Say when the budget cut the window (and stop saying it once it fits again)."""
        symbol = self.underlying.symbol if self.underlying else ""
        if not self.trimmed:
            if was_trimmed:
                self._set_message("")
        elif not self.rows:
            self._set_message(
                f"{symbol} chain: no market data line free ({self.budget.describe()}); "
                "remove watchlist symbols or raise DESK_MARKET_DATA_LINES",
                "error",
            )
        else:
            self._set_message(
                f"{symbol} chain: {len(self.rows)} of {wanted} strikes shown, the market data lines are used up "
                f"({self.budget.describe()}); narrow the window (-) or raise DESK_MARKET_DATA_LINES",
                "warning",
            )

    def _apply_lines(self) -> None:
        """Subscribe the window's contracts and release the others (nearest the money first)."""
        wanted: list[Instrument] = []
        for row in self.rows:
            for ins in (row.call, row.put):
                if ins is not None:
                    wanted.append(ins)
        keep = {i.con_id for i in wanted}
        for con_id in [c for c in self._lines if c not in keep]:
            self._cancel(con_id)
        centre = self.anchor if self.anchor is not None else 0.0
        wanted.sort(key=lambda i: abs(i.strike - centre))
        for ins in wanted:
            if ins.con_id in self._lines:
                continue
            if not self.budget.acquire(CHAIN_OWNER, ins.con_id):
                break
            contracts = self.contracts
            contract = contracts.contracts.get(ins.con_id) if contracts is not None else None
            line = Line(ins, contract)
            self._lines[ins.con_id] = line
            self.store.ensure(ins)
            self._request(line)

    def _request(self, line: Line) -> None:
        if self.broker is None or line.contract is None or not self._connected():
            return
        line.book = [math.nan, math.nan, math.nan, math.nan]
        line.requested_at = time.monotonic()
        try:
            ticker = self.broker.ib.reqMktData(line.contract, GENERIC_TICKS, False, False)
        except (ConnectionError, OSError) as exc:
            log.warning("reqMktData %s failed: %s", line.instrument.key, exc)
            return
        line.ticker = ticker
        self._by_ticker[id(ticker)] = line

    # ------------------------------------------------------------------ feed health (desk.broker.health)

    def market_lines(self) -> list[Line]:
        """The chain window's subscribed lines."""
        return list(self._lines.values())

    def rerequest(self, line: Line) -> None:
        """Cancel and request ``line`` again (a silently dead line, data lost at the gateway)."""
        if line.ticker is not None:
            self._by_ticker.pop(id(line.ticker), None)
            if self._connected() and line.contract is not None:
                with contextlib.suppress(Exception):
                    self.broker.ib.cancelMktData(line.contract)  # type: ignore[union-attr]
            line.ticker = None
        self._request(line)

    def rerequest_all(self) -> int:
        """Re-request every line of the window (after 1101 or a farm blip); returns how many."""
        lines = self.market_lines()
        for line in lines:
            self.rerequest(line)
        return len(lines)

    def _cancel(self, con_id: int) -> None:
        line = self._lines.pop(con_id, None)
        if line is None:
            return
        self.budget.release(CHAIN_OWNER, con_id)
        if line.ticker is not None:
            self._by_ticker.pop(id(line.ticker), None)
            if self.broker is not None and self._connected() and line.contract is not None:
                with contextlib.suppress(Exception):
                    self.broker.ib.cancelMktData(line.contract)
        self.store.remove(con_id)

    def _release_lines(self) -> None:
        for con_id in list(self._lines):
            self._cancel(con_id)
        self.budget.release_all(CHAIN_OWNER)

    def _reclaim(self, wanted: int) -> int:
        """The budget's reclaimer: drop far strikes until ``wanted`` lines are free."""
        freed = 0
        centre = self.anchor if self.anchor is not None else 0.0
        rows = sorted(self.rows, key=lambda r: (abs(r.strike - centre), r.strike))
        while rows and freed < wanted:
            row = rows.pop()
            for ins in (row.call, row.put):
                if ins is not None and ins.con_id in self._lines:
                    self._cancel(ins.con_id)
                    freed += 1
        if freed:
            rows.sort(key=lambda r: r.strike)
            self.trimmed += len(self.rows) - len(rows)
            self.rows = rows
            self._layout_flag = True
            self.layout_seq += 1
            symbol = self.underlying.symbol if self.underlying else ""
            self._set_message(
                f"{symbol} chain: narrowed to {len(rows)} strikes to free market data lines for the watchlist "
                f"({self.budget.describe()})",
                "warning",
            )
        return freed

    # ------------------------------------------------------------------ connection and ticks

    def _connected(self) -> bool:
        broker = self.broker
        return broker is not None and broker.state is ConnectionState.CONNECTED and broker.ib.isConnected()

    def _on_pending_tickers(self, tickers: set[Ticker]) -> None:
        """Hot path: translate a batch of option ticker updates into the chain store. No I/O."""
        by_ticker = self._by_ticker
        if not by_ticker:
            return
        store = self.store
        sinks = self.broker.sinks if (self.broker is not None and self.record) else ()
        now = self.clock.base.now()
        mono = time.monotonic()
        for ticker in tickers:
            line = by_ticker.get(id(ticker))
            if line is None:
                continue
            line.last_tick = mono
            ins = line.instrument
            oi = ticker.callOpenInterest if ins.right == "C" else ticker.putOpenInterest
            store.update(
                ins.con_id,
                time=now,
                bid=ib_number(ticker.bid),
                ask=ib_number(ticker.ask),
                last=ib_number(ticker.last),
                bid_size=ib_number(ticker.bidSize),
                ask_size=ib_number(ticker.askSize),
                last_size=ib_number(ticker.lastSize),
                volume=ib_number(ticker.volume),
                open_interest=ib_number(oi) if oi == oi else None,
                model=greeks_from_computation(ticker.modelGreeks),
                ticks=max(1, len(ticker.ticks)),
            )
            if sinks and ticker.ticks:
                self._record(line, ticker, sinks, now)

    def _record(self, line: Line, ticker: Ticker, sinks: Sequence[Callable[[TickRecord], None]], now: datetime) -> None:
        ins = line.instrument
        for rec in tick_records(line, ticker.ticks, ins.local_symbol or ins.key, now):
            for sink in sinks:
                sink(rec)

    # ------------------------------------------------------------------ helpers

    def _set_message(self, text: str, level: str = "info") -> None:
        if text != self.message or level != self.message_level:
            self.message = text
            self.message_level = level
            self.message_seq += 1
