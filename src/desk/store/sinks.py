"""Sinks: synchronous batch writers for SQLite and PostgreSQL / TimescaleDB.

A sink is used from one thread at a time (the recorder's writer thread). Its
``write_batch(batch_id, rows)`` commits the rows of one batch *and* the batch id in
``recorder_batches`` in one transaction, and returns ``False`` without writing anything
when that batch id was already committed (a replayed spool batch): exactly-once.

Errors are translated into two kinds the recorder acts on:

* :class:`~desk.store.errors.SinkUnavailable` — the database is down, unreachable, the
  connection broke, the table vanished, permission denied: spool and retry later;
* :class:`~desk.store.errors.SinkDataError` — the database or the driver refused the values
  (e.g. ``con_id`` out of ``integer`` range, a time that is not a datetime): retrying the
  same rows is pointless, the recorder isolates and rejects the bad rows.

PostgreSQL writes use psycopg 3 binary ``COPY ... FROM STDIN (FORMAT BINARY)`` with
``set_types`` (measured here: ~4x psycopg ``executemany``; see ``bench/ingest.py``).
SQLite writes use ``executemany`` inside one ``BEGIN IMMEDIATE`` transaction, in WAL mode
with ``synchronous=NORMAL`` (durable at checkpoints, never corrupt).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

import psycopg
import psycopg.errors
from psycopg import sql

from desk.domain.models import TickRecord
from desk.store.codec import INT4_MAX, INT4_MIN, ONE_US, TICK_COLUMNS, UNIX_EPOCH, to_epoch_us
from desk.store.errors import SinkDataError, SinkUnavailable, StoreError
from desk.store.schema import SchemaInfo, StoreSchema, ensure_schema, make_engine
from desk.store.urls import DatabaseTarget, parse_database_url

#: psycopg binary dumpers, in TICK_COLUMNS order. ``kind`` is ``char(1)``: its binary wire
#: format is the same as text's, and psycopg has no binary ``bpchar`` dumper.
PG_COPY_TYPES = ["timestamptz", "int4", "text", "text", "float8", "float8", "float8", "float8", "float8", "float8"]

#: libpq options set on every recorder connection unless the URL sets them: TCP
#: keepalives and a user timeout so a vanished server is noticed within about a minute
#: instead of hanging the writer thread, and a statement timeout for the same reason.
PG_CONNECT_DEFAULTS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
    "options": "-c statement_timeout=120000",
}


class TickSink(Protocol):
    """What the recorder needs from a database."""

    target: DatabaseTarget
    store: StoreSchema
    schema_info: SchemaInfo | None

    def connect(self) -> SchemaInfo:
        """(Re)connect and create the tables if absent. Raises :class:`SinkUnavailable`."""
        ...

    def write_batch(self, batch_id: uuid.UUID, rows: Sequence[TickRecord]) -> bool:
        """Commit ``rows`` once; ``False`` if ``batch_id`` was already committed."""
        ...

    def write_batches(self, batches: Sequence[tuple[uuid.UUID, Sequence[TickRecord]]]) -> list[bool]:
        """Commit several batches in one transaction (each keeps its id); per batch,
        ``False`` if it was already committed. All or nothing."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete the ticks older than ``before`` (UTC); rows deleted (-1 when TimescaleDB
        dropped whole chunks and does not count rows). Raises SinkUnavailable."""
        ...

    @property
    def connected(self) -> bool: ...

    def close(self) -> None: ...


def open_sink(
    url: str | DatabaseTarget,
    *,
    table: str = "ticks",
    schema: str | None = None,
    application_name: str = "desk-recorder",
    timescale: bool = True,
    write_timeout: float = 10.0,
) -> TickSink:
    """The sink for ``url`` (not connected yet). Raises :class:`StoreError` for a bad URL,
    a bad table/schema name, or a PostgreSQL ``schema`` on SQLite. ``write_timeout``:
    seconds a PostgreSQL write may wait for the server before it is treated as down."""
    target = url if isinstance(url, DatabaseTarget) else parse_database_url(url)
    store = StoreSchema(table=table, schema=schema)
    if target.dialect == "sqlite":
        if schema is not None:
            raise StoreError("a schema can only be given for PostgreSQL, not for SQLite")
        return SqliteSink(target, store)
    return PostgresSink(target, store, application_name=application_name, timescale=timescale, write_timeout=write_timeout)


def describe_error(exc: BaseException, target: DatabaseTarget, *, action: str = "connect to") -> str:
    """One line for a driver error: ``cannot connect to PostgreSQL at h:p (...): connection refused``."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    first = text.splitlines()[0] if text else type(orig).__name__
    if "failed: " in first:
        first = first.rsplit("failed: ", 1)[1]
    first = first.strip().rstrip(".")
    if first[:1].isupper() and not first[1:2].isupper():
        first = first[0].lower() + first[1:]
    return f"cannot {action} {target.where}: {first}"


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

_PG_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.InternalError,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.InvalidSchemaName,
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.ReadOnlySqlTransaction,
)
_PG_DATA = (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError, TypeError, ValueError, OverflowError)


class PostgresSink:
    """Binary-COPY writer into PostgreSQL / TimescaleDB (see the module docstring)."""

    def __init__(
        self,
        target: DatabaseTarget,
        store: StoreSchema,
        *,
        application_name: str = "desk-recorder",
        connect_timeout: int = 5,
        timescale: bool = True,
        write_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.store = store
        self.application_name = application_name
        self.connect_timeout = connect_timeout
        #: seconds a write may wait for the server before the connection is cut and the
        #: database treated as down (its rows spooled): a hung server, or a network that
        #: swallows packets, never leaves rows piling up in memory
        self.write_timeout = write_timeout
        self.timeouts = 0
        self.timescale = timescale
        self.schema_info: SchemaInfo | None = None
        self._conn: psycopg.Connection[Any] | None = None
        ident = sql.Identifier(store.schema, store.table) if store.schema else sql.Identifier(store.table)
        batches = sql.Identifier(store.schema, "recorder_batches") if store.schema else sql.Identifier("recorder_batches")
        self._ident = ident
        self._sql_copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            ident, sql.SQL(", ").join(sql.Identifier(c) for c in TICK_COLUMNS)
        )
        self._sql_mark = sql.SQL(
            "INSERT INTO {} (batch_id, table_name, rows) "
            "SELECT * FROM unnest(%s::uuid[], %s::text[], %s::int[]) "
            "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id"
        ).format(batches)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def connect(self) -> SchemaInfo:
        self.close()
        engine = make_engine(self.target, application_name=self.application_name, connect_timeout=self.connect_timeout)
        try:
            self.schema_info = ensure_schema(engine, self.store, timescale=self.timescale)
        except Exception as exc:  # noqa: BLE001 - every failure here means "not usable now"
            raise SinkUnavailable(describe_error(exc, self.target)) from None
        finally:
            engine.dispose()
        kwargs = {**PG_CONNECT_DEFAULTS, **self.target.connect_kwargs}
        kwargs.setdefault("application_name", self.application_name)
        kwargs.setdefault("connect_timeout", self.connect_timeout)
        try:
            self._conn = psycopg.connect(autocommit=False, **kwargs)
        except psycopg.Error as exc:
            raise SinkUnavailable(describe_error(exc, self.target)) from None
        return self.schema_info

    def write_batch(self, batch_id: uuid.UUID, rows: Sequence[TickRecord]) -> bool:
        return self.write_batches([(batch_id, rows)])[0]

    def write_batches(self, batches: Sequence[tuple[uuid.UUID, Sequence[TickRecord]]]) -> list[bool]:
        conn = self._conn
        if conn is None or conn.closed:
            raise SinkUnavailable(f"not connected to {self.target.where}")
        timer = threading.Timer(self.write_timeout, self._cut, args=(conn,))
        timer.daemon = True
        timer.start()
        try:
            return self._write_batches(conn, batches)
        except SinkUnavailable as exc:
            if self._cut_fired:
                raise SinkUnavailable(
                    f"{self.target.where} did not answer a write within {self.write_timeout:g} s; treated as down"
                ) from exc
            raise
        finally:
            timer.cancel()
            self._cut_fired = False

    _cut_fired = False

    def _cut(self, conn: psycopg.Connection[Any]) -> None:
        """Timer thread: the write has waited ``write_timeout``: shut the socket down, so
        the writer thread's blocked libpq call returns with an error (libpq has no
        client-side timeout of its own)."""
        self._cut_fired = True
        self.timeouts += 1
        try:
            fd = conn.pgconn.socket
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, psycopg.Error):
            pass

    def _write_batches(
        self, conn: psycopg.Connection[Any], batches: Sequence[tuple[uuid.UUID, Sequence[TickRecord]]]
    ) -> list[bool]:
        try:
            with conn.cursor() as cur:
                cur.execute(
                    self._sql_mark,
                    ([b[0] for b in batches], [self.store.table] * len(batches), [len(b[1]) for b in batches]),
                )
                fresh = {row[0] for row in cur.fetchall()}
                if not fresh:
                    conn.rollback()
                    return [False] * len(batches)
                with cur.copy(self._sql_copy) as copy:
                    copy.set_types(PG_COPY_TYPES)
                    write = copy.write_row
                    for batch_id, rows in batches:
                        if batch_id not in fresh:
                            continue
                        for row in rows:
                            _, c, _, _, b, a, bs, az, p, z = row
                            x = b + a + bs + az + p + z
                            if x == x and INT4_MIN <= c <= INT4_MAX:
                                write(row)
                            else:
                                # psycopg's binary int4 dumper silently wraps larger ints
                                if not INT4_MIN <= c <= INT4_MAX:
                                    raise ValueError(f"con_id {c} out of integer range")
                                # some value is nan (absent): store SQL NULL
                                write(
                                    (
                                        row[0],
                                        row[1],
                                        row[2],
                                        row[3],
                                        None if b != b else b,
                                        None if a != a else a,
                                        None if bs != bs else bs,
                                        None if az != az else az,
                                        None if p != p else p,
                                        None if z != z else z,
                                    )
                                )
            conn.commit()
            return [batch_id in fresh for batch_id, _ in batches]
        except _PG_UNAVAILABLE as exc:
            self._after_error()
            raise SinkUnavailable(describe_error(exc, self.target, action="write to")) from None
        except _PG_DATA as exc:
            if not self._after_error():
                raise SinkUnavailable(describe_error(exc, self.target, action="write to")) from None
            raise SinkDataError(f"{self.target.where} refused batch: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            self._after_error()
            raise SinkUnavailable(describe_error(exc, self.target, action="write to")) from None

    def prune(self, before: datetime) -> int:
        conn = self._conn
        if conn is None or conn.closed:
            raise SinkUnavailable(f"not connected to {self.target.where}")
        rel = self.store.qualified_table
        try:
            with conn.cursor() as cur:
                if self.schema_info is not None and self.schema_info.hypertable:
                    cur.execute("SELECT drop_chunks(CAST(%s AS regclass), older_than => %s)", (rel, before))
                    n = -1
                else:
                    cur.execute(sql.SQL("DELETE FROM {} WHERE time < %s").format(self._ident), (before,))
                    n = cur.rowcount
            conn.commit()
            return n
        except psycopg.Error as exc:
            self._after_error()
            raise SinkUnavailable(describe_error(exc, self.target, action="prune")) from None

    def _after_error(self) -> bool:
        """Roll back after a failed write; True if the connection is still usable."""
        conn = self._conn
        if conn is None:
            return False
        if conn.closed or conn.broken:
            self.close()
            return False
        try:
            conn.rollback()
            return True
        except psycopg.Error:
            self.close()
            return False

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    @property
    def backend_pid(self) -> int | None:
        """Server process id of the write connection (for tests and diagnostics)."""
        return self._conn.info.backend_pid if self.connected and self._conn else None


# --------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------

_SQLITE_UNAVAILABLE = (sqlite3.OperationalError, sqlite3.InternalError, sqlite3.NotSupportedError)
_SQLITE_DATA = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.DataError,
    TypeError,
    ValueError,
    OverflowError,
    AttributeError,
)


class SqliteSink:
    """``executemany`` writer into a SQLite file in WAL mode (see the module docstring).

    ``time`` is stored as integer µs since the epoch; ``nan`` becomes NULL (SQLite does
    that itself when binding a NaN).
    """

    def __init__(self, target: DatabaseTarget, store: StoreSchema, *, busy_timeout: float = 30.0) -> None:
        self.target = target
        self.store = store
        self.busy_timeout = busy_timeout
        self.schema_info: SchemaInfo | None = None
        self.journal_mode = ""
        self._conn: sqlite3.Connection | None = None
        cols = ", ".join(f'"{c}"' for c in TICK_COLUMNS)
        self._sql_insert = f'INSERT INTO "{store.table}" ({cols}) VALUES ({", ".join("?" * len(TICK_COLUMNS))})'
        self._sql_mark = 'INSERT OR IGNORE INTO "recorder_batches" (batch_id, table_name, rows, committed_at) VALUES (?, ?, ?, ?)'

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> SchemaInfo:
        self.close()
        path = self.target.path
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkUnavailable(f"cannot create the folder of {self.target.where}: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SinkUnavailable(describe_error(exc, self.target, action="open")) from None
        try:
            self.journal_mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            conn.execute("PRAGMA synchronous=NORMAL")
            engine = make_engine(self.target)
            try:
                self.schema_info = ensure_schema(engine, self.store)
            finally:
                engine.dispose()
        except Exception as exc:  # noqa: BLE001
            conn.close()
            raise SinkUnavailable(describe_error(exc, self.target, action="open")) from None
        self._conn = conn
        return self.schema_info

    def write_batch(self, batch_id: uuid.UUID, rows: Sequence[TickRecord]) -> bool:
        return self.write_batches([(batch_id, rows)])[0]

    def write_batches(self, batches: Sequence[tuple[uuid.UUID, Sequence[TickRecord]]]) -> list[bool]:
        conn = self._conn
        if conn is None:
            raise SinkUnavailable(f"{self.target.where} is not open")
        epoch, us = UNIX_EPOCH, ONE_US
        fresh: list[bool] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            now_us = to_epoch_us(datetime.now(timezone.utc))
            for batch_id, rows in batches:
                cur = conn.execute(self._sql_mark, (batch_id.hex, self.store.table, len(rows), now_us))
                fresh.append(cur.rowcount == 1)
                if cur.rowcount == 1:
                    conn.executemany(
                        self._sql_insert,
                        (((t - epoch) // us, c, s, k, b, a, bs, az, p, z) for t, c, s, k, b, a, bs, az, p, z in rows),
                    )
            conn.execute("COMMIT")
            return fresh
        except _SQLITE_UNAVAILABLE as exc:
            self._rollback()
            raise SinkUnavailable(describe_error(exc, self.target, action="write to")) from None
        except _SQLITE_DATA as exc:
            self._rollback()
            raise SinkDataError(f"{self.target.where} refused batch: {_one_line(exc)}") from None
        except sqlite3.Error as exc:
            self._rollback()
            raise SinkUnavailable(describe_error(exc, self.target, action="write to")) from None

    def prune(self, before: datetime) -> int:
        conn = self._conn
        if conn is None:
            raise SinkUnavailable(f"{self.target.where} is not open")
        try:
            cur = conn.execute(f'DELETE FROM "{self.store.table}" WHERE time < ?', (to_epoch_us(before),))
            return cur.rowcount
        except sqlite3.Error as exc:
            self._rollback()
            raise SinkUnavailable(describe_error(exc, self.target, action="prune")) from None

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
