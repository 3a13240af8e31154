"""Prometheus metrics and health endpoints, scraped over HTTP from a real Runtime on the
embedded simulator (desk.metrics)."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from desk.domain import ConnectionState
from desk.risk import OrderIntent
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings


def _settings(tmp_path, **kw) -> Settings:
    base = dict(
        mode=Mode.SIM,
        record=True,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY", "AAPL"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "o",
        spool_dir=tmp_path / "spool",
        metrics_port=0,
        _env_file=None,
    )
    base.update(kw)
    return Settings(**base)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def scrape(rt: Runtime) -> dict[tuple[str, tuple], float]:
    _, text = await asyncio.to_thread(_get, f"http://127.0.0.1:{rt.metrics.port}/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(text) for s in fam.samples
    }


async def wait_for(cond, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_scrape_shows_ticks_connections_orders_and_refusals(tmp_path) -> None:
    rt = Runtime(_settings(tmp_path))
    await rt.start()
    try:

        async def recording() -> bool:
            m = await scrape(rt)
            return m.get(("desk_ticks_recorded_total", ()), 0) > 10 and m.get(("desk_ib_connected", ()), 0) == 1

        await wait_for(recording, "ticks recorded and the gateway connected")
        m = await scrape(rt)
        assert m[("desk_ib_state", (("state", "connected"),))] == 1 and m[("desk_ib_state", (("state", "reconnecting"),))] == 0
        assert m[("desk_database_up", ())] == 1 and m[("desk_audit_log_healthy", ())] == 1
        assert m[("desk_ticks_received_total", ())] >= m[("desk_ticks_recorded_total", ())]
        assert m[("desk_event_loop_lag_seconds", ())] >= 0
        first = m[("desk_ib_messages_received_total", ())]
        assert first > 0 and first == int(first)

        async def more_messages() -> bool:
            return (await scrape(rt))[("desk_ib_messages_received_total", ())] > first

        await wait_for(more_messages, "the count of decoded IB messages to grow")
        assert await asyncio.to_thread(_get, f"http://127.0.0.1:{rt.metrics.port}/healthz") == (200, "ok\n")
        assert await asyncio.to_thread(_get, f"http://127.0.0.1:{rt.metrics.port}/readyz") == (200, "ready\n")

        await wait_for(lambda: asyncio.sleep(0, rt.orders.ready), "orders ready")
        spy = next(i for i in rt.broker.watchlist if i.symbol == "SPY")
        refused = await rt.orders.place(OrderIntent(spy, "BUY", 1_000_000, "MKT"))
        assert refused.status == "blocked"
        bid = rt.quotes.get(spy.con_id).bid
        placed = await rt.orders.place(OrderIntent(spy, "BUY", 2, "LMT", limit_price=round(bid - 5, 2)))
        ref = placed.client_order_id

        async def counted() -> bool:
            m = await scrape(rt)
            return m.get(("desk_orders", (("status", "Submitted"),)), 0) >= 1 and rt.orders.rows[ref].status == "Submitted"

        await wait_for(counted, "the working order counted")
        m = await scrape(rt)
        assert m[("desk_order_refusals_total", (("check", "max_quantity"),))] == 1
    finally:
        await rt.stop()


async def test_readyz_says_what_is_not_ready(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rt = Runtime(_settings(tmp_path, ib_port=port))
    await rt.start()
    try:
        assert rt.broker.state is not ConnectionState.CONNECTED
        code, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{rt.metrics.port}/readyz")
        assert code == 503 and body.startswith("IB not connected (")
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{rt.metrics.port}/healthz"))[0] == 200
    finally:
        await rt.stop()
