"""Helpers of the desk.orders tests (importable by name: tests/orders is on sys.path)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from risk_testlib import OPEN

from desk.broker.orders import IBOrderGateway
from desk.domain import FrozenClock
from desk.orders import AuditTrail, KillSwitch, OrderGate, OrderRouter
from desk.risk import OrderIntent, RiskLimits
from desk.store import AuditLog


async def wait_until(cond, what: str, timeout: float = 10.0) -> None:
    """Poll ``cond`` on the event loop until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


class RecordingGateway(IBOrderGateway):
    """The broker's real order gateway, noting the audit state of each order at the moment
    it is placed (write-ahead: the intent row must already be committed)."""

    def __init__(self, ib, log: AuditLog) -> None:
        super().__init__(ib)
        self.log = log
        self.placed: list[tuple[str, OrderIntent]] = []
        self.states_at_send: list[str | None] = []

    async def place(self, intent: OrderIntent, order_ref: str) -> dict:
        self.states_at_send.append(self.log.current_state(order_ref))
        info = await super().place(intent, order_ref)
        self.placed.append((order_ref, intent))
        return info


def make_router(
    folder: Path,
    trail: AuditTrail,
    gateway,
    *,
    mode: str = "sim",
    enabled: bool = True,
    override: bool = True,
    limits: RiskLimits | None = None,
    clock=None,
) -> OrderRouter:
    if override:
        (folder / "override").write_text("")
    clock = clock or FrozenClock(OPEN)
    gate = OrderGate(mode, enabled, folder / "override", KillSwitch(folder / "kill", clock=clock))
    limits = limits or RiskLimits(enforce_market_hours=False)
    return OrderRouter(gate, trail, limits, gateway, account="DU1", clock=clock)
