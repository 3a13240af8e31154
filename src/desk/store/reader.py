"""Reading recorded ticks back (tests, ``desk doctor``, replay of recorded days).

Synchronous; call through :func:`asyncio.to_thread` from the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import func, select

from desk.domain.models import TickRecord
from desk.store.errors import StoreError
from desk.store.schema import StoreSchema, make_engine
from desk.store.urls import parse_database_url


def iter_ticks(
    url: str,
    *,
    table: str = "ticks",
    schema: str | None = None,
    con_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    batch_size: int = 10_000,
) -> Iterator[TickRecord]:
    """Yield recorded ticks ordered by time, optionally for one conId and within
    ``start <= time < end`` (tz-aware; naive means UTC).

    Times come back tz-aware UTC; SQL NULL prices/sizes come back as ``nan``.
    Raises :class:`StoreError` for a bad URL and SQLAlchemy errors for database failures.
    """
    target = parse_database_url(url)
    if target.dialect == "sqlite" and schema is not None:
        raise StoreError("a schema can only be given for PostgreSQL, not for SQLite")
    store = StoreSchema(table=table, schema=schema)
    t = store.ticks
    query = select(t)
    if con_id is not None:
        query = query.where(t.c.con_id == con_id)
    if start is not None:
        query = query.where(t.c.time >= start)
    if end is not None:
        query = query.where(t.c.time < end)
    query = query.order_by(t.c.time, t.c.con_id)
    engine = make_engine(target, application_name="desk-reader")
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
            for row in result:
                yield TickRecord(*row)
    finally:
        engine.dispose()


def read_ticks(url: str, **kwargs: object) -> list[TickRecord]:
    """All of :func:`iter_ticks` as a list (same arguments)."""
    return list(iter_ticks(url, **kwargs))  # type: ignore[arg-type]


def count_ticks(url: str, *, table: str = "ticks", schema: str | None = None) -> int:
    """Exact number of rows in the tick table."""
    store = StoreSchema(table=table, schema=schema)
    engine = make_engine(url, application_name="desk-reader")
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(store.ticks)) or 0)
    finally:
        engine.dispose()
