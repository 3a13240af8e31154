"""The order path's audit writer: write-ahead rows now, every other row queued durably.

:class:`AuditTrail` stands in front of the database's append-only ``order_audit`` table
(:class:`desk.store.audit.AuditLog`). One worker thread writes every row, in the order
the order path handed them over:

* :meth:`AuditTrail.write` — a **write-ahead** row (the ``intent`` before placeOrder):
  returns once the row is committed in the database, or raises
  :class:`~desk.store.audit_records.AuditError` when the database is down or rows are still
  queued from an outage (so no order is sent while its trail could not be written);
* :meth:`AuditTrail.record` — every other row (sent, status, fill, commission, cancel
  and kill-switch rows): never raises and never blocks the event loop. While the
  database is unreachable the rows go to a local append-only spool file (one JSON line
  each, fsynced) and are written, in order and once each, when it answers again; the
  worker checks every ``retry_interval`` seconds, and opens the log itself when the desk
  started while the database was down.

:attr:`AuditTrail.healthy` is False from the first failed write until the spool is
empty again: the order service refuses new orders meanwhile and says why
(:meth:`AuditTrail.status`), and accepts them again by itself afterwards.

The spool belongs to its database: its file name carries a digest of the database URL,
so rows queued for one database are never replayed into another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from desk.domain.clock import Clock
from desk.store.audit_records import AuditError, AuditEvent, AuditRecord
from desk.store.urls import database_key

if TYPE_CHECKING:
    from desk.store.audit import AuditLog

__all__ = ["AuditStatus", "AuditTrail", "spool_path_for"]

log = logging.getLogger(__name__)

NOT_OPEN_YET = "the audit log is not open yet"

#: the worker's answer to a queued row: the written record (``write``) or True (``barrier``)
_Reply = concurrent.futures.Future[AuditRecord | bool]


def spool_path_for(folder: Path, database_url: str) -> Path:
    """The spool file of the audit log at ``database_url`` in ``folder``
    (``audit-<desk.store.urls.database_key>.jsonl``: one file per database, so queued rows
    are only ever written to the database they were meant for)."""
    return Path(folder).expanduser() / f"audit-{database_key(database_url, 'audit')}.jsonl"


@dataclass(frozen=True, slots=True)
class AuditStatus:
    """``healthy``: orders may be sent (the log is open, nothing is queued). ``queued``:
    rows waiting in the spool. ``error``: the last database error (one line, empty when
    healthy). ``written``: rows written since start."""

    healthy: bool
    queued: int
    error: str
    written: int

    @property
    def opening(self) -> bool:
        """Not open yet and nothing queued: the engine is starting, nothing failed."""
        return not self.healthy and self.error == NOT_OPEN_YET and not self.queued

    @property
    def short(self) -> str:
        """A few words for the status bar's badge."""
        if self.healthy:
            return "audit log ok"
        return "audit log opening, orders wait" if self.opening else "audit log down, orders disabled"

    @property
    def line(self) -> str:
        """One line for the desk's banner."""
        if self.healthy or self.opening:
            return self.short
        return f"{self.short} ({self.queued} row(s) queued): {self.error}"


def _event_to_json(ev: AuditEvent) -> str:
    from desk.store.audit_records import jsonable

    return json.dumps(
        {
            "event": ev.event,
            "client_order_id": ev.client_order_id,
            "correlation_id": ev.correlation_id,
            "payload": jsonable(dict(ev.payload)),
            "mode": ev.mode,
            "account": ev.account,
            "time": ev.time.isoformat() if ev.time is not None else None,
        },
        separators=(",", ":"),
    )


def _event_from_json(line: str) -> AuditEvent:
    d = json.loads(line)
    return AuditEvent(
        d["event"],
        d["client_order_id"],
        d["correlation_id"],
        d["payload"],
        d["mode"],
        d["account"],
        datetime.fromisoformat(d["time"]) if d.get("time") else None,
    )


class AuditTrail:
    """Writer of the order audit trail (see the module doc).

    ``open_log``: callable returning an open :class:`AuditLog` (raises
    :class:`AuditError` while the database is unreachable); called from the worker thread
    at start and again while it fails. ``spool_path``: the spool file (see
    :func:`spool_path_for`), or a callable returning it, called once when the path is
    first needed (:meth:`start`, on the worker's side: finding a database's spool parses
    its URL, with SQLAlchemy, which the engine loads after its first quote). ``clock``:
    times of queued rows. ``retry_interval``: seconds
    between attempts while the database is down.
    """

    def __init__(
        self,
        open_log: Callable[[], AuditLog],
        spool_path: Path | Callable[[], Path],
        *,
        clock: Clock | None = None,
        retry_interval: float = 2.0,
    ) -> None:
        self._open_log = open_log
        self._spool_path: Path | Callable[[], Path] = spool_path if callable(spool_path) else Path(spool_path)
        self.clock = clock or Clock()
        self.retry_interval = retry_interval
        self.log: AuditLog | None = None
        self._queue: queue.Queue[tuple[str, AuditEvent | None, _Reply | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._error = NOT_OPEN_YET
        self._spooled = 0
        self._written = 0
        self._stopping = False
        self._opened = threading.Event()
        #: the spool was left by an earlier run: its first unmarked row may be in the
        #: database already (a crash between writing it and marking it done)
        self._inherited = False
        #: the last write failed after it may have committed: check the next replayed row
        self._doubt = False

    @property
    def spool_path(self) -> Path:
        """The spool file (resolved on first use when a callable was given)."""
        if callable(self._spool_path):
            self._spool_path = Path(self._spool_path())
        return self._spool_path

    # ------------------------------------------------------------------ status

    def status(self) -> AuditStatus:
        with self._lock:
            healthy = self.log is not None and self._spooled == 0 and not self._error
            return AuditStatus(healthy, self._spooled, self._error, self._written)

    @property
    def healthy(self) -> bool:
        return self.status().healthy

    # ------------------------------------------------------------------ lifecycle

    def start(self, wait: float = 10.0) -> AuditStatus:
        """Start the worker; wait up to ``wait`` seconds for the first attempt to open the
        log (and write any rows left in the spool). Returns the status (unhealthy when the
        database is down: the worker keeps trying)."""
        if self._thread is None:
            self._spooled = self._count_spool()
            self._inherited = self._spooled > 0
            self._thread = threading.Thread(target=self._run, name="desk-audit", daemon=True)
            self._thread.start()
        self._opened.wait(wait)
        return self.status()

    async def start_async(self, wait: float = 10.0) -> AuditStatus:
        """:meth:`start` off the event loop."""
        return await asyncio.to_thread(self.start, wait)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (to the database, else the spool), stop the worker and
        close the log. A trail closed before it was started (the engine queues the rows of
        a cancel or a kill switch sent while it starts) spools what was queued: the next
        start writes it to the database."""
        if self._thread is not None:
            self._stopping = True
            self._queue.put(("stop", None, None))
            self._thread.join(timeout)
            self._thread = None
        else:
            self._spool_queued()
        if self.log is not None:
            with contextlib.suppress(Exception):
                self.log.close()

    # ------------------------------------------------------------------ writing

    async def write(self, ev: AuditEvent) -> AuditRecord:
        """Write-ahead: the row committed in the database, after every row handed over
        before it. Raises :class:`AuditError` (one line) when it could not be written."""
        if self._thread is None:
            raise AuditError("the audit trail is not started")
        fut: _Reply = concurrent.futures.Future()
        self._queue.put(("write", self._stamped(ev), fut))
        # a write is answered with its record (_do_write), never with a barrier's True
        return cast(AuditRecord, await asyncio.wrap_future(fut))

    def record(self, ev: AuditEvent) -> None:
        """Queue a row: written in order after everything handed over before it; spooled
        to disk while the database is down. Never raises (a malformed event is logged)."""
        self._queue.put(("record", self._stamped(ev), None))

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every row handed over so far has been written or spooled; False on
        timeout."""
        fut: _Reply = concurrent.futures.Future()
        self._queue.put(("barrier", None, fut))
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        return True

    def _stamped(self, ev: AuditEvent) -> AuditEvent:
        if ev.time is not None:
            return ev
        return AuditEvent(
            ev.event, ev.client_order_id, ev.correlation_id, ev.payload, ev.mode, ev.account, self.clock.now().astimezone(UTC)
        )

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        self._try_recover()
        self._opened.set()
        while True:
            down = self.log is None or self._spooled > 0
            try:
                kind, ev, fut = self._queue.get(timeout=self.retry_interval if down else None)
            except queue.Empty:
                self._try_recover()
                continue
            if kind == "stop":
                return
            if kind == "barrier":
                if fut is not None:
                    fut.set_result(True)
                continue
            if down:
                self._try_recover()
            if kind == "write":
                self._do_write(ev, fut)
            else:
                self._do_record(ev)

    def _do_write(self, ev: AuditEvent | None, fut: _Reply | None) -> None:
        if ev is None or fut is None:
            return
        with self._lock:
            spooled, error = self._spooled, self._error
        if self.log is None or spooled:
            why = error or "the audit log is not open"
            msg = f"audit log unavailable ({spooled} row(s) still queued): {why}" if spooled else f"audit log unavailable: {why}"
            fut.set_exception(AuditError(msg))
            return
        try:
            rec = self.log.write(ev)
        except AuditError as exc:
            self._failed(str(exc))
            fut.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 - reported to the waiting caller
            fut.set_exception(AuditError(f"audit write failed: {type(exc).__name__}: {exc}"))
            return
        with self._lock:
            self._written += 1
        fut.set_result(rec)

    def _do_record(self, ev: AuditEvent | None) -> None:
        if ev is None:
            return
        if self.log is not None and not self._spooled:
            try:
                self.log.write(ev)
            except AuditError as exc:
                self._failed(str(exc))
                # the connection may have dropped after the commit: the row may be in the
                # database already, so the replay checks before writing it (once each)
                self._doubt = True
            except Exception:  # noqa: BLE001 - a malformed row must not stop the worker
                log.exception("audit row %s for %s dropped: malformed", ev.event, ev.client_order_id)
                return
            else:
                with self._lock:
                    self._written += 1
                return
        self._spool(ev)

    def _failed(self, error: str) -> None:
        with self._lock:
            first = not self._error
            self._error = error
        if first:
            log.warning("audit log down, rows are spooled to %s and orders disabled: %s", self.spool_path, error)

    # ------------------------------------------------------------------ spool

    def _count_spool(self) -> int:
        try:
            with open(self.spool_path, encoding="utf-8") as fh:
                return sum(1 for line in fh if line.strip())
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("audit spool %s unreadable: %s", self.spool_path, exc)
            return 0

    def _spool_queued(self) -> None:
        """Spool every row queued with no worker to write it (see :meth:`close`)."""
        while True:
            try:
                kind, ev, fut = self._queue.get_nowait()
            except queue.Empty:
                return
            if kind == "record" and ev is not None:
                try:
                    self._spool(ev)
                except Exception as exc:  # noqa: BLE001 (no spool path: the database URL is unusable)
                    log.error("audit row %s for %s lost: no spool: %s", ev.event, ev.client_order_id, exc)
            if fut is not None and not fut.done():
                fut.set_result(True)

    def _spool(self, ev: AuditEvent) -> None:
        try:
            line = _event_to_json(ev)
        except Exception:  # noqa: BLE001
            log.exception("audit row %s for %s dropped: not JSON", ev.event, ev.client_order_id)
            return
        try:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.spool_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            log.error(
                "audit row %s for %s lost: cannot write the spool %s: %s", ev.event, ev.client_order_id, self.spool_path, exc
            )
            return
        with self._lock:
            self._spooled += 1

    def _try_recover(self) -> None:
        """Open the log if needed, then write the spooled rows in order (each once)."""
        if self.log is None:
            try:
                self.log = self._open_log()
            except AuditError as exc:
                self._failed(str(exc))
                return
            except Exception as exc:  # noqa: BLE001
                self._failed(f"{type(exc).__name__}: {exc}")
                return
        if self._spooled:
            if not self._replay():
                return
        with self._lock:
            was = self._error
            self._error = ""
        if was and was != NOT_OPEN_YET:  # the first open is not a recovery
            log.warning("audit log back: orders enabled again")

    def _replay(self) -> bool:
        try:
            with open(self.spool_path, encoding="utf-8") as fh:
                lines = [line for line in fh if line.strip()]
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            self._failed(f"cannot read the audit spool {self.spool_path}: {exc}")
            return False
        done_path = self.spool_path.with_name(self.spool_path.name + ".done")
        try:
            done = int(done_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            done = 0
        log_ = self.log
        if log_ is None:
            return False
        for i, line in enumerate(lines):
            if i < done:
                continue
            try:
                ev = _event_from_json(line)
            except (ValueError, KeyError, TypeError, AuditError) as exc:
                log.error("audit spool %s line %d skipped: %s", self.spool_path, i + 1, exc)
                self._mark_done(done_path, i + 1)
                continue
            try:
                # only the first unmarked row can already be in the database: one an earlier
                # run left, or one whose write failed in a way that may have committed
                if not ((self._inherited or self._doubt) and i == done and log_.exists(ev)):
                    log_.write(ev)
            except AuditError as exc:
                self._failed(str(exc))
                self._doubt = True
                return False
            self._doubt = False
            self._mark_done(done_path, i + 1)
            with self._lock:
                self._spooled = max(0, len(lines) - i - 1)
                self._written += 1
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.spool_path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(done_path)
        self._inherited = self._doubt = False
        with self._lock:
            self._spooled = 0
        log.info("audit spool %s written to the database (%d rows)", self.spool_path, len(lines))
        return True

    @staticmethod
    def _mark_done(path: Path, n: int) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(str(n))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # ------------------------------------------------------------------ reads

    async def read(self, fn: Callable[[AuditLog], Any]) -> Any:
        """Run ``fn(log)`` in a thread (reads: open intents, recorded executions...).
        Raises :class:`AuditError` when the log is not open."""
        log_ = self.log
        if log_ is None:
            raise AuditError(f"audit log unavailable: {self._error or 'not open'}")
        return await asyncio.to_thread(fn, log_)
