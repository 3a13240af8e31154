"""Fixtures of the desk.orders tests: a real simulated gateway, a real ib_async connection
to it and the broker's real order gateway on that connection, real audit logs (SQLite
files; PostgreSQL through a cuttable TCP proxy where a test needs an outage)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from risk_testlib import OPEN, SPY

from desk.domain import FrozenClock
from desk.orders import AuditTrail
from desk.store import AuditLog


@pytest.fixture
async def sim() -> AsyncIterator:
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=3, tick_interval=0.05)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def ib(sim) -> AsyncIterator:
    from ib_async import IB

    conn = IB()
    await conn.connectAsync("127.0.0.1", sim.port, clientId=7, timeout=5)
    yield conn
    conn.disconnect()


@pytest.fixture
async def spy(ib):
    from ib_async import Contract

    [contract] = await ib.qualifyContractsAsync(Contract(symbol="SPY", secType="STK", exchange="SMART", currency="USD"))
    return dataclasses.replace(SPY, con_id=contract.conId)


@pytest.fixture
def audit_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.sqlite3'}"


@pytest.fixture
def log(audit_url: str) -> Iterator[AuditLog]:
    lg = AuditLog(audit_url, clock=FrozenClock(OPEN))
    yield lg
    lg.close()


@pytest.fixture
async def trail(audit_url: str, tmp_path: Path) -> AsyncIterator[AuditTrail]:
    t = AuditTrail(lambda: AuditLog(audit_url), tmp_path / "spool" / "audit.jsonl", clock=FrozenClock(OPEN), retry_interval=0.1)
    await t.start_async()
    yield t
    await asyncio.to_thread(t.close)
