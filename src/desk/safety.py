"""Safety gates between the order ticket and the gateway, and the one path orders take.

Rules (design.md, "Safety"):

* ``sim``: orders go out (the embedded simulator; nothing real can happen);
* ``paper``: only with ``DESK_ORDERS_ENABLED=true``;
* ``live``: only with orders enabled **and** the override file present (checked at every
  order, so deleting it stops trading at once) **and** the symbol typed to confirm each
  order (the underlying symbol for options and combos; case and surrounding spaces are
  ignored);
* in every mode the **kill switch**, once engaged, blocks every new order until a
  human resets it. Its state is a file, so an engaged switch survives a restart; an
  unreadable state file counts as engaged.

:class:`OrderRouter` is the only way an order should leave the desk. Under one lock per
router (submissions are serialised, so two quick clicks cannot both pass the duplicate
check), :meth:`OrderRouter.submit`:

1. asks the :class:`OrderGate` (mode, orders enabled, override file, confirmation, kill
   switch) — refused: an audit ``blocked`` row, nothing sent;
2. runs :func:`desk.risk.evaluate` with the router's own record of recent orders added
   to the context (so duplicate and rate checks cannot be bypassed by a caller that
   forgot them) — any failed check: ``blocked`` row, nothing sent;
3. writes the ``intent`` row with a new client order id (``orderRef``) and returns from
   the audit write only once it is durable (write-ahead) — if the audit log is down the
   order is refused;
4. asks the gate again (the kill switch may have been engaged, the override file
   removed, while the row was written);
5. calls ``transmit(intent, client_order_id)`` (the broker's placeOrder, with
   ``orderRef = client_order_id``), then writes ``sent``. ``transmit`` raises
   :class:`NotTransmitted` when the order provably did not leave (not connected): a
   ``reject`` row; any other exception may have left: ``send_error`` (state ``unknown``,
   never resent automatically).

Audit writes run in a worker thread (:func:`asyncio.to_thread`), never blocking the
event loop. This module does file I/O (override and kill switch files) and imports
desk.risk, desk.store and desk.settings; it imports no Textual and no ib_async.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from desk.domain.clock import Clock
from desk.domain.orders import BrokerOrder, Fill
from desk.risk import MarketContext, OrderIntent, RecentOrder, RiskLimits, RiskReport, evaluate
from desk.settings import Mode, Settings
from desk.store.audit import (
    AuditError,
    AuditEvent,
    AuditLog,
    ReconcilePlan,
    new_client_order_id,
    new_correlation_id,
    reconcile,
)

__all__ = [
    "GateDecision",
    "GateStatus",
    "KillSwitch",
    "KillSwitchState",
    "NotTransmitted",
    "OrderGate",
    "OrderRouter",
    "SubmitResult",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Kill switch
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """``engaged``: new orders are blocked. ``since``: UTC time it was engaged (``None``
    when reset or unknown). ``reason``: why, as given when engaging. ``persisted``: the
    state file was written (False: engaged in memory only, the file could not be
    written — ``error`` says why)."""

    engaged: bool
    since: datetime | None = None
    reason: str = ""
    persisted: bool = True
    error: str = ""


class KillSwitch:
    """Kill switch whose state lives in the file ``path`` (present = engaged).

    :meth:`engage` never raises: it blocks orders in memory first, then writes the file
    atomically (temporary file, fsync, rename, fsync of the folder). :attr:`engaged` is
    true if either the memory flag is set or the file exists — so a switch engaged by
    another process (or before a restart) is honoured. :meth:`reset` removes the file.
    Thread-safe.
    """

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock or Clock()
        self._lock = threading.Lock()
        self._memory: KillSwitchState | None = None

    @property
    def engaged(self) -> bool:
        return self._memory is not None or self.path.exists()

    def state(self) -> KillSwitchState:
        """The current state (reads the file; an unreadable file means engaged)."""
        mem = self._memory
        if mem is not None:
            return mem
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KillSwitchState(False)
        except OSError as exc:
            return KillSwitchState(True, None, f"state file {self.path} unreadable: {exc.strerror}")
        try:
            data = json.loads(raw)
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            return KillSwitchState(True, since, str(data.get("reason", "")))
        except (ValueError, KeyError, TypeError):
            return KillSwitchState(True, None, f"state file {self.path} is not desk's JSON (still engaged)")

    def engage(self, reason: str = "") -> KillSwitchState:
        """Block all new orders now and persist it. Returns the new state."""
        with self._lock:
            now = self.clock.now()
            state = KillSwitchState(True, now, reason)
            self._memory = state  # blocks before anything can fail
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                data = json.dumps({"engaged": True, "since": now.isoformat(), "reason": reason})
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
                with contextlib.suppress(OSError):
                    fd = os.open(self.path.parent, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            except OSError as exc:
                state = dataclasses.replace(state, persisted=False, error=f"cannot write {self.path}: {exc.strerror or exc}")
                self._memory = state
                log.error("kill switch engaged in memory only: %s", state.error)
            return state

    def reset(self) -> KillSwitchState:
        """Allow orders again (removes the file). Raises ``OSError`` if the file exists and
        cannot be removed: the switch then stays engaged."""
        with self._lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self._memory = None
            return KillSwitchState(False)


# --------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateDecision:
    """``allowed``: the order may proceed to the risk checks. ``reason``: one line (why
    not, or which gates passed). ``mode``: sim, paper or live."""

    allowed: bool
    reason: str
    mode: str


@dataclass(frozen=True, slots=True)
class GateStatus:
    """What the mode badge shows. ``mode``; ``orders_enabled`` (the setting);
    ``override_present`` (live override file exists); ``kill_switch``;
    ``can_send``: an order could pass the gate now (given, in live mode, the typed
    confirmation); ``needs_confirmation``: live mode; ``summary``: one line."""

    mode: str
    orders_enabled: bool
    override_present: bool
    kill_switch: KillSwitchState
    can_send: bool
    needs_confirmation: bool
    summary: str


def confirmation_symbol(intent: OrderIntent) -> str:
    """The text a live order's confirmation must equal: the (underlying) symbol."""
    return intent.instrument.symbol.strip().upper()


class OrderGate:
    """The mode / enablement / override / confirmation / kill-switch gate.

    ``settings``: mode and ``orders_enabled`` are read from it. ``override_path``: the live
    override file (default ``settings.effective_live_override_file``). ``kill_switch``:
    default a :class:`KillSwitch` on ``settings.effective_kill_switch_file``.
    """

    def __init__(
        self,
        settings: Settings,
        override_path: Path | str | None = None,
        *,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.settings = settings
        self.mode = Mode(settings.mode).value
        self.orders_enabled = bool(settings.orders_enabled)
        self.override_path = Path(override_path).expanduser() if override_path else settings.effective_live_override_file
        self.kill_switch = kill_switch or KillSwitch(settings.effective_kill_switch_file)

    @property
    def needs_confirmation(self) -> bool:
        """True in live mode: every order needs its symbol typed."""
        return self.mode == Mode.LIVE.value

    def _mode_gate(self) -> tuple[bool, str]:
        if self.mode == Mode.SIM.value:
            return True, "sim mode"
        if not self.orders_enabled:
            return False, f"{self.mode} mode: orders are disabled (set DESK_ORDERS_ENABLED=true)"
        if self.mode == Mode.PAPER.value:
            return True, "paper mode, orders enabled"
        if not self.override_path.is_file():
            return False, f"live mode: override file {self.override_path} is missing"
        return True, "live mode, orders enabled, override file present"

    def check(self, intent: OrderIntent, confirmation_text: str | None = None) -> GateDecision:
        """May ``intent`` go on to the risk checks? Checked in this order: kill switch,
        mode / orders enabled / override file, then (live) the typed confirmation, which
        must equal :func:`confirmation_symbol` ignoring case and surrounding spaces."""
        ks = self.kill_switch.state()
        if ks.engaged:
            why = f" ({ks.reason})" if ks.reason else ""
            return GateDecision(False, f"kill switch engaged{why}: reset it to send orders", self.mode)
        ok, reason = self._mode_gate()
        if not ok:
            return GateDecision(False, reason, self.mode)
        if self.needs_confirmation:
            want = confirmation_symbol(intent)
            got = (confirmation_text or "").strip().upper()
            if not got:
                return GateDecision(False, f"live mode: type {want} to confirm this order", self.mode)
            if got != want:
                return GateDecision(False, f"live mode: confirmation {got!r} does not match {want}", self.mode)
            reason += ", confirmed"
        return GateDecision(True, reason, self.mode)

    def status(self) -> GateStatus:
        """A snapshot for the mode badge and the kill switch indicator."""
        ks = self.kill_switch.state()
        ok, reason = self._mode_gate()
        override = self.override_path.is_file()
        can = ok and not ks.engaged
        if ks.engaged:
            summary = f"{self.mode.upper()}: KILL SWITCH ENGAGED"
        elif can:
            summary = f"{self.mode.upper()}: orders on" + (" (type symbol to confirm)" if self.needs_confirmation else "")
        else:
            summary = f"{self.mode.upper()}: orders off - {reason}"
        return GateStatus(self.mode, self.orders_enabled, override, ks, can, self.needs_confirmation, summary)


# --------------------------------------------------------------------------------------
# Router
# --------------------------------------------------------------------------------------


class NotTransmitted(Exception):
    """Raised by a ``transmit`` callable when the order provably did not leave the desk
    (not connected, refused before writing to the socket)."""


#: ``transmit(intent, client_order_id)``: send the order with ``orderRef =
#: client_order_id``; returns details for the audit row (e.g. ``{"order_id": 12}``).
Transmit = Callable[[OrderIntent, str], Awaitable[Mapping[str, Any] | None]]
#: ``cancel_all()``: reqGlobalCancel.
CancelAll = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :meth:`OrderRouter.submit`.

    ``status``: ``sent`` (transmitted and recorded), ``blocked`` (a gate or a risk check
    refused it; nothing sent), ``rejected`` (refused after the intent row: audit log
    down, gate closed meanwhile, or transmit raised :class:`NotTransmitted`; nothing
    sent), ``unknown`` (transmit failed in a way that may have sent it). ``reasons``: one
    line each. ``client_order_id`` is empty when no intent row was written.
    """

    status: str
    correlation_id: str
    client_order_id: str = ""
    reasons: tuple[str, ...] = ()
    gate: GateDecision | None = None
    report: RiskReport | None = None
    transmit_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sent(self) -> bool:
        return self.status == "sent"


class OrderRouter:
    """The single path from an order ticket to the gateway (see the module doc).

    ``gate``: the :class:`OrderGate`. ``audit``: the :class:`AuditLog`. ``limits``: the
    :class:`RiskLimits`. ``transmit``: see :data:`Transmit`. ``cancel_all``: reqGlobalCancel
    for the kill switch (optional). ``account``: written on audit rows. ``clock``: time of
    recent orders and audit rows. ``recent_window``: seconds of sent orders kept for the
    duplicate and rate checks (at least 60 and the duplicate window).
    """

    def __init__(
        self,
        gate: OrderGate,
        audit: AuditLog,
        limits: RiskLimits,
        transmit: Transmit,
        *,
        cancel_all: CancelAll | None = None,
        account: str = "",
        clock: Clock | None = None,
    ) -> None:
        self.gate = gate
        self.audit = audit
        self.limits = limits
        self.transmit = transmit
        self.cancel_all = cancel_all
        self.account = account
        self.clock = clock or Clock()
        self.recent_window = max(60.0, limits.duplicate_window_s)
        self._recent: deque[RecentOrder] = deque()
        self._lock = asyncio.Lock()
        #: client order ids between their intent row and their sent/reject row: never
        #: touched by reconciliation
        self.in_flight: set[str] = set()

    @property
    def mode(self) -> str:
        return self.gate.mode

    # --- helpers -----------------------------------------------------------------------

    async def _write(self, event: str, coid: str, corr: str, payload: Mapping[str, Any]) -> None:
        ev = AuditEvent(event, coid, corr, payload, mode=self.mode, account=self.account, time=self.clock.now())
        await asyncio.to_thread(self.audit.write, ev)

    async def _write_quietly(self, event: str, coid: str, corr: str, payload: Mapping[str, Any]) -> str:
        """Write a row that must not change the outcome (the order's fate is decided);
        returns the error line if the audit log refused it."""
        try:
            await self._write(event, coid, corr, payload)
        except AuditError as exc:
            log.error("audit %s row for %s not written: %s", event, coid or corr, exc)
            return str(exc)
        return ""

    def recent_orders(self) -> tuple[RecentOrder, ...]:
        """Orders this router sent within the recent window (oldest first)."""
        cutoff = self.clock.now() - timedelta(seconds=self.recent_window)
        while self._recent and self._recent[0].time < cutoff:
            self._recent.popleft()
        return tuple(self._recent)

    def _with_recent(self, ctx: MarketContext) -> MarketContext:
        own = self.recent_orders()
        if not own:
            return ctx
        return dataclasses.replace(ctx, recent_orders=(*ctx.recent_orders, *own))

    # --- preview and submit ------------------------------------------------------------

    def preview(self, intent: OrderIntent, ctx: MarketContext) -> RiskReport:
        """The risk preview as :meth:`submit` would compute it (pure, no audit row)."""
        return evaluate(intent, self._with_recent(ctx), self.limits)

    async def record_preview(self, report: RiskReport, correlation_id: str) -> None:
        """Write a ``preview`` row (what the trader saw) under ``correlation_id``."""
        await self._write(
            "preview", "", correlation_id, {"intent": report.intent.to_payload(), "risk": report.summary()}
        )

    async def submit(
        self,
        intent: OrderIntent,
        ctx: MarketContext,
        confirmation: str | None = None,
        *,
        correlation_id: str | None = None,
    ) -> SubmitResult:
        """Send ``intent`` through every gate (see the module doc). Never raises for a
        refusal: the :class:`SubmitResult` says what happened and why."""
        corr = correlation_id or new_correlation_id()
        async with self._lock:
            return await self._submit(intent, ctx, confirmation, corr)

    async def _submit(self, intent: OrderIntent, ctx: MarketContext, confirmation: str | None, corr: str) -> SubmitResult:
        payload = intent.to_payload()
        decision = self.gate.check(intent, confirmation)
        if not decision.allowed:
            await self._write_quietly("blocked", "", corr, {"stage": "gate", "reason": decision.reason, "intent": payload})
            return SubmitResult("blocked", corr, reasons=(decision.reason,), gate=decision)
        report = evaluate(intent, self._with_recent(ctx), self.limits)
        if report.blocked:
            await self._write_quietly("blocked", "", corr, {"stage": "risk", "intent": payload, "risk": report.summary()})
            return SubmitResult("blocked", corr, reasons=tuple(report.reasons), gate=decision, report=report)

        coid = new_client_order_id()
        self.in_flight.add(coid)
        try:
            try:
                await self._write(
                    "intent", coid, corr, {"intent": payload, "risk": report.summary(), "gate": decision.reason}
                )
            except AuditError as exc:
                return SubmitResult(
                    "rejected", corr, "", (f"audit log unavailable, order not sent: {exc}",), decision, report
                )
            again = self.gate.check(intent, confirmation)
            if not again.allowed:
                await self._write_quietly("reject", coid, corr, {"stage": "gate", "reason": again.reason})
                return SubmitResult("rejected", corr, coid, (again.reason,), again, report)
            try:
                info = dict(await self.transmit(intent, coid) or {})
            except NotTransmitted as exc:
                reason = f"not transmitted: {exc}"
                await self._write_quietly("reject", coid, corr, {"stage": "transmit", "reason": reason})
                return SubmitResult("rejected", corr, coid, (reason,), decision, report)
            except Exception as exc:  # noqa: BLE001 - may have reached the gateway
                reason = f"transmit failed, the order may have been sent: {type(exc).__name__}: {exc}"
                await self._write_quietly("send_error", coid, corr, {"reason": reason})
                self._recent.append(RecentOrder(self.clock.now(), intent))
                return SubmitResult("unknown", corr, coid, (reason,), decision, report)
            self._recent.append(RecentOrder(self.clock.now(), intent))
            err = await self._write_quietly("sent", coid, corr, {"transmit": info})
            reasons = (f"order sent but its 'sent' audit row failed: {err}",) if err else ()
            return SubmitResult("sent", corr, coid, reasons, decision, report, info)
        finally:
            self.in_flight.discard(coid)

    # --- broker events -----------------------------------------------------------------

    async def record_status(self, order: BrokerOrder, correlation_id: str = "") -> None:
        """Write a ``status`` row for an orderStatus of one of desk's orders (keyed by
        ``order.order_ref``). Raises :class:`AuditError` if the log refuses it."""
        await self._write("status", order.order_ref, correlation_id, dataclasses.asdict(order))

    async def record_fill(self, fill: Fill, *, remaining: float | None = None, filled: float | None = None,
                          correlation_id: str = "") -> None:
        """Write a ``fill`` row (``remaining`` / ``filled``: the order's totals after this
        execution, if known; ``remaining == 0`` marks the order filled)."""
        payload: dict[str, Any] = {"fill": fill}
        if remaining is not None:
            payload["remaining"] = remaining
        if filled is not None:
            payload["filled"] = filled
        await self._write("fill", fill.order_ref, correlation_id, payload)

    async def record_cancel_request(self, client_order_id: str, correlation_id: str = "") -> None:
        """Write a ``cancel_request`` row before asking the gateway to cancel an order."""
        await self._write("cancel_request", client_order_id, correlation_id, {})

    # --- kill switch -------------------------------------------------------------------

    async def engage_kill_switch(self, reason: str = "kill switch key") -> KillSwitchState:
        """Block new orders (at once, in memory and on disk), cancel every open order
        (``cancel_all``: reqGlobalCancel), then write a ``kill_switch`` audit row. Never
        raises: a failing cancel or audit write is in the returned state's ``error``."""
        state = self.gate.kill_switch.engage(reason)
        errors = [state.error] if state.error else []
        cancelled = False
        if self.cancel_all is not None:
            try:
                await self.cancel_all()
                cancelled = True
            except Exception as exc:  # noqa: BLE001 - the switch stays engaged regardless
                errors.append(f"global cancel failed: {type(exc).__name__}: {exc}")
        err = await self._write_quietly(
            "kill_switch", "", new_correlation_id(), {"reason": reason, "global_cancel": cancelled, "errors": errors}
        )
        if err:
            errors.append(err)
        return dataclasses.replace(state, error="; ".join(errors))

    async def reset_kill_switch(self, who: str = "") -> KillSwitchState:
        """Allow orders again and write a ``kill_switch_reset`` row. Raises ``OSError``
        when the state file cannot be removed (the switch then stays engaged)."""
        state = self.gate.kill_switch.reset()
        await self._write_quietly("kill_switch_reset", "", new_correlation_id(), {"by": who})
        return state

    # --- reconciliation ----------------------------------------------------------------

    async def reconcile(
        self,
        orders_by_ref: Mapping[str, BrokerOrder],
        executions_by_ref: Mapping[str, Sequence[Fill]],
        *,
        resend_window: float = 120.0,
    ) -> ReconcilePlan:
        """After a (re)connect: decide the fate of every open intent of this mode and
        account that is not in flight (see :func:`desk.store.audit.reconcile`) and write a
        ``reconcile`` row per decision. Nothing is resent here: ``resend`` decisions are
        offers for the trader, who sends them again through :meth:`submit`."""
        intents = await asyncio.to_thread(self.audit.open_intents, mode=self.mode, account=self.account)
        intents = [i for i in intents if i.client_order_id not in self.in_flight]
        plan = reconcile(intents, orders_by_ref, executions_by_ref, now=self.clock.now(), resend_window=resend_window)
        by_ref = {i.client_order_id: i for i in intents}
        for d in plan.decisions:
            prev = by_ref[d.client_order_id].state
            if d.state == prev:
                continue  # adopt of an order already recorded as working: nothing new
            payload: dict[str, Any] = {"state": d.state, "action": d.action, "reason": d.reason, "filled": d.filled}
            if d.order is not None:
                payload["order"] = dataclasses.asdict(d.order)
            await self._write("reconcile", d.client_order_id, by_ref[d.client_order_id].correlation_id, payload)
        return plan


