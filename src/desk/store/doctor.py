"""``desk doctor`` checks of the tick database: :func:`probe_database`."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.errors
from psycopg import sql

from desk.store.errors import StoreError
from desk.store.schema import check_identifier
from desk.store.sinks import describe_error
from desk.store.urls import DatabaseTarget, parse_database_url


@dataclass
class DatabaseInfo:
    """What :func:`probe_database` found.

    ``dialect``: ``sqlite`` / ``postgresql`` (empty when the URL itself is invalid).
    ``reachable``: a connection could be made (SQLite: the file exists and opens, or does
    not exist yet but its folder can be created). ``error``: one line when not reachable.
    ``server_version``: PostgreSQL ``15.20`` or the SQLite library version.
    ``timescaledb_available`` / ``timescaledb_installed`` / ``timescaledb_version``:
    the extension on the server / in this database. ``tick_rows``: rows in the tick table
    (``None`` if it does not exist; ``tick_rows_estimated`` when counting timed out and
    the planner's estimate is shown). ``hypertable``: the tick table is a hypertable.
    ``journal_mode``: SQLite only (``wal`` once desk has opened the file).
    """

    url: str
    dialect: str = ""
    where: str = ""
    reachable: bool = False
    error: str = ""
    server_version: str = ""
    timescaledb_available: bool = False
    timescaledb_installed: bool = False
    timescaledb_version: str = ""
    tick_table: str = "ticks"
    tick_table_exists: bool = False
    tick_rows: int | None = None
    tick_rows_estimated: bool = False
    hypertable: bool = False
    journal_mode: str = ""

    def summary(self) -> str:
        """One line for ``desk doctor``."""
        if not self.reachable:
            return f"database: {self.error}"
        parts = [f"database: {self.where}"]
        if self.dialect == "postgresql":
            parts.append(f"PostgreSQL {self.server_version}")
            if self.timescaledb_installed:
                parts.append(f"TimescaleDB {self.timescaledb_version}")
            elif self.timescaledb_available:
                parts.append("TimescaleDB available, not installed")
            else:
                parts.append("no TimescaleDB (plain tables)")
        else:
            parts.append(f"SQLite {self.server_version}")
            if self.journal_mode:
                parts.append(f"journal {self.journal_mode}")
        if self.tick_rows is None:
            parts.append(f"no {self.tick_table} table yet")
        else:
            approx = "~" if self.tick_rows_estimated else ""
            kind = " (hypertable)" if self.hypertable else ""
            parts.append(f"{self.tick_table}{kind}: {approx}{self.tick_rows:,} rows")
        return "; ".join(parts)


async def probe_database(url: str, *, table: str = "ticks", schema: str | None = None, timeout: float = 3.0) -> DatabaseInfo:
    """Check the database at ``url`` without changing anything (runs in a thread).

    Never raises for connection problems or an invalid URL: they are reported in
    ``error`` (e.g. ``cannot connect to PostgreSQL at 127.0.0.1:5433 (database test,
    user postgres): connection refused``). ``timeout``: connect timeout, seconds.
    """
    try:
        target = parse_database_url(url)
        check_identifier(table, "table")
        if schema is not None:
            check_identifier(schema, "schema")
    except StoreError as exc:
        return DatabaseInfo(url=str(url), error=str(exc), tick_table=table)
    info = DatabaseInfo(
        url=target.display,
        dialect=target.dialect,
        where=target.where,
        tick_table=f"{schema}.{table}" if schema else table,
    )
    if target.dialect == "sqlite":
        await asyncio.to_thread(_probe_sqlite, target, info, table)
    else:
        await asyncio.to_thread(_probe_postgres, target, info, table, schema, timeout)
    return info


def _probe_sqlite(target: DatabaseTarget, info: DatabaseInfo, table: str) -> None:
    path = target.path
    assert path is not None
    info.server_version = sqlite3.sqlite_version
    if not path.exists():
        ancestor = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("/"))
        if os.access(ancestor, os.W_OK):
            info.reachable = True
        else:
            info.error = f"cannot create {target.where}: {ancestor} is not writable"
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as exc:
        info.error = describe_error(exc, target, action="open")
        return
    try:
        info.journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        exists = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[0]
        info.reachable = True
        info.tick_table_exists = bool(exists)
        if exists:
            info.tick_rows = int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    except sqlite3.Error as exc:
        info.reachable = False
        info.error = describe_error(exc, target, action="read")
    finally:
        conn.close()


def _probe_postgres(target: DatabaseTarget, info: DatabaseInfo, table: str, schema: str | None, timeout: float) -> None:
    kwargs = {"application_name": "desk-doctor", **target.connect_kwargs}
    kwargs["connect_timeout"] = max(1, int(round(timeout)))
    try:
        conn = psycopg.connect(autocommit=True, **kwargs)
    except psycopg.Error as exc:
        info.error = describe_error(exc, target)
        return
    try:
        info.reachable = True
        v = conn.info.server_version
        info.server_version = f"{v // 10000}.{v % 10000}" if v >= 100000 else str(v)
        info.timescaledb_available = bool(
            conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()[0]  # type: ignore[index]
        )
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        info.timescaledb_installed = row is not None
        info.timescaledb_version = row[0] if row else ""
        rel = f'"{schema}"."{table}"' if schema else f'"{table}"'
        oid = conn.execute("SELECT to_regclass(%s)::oid", (rel,)).fetchone()[0]  # type: ignore[index]
        info.tick_table_exists = oid is not None
        if oid is None:
            return
        if info.timescaledb_installed:
            info.hypertable = bool(
                conn.execute(
                    "SELECT count(*) FROM timescaledb_information.hypertables "
                    "WHERE hypertable_name = %s AND hypertable_schema = coalesce(%s::name, current_schema())",
                    (table, schema),
                ).fetchone()[0]  # type: ignore[index]
            )
        ident = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        try:
            conn.execute("SET statement_timeout = 5000")
            info.tick_rows = int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0])  # type: ignore[index]
        except psycopg.errors.QueryCanceled:
            est = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s", (oid,)).fetchone()
            info.tick_rows = max(0, int(est[0])) if est else None
            info.tick_rows_estimated = True
    except psycopg.Error as exc:
        info.error = describe_error(exc, target, action="query")
    finally:
        conn.close()
