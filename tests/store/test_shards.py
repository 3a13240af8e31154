"""Collectors that scale out: ``--shard I/N`` splits the symbols (desk.domain.shard) and N
collectors on one gateway record into one database without duplicates."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_testlib import pg_connect

from desk.domain import ConnectionState
from desk.domain.shard import Shard, parse_shard
from desk.engine.runtime import Runtime
from desk.settings import Mode, Settings

SYMBOL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5)


@given(st.lists(SYMBOL, max_size=60), st.integers(1, 8), st.randoms())
def test_shards_partition_the_symbols_evenly_whatever_the_order(symbols, n, rnd) -> None:
    shards = [Shard(i, n).select(symbols) for i in range(1, n + 1)]
    unique = {s.upper() for s in symbols}
    flat = [s.upper() for part in shards for s in part]
    assert sorted(flat) == sorted(unique)  # every symbol once, in exactly one shard
    sizes = [len(p) for p in shards]
    assert max(sizes) - min(sizes) <= 1
    shuffled = list(symbols)
    rnd.shuffle(shuffled)
    assert [sorted(Shard(i, n).select(shuffled)) for i in range(1, n + 1)] == [sorted(p) for p in shards]


def test_shard_syntax_is_one_line() -> None:
    assert str(parse_shard(" 2 / 3 ")) == "2/3"
    for bad in ("3/2", "0/1", "1/0", "a/b", "1", "1/65"):
        with pytest.raises(ValueError, match="shard must be I/N"):
            parse_shard(bad)


@pytest.fixture
def fresh_db(pg_url):
    from desk.store.urls import parse_database_url

    name = f"desk_shard_{uuid.uuid4().hex[:10]}"
    with pg_connect(pg_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield parse_database_url(pg_url).sqlalchemy_url.set(database=name).render_as_string(hide_password=False)
    with pg_connect(pg_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_collectors_on_one_gateway_record_into_one_database_without_duplicates(fresh_db, tmp_path) -> None:
    from desk.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=4, tick_interval=0.05)
    await gw.start()
    symbols = ["SPY", "QQQ", "AAPL", "MSFT", "NVDA"]
    runtimes = [
        Runtime(
            Settings(
                mode=Mode.SIM,
                ib_port=gw.port,
                ib_client_id=7,
                shard=f"{i}/2",
                record=True,
                database_url=fresh_db,
                watchlist=symbols,
                spool_dir=tmp_path / f"spool{i}",
                kill_switch_file=tmp_path / f"kill{i}",
                live_override_file=tmp_path / "o",
                _env_file=None,
            )
        )
        for i in (1, 2)
    ]
    try:
        for rt in runtimes:
            await rt.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not all(rt.broker.state is ConnectionState.CONNECTED and rt.broker.ticks_recorded > 50 for rt in runtimes):
            assert loop.time() < deadline, [rt.broker.state for rt in runtimes]
            await asyncio.sleep(0.05)
        assert sorted(rt.broker.client_id for rt in runtimes) == [7, 8]  # each shard its own id
        mine = [{i.symbol for i in rt.broker.watchlist} for rt in runtimes]
        assert mine[0].isdisjoint(mine[1]) and mine[0] | mine[1] == set(symbols)
    finally:
        for rt in runtimes:
            await rt.stop()
        await gw.stop()
    target = fresh_db.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(target) as conn:
        recorded = {r[0] for r in conn.execute("SELECT DISTINCT symbol FROM ticks")}
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM ticks GROUP BY time, con_id, kind, bid, ask, bid_size, ask_size,"
            " price, size HAVING count(*) > 1) d"
        ).fetchone()[0]
    assert recorded == set(symbols) and twice == 0
