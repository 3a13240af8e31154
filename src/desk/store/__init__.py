"""desk.store: the tick database (SQLite, PostgreSQL, TimescaleDB).

* :class:`TickRecorder` — O(1) ``submit`` on the event loop, batched binary COPY on a
  writer thread, spool and exactly-once replay across database outages;
* :mod:`desk.store.schema` — SQLAlchemy Core tables (``ticks``, ``recorder_batches``,
  ``instruments``) and their creation, TimescaleDB when the server has it;
* :func:`probe_database` — checks for ``desk doctor``;
* :func:`read_ticks` / :func:`iter_ticks` — reading recorded ticks back.
* :class:`AuditLog` — persistence of the append-only, write-ahead order audit trail
  (the order path itself is :mod:`desk.orders`).

Imports only desk.domain, SQLAlchemy, psycopg and the standard library.
"""

from typing import TYPE_CHECKING

from desk.domain.lazy import lazy_exports

if TYPE_CHECKING:
    from desk.store.audit import AuditLog
    from desk.store.audit_records import (
        AuditError,
        AuditEvent,
        AuditRecord,
        IntentState,
        new_client_order_id,
        new_correlation_id,
    )
    from desk.store.doctor import DatabaseInfo, probe_database
    from desk.store.errors import SinkDataError, SinkUnavailable, StoreError
    from desk.store.reader import count_ticks, iter_ticks, read_ticks
    from desk.store.recorder import BatchResult, TickRecorder
    from desk.store.schema import SchemaInfo, StoreSchema, ensure_schema, make_engine, upsert_instruments
    from desk.store.sinks import PostgresSink, SqliteSink, open_sink
    from desk.store.spool import Spool, SpoolCorrupt, decode_batch, encode_batch
    from desk.store.urls import DatabaseTarget, parse_database_url

#: where each name of the package lives: imported on first use (PEP 562), so the order
#: path's import of the audit records, or of the URL parser, loads neither SQLAlchemy nor
#: psycopg (the engine opens the store after its first quote)
_HOMES = {
    "AuditLog": "desk.store.audit",
    **dict.fromkeys(
        ("AuditError", "AuditEvent", "AuditRecord", "IntentState", "new_client_order_id", "new_correlation_id"),
        "desk.store.audit_records",
    ),
    **dict.fromkeys(("DatabaseInfo", "probe_database"), "desk.store.doctor"),
    **dict.fromkeys(("SinkDataError", "SinkUnavailable", "StoreError"), "desk.store.errors"),
    **dict.fromkeys(("count_ticks", "iter_ticks", "read_ticks"), "desk.store.reader"),
    **dict.fromkeys(("BatchResult", "TickRecorder"), "desk.store.recorder"),
    **dict.fromkeys(("SchemaInfo", "StoreSchema", "ensure_schema", "make_engine", "upsert_instruments"), "desk.store.schema"),
    **dict.fromkeys(("PostgresSink", "SqliteSink", "open_sink"), "desk.store.sinks"),
    **dict.fromkeys(("Spool", "SpoolCorrupt", "decode_batch", "encode_batch"), "desk.store.spool"),
    **dict.fromkeys(("DatabaseTarget", "parse_database_url"), "desk.store.urls"),
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())


__all__ = [
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditRecord",
    "BatchResult",
    "DatabaseInfo",
    "DatabaseTarget",
    "IntentState",
    "PostgresSink",
    "SchemaInfo",
    "SinkDataError",
    "SinkUnavailable",
    "Spool",
    "SpoolCorrupt",
    "SqliteSink",
    "StoreError",
    "StoreSchema",
    "TickRecorder",
    "count_ticks",
    "decode_batch",
    "encode_batch",
    "ensure_schema",
    "iter_ticks",
    "make_engine",
    "new_client_order_id",
    "new_correlation_id",
    "open_sink",
    "parse_database_url",
    "probe_database",
    "read_ticks",
    "upsert_instruments",
]
