"""The tick recorder: O(1) ``submit`` on the event loop, batched writes on a thread.

Design (docs/design.md, "Recorder writes with binary COPY" and "Nothing recorded is
lost"):

* ``submit(rec)`` appends to an in-memory deque and bumps a counter: no I/O, no lock,
  safe in the broker's tick callback. The event loop never waits for the database.
* A dedicated writer thread takes batches of at most ``flush_rows`` rows, as soon as that
  many are queued or every ``flush_interval`` seconds, whichever comes first, and hands
  them to a sink (binary COPY into PostgreSQL, ``executemany`` into SQLite).
* Each batch has a UUID committed in ``recorder_batches`` in the same transaction as its
  rows. When a write fails because the database is unavailable the batch goes to the
  spool (files in ``spool_dir``, see :mod:`desk.store.spool`), and the thread reconnects
  with exponential backoff (``retry_min`` doubling up to ``retry_max`` seconds). Once
  connected it replays the spool oldest first, skipping batches whose id is already
  committed, before any newer batch: every row lands exactly once and in order.
* Rows the database refuses as invalid (not a datetime, conId beyond ``integer`` ...) are
  isolated from their batch and kept in ``spool_dir/rejected/``; the rest is written.

Invariant once idle: ``received == written + queued + spooled + rejected``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from desk.domain.models import RecorderStats, TickRecord
from desk.store.codec import normalize_row
from desk.store.errors import SinkDataError, SinkUnavailable, StoreError
from desk.store.schema import SchemaInfo
from desk.store.sinks import TickSink, open_sink
from desk.store.spool import Spool, SpoolCorrupt, other_spools
from desk.store.urls import database_key, parse_database_url

log = logging.getLogger(__name__)

#: seconds between two runs of the retention rule
PRUNE_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What happened to one batch, passed to ``on_batch`` on the event loop.

    ``outcome``: ``written`` (committed), ``spooled`` (database unavailable, kept in the
    spool), ``replayed`` (a spooled batch committed later), ``duplicate`` (a replayed
    batch that had already been committed: skipped), ``rejected`` (no valid row).
    ``seconds``: wall time of the attempt. ``stats``: counters right after it.
    """

    batch_id: uuid.UUID
    rows: int
    outcome: str
    seconds: float
    stats: RecorderStats


def spool_folder(spool_dir: str | PathLike[str], url: str, table: str = "ticks", schema: str | None = None) -> Path:
    """The folder under ``spool_dir`` holding the batches waiting for ``table`` (in
    ``schema``) of the database at ``url``: ``ticks-<database_key>``. Each database has
    its own, so rows are only replayed into the database they were meant for."""
    return Path(spool_dir).expanduser() / f"ticks-{database_key(url, schema or '', table)}"


class TickRecorder:
    """Records :class:`TickRecord` rows into SQLite or PostgreSQL / TimescaleDB.

    ``url``: ``sqlite:///path`` or ``postgresql+psycopg://user@host:5432/db`` (see
    :mod:`desk.store.urls`). ``flush_interval``: seconds between flushes at most;
    ``flush_rows``: rows per batch at most (a batch is written as soon as this many are
    queued). ``spool_dir``: folder for batches waiting for the database; ``None`` keeps
    them in memory only (lost if the process exits while the database is down).
    ``table`` / ``schema``: where ticks go (``schema`` is PostgreSQL only).
    ``on_batch``: called on the event loop with a :class:`BatchResult` after each batch.
    ``retry_min`` / ``retry_max``: reconnect backoff in seconds. ``strict``: make
    :meth:`start` raise :class:`StoreError` if the first connection fails (by default the
    recorder starts anyway, spools, and keeps retrying). ``timescale``: use TimescaleDB
    when the server has it. ``application_name``: shown in ``pg_stat_activity``.
    ``write_timeout``: seconds a PostgreSQL write may wait for a server that stopped
    answering before the connection is cut and the rows spooled (memory stays bounded).
    ``retention_days``: ticks older than this many days are deleted (TimescaleDB: whole
    chunks dropped) after each connect and every hour; 0 keeps everything.
    ``max_batches_per_commit``: when several full batches are already waiting (a burst,
    or catching up after a slow write) up to this many share one transaction, each
    keeping its own id; this saves a commit (WAL flush) per batch. Batches are never
    larger than ``flush_rows``.

    Raises :class:`StoreError` at construction for an invalid URL, table or schema name,
    or out-of-range ``flush_interval`` / ``flush_rows``.

    Usage::

        rec = TickRecorder(settings.database_url, spool_dir=settings.effective_spool_dir)
        await rec.start()
        rec.submit(tick)          # from the broker's callback, on the event loop
        await rec.close()         # flushes everything first
    """

    def __init__(
        self,
        url: str,
        *,
        flush_interval: float = 0.25,
        flush_rows: int = 5000,
        spool_dir: str | PathLike[str] | None = None,
        table: str = "ticks",
        schema: str | None = None,
        on_batch: Callable[[BatchResult], Any] | None = None,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        strict: bool = False,
        timescale: bool = True,
        application_name: str = "desk-recorder",
        max_batches_per_commit: int = 8,
        write_timeout: float = 10.0,
        retention_days: float = 0.0,
    ) -> None:
        if not (0 < flush_interval <= 3600):
            raise StoreError(f"flush_interval must be in (0, 3600] seconds, got {flush_interval!r}")
        if not (isinstance(flush_rows, int) and 1 <= flush_rows <= 10_000_000):
            raise StoreError(f"flush_rows must be an integer in [1, 10000000], got {flush_rows!r}")
        if not (isinstance(max_batches_per_commit, int) and max_batches_per_commit >= 1):
            raise StoreError(f"max_batches_per_commit must be an integer >= 1, got {max_batches_per_commit!r}")
        if not (0 < retry_min <= retry_max):
            raise StoreError(f"need 0 < retry_min <= retry_max, got {retry_min!r}, {retry_max!r}")
        self.target = parse_database_url(url)
        self._sink: TickSink = open_sink(
            self.target,
            table=table,
            schema=schema,
            application_name=application_name,
            timescale=timescale,
            write_timeout=write_timeout,
        )
        # each database has its own spool folder: rows spooled for one are never replayed
        # into another (the folder's DATABASE file says which it is)
        self._spool_root = Path(spool_dir).expanduser() if spool_dir is not None else None
        own = spool_folder(self._spool_root, url, table, schema) if self._spool_root is not None else None
        self._spool = Spool(own, identity=f"{self.target.display} table {schema + '.' if schema else ''}{table}")
        self._flush_interval = float(flush_interval)
        self._flush_rows = flush_rows
        self._on_batch = on_batch
        self._retry_min = float(retry_min)
        self._retry_max = float(retry_max)
        self._strict = strict
        self._max_group = max_batches_per_commit
        if not (retention_days >= 0):
            raise StoreError(f"retention_days must be >= 0, got {retention_days!r}")
        self._retention_days = float(retention_days)
        self._next_prune = 0.0
        #: rows deleted by the retention rule since start (-1 entries: chunks dropped)
        self.rows_pruned = 0

        self._queue: deque[TickRecord] = deque()
        self._received = 0  # event-loop side
        self._written = 0  # writer side from here on
        self._rejected = 0
        self._handled = 0
        self._inflight = 0
        self._errors = 0
        self._last_error = ""
        self._backoff = self._retry_min
        self._next_retry = 0.0
        self._down_logged = False

        self._wake = threading.Event()
        self._flush_requested = False
        self._closing = False
        self._started = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._close_task: asyncio.Future[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ public API
    @property
    def stats(self) -> RecorderStats:
        """A snapshot of the counters (see :class:`RecorderStats`); cheap, any time.

        Not atomic across fields: while a batch moves from memory to the database or the
        spool a row may briefly be counted twice.
        """
        return RecorderStats(
            received=self._received,
            written=self._written,
            queued=len(self._queue) + self._inflight,
            spooled=self._spool.rows_pending,
            errors=self._errors,
            last_error=self._last_error,
        )

    @property
    def rejected(self) -> int:
        """Rows the database refused as invalid (kept in ``spool_dir/rejected/``)."""
        return self._rejected

    @property
    def connected(self) -> bool:
        """True while the writer holds an open database connection."""
        return self._sink.connected

    @property
    def schema_info(self) -> SchemaInfo | None:
        """What the last (re)connection found: TimescaleDB, hypertable, warnings."""
        return self._sink.schema_info

    @property
    def sink(self) -> TickSink:
        """The sink in use (owned by the writer thread: read-only use, e.g. tests)."""
        return self._sink

    def submit(self, rec: TickRecord) -> None:
        """Queue one tick. O(1), never blocks, never does I/O.

        Call it from one thread at a time (normally the event loop). Values are not
        checked here; invalid rows are rejected later without losing the rest of the
        batch. Raises :class:`StoreError` after :meth:`close`.
        """
        if self._closing:
            raise StoreError("tick recorder is closed")
        queue = self._queue
        queue.append(rec)
        self._received += 1
        if len(queue) == self._flush_rows:
            self._wake.set()

    def submit_many(self, recs: Iterable[TickRecord]) -> None:
        """Queue many ticks at once (same rules as :meth:`submit`)."""
        if self._closing:
            raise StoreError("tick recorder is closed")
        rows = recs if isinstance(recs, list) else list(recs)
        self._queue.extend(rows)
        self._received += len(rows)
        if len(self._queue) >= self._flush_rows:
            self._wake.set()

    async def start(self) -> None:
        """Start the writer thread: open the spool, connect, create the tables if absent
        and replay any spooled batches (from this or an earlier run).

        Returns once that first attempt is over; when the database is unreachable the
        recorder still starts (ticks go to the spool, the thread keeps retrying) unless
        ``strict`` was given, in which case :class:`StoreError` is raised with a message
        such as ``cannot connect to PostgreSQL at 127.0.0.1:5433 (...): connection refused``.
        Idempotent.
        """
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[str] = self._loop.create_future()
        self._stopped = self._loop.create_future()
        self._started = True
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"desk-recorder-{self._sink.store.table}", daemon=True
        )
        self._thread.start()
        error = await ready
        if error and self._strict:
            await self.close()
            raise StoreError(error)

    async def flush(self) -> None:
        """Wait until every row submitted before this call is written, spooled or rejected.

        Forces a flush now instead of waiting for ``flush_interval``. Does not wait for
        the spool to be replayed (see ``stats.spooled``).
        """
        target = self._received
        if self._handled >= target or not self._started:
            return
        if self._thread is None or not self._thread.is_alive():
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((target, fut))
        self._flush_requested = True
        self._wake.set()
        await fut

    async def close(self) -> None:
        """Flush everything, replay the spool if the database is up, stop the thread and
        disconnect. Rows the database cannot take now stay in the spool for the next
        start. Idempotent; :meth:`submit` raises afterwards."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        await asyncio.shield(self._close_task)

    async def __aenter__(self) -> TickRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ event-loop side
    async def _close(self) -> None:
        pending = bool(self._queue)
        self._closing = True
        if not self._started:
            if not pending:
                return
            await self.start()
        self._wake.set()
        assert self._stopped is not None
        await self._stopped

    def _resolve_waiters(self) -> None:
        handled = self._handled
        alive = self._thread is not None and self._thread.is_alive()
        keep = []
        for target, fut in self._waiters:
            if fut.done():
                continue
            if handled >= target or not alive:
                fut.set_result(None)
            else:
                keep.append((target, fut))
        self._waiters = keep

    def _call_on_batch(self, result: BatchResult) -> None:
        try:
            assert self._on_batch is not None
            self._on_batch(result)
        except Exception:  # noqa: BLE001 - a bad callback must not stop recording
            log.exception("on_batch callback failed")

    def _to_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass

    # ------------------------------------------------------------------ writer thread
    def _run(self, ready: asyncio.Future[str]) -> None:
        try:
            try:
                for warning in self._spool.open():
                    self._error(warning)
                if self._spool_root is not None and self._spool.directory is not None:
                    for line in other_spools(self._spool_root, self._spool.directory):
                        log.warning("tick recorder: %s", line)
            except StoreError as exc:
                self._error(f"{exc}; spooling in memory")
                self._spool.directory = None
            if self._connect():
                self._replay()
            self._to_loop(_set_result, ready, "" if self._sink.connected else self._last_error)
            self._main_loop()
        except BaseException:  # pragma: no cover - a bug: say so loudly, keep the data
            log.exception("tick recorder writer thread crashed")
            self._error("writer thread crashed (see log)")
            raise
        finally:
            self._finish()
            self._to_loop(_set_result, ready, self._last_error)

    def _main_loop(self) -> None:
        queue = self._queue
        interval = self._flush_interval
        next_flush = time.monotonic() + interval
        while True:
            if not (self._closing or self._flush_requested) and len(queue) < self._flush_rows:
                timeout = next_flush - time.monotonic()
                if not self._sink.connected or len(self._spool):
                    timeout = min(timeout, self._next_retry - time.monotonic())
                if timeout > 0:
                    self._wake.wait(timeout)
            self._wake.clear()
            closing = self._closing
            flush_all = closing or self._flush_requested
            self._flush_requested = False
            now = time.monotonic()
            if now >= next_flush:
                flush_all = True
                next_flush = now + interval
            if (not self._sink.connected or len(self._spool)) and now >= self._next_retry:
                if self._sink.connected or self._connect():
                    self._replay()
            if self._retention_days and self._sink.connected and now >= self._next_prune:
                self._prune(now)
            while len(queue) >= self._flush_rows or (flush_all and queue):
                self._handle(self._take(flush_all))
            if self._waiters:
                self._to_loop(self._resolve_waiters)
            if closing and not queue:
                return

    def _finish(self) -> None:
        if self._sink.connected and len(self._spool):
            self._replay()
        if self._spool.directory is None and self._spool.rows_pending:
            self._error(f"{self._spool.rows_pending} rows were waiting for the database and are lost (no spool_dir)")
        elif self._spool.rows_pending:
            log.warning(
                "%d rows stay in the spool %s until the database is reachable",
                self._spool.rows_pending,
                self._spool.directory,
            )
        self._sink.close()
        self._to_loop(self._resolve_waiters)
        if self._stopped is not None:
            self._to_loop(_set_result, self._stopped, None)

    def _take(self, flush_all: bool) -> list[list[TickRecord]]:
        """Pop the next batches: full ones (up to ``max_batches_per_commit``), plus the
        partial remainder when flushing everything."""
        queue, size = self._queue, self._flush_rows
        avail = len(queue)
        full = min(avail // size, self._max_group)
        sizes = [size] * full
        if flush_all and full < self._max_group and avail - full * size > 0:
            sizes.append(avail - full * size)
        self._inflight = sum(sizes)
        popleft = queue.popleft
        return [[popleft() for _ in range(n)] for n in sizes]

    def _handle(self, batches: list[list[TickRecord]]) -> None:
        """Write fresh batches (one transaction when there are several), or spool them
        when the database is not usable. Order is kept: once one batch has to be spooled,
        the following ones are spooled too."""
        start = time.perf_counter()
        pairs = [(uuid.uuid4(), batch) for batch in batches]
        total = self._inflight
        to_spool: list[tuple[uuid.UUID, list[TickRecord]]] = []
        if not self._sink.connected or len(self._spool):
            to_spool = pairs
        elif len(pairs) > 1 and self._write_group(pairs, start):
            pass
        else:
            for batch_id, batch in pairs:
                if to_spool or not self._sink.connected:
                    to_spool.append((batch_id, batch))
                    continue
                rest, outcome = self._write(batch_id, batch)
                if rest is not None:
                    to_spool.append((batch_id, rest))
                else:
                    self._report(batch_id, len(batch), outcome, start)
        for batch_id, rows in to_spool:
            problem = self._spool.append(batch_id, rows)
            if problem:
                self._error(problem)
            self._report(batch_id, len(rows), "spooled", start)
        self._handled += total
        self._inflight = 0

    def _write_group(self, pairs: list[tuple[uuid.UUID, list[TickRecord]]], start: float) -> bool:
        """Several batches in one transaction. True when done with all of them; False
        leaves them to the one-batch-at-a-time path (a data error to isolate, or the
        database became unavailable, in which case that path spools them)."""
        try:
            fresh = self._sink.write_batches(pairs)
        except SinkDataError:
            return False
        except SinkUnavailable as exc:
            self._unavailable(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001
            log.exception("unexpected error writing tick batches")
            self._unavailable(f"unexpected error writing to {self.target.where}: {exc!r}")
            return False
        for (batch_id, batch), ok in zip(pairs, fresh, strict=True):
            self._written += len(batch)
            self._report(batch_id, len(batch), "written" if ok else "duplicate", start)
        return True

    def _write(self, batch_id: uuid.UUID, rows: list[TickRecord]) -> tuple[list[TickRecord] | None, str]:
        """Try to commit ``rows``. Returns ``(None, outcome)`` when done with them, or
        ``(rows_to_spool, "spooled")`` when the database is unavailable."""
        try:
            fresh = self._sink.write_batch(batch_id, rows)
            self._written += len(rows)
            return None, "written" if fresh else "duplicate"
        except SinkUnavailable as exc:
            self._unavailable(str(exc))
            return rows, "spooled"
        except SinkDataError as exc:
            return self._write_valid(batch_id, rows, str(exc))
        except Exception as exc:  # noqa: BLE001 - unknown: keep the rows, retry later
            log.exception("unexpected error writing a tick batch")
            self._unavailable(f"unexpected error writing to {self.target.where}: {exc!r}")
            return rows, "spooled"

    def _write_valid(self, batch_id: uuid.UUID, rows: list[TickRecord], why: str) -> tuple[list[TickRecord] | None, str]:
        good: list[TickRecord] = []
        bad: list[tuple[object, str]] = []
        for row in rows:
            clean, reason = normalize_row(row)
            if clean is None:
                bad.append((row, reason))
            else:
                good.append(clean)
        if good:
            try:
                fresh = self._sink.write_batch(batch_id, good)
                self._written += len(good)
            except SinkUnavailable as exc:
                self._unavailable(str(exc))
                self._reject(batch_id, bad, why)
                return good, "spooled"
            except (SinkDataError, Exception) as exc:  # noqa: BLE001 - still refused: reject all
                bad.extend((row, str(exc)) for row in good)
                good = []
                fresh = False
        else:
            fresh = False
        self._reject(batch_id, bad, why)
        if good:
            return None, "written" if fresh else "duplicate"
        return None, "rejected"

    def _reject(self, batch_id: uuid.UUID, bad: list[tuple[object, str]], why: str) -> None:
        if not bad:
            return
        self._rejected += len(bad)
        where = self._spool.reject(batch_id, bad)
        self._error(f"{why}; {where}")

    def _prune(self, now: float) -> None:
        """The retention rule: delete ticks older than ``retention_days`` (UTC)."""
        self._next_prune = now + PRUNE_EVERY
        before = datetime.now(timezone.utc) - timedelta(days=self._retention_days)
        try:
            n = self._sink.prune(before)
        except SinkUnavailable as exc:
            log.warning("tick recorder: retention: %s; trying again in an hour", exc)
            return
        if n:
            self.rows_pruned += max(n, 0)
            log.info(
                "tick recorder: retention: %s ticks older than %s deleted",
                "chunks of" if n < 0 else f"{n:,}",
                before.isoformat(timespec="seconds"),
            )

    def _replay(self) -> bool:
        """Write spooled batches oldest first; stop at the first unavailability."""
        spool = self._spool
        while (entry := spool.first()) is not None:
            start = time.perf_counter()
            try:
                rows = spool.load(entry)
            except (SpoolCorrupt, OSError) as exc:
                self._error(spool.quarantine_first(entry, str(exc)))
                continue
            rest, outcome = self._write(entry.batch_id, rows)
            if rest is not None:
                return False
            spool.pop_first(entry)
            self._report(entry.batch_id, entry.n_rows, "replayed" if outcome == "written" else outcome, start)
        if self._down_logged:
            log.info("tick recorder: spool replayed into %s", self.target.where)
        self._down_logged = False
        return True

    def _connect(self) -> bool:
        try:
            info = self._sink.connect()
        except SinkUnavailable as exc:
            self._unavailable(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001
            log.exception("unexpected error connecting the tick recorder")
            self._unavailable(f"cannot connect to {self.target.where}: {exc!r}")
            return False
        self._backoff = self._retry_min
        for warning in info.warnings:
            self._last_error = warning
        log.info("tick recorder connected to %s", self.target.where)
        self._next_prune = 0.0  # the retention rule runs after each connect
        return True

    def _unavailable(self, message: str) -> None:
        self._error(message)
        self._sink.close()
        self._next_retry = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max)
        if not self._down_logged:
            log.warning("tick recorder: %s; spooling and retrying", message)
            self._down_logged = True

    def _error(self, message: str) -> None:
        self._errors += 1
        self._last_error = message

    def _report(self, batch_id: uuid.UUID, rows: int, outcome: str, start: float) -> None:
        if self._on_batch is not None:
            result = BatchResult(batch_id, rows, outcome, time.perf_counter() - start, self.stats)
            self._to_loop(self._call_on_batch, result)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
