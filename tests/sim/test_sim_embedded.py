"""The thread wrapper (what the desk embeds), the ``desk sim`` entry point, the bench."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from ib_async import IB, Stock

from desk.sim import EmbeddedSim, SimGateway
from desk.sim.probe import count_frames, raw_subscribe_all


async def test_embedded_sim_serves_the_callers_loop(wait_until) -> None:
    sim = EmbeddedSim(seed=7, tick_interval=0.05)
    port = sim.start()
    assert port > 0 and sim.port == port
    ib = IB()
    try:
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        assert time.perf_counter() - t0 < 1.0
        assert sim.clients == 1
        spy = (await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD")))[0]
        ticker = ib.reqMktData(spy)
        await wait_until(lambda: ticker.bid > 0 and ticker.volume > 0, 2.0)

        dropped = asyncio.Event()
        ib.disconnectedEvent += dropped.set
        assert await asyncio.to_thread(sim.drop_clients) == 1
        await asyncio.wait_for(dropped.wait(), 2.0)
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        assert ib.isConnected()
    finally:
        ib.disconnect()
        await asyncio.to_thread(sim.stop)
    assert sim.gateway is not None and not sim.gateway.running
    sim.stop()  # twice is fine


def test_embedded_sim_context_manager_and_fixed_port() -> None:
    with EmbeddedSim(seed=1) as sim:
        port = sim.port
        assert sim.call(lambda gw: gw.running)
    # the same port can be bound again at once (SO_REUSEADDR)
    with EmbeddedSim(port=port, seed=1) as again:
        assert again.port == port


def test_embedded_sim_port_in_use_raises() -> None:
    with EmbeddedSim(seed=1) as sim:
        other = EmbeddedSim(port=sim.port, seed=1)
        with pytest.raises(OSError):
            other.start()


def test_gateway_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SimGateway(tick_interval=0)
    with pytest.raises(ValueError):
        SimGateway(speed=0)
    with pytest.raises(ValueError):
        SimGateway(accounts=())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_runs_until_signalled(sig: signal.Signals) -> None:
    code = "from desk.sim import serve; serve('127.0.0.1', 0, 11)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.startswith("desk sim listening on 127.0.0.1:") and line.endswith("(seed 11)\n"), line
        port = int(line.split(":")[1].split()[0])
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=1)
        dropped = asyncio.Event()
        ib.disconnectedEvent += dropped.set
        proc.send_signal(sig)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 10) == 0
        await asyncio.wait_for(dropped.wait(), 2.0)
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stress_feed_smoke() -> None:
    """The stress knob multiplies the message rate (figures: ``python bench/sim_gateway.py``)."""
    with EmbeddedSim(seed=7, tick_interval=0.01, speed=50) as sim:
        sock = raw_subscribe_all(sim.port)
        try:
            frames = count_frames(sock, 0.5)
        finally:
            sock.close()
    assert frames > 1000
