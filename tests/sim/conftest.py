"""Fixtures for the simulator tests: a gateway on the test's loop and real ib_async clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from ib_async import IB

from desk.sim import SimGateway

#: Fast ticking so streaming tests need little wall time (market time = wall time).
TEST_TICK_INTERVAL = 0.05


@pytest.fixture
async def gateway() -> AsyncIterator[SimGateway]:
    gw = SimGateway(seed=7, tick_interval=TEST_TICK_INTERVAL)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def connect(gateway: SimGateway) -> AsyncIterator[Callable[..., object]]:
    """``await connect(client_id=1, **kw)`` -> a connected ``IB``; all disconnected at the end."""
    clients: list[IB] = []

    async def _connect(client_id: int = 1, **kwargs: object) -> IB:
        ib = IB()
        clients.append(ib)
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=client_id, **kwargs)
        return ib

    yield _connect
    for ib in clients:
        ib.disconnect()


@pytest.fixture
async def ib(connect) -> IB:
    return await connect(1)


async def _wait_until(cond: Callable[[], bool], timeout: float = 2.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what or cond}")
        await asyncio.sleep(0.01)


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """``await wait_until(cond, timeout=2.0, what="")``: poll ``cond`` every 10 ms until it
    is true; fail the test after ``timeout`` seconds."""
    return _wait_until
