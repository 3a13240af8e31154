"""The engine API in-process, on engine objects this process runs.

* :class:`LocalEngine`: same methods and replies as :class:`desk.engine.client.EngineClient`;
  ``desk order`` uses it when no engine is running, the tests use both.
* :class:`LocalDesk`: the terminal view's :class:`~desk.engine.backend.DeskBackend` on the
  engine's own objects (the desk in one process, and the UI tests on the real engine
  over the embedded simulator); the same operations as the socket server's
  (:mod:`desk.engine.operations`), so the in-process desk and an attached view do the same.
* :class:`LocalTicket`: what the order ticket needs (quotes, the chain's delta, the order
  service's preview, what-if and place).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from desk.domain import ConnectionState, Instrument, RecorderStats
from desk.domain.intent import MarginImpact, OrderIntent
from desk.domain.orders import OrderRow
from desk.engine import api, operations
from desk.engine.analytics import ChainTap
from desk.engine.client import EngineRequestError
from desk.engine.backend import DeskBackend, Listener, TicketBackend
from desk.engine.view import RemoteDesk, RemoteTicket
from desk.risk.engine import RiskReport

__all__ = ["LocalDesk", "LocalEngine", "LocalTicket"]

_R = TypeVar("_R")


class LocalEngine:
    """The engine API in-process, on engine objects this process runs itself
    (:class:`desk.engine.runtime.Runtime`): same methods and replies as :class:`EngineClient`."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._ids = itertools.count(1)

    async def _call(self, fn: Callable[[Any, Any], Awaitable[_R]], msg: Any) -> _R:
        try:
            return await fn(self.runtime, msg)
        except operations.OperationError as exc:
            raise EngineRequestError(exc.code, str(exc)) from None

    async def preview(self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0) -> api.PreviewReport:
        return await self._call(operations.preview, api.Preview(next(self._ids), terms, confirmation, wait))

    async def place(self, terms: api.OrderTerms, *, confirmation: str | None = None, wait: float = 5.0) -> api.PlaceReport:
        return await self._call(operations.place, api.Place(next(self._ids), terms, confirmation, wait))

    async def list_orders(self) -> api.OrderList:
        return await self._call(operations.list_orders, api.ListOrders(next(self._ids)))

    async def cancel(self, order_ref: str, *, wait: float = 5.0) -> api.CancelReport:
        return await self._call(operations.cancel, api.Cancel(next(self._ids), order_ref, wait))

    async def kill_switch(self, action: api.KillAction = "state", reason: str = "") -> api.KillSwitchReport:
        return await self._call(operations.kill_switch, api.KillSwitch(next(self._ids), action, reason))


class LocalDesk:
    """The terminal view's backend on a :class:`desk.engine.runtime.Runtime` in this process
    (see :class:`desk.engine.backend.DeskBackend` for what each member means)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.clock = runtime.clock
        self.quotes = runtime.quotes
        self._ticket: LocalTicket | None = None
        #: this view's look at the engine's chain (the engine's analytics timer feeds it)
        self._chain: ChainTap = runtime.analytics.tap()

    @property
    def watchlist(self) -> list[Instrument]:
        return list(self.runtime.broker.watchlist)

    @property
    def state(self) -> ConnectionState:
        state: ConnectionState = self.runtime.broker.state
        return state

    @property
    def endpoint(self) -> str:
        return str(self.runtime.endpoint)

    @property
    def mode(self) -> str:
        return str(self.runtime.settings.mode.value)

    @property
    def stale_lines(self) -> set[int]:
        return set(self.runtime.broker.stale_lines)

    def restart_status(self) -> str:
        return str(self.runtime.broker.restart_status())

    @property
    def ticks_seen(self) -> int:
        return int(self.runtime.quotes.ticks_seen)

    def recorder_stats(self) -> RecorderStats | None:
        recorder = self.runtime.recorder
        return recorder.stats if recorder is not None else None

    def add_listener(self, fn: Listener) -> None:
        self.runtime.broker.add_listener(fn)

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

    async def add_symbol(self, symbol: str) -> Instrument:
        instrument: Instrument = await self.runtime.broker.add_symbol(symbol)
        return instrument

    async def remove_symbol(self, symbol: str) -> bool:
        return bool(await self.runtime.broker.remove_symbol(symbol))

    @property
    def orders_seq(self) -> int:
        return int(self.runtime.orders.seq)

    @property
    def order_rows(self) -> Mapping[str, OrderRow]:
        rows: Mapping[str, OrderRow] = self.runtime.orders.rows
        return rows

    def trading(self) -> api.TradingStatus:
        return operations.trading_status(self.runtime)

    async def cancel(self, order_ref: str) -> None:
        await self.runtime.orders.cancel(order_ref)

    async def cancel_all(self) -> int:
        return int(await self.runtime.orders.cancel_all())

    async def modify(
        self, order_ref: str, *, limit_price: float | None = None, stop_price: float | None = None, quantity: int | None = None
    ) -> api.PlaceReport:
        request = api.Modify(0, order_ref, limit_price, stop_price, quantity)
        try:
            return await operations.modify(self.runtime, request)
        except operations.OperationError as exc:
            raise RuntimeError(str(exc)) from None

    async def kill_switch(self, action: api.KillAction, reason: str) -> api.KillSwitchReport:
        try:
            return await operations.kill_switch(self.runtime, api.KillSwitch(0, action, reason))
        except OSError as exc:  # reset: the state file could not be removed, the state stays
            raise RuntimeError(str(exc)) from None

    @property
    def positions_seq(self) -> object:
        return operations.positions_seq(self.runtime)

    def positions(self) -> api.Positions:
        return operations.positions(self.runtime)

    @property
    def chains(self) -> ChainTap:
        return self._chain

    @property
    def opportunities(self) -> Any | None:
        """The engine's live scanner (:class:`desk.arbitrage.live.LiveArbitrage`; the
        engine's analytics timer polls it)."""
        return self.runtime.opportunities.live

    def ticket_backend(self) -> LocalTicket:
        if self._ticket is None:
            self._ticket = LocalTicket(self.runtime)
        return self._ticket


class LocalTicket:
    """What the order ticket needs from the engine (its order service, quotes and option
    chain), in-process."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.orders = runtime.orders

    @property
    def live(self) -> bool:
        return bool(self.orders.gate.needs_confirmation)

    def quote(self, instrument: Instrument) -> tuple[float, float, float]:
        """(bid, ask, last) in dollars per share, ``nan`` unknown."""
        q = self.runtime.quote_for(instrument)
        if q is None:
            return math.nan, math.nan, math.nan
        return q.bid, q.ask, q.last

    def delta(self, instrument: Instrument) -> float:
        """Delta per share of ``instrument`` (1 for a stock; the chain's for an option;
        ``nan`` unknown)."""
        if instrument.sec_type == "STK":
            return 1.0
        oq = self.runtime.chains.store.get(instrument.con_id)
        if oq is None:
            return math.nan
        greeks = oq.ours or oq.model
        return float(greeks.delta) if greeks is not None else math.nan

    def preview(self, intent: OrderIntent, margin: MarginImpact | None) -> RiskReport:
        """The order service's :class:`~desk.risk.RiskReport` of ``intent`` (at once:
        the engine is in this process)."""
        report: RiskReport = self.orders.preview(intent, margin)
        return report

    async def what_if(self, intent: OrderIntent) -> MarginImpact | None:
        """IB's what-if margin (``None`` if none came)."""
        margin: MarginImpact | None = await self.orders.what_if(intent)
        return margin

    async def submit(self, intent: OrderIntent, confirmation: str | None, margin: MarginImpact | None = None) -> api.PlaceReport:
        """Send through the order service (gate, checks, audit, gateway)."""
        result = await self.orders.place(intent, confirmation, margin)
        return operations.place_report(0, result, intent)

    def on_update(self, fn: Any) -> None:
        """Nothing to wait for: :meth:`preview` answers at once."""

    def gate_summary(self) -> tuple[str, bool]:
        """(one line, orders possible now)."""
        line, ok = self.orders.gate_line()
        return str(line), bool(ok)


if TYPE_CHECKING:  # mypy checks that both backends are what the view reads

    def _conforms(
        local: LocalDesk, remote: RemoteDesk, t1: LocalTicket, t2: RemoteTicket
    ) -> tuple[DeskBackend, DeskBackend, TicketBackend, TicketBackend]:
        return local, remote, t1, t2
