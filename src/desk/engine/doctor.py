"""``desk doctor``: check settings, database, Redis and the IB endpoint; say what to fix.

Each check prints one line: ``ok``, ``warn`` or ``FAIL``, what was found, and for a
failure what to do. Exit code 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from desk.settings import Settings


@dataclass(slots=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "FAIL"
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<10} {self.detail}"
        if self.fix:
            text += f"\n{'':16}fix: {self.fix}"
        return text


async def check_database(settings: Settings) -> Check:
    from desk.store import probe_database

    info = await probe_database(settings.database_url)
    if not info.reachable:
        return Check(
            "database",
            "FAIL",
            info.error or "unreachable",
            "start the server or point DESK_DATABASE_URL elsewhere (unset it for the SQLite default)",
        )
    detail = f"{info.dialect} {info.server_version}".strip()
    if info.dialect == "postgresql":
        if info.timescaledb_installed:
            detail += ", TimescaleDB installed (ticks is a hypertable)"
        elif info.timescaledb_available:
            detail += ", TimescaleDB available (desk creates the extension on first start)"
        else:
            detail += ", no TimescaleDB (plain tables with BRIN time index; install timescaledb for hypertables)"
    if info.tick_rows is not None:
        detail += f", {info.tick_rows:,} tick rows"
    return Check("database", "ok", detail)


async def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", "ok", "not configured (optional: set DESK_REDIS_URL to fan ticks out)")
    from desk.bus import probe_redis

    info = await probe_redis(settings.redis_url)
    if not info.reachable:
        return Check("redis", "FAIL", info.error or "unreachable", "start Redis or unset DESK_REDIS_URL")
    return Check("redis", "ok", f"Redis {info.server_version} at {info.address}")


async def check_ib(settings: Settings) -> Check:
    from ib_async import IB

    sim = None
    host, port = settings.ib_host, settings.effective_port
    if settings.embedded_sim:
        from desk.sim import EmbeddedSim

        sim = EmbeddedSim(host="127.0.0.1", port=0, seed=settings.sim_seed)
        port = await asyncio.to_thread(sim.start)
        host = "127.0.0.1"
    ib = IB()
    t0 = time.perf_counter()
    try:
        # a client id of its own, so a running desk (same DESK_IB_CLIENT_ID) is not kicked (IB error 326)
        await ib.connectAsync(
            host, port, clientId=settings.ib_client_id + 900, timeout=settings.ib_connect_timeout, readonly=True
        )
        elapsed = time.perf_counter() - t0
        accounts = ",".join(ib.managedAccounts()) or "no accounts"
        version = ib.client.serverVersion()
        where = "embedded simulator" if sim else f"{settings.mode.value} gateway"
        return Check(
            "ib", "ok", f"{where} at {host}:{port}, server version {version}, {accounts}, connected in {elapsed * 1000:.0f} ms"
        )
    except ConnectionRefusedError:
        return Check(
            "ib",
            "FAIL",
            f"nothing listens on {host}:{port}",
            "start TWS / IB Gateway with the API enabled (or `desk sim --port N`), or fix DESK_IB_HOST / DESK_IB_PORT",
        )
    except (OSError, asyncio.TimeoutError, TimeoutError, ConnectionError) as exc:
        return Check(
            "ib",
            "FAIL",
            f"{host}:{port}: {exc or type(exc).__name__}",
            "check that the API is enabled in TWS / IB Gateway and 127.0.0.1 is a trusted IP",
        )
    finally:
        ib.disconnect()
        if sim is not None:
            await asyncio.to_thread(sim.stop)


async def run_doctor(settings: Settings) -> int:
    """Run every check and print the report. Returns 0 if nothing failed, else 1."""
    checks = [
        Check(
            "settings",
            "ok",
            f"mode {settings.mode.value}, watchlist {len(settings.watchlist)} symbols, theme {settings.theme}",
        )
    ]
    for fn in (check_database, check_redis, check_ib):
        try:
            checks.append(await fn(settings))
        except Exception as exc:  # a check must never crash the report
            checks.append(Check(fn.__name__.removeprefix("check_"), "FAIL", f"{type(exc).__name__}: {exc}"))
    for c in checks:
        print(c.line(), flush=True)
    failed = [c for c in checks if c.status == "FAIL"]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed" + ("" if not failed else "; fix the lines marked FAIL"))
    return 1 if failed else 0
