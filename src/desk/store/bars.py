"""One-minute bars of the recorded ticks, in the database: ``<ticks>_1m``.

Per conId and UTC minute: bid, ask and mid OHLC over the quote rows (a side absent from a
row is left out; the mid only where both sides are present) and trade OHLCV over the trade
rows (volume: the sum of sizes). Bars are labelled by the minute's start (UTC).

* **TimescaleDB** (the tick table is a hypertable): a continuous aggregate
  (``time_bucket``, ``first`` / ``last``) with a refresh policy every minute over the
  last day, so reading bars costs nothing at the tick rate;
* **plain PostgreSQL**: a view with ``date_bin('1 minute', ...)`` and ordered
  ``array_agg`` for first / last;
* **SQLite**: a view over window functions (time is integer µs there).

:func:`ensure_bar_view` creates it (idempotent); :func:`read_minute_bars` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from desk.store.codec import from_epoch_us, to_epoch_us
from desk.store.errors import StoreError
from desk.store.schema import SchemaInfo, StoreSchema, make_engine

__all__ = ["MinuteBar", "bar_view_name", "ensure_bar_view", "read_minute_bars"]

_SIDES = ("bid", "ask", "mid")
_QUOTE_COLS = [f"{s}_{p}" for s in _SIDES for p in ("open", "high", "low", "close")]
_TRADE_COLS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class MinuteBar:
    """One minute of one conId (UTC start). Quote OHLC per share (``nan`` when the minute
    had no such quote), trade OHLC per share and volume in shares or contracts (``nan`` /
    0 without trades)."""

    time: datetime
    con_id: int
    bid_open: float
    bid_high: float
    bid_low: float
    bid_close: float
    ask_open: float
    ask_high: float
    ask_low: float
    ask_close: float
    mid_open: float
    mid_high: float
    mid_low: float
    mid_close: float
    open: float
    high: float
    low: float
    close: float
    volume: float


def bar_view_name(store: StoreSchema) -> str:
    """``<tick table>_1m``, qualified with the schema when there is one."""
    return store.qualified(f"{store.table}_1m")


def _pg_select(src: str, bucket: str, first: Any, last: Any) -> str:
    quote = "kind = 'Q'"
    parts = [f"{bucket} AS time", "con_id"]
    for side in _SIDES:
        expr = "(bid + ask) / 2" if side == "mid" else side
        cond = f"{quote} AND bid > 0 AND ask > 0" if side == "mid" else f"{quote} AND {side} > 0"
        parts += [
            f"{first(expr, cond)} AS {side}_open",
            f"max({expr}) FILTER (WHERE {cond}) AS {side}_high",
            f"min({expr}) FILTER (WHERE {cond}) AS {side}_low",
            f"{last(expr, cond)} AS {side}_close",
        ]
    trade = "kind = 'T' AND price > 0"
    parts += [
        f"{first('price', trade)} AS open",
        f"max(price) FILTER (WHERE {trade}) AS high",
        f"min(price) FILTER (WHERE {trade}) AS low",
        f"{last('price', trade)} AS close",
        f"coalesce(sum(size) FILTER (WHERE {trade}), 0) AS volume",
    ]
    return f"SELECT {', '.join(parts)} FROM {src} GROUP BY 1, 2"


def _sqlite_select(table: str) -> str:
    inner = ["time / 60000000 AS b", "time AS t"]
    for side in _SIDES:
        expr = "(bid + ask) / 2.0" if side == "mid" else side
        cond = "kind = 'Q' AND bid > 0 AND ask > 0" if side == "mid" else f"kind = 'Q' AND {side} > 0"
        inner.append(f"CASE WHEN {cond} THEN {expr} END AS {side}_v")
    inner.append("CASE WHEN kind = 'T' AND price > 0 THEN price END AS t_v")
    inner.append("CASE WHEN kind = 'T' AND price > 0 THEN size END AS t_size")
    firsts = []
    for name in [*(f"{s}_v" for s in _SIDES), "t_v"]:
        # first / last present value: a window over the minute's rows where it is present
        frame = (
            f"OVER (PARTITION BY con_id, b, {name} IS NULL ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
        )
        firsts.append(f"first_value({name}) {frame} AS {name}_first")
        firsts.append(f"last_value({name}) {frame} AS {name}_last")
    rows = f'SELECT con_id, {", ".join(inner)} FROM "{table}"'
    win = f"SELECT *, {', '.join(firsts)} FROM ({rows})"
    outer = ["b * 60000000 AS time", "con_id"]
    for side in _SIDES:
        v = f"{side}_v"
        outer += [
            f"max(CASE WHEN {v} IS NOT NULL THEN {v}_first END) AS {side}_open",
            f"max({v}) AS {side}_high",
            f"min({v}) AS {side}_low",
            f"max(CASE WHEN {v} IS NOT NULL THEN {v}_last END) AS {side}_close",
        ]
    outer += [
        "max(CASE WHEN t_v IS NOT NULL THEN t_v_first END) AS open",
        "max(t_v) AS high",
        "min(t_v) AS low",
        "max(CASE WHEN t_v IS NOT NULL THEN t_v_last END) AS close",
        "coalesce(sum(t_size), 0) AS volume",
    ]
    return f"SELECT {', '.join(outer)} FROM ({win}) GROUP BY b, con_id"


def ensure_bar_view(engine: Engine, store: StoreSchema, info: SchemaInfo | None = None) -> str:
    """Create the minute-bar view of ``store``'s tick table if absent; returns what it is:
    ``"continuous aggregate"``, ``"view"`` (PostgreSQL) or ``"view"`` (SQLite). Raises
    StoreError (one line) when the database refuses."""
    name = bar_view_name(store)
    src = store.qualified_table
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text(f'CREATE VIEW IF NOT EXISTS "{store.table}_1m" AS {_sqlite_select(store.table)}'))
                return "view"
            if info is not None and info.hypertable:
                sql = _pg_select(
                    src,
                    "time_bucket(INTERVAL '1 minute', time)",
                    lambda e, c: f"first({e}, time) FILTER (WHERE {c})",
                    lambda e, c: f"last({e}, time) FILTER (WHERE {c})",
                )
                conn.execute(
                    text(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} WITH (timescaledb.continuous) AS {sql} WITH NO DATA")
                )
                conn.execute(
                    text(
                        f"SELECT add_continuous_aggregate_policy('{name}', start_offset => INTERVAL '1 day', "
                        "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)"
                    )
                )
                return "continuous aggregate"
            sql = _pg_select(
                src,
                "date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-01')",
                lambda e, c: f"(array_agg({e} ORDER BY time) FILTER (WHERE {c}))[1]",
                lambda e, c: f"(array_agg({e} ORDER BY time DESC) FILTER (WHERE {c}))[1]",
            )
            conn.execute(text(f"CREATE OR REPLACE VIEW {name} AS {sql}"))
            return "view"
    except Exception as exc:  # noqa: BLE001 - the driver's error, in one line
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise StoreError(f"cannot create the minute bars {name}: {first[0] if first else type(exc).__name__}") from None


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def read_minute_bars(
    url: str,
    *,
    con_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    table: str = "ticks",
    schema: str | None = None,
) -> list[MinuteBar]:
    """The minute bars (``start <= time < end``, UTC), ordered by conId then time; the view
    is created first if needed. Raises StoreError."""
    store = StoreSchema(table=table, schema=schema)
    engine = make_engine(url)
    try:
        ensure_bar_view(engine, store)
        sqlite = engine.dialect.name == "sqlite"
        name = f'"{store.table}_1m"' if sqlite else bar_view_name(store)
        where, params = [], {}
        if con_id is not None:
            where.append("con_id = :con_id")
            params["con_id"] = con_id
        for key, op, value in (("start", ">=", start), ("end", "<", end)):
            if value is not None:
                where.append(f"time {op} :{key}")
                params[key] = to_epoch_us(value) if sqlite else value
        sql = f"SELECT time, con_id, {', '.join(_QUOTE_COLS + _TRADE_COLS)} FROM {name}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with engine.connect() as conn:
            rows = conn.execute(text(sql + " ORDER BY con_id, time"), params).all()
    finally:
        engine.dispose()
    out = []
    for r in rows:
        t = from_epoch_us(int(r[0])) if sqlite else r[0].astimezone(UTC)
        out.append(MinuteBar(t, int(r[1]), *(_f(v) for v in r[2:])))
    return out
