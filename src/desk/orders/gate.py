"""The gate in front of the pre-trade checks: trading state (kill switch) and mode rules.

Trading states (design.md, "Safety"), kept in one file so they survive a restart and are
honoured by every desk process sharing it:

* ``active``: orders pass to the checks (the file is absent);
* ``reduce_only``: only orders that reduce positions pass (every leg, working orders in
  the same direction counted, see :func:`desk.risk.checks.only_reduces`);
* ``halted``: the kill switch: every new order is blocked until a human resets it (the
  order service cancels every open order when it is engaged).

An unreadable or foreign state file counts as ``halted``: the switch fails safe.

Mode rules:

* ``sim``: orders go out (the embedded or a standalone simulator);
* ``paper``: only with orders enabled (``DESK_ORDERS_ENABLED=true``);
* ``live``: only with orders enabled **and** the override file present (checked at every
  order, so deleting it stops trading at once) **and** the symbol typed to confirm each
  order (the underlying symbol for options and combos; case and surrounding spaces are
  ignored).

File I/O only (the state and override files); nothing here imports Textual or ib_async.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from desk.domain.clock import Clock
from desk.domain.orders import KillSwitchState, TradingState
from desk.risk import OrderIntent

__all__ = [
    "GateDecision",
    "GateStatus",
    "KillSwitch",
    "KillSwitchState",
    "OrderGate",
    "TradingState",
    "confirmation_symbol",
]

log = logging.getLogger(__name__)


class KillSwitch:
    """The trading state, kept in the file ``path`` (absent = ``active``).

    :meth:`halt` and :meth:`reduce_only` never raise: they restrict orders in memory
    first, then write the file atomically (temporary file, fsync, rename, fsync of the
    folder). :meth:`state` is the stricter of the memory state and the file, so a state set
    by another process (or before a restart) is honoured. :meth:`reset` removes the file.
    Thread-safe.
    """

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock or Clock()
        self._lock = threading.Lock()
        self._memory: KillSwitchState | None = None

    @property
    def engaged(self) -> bool:
        """True when halted (memory or file)."""
        return self.state().engaged

    def _file_state(self) -> KillSwitchState:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KillSwitchState()
        except OSError as exc:
            return KillSwitchState(TradingState.HALTED, None, f"state file {self.path} unreadable: {exc.strerror}")
        try:
            data = json.loads(raw)
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            name = data.get("state", "halted" if data.get("engaged") else None)
            state = TradingState(name)
            return KillSwitchState(state, since, str(data.get("reason", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return KillSwitchState(TradingState.HALTED, None, f"state file {self.path} is not desk's JSON (halted)")

    def state(self) -> KillSwitchState:
        """The current state: the memory state, unless the file says something stricter."""
        mem = self._memory
        disk = self._file_state()
        if mem is None:
            return disk
        order = (TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED)
        return disk if order.index(disk.state) > order.index(mem.state) else mem

    def _set(self, state: TradingState, reason: str) -> KillSwitchState:
        with self._lock:
            now = self.clock.now()
            new = KillSwitchState(state, now, reason)
            self._memory = new  # restricts before anything can fail
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                data = json.dumps(
                    {"state": state.value, "engaged": state is TradingState.HALTED, "since": now.isoformat(), "reason": reason}
                )
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
                new = dataclasses.replace(new, persisted=False, error=f"cannot write {self.path}: {exc.strerror or exc}")
                self._memory = new
                log.error("trading state %s set in memory only: %s", state.value, new.error)
            return new

    def halt(self, reason: str = "") -> KillSwitchState:
        """Engage the kill switch: block every new order now and persist it."""
        return self._set(TradingState.HALTED, reason)

    def engage(self, reason: str = "") -> KillSwitchState:
        """Same as :meth:`halt`."""
        return self.halt(reason)

    def reduce_only(self, reason: str = "") -> KillSwitchState:
        """Let only position-reducing orders through from now on, and persist it."""
        return self._set(TradingState.REDUCE_ONLY, reason)

    def reset(self) -> KillSwitchState:
        """Back to ``active`` (removes the file). Raises ``OSError`` if the file exists
        and cannot be removed: the state then stays as it was."""
        with self._lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self._memory = None
            return KillSwitchState()


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
    ``override_present`` (live override file exists); ``kill_switch`` (the trading
    state); ``can_send``: an order could pass the gate now (given, in live mode, the typed
    confirmation; in reduce-only, a reducing order); ``needs_confirmation``: live mode;
    ``summary``: one line."""

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
    """The mode / enablement / override / confirmation / trading-state gate.

    ``mode``: ``sim``, ``paper`` or ``live``. ``orders_enabled``: the setting
    (``DESK_ORDERS_ENABLED``). ``override_path``: the live override file.
    ``kill_switch``: the :class:`KillSwitch` holding the trading state.
    Raises ``ValueError`` for an unknown mode.
    """

    MODES = ("sim", "paper", "live")

    def __init__(self, mode: str, orders_enabled: bool, override_path: Path | str, kill_switch: KillSwitch) -> None:
        mode = getattr(mode, "value", mode)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.mode = str(mode)
        self.orders_enabled = bool(orders_enabled)
        self.override_path = Path(override_path).expanduser()
        self.kill_switch = kill_switch

    @property
    def needs_confirmation(self) -> bool:
        """True in live mode: every order needs its symbol typed."""
        return self.mode == "live"

    def _mode_gate(self) -> tuple[bool, str]:
        if self.mode == "sim":
            return True, "sim mode"
        if not self.orders_enabled:
            return False, f"{self.mode} mode: orders are disabled (set DESK_ORDERS_ENABLED=true)"
        if self.mode == "paper":
            return True, "paper mode, orders enabled"
        if not self.override_path.is_file():
            return False, f"live mode: override file {self.override_path} is missing"
        return True, "live mode, orders enabled, override file present"

    def check(self, intent: OrderIntent, confirmation_text: str | None = None, *, reduces: bool = False) -> GateDecision:
        """May ``intent`` go on to the risk checks? Checked in this order: trading state
        (``halted`` blocks; ``reduce_only`` needs ``reduces``, i.e. the order only reduces
        positions), mode / orders enabled / override file, then (live) the typed
        confirmation, which must equal :func:`confirmation_symbol` ignoring case and
        surrounding spaces."""
        ks = self.kill_switch.state()
        why = f" ({ks.reason})" if ks.reason else ""
        if ks.state is TradingState.HALTED:
            return GateDecision(False, f"kill switch engaged{why}: reset it to send orders", self.mode)
        if ks.state is TradingState.REDUCE_ONLY and not reduces:
            return GateDecision(False, f"reduce-only{why}: this order would open or add to a position", self.mode)
        ok, reason = self._mode_gate()
        if not ok:
            return GateDecision(False, reason, self.mode)
        if ks.state is TradingState.REDUCE_ONLY:
            reason += ", reduce-only (order reduces)"
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
        """A snapshot for the mode badge and the trading-state indicator."""
        ks = self.kill_switch.state()
        ok, reason = self._mode_gate()
        override = self.override_path.is_file()
        can = ok and not ks.engaged
        if ks.engaged:
            summary = f"{self.mode.upper()}: KILL SWITCH ENGAGED"
        elif ks.state is TradingState.REDUCE_ONLY and ok:
            summary = f"{self.mode.upper()}: REDUCE-ONLY (only orders that reduce positions)"
        elif can:
            summary = f"{self.mode.upper()}: orders on" + (" (type symbol to confirm)" if self.needs_confirmation else "")
        else:
            summary = f"{self.mode.upper()}: orders off - {reason}"
        return GateStatus(self.mode, self.orders_enabled, override, ks, can, self.needs_confirmation, summary)
