"""The opportunities table: batched upserts (first seen kept, best edge kept, last edge
and state updated) on SQLite and the real PostgreSQL, through the writer thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk.store import StoreError
from desk.store.opportunities import OpportunityStore, OpportunityWriter

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def _payload(
    key: str = "SPY|conversion|conversion|legs",
    *,
    edge: float,
    best: float | None = None,
    state: str = "new",
    first: datetime = T0,
    last: datetime = T0,
    simulated: bool = True,
) -> dict:
    return {
        "key": key,
        "state": state,
        "kind": "conversion",
        "rule": "conversion",
        "underlying": key.split("|")[0],
        "expiry": "20260417",
        "legs": [
            {
                "conId": 1,
                "secType": "OPT",
                "right": "C",
                "strike": 500.0,
                "expiry": "20260417",
                "action": "SELL",
                "ratio": 1,
                "price": 12.3,
                "size": 10,
            }
        ],
        "edge_total": edge,
        "best_edge_total": edge if best is None else best,
        "first_seen": first.isoformat(),
        "last_seen": last.isoformat(),
        "simulated": simulated,
    }


def _check_upserts(store: OpportunityStore) -> None:
    assert store.upsert([_payload(edge=100.0), _payload("QQQ|box|long box|x", edge=40.0)]) == 2
    later = T0 + timedelta(seconds=30)
    # same key: later scan, smaller edge, then gone; an older first_seen elsewhere wins
    store.upsert(
        [_payload(edge=60.0, state="live", last=later, first=later), _payload(edge=55.0, state="gone", last=later, first=later)]
    )
    rows = {r["key"]: r for r in store.rows()}
    spy = rows["SPY|conversion|conversion|legs"]
    assert spy["first_seen"] == T0 and spy["last_seen"] == later
    assert spy["best_edge"] == 100.0 and spy["last_edge"] == 55.0 and spy["state"] == "gone"
    assert spy["simulated"] is True and spy["legs"][0]["conId"] == 1 and spy["underlying"] == "SPY"
    assert [r["key"] for r in store.rows()] == ["SPY|conversion|conversion|legs", "QQQ|box|long box|x"]  # best first
    assert [r["key"] for r in store.rows(underlying="QQQ")] == ["QQQ|box|long box|x"]
    # a better edge later raises best_edge
    store.upsert([_payload(edge=150.0, state="live", last=later + timedelta(seconds=1))])
    assert store.rows(underlying="SPY")[0]["best_edge"] == 150.0


def test_upserts_on_sqlite(sqlite_url) -> None:
    store = OpportunityStore(sqlite_url)
    try:
        _check_upserts(store)
    finally:
        store.close()


def test_upserts_on_postgresql(pg_url, pg_schema) -> None:
    store = OpportunityStore(pg_url, schema=pg_schema, table="opps")
    try:
        _check_upserts(store)
    finally:
        store.close()


def test_bad_payloads_name_the_problem_and_write_nothing(sqlite_url) -> None:
    store = OpportunityStore(sqlite_url)
    try:
        with pytest.raises(StoreError, match="state must be one of"):
            store.upsert([_payload(edge=1.0), _payload("B|box|r|l", edge=1.0, state="maybe")])
        bad = _payload(edge=1.0)
        del bad["legs"]
        with pytest.raises(StoreError, match="missing 'legs'"):
            store.upsert([bad])
        with pytest.raises(StoreError, match="tz-aware"):
            store.upsert([_payload(edge=1.0) | {"first_seen": "2026-03-10T14:00:00"}])
        assert store.rows() == []
    finally:
        store.close()
    with pytest.raises(StoreError):
        OpportunityStore(sqlite_url, table="no such table")


def test_writer_thread_coalesces_and_writes_on_flush(pg_url, pg_schema) -> None:
    writer = OpportunityWriter(OpportunityStore(pg_url, schema=pg_schema), flush_interval=30.0)
    writer.start()
    try:
        for i in range(50):  # 50 scans of the same opportunity: one row
            writer.submit([_payload(edge=10.0 + i, state="live", last=T0 + timedelta(seconds=i))])
        writer.submit([_payload("IWM|vertical|call slope|z", edge=5.0)])
        assert writer.flush(10.0)
        rows = {r["key"]: r for r in writer.store.rows()}
        assert len(rows) == 2 and writer.stats.written == 2 and writer.stats.batches == 1
        spy = rows["SPY|conversion|conversion|legs"]
        assert spy["last_edge"] == 59.0 and spy["best_edge"] == 59.0 and spy["last_seen"] == T0 + timedelta(seconds=49)
    finally:
        writer.close()
    with pytest.raises(ValueError, match="flush_interval"):
        OpportunityWriter(OpportunityStore(pg_url, schema=pg_schema), flush_interval=0)


def test_on_sqlite_opportunities_have_a_file_of_their_own(tmp_path, pg_url) -> None:
    """One writer per SQLite file: the recorder's tick file and the opportunity writer's
    file differ, so a fast feed never leaves one waiting on the other's lock."""
    from desk.store.opportunities import opportunities_url

    ticks = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    assert opportunities_url(ticks) == f"sqlite:///{tmp_path / 'desk-opportunities.sqlite3'}"
    assert opportunities_url(pg_url) == pg_url  # PostgreSQL takes concurrent writers
    store = OpportunityStore(opportunities_url(ticks))
    try:
        store.ensure()
        store.upsert([_payload(edge=100.0)])
        assert len(store.rows()) == 1
    finally:
        store.close()
    assert (tmp_path / "desk-opportunities.sqlite3").exists() and not (tmp_path / "desk.sqlite3").exists()


def test_the_classification_is_stored_and_an_older_table_gets_its_columns(sqlite_url) -> None:
    """Both views are recorded: the risk flags and ``riskless`` of every payload; a table
    created before those columns existed is given them."""
    from sqlalchemy import inspect, text

    from desk.store.schema import make_engine

    engine = make_engine(sqlite_url)
    with engine.begin() as conn:  # the table as the first version made it
        conn.execute(
            text(
                "CREATE TABLE opportunities (key TEXT PRIMARY KEY, kind VARCHAR(16) NOT NULL, rule VARCHAR(64) NOT NULL,"
                " underlying VARCHAR(32) NOT NULL, expiry VARCHAR(8) NOT NULL, legs TEXT NOT NULL,"
                " first_seen DATETIME NOT NULL, last_seen DATETIME NOT NULL, best_edge FLOAT NOT NULL,"
                " last_edge FLOAT NOT NULL, state VARCHAR(8) NOT NULL, simulated BOOLEAN NOT NULL)"
            )
        )
    engine.dispose()
    store = OpportunityStore(sqlite_url)
    try:
        old = _payload("SPY|conversion|conversion|old", edge=10.0)  # a payload of before: no classification
        store.upsert([old])
        at_risk = {
            **_payload("SPY|reversal|reversal|x", edge=900.0),
            "kind": "reversal",
            "rule": "reversal",
            "risks": ["early-exercise-put", "american-premium"],
            "riskless": False,
        }
        riskless = {**_payload(edge=50.0), "risks": [], "riskless": True}
        store.upsert([at_risk, riskless])
        rows = {r["key"]: r for r in store.rows()}
        assert rows["SPY|reversal|reversal|x"]["riskless"] is False
        assert rows["SPY|reversal|reversal|x"]["risks"] == "american-premium,early-exercise-put"
        assert (
            rows["SPY|conversion|conversion|legs"]["riskless"] is True and rows["SPY|conversion|conversion|legs"]["risks"] == ""
        )
        assert rows["SPY|conversion|conversion|old"]["riskless"] is None
        # re-classified later (a leg went stale): the row follows
        store.upsert([{**riskless, "state": "live", "risks": ["stale"], "riskless": False}])
        row = store.rows(underlying="SPY")
        assert {r["key"]: r["riskless"] for r in row}["SPY|conversion|conversion|legs"] is False
        columns = {c["name"] for c in inspect(store.engine).get_columns("opportunities")}
        assert {"risks", "riskless"} <= columns
    finally:
        store.close()
