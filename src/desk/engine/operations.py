"""The operations of the engine API, run on the engine's own objects.

One definition of what ``desk order preview / place / list / cancel`` and the engine API's
:class:`~desk.engine.api.Preview`, :class:`~desk.engine.api.Place`,
:class:`~desk.engine.api.ListOrders`, :class:`~desk.engine.api.Cancel` and
:class:`~desk.engine.api.KillSwitch` do: qualify the contracts of the
:class:`~desk.engine.api.OrderTerms` through the broker, wait for their quotes, then call
the order service (gate, pre-trade checks, IB's what-if, audit trail) exactly as the
ticket does, and answer with the API's reply structs. ``runtime`` is the engine's
composition root (:class:`desk.engine.runtime.Runtime`): ``broker``, ``orders``, ``account``,
``quote_for``.

The terminal view's requests (:class:`~desk.engine.api.Modify`,
:class:`~desk.engine.api.CancelAll`, :class:`~desk.engine.api.AddSymbol`,
:class:`~desk.engine.api.RemoveSymbol`) and the state it is sent (:func:`trading_status`,
:func:`positions`) are defined here too, once, for the socket server and the in-process
view alike.

Errors are :class:`OperationError` with the API's ``code`` (``bad_input``, ``refused``,
``failed``) and a one-line message.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from enum import Enum
from typing import TypeVar

from desk.domain import Instrument
from desk.domain.intent import Action, OrderType, TimeInForce
from desk.domain.orders import OrderNotSent
from desk.engine import api
from desk.risk import ComboLeg, OrderIntent, RiskInputError

__all__ = [
    "OperationError",
    "ready",
    "intent_for",
    "preview",
    "place",
    "list_orders",
    "cancel",
    "kill_switch",
    "modify",
    "cancel_all",
    "add_symbol",
    "remove_symbol",
    "trading_status",
    "positions",
    "chain_select",
    "chain_expiry",
    "chain_window",
    "preview_intent",
    "what_if_intent",
    "place_intent",
    "place_report",
]

_NAN = math.nan


class OperationError(Exception):
    """An operation that could not be done: ``code`` as :class:`desk.engine.api.Failed`'s."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def ready(runtime: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until the broker is connected and the order service
    has reconciled with the gateway and the audit log."""
    deadline = time.monotonic() + timeout
    while True:
        if runtime.orders.ready and runtime.broker.state.value == "connected":
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def _ensure_ready(runtime: Any, wait: float) -> None:
    if not await ready(runtime, wait + runtime.settings.ib_connect_timeout * 2):
        raise OperationError(
            "failed",
            f"could not connect and reconcile with the gateway at {runtime.endpoint} "
            f"({runtime.broker.state.value}; {runtime.orders.audit_status().line})",
        )


_E = TypeVar("_E", bound=Enum)


def _member(kind: type[_E], value: str, what: str) -> _E:
    """``value`` as a member of ``kind``; :class:`OperationError` ``bad_input`` naming the
    allowed values otherwise (order terms from a script need not come from parse_terms)."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise OperationError("bad_input", f"{what} must be one of {allowed}, got {value!r}") from None


async def intent_for(runtime: Any, terms: api.OrderTerms, wait: float) -> OrderIntent:
    """The :class:`~desk.risk.OrderIntent` of ``terms``: contracts qualified (and watched)
    through the broker. :class:`OperationError` ``bad_input`` with the gateway's or the
    risk model's one-line reason when a contract is unknown or the terms are invalid."""
    broker = runtime.broker

    async def qualify(c: api.ContractTerms) -> Instrument:
        ins: Instrument = await broker.watch_contract(
            c.symbol, expiry=c.expiry, strike=c.strike, right=c.right, timeout=max(2.0, wait)
        )
        return ins

    action = _member(Action, terms.action, "action")
    order_type = _member(OrderType, terms.order_type, "order type")
    tif = _member(TimeInForce, terms.tif, "TIF")

    try:
        if terms.legs:
            legs = []
            for leg in terms.legs:
                ins = await qualify(leg.contract)
                legs.append(ComboLeg(ins, _member(Action, leg.action, "leg action"), leg.ratio))
            await qualify(api.ContractTerms(terms.contract.symbol))  # the underlying: payoff centre, margin
            instrument = Instrument(terms.contract.symbol, "BAG", multiplier=100, min_tick=0.01)
            return OrderIntent(
                instrument,
                action,
                terms.quantity,
                order_type,
                limit_price=terms.limit_price,
                stop_price=terms.stop_price,
                tif=tif,
                outside_rth=terms.outside_rth,
                legs=tuple(legs),
            )
        instrument = await qualify(terms.contract)
        if terms.contract.is_option:
            await qualify(api.ContractTerms(terms.contract.symbol))
        return OrderIntent(
            instrument,
            action,
            terms.quantity,
            order_type,
            limit_price=terms.limit_price,
            stop_price=terms.stop_price,
            tif=tif,
            outside_rth=terms.outside_rth,
        )
    except RiskInputError as exc:
        raise OperationError("bad_input", str(exc)) from None
    except OperationError:
        raise
    except Exception as exc:  # the gateway's one-line reasons (unknown contract...)
        raise OperationError("bad_input", str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


async def _quotes(runtime: Any, intent: OrderIntent, wait: float) -> None:
    """Wait (up to ``wait`` s) for a two-sided quote of every instrument the order trades,
    and for the account's figures."""
    instruments = [leg.instrument for leg in intent.legs] or [intent.instrument]
    deadline = time.monotonic() + wait

    def have() -> bool:
        for ins in instruments:
            q = runtime.quote_for(ins)
            if q is None or not (q.bid > 0 and q.ask > 0):
                return False
        return math.isfinite(runtime.account.figures().available_funds)

    while time.monotonic() < deadline and not have():
        await asyncio.sleep(0.05)


def _whatif(m: Any) -> api.WhatIf | None:
    if m is None:
        return None
    return api.WhatIf(
        m.init_margin_before,
        m.init_margin_change,
        m.init_margin_after,
        m.maint_margin_before,
        m.maint_margin_change,
        m.maint_margin_after,
        m.equity_with_loan_before,
        m.equity_with_loan_change,
        m.equity_with_loan_after,
        m.commission,
        m.min_commission,
        m.max_commission,
    )


async def preview(runtime: Any, request: api.Preview) -> api.PreviewReport:
    """Every check of ``request.terms`` without sending it (see the module doc)."""
    await _ensure_ready(runtime, request.wait)
    intent = await intent_for(runtime, request.terms, request.wait)
    await _quotes(runtime, intent, request.wait)
    orders = runtime.orders
    margin = await orders.what_if(intent)
    report = orders.preview(intent, margin)
    decision = orders.router.gate_check(intent, orders.context(intent, margin), request.confirmation)
    return api.PreviewReport(
        id=request.id,
        order=intent.describe,
        is_combo=intent.is_combo,
        checks=[api.CheckRow(c.name, c.passed, c.value, c.limit, c.message) for c in report.checks],
        gate_allowed=decision.allowed,
        gate_reason=decision.reason,
        price=report.price,
        bid=report.bid,
        ask=report.ask,
        legs=[
            api.LegQuote(leg.action, leg.ratio, leg.instrument.key, leg.bid, leg.ask)
            for leg in (report.legs if intent.is_combo else ())
        ],
        notional=report.notional,
        commission=report.commission,
        whatif=_whatif(margin),
        funds_before=report.funds_before,
        cost=report.cost,
        cost_basis=report.cost_basis,
        funds_after=report.funds_after,
        blocked=report.blocked or not decision.allowed,
    )


async def place(runtime: Any, request: api.Place) -> api.PlaceReport:
    """Send ``request.terms`` through the gate and every check; wait up to
    ``request.wait`` s for the gateway's status (past PreSubmitted)."""
    await _ensure_ready(runtime, request.wait)
    intent = await intent_for(runtime, request.terms, request.wait)
    await _quotes(runtime, intent, request.wait)
    orders = runtime.orders
    margin = await orders.what_if(intent)
    result = await orders.place(intent, request.confirmation, margin)
    status = error = ""
    if result.sent:
        deadline = time.monotonic() + request.wait
        while time.monotonic() < deadline:
            row = orders.rows.get(result.client_order_id)
            if row is not None and row.status not in ("PendingSubmit", "ApiPending", ""):
                status, error = row.status, row.error
                if status != "PreSubmitted":
                    break
            await asyncio.sleep(0.05)
        await orders.trail.drain()
    return api.PlaceReport(
        id=request.id,
        status=result.status,
        sent=result.sent,
        order_ref=result.client_order_id,
        gateway_status=status,
        error=error,
        reasons=list(result.reasons),
        order=intent.describe,
    )


def _row(r: Any) -> api.OrderRow:
    return api.OrderRow(
        order_ref=r.order_ref,
        order_id=r.order_id,
        perm_id=r.perm_id,
        order=r.describe,
        status=r.status,
        quantity=r.quantity,
        filled=r.filled,
        remaining=r.remaining,
        avg_price=r.avg_price,
        error=r.error,
        working=r.working,
        legs=[f"{leg.ratio}x {leg.action} {leg.instrument.key}" for leg in r.legs],
    )


async def list_orders(runtime: Any, request: api.ListOrders, wait: float = 5.0) -> api.OrderList:
    """The day's orders, by orderId (then orderRef)."""
    await _ensure_ready(runtime, wait)
    rows = sorted(runtime.orders.rows.values(), key=lambda r: (r.order_id or 10**12, r.order_ref))
    return api.OrderList(id=request.id, rows=[_row(r) for r in rows])


async def cancel(runtime: Any, request: api.Cancel) -> api.CancelReport:
    """Cancel a working order; wait up to ``request.wait`` s for it to stop working.
    :class:`OperationError` ``refused`` when it cannot be cancelled (unknown, done)."""
    await _ensure_ready(runtime, request.wait)
    orders = runtime.orders
    try:
        await orders.cancel(request.order_ref)
    except OrderNotSent as exc:
        raise OperationError("refused", str(exc)) from None
    deadline = time.monotonic() + request.wait
    while time.monotonic() < deadline:
        row = orders.rows.get(request.order_ref)
        if row is not None and not row.working:
            break
        await asyncio.sleep(0.05)
    await orders.trail.drain()
    row = orders.rows.get(request.order_ref)
    return api.CancelReport(
        id=request.id,
        order_ref=request.order_ref,
        status=row.status if row is not None else "unknown",
        done=row is not None and not row.working,
    )


async def kill_switch(runtime: Any, request: api.KillSwitch, who: str = "engine API") -> api.KillSwitchReport:
    """Read or change the kill switch through the order service (which cancels working
    orders on ``halt``, as the desk's key does)."""
    orders = runtime.orders
    reason = request.reason or who
    if request.action == "halt":
        state = await orders.halt(reason)
    elif request.action == "reduce_only":
        state = await orders.reduce_only(reason)
    elif request.action == "reset":
        state = await orders.reset(reason)
    elif request.action == "state":
        state = orders.gate.kill_switch.state()
    else:  # the wire decoder checks this; an in-process caller may not have
        raise OperationError("bad_input", f"kill switch action must be state, halt, reduce_only or reset, got {request.action!r}")
    return api.KillSwitchReport(
        id=request.id,
        state=str(state.state.value),
        reason=state.reason,
        since=state.since.timestamp() if state.since is not None else _NAN,
        persisted=state.persisted,
        error=state.error,
    )


async def modify(runtime: Any, request: api.Modify) -> api.PlaceReport:
    """Change a working order through the gate and every check (the blotter's keys).
    :class:`OperationError` ``refused`` in live mode (a modification cannot be confirmed by
    typing the symbol: cancel and enter a new order) or when the order cannot be changed."""
    orders = runtime.orders
    if orders.gate.needs_confirmation:
        raise OperationError("refused", "live mode: cancel and enter a new order to confirm it")
    change = {
        k: v
        for k, v in (("limit_price", request.limit_price), ("stop_price", request.stop_price), ("quantity", request.quantity))
        if v is not None
    }
    if not change:
        raise OperationError("bad_input", "nothing to change: give a limit price, a stop price or a quantity")
    try:
        result = await orders.modify(request.order_ref, **change)
    except (OrderNotSent, KeyError, ValueError, RiskInputError) as exc:
        raise OperationError("refused", str(exc).strip("'") or type(exc).__name__) from None
    row = orders.rows.get(request.order_ref)
    return api.PlaceReport(
        id=request.id,
        status=result.status,
        sent=result.sent,
        order_ref=request.order_ref,
        gateway_status=row.status if row is not None else "",
        error=row.error if row else "",
        reasons=list(result.reasons),
        order=row.describe if row is not None else "",
    )


async def cancel_all(runtime: Any, request: api.CancelAll) -> api.CancelAllReport:
    """Cancel every working order of this desk at the gateway."""
    return api.CancelAllReport(id=request.id, count=await runtime.orders.cancel_all())


async def add_symbol(runtime: Any, request: api.AddSymbol) -> api.SymbolReport:
    """Qualify and add a stock / ETF to the watchlist; ``refused`` with the gateway's one
    line when it is unknown."""
    symbol = request.symbol.strip().upper()
    if not symbol:
        raise OperationError("bad_input", "no symbol given")
    before = {i.symbol for i in runtime.broker.watchlist}
    try:
        instrument = await runtime.broker.add_symbol(symbol)
    except Exception as exc:  # BrokerError's text is the user's line; others: one line of it
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OperationError("refused", text) from None
    return api.SymbolReport(id=request.id, symbol=symbol, done=instrument.symbol not in before, instrument=instrument)


async def remove_symbol(runtime: Any, request: api.RemoveSymbol) -> api.SymbolReport:
    """Remove a symbol from the watchlist (``done`` False when it was not there)."""
    symbol = request.symbol.strip().upper()
    removed = await runtime.broker.remove_symbol(symbol)
    return api.SymbolReport(id=request.id, symbol=symbol, done=bool(removed))


def trading_status(runtime: Any) -> api.TradingStatus:
    """What orders may do now (the status bar's badge and banner, the ticket's gate row)."""
    orders = runtime.orders
    ks = orders.gate.kill_switch.state()
    audit = orders.audit_status()
    line, ok = orders.gate_line()
    return api.TradingStatus(
        state=str(ks.state.value),
        reason=ks.reason,
        orders_off="" if audit.healthy else audit.short,
        live=bool(orders.gate.needs_confirmation),
        gate_line=line,
        gate_ok=bool(ok),
    )


def positions(runtime: Any) -> api.Positions:
    """The positions pane's rows, figures, Greeks and groups by order (the account's, with
    the chain's IVs for the contracts it prices)."""
    account, orders = runtime.account, runtime.orders
    rows = account.rows()
    fills = orders.ledger.fills()  # groups by order: the fills' orderRef
    labels = {ref: row.describe for ref, row in orders.rows.items()}
    return api.Positions(
        rows=list(rows),
        figures=account.figures(),
        greeks=account.greeks(rows),
        groups=list(account.groups(fills, rows)),
        labels=labels,
    )


def positions_seq(runtime: Any) -> tuple[int, int, int]:
    """Changes when :func:`positions` may have changed (account, orders, chain IVs)."""
    chains = runtime.chains
    return (runtime.account.seq, runtime.orders.seq, chains.compute_count if chains is not None else 0)


def _chain_report(runtime: Any, request_id: int) -> api.ChainReport:
    chains = runtime.chains
    und = chains.underlying
    return api.ChainReport(
        id=request_id, symbol=und.symbol if und is not None else "", expiry=chains.expiry or "", spec=str(chains.spec)
    )


async def _chain_change(runtime: Any, request_id: int, change: Any) -> api.ChainReport:
    from desk.domain.chain import ChainError

    try:
        await change
    except ChainError as exc:
        raise OperationError("refused", str(exc)) from None
    return _chain_report(runtime, request_id)


async def chain_select(runtime: Any, request: api.ChainSelect) -> api.ChainReport:
    """Show the chain of an underlying (the engine's chain, shared by its views)."""
    return await _chain_change(runtime, request.id, runtime.chains.set_underlying(request.underlying))


async def chain_expiry(runtime: Any, request: api.ChainExpiry) -> api.ChainReport:
    """Show another expiry of the chain."""
    return await _chain_change(runtime, request.id, runtime.chains.set_expiry(request.expiry))


async def chain_window(runtime: Any, request: api.ChainWindow) -> api.ChainReport:
    """One step wider or narrower strike window."""
    if request.wider:
        runtime.chains.widen()
    else:
        runtime.chains.narrow()
    return _chain_report(runtime, request.id)


# --- the order ticket (an intent built in the view, checked and sent here) --------------------


async def preview_intent(runtime: Any, request: api.PreviewIntent) -> api.IntentPreview:
    """The ticket's risk preview (:meth:`desk.orders.OrderService.preview`)."""
    try:
        report = runtime.orders.preview(request.intent, request.margin)
    except RiskInputError as exc:
        return api.IntentPreview(id=request.id, error=str(exc))
    return api.IntentPreview(id=request.id, report=report)


async def what_if_intent(runtime: Any, request: api.WhatIfIntent) -> api.WhatIfReport:
    """IB's what-if margin of the ticket's order."""
    return api.WhatIfReport(id=request.id, margin=await runtime.orders.what_if(request.intent))


def place_report(request_id: int, result: Any, intent: OrderIntent) -> api.PlaceReport:
    """The :class:`~desk.engine.api.PlaceReport` of an order service result
    (:class:`~desk.orders.SubmitResult`)."""
    return api.PlaceReport(
        id=request_id,
        status=result.status,
        sent=result.sent,
        order_ref=result.client_order_id,
        gateway_status="",
        error="",
        reasons=list(result.reasons),
        order=intent.describe,
    )


async def place_intent(runtime: Any, request: api.PlaceIntent) -> api.PlaceReport:
    """Send the ticket's order through the gate and every check (the router writes the
    audit rows, a refusal's too)."""
    result = await runtime.orders.place(request.intent, request.confirmation, request.margin)
    return place_report(request.id, result, request.intent)
