"""The recorder's spool: batches waiting for the database, kept in order.

While the database is unreachable every batch is appended to the spool; when it comes
back the recorder replays the spool oldest first, then writes new batches.

On disk (``directory`` given) each batch is one file ``<seq>-<batch uuid>.spool``,
written to ``*.tmp``, fsynced, then renamed, so a crash never leaves a half-written
``.spool`` file. ``seq`` (12 digits) orders files by creation, across restarts.

File format (little-endian)::

    magic    8 bytes   b"DESKSPL\\x01"
    length   uint32    bytes of payload
    crc32    uint32    zlib.crc32 of payload
    payload:
      batch_id  16 bytes   UUID of the batch (the idempotency key, see schema.recorder_batches)
      n_rows    uint32
      n_rows x row:
        time_us   int64    µs since 1970-01-01T00:00:00Z
        con_id    int64
        sym_len   uint16,  kind_len uint8
        bid, ask, bid_size, ask_size, price, size   6 x float64 (NaN kept bit for bit)
        symbol    sym_len bytes UTF-8, kind  kind_len bytes UTF-8

A file that fails the magic, length or CRC check raises :class:`SpoolCorrupt` and is
moved to ``corrupt/`` (never deleted). Rows the database refuses as invalid go to
``rejected/<batch>.jsonl`` with the reason, one JSON object per row.

Without a directory the spool lives in memory: nothing is written to disk and rows
waiting for the database are lost if the process exits (the recorder logs how many).
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import uuid
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desk.domain.models import TickRecord
from desk.store.codec import from_epoch_us, to_epoch_us
from desk.store.errors import StoreError

log = logging.getLogger(__name__)

MAGIC = b"DESKSPL\x01"
_FRAME = struct.Struct("<II")
_BATCH = struct.Struct("<16sI")
_ROW = struct.Struct("<qqHB6d")
_NAME_RE = re.compile(r"^(\d{12})-([0-9a-f]{32})\.spool$")
MAX_PAYLOAD = 2**31


class SpoolCorrupt(StoreError):
    """A spool file is truncated or damaged (bad magic, length or checksum)."""


def encode_batch(batch_id: uuid.UUID, rows: Sequence[TickRecord]) -> bytes:
    """Encode one batch as a complete spool file (see the module docstring).

    Raises ``TypeError`` / ``ValueError`` / ``OverflowError`` / ``struct.error`` for rows
    that do not fit the format (time not a datetime, con_id beyond int64, symbol longer
    than 65,535 bytes ...).
    """
    parts = [b""]
    append = parts.append
    pack = _ROW.pack
    for t, con_id, symbol, kind, bid, ask, bid_size, ask_size, price, size in rows:
        sym = symbol.encode()
        k = kind.encode()
        append(pack(to_epoch_us(t), con_id, len(sym), len(k), bid, ask, bid_size, ask_size, price, size))
        append(sym)
        append(k)
    parts[0] = _BATCH.pack(batch_id.bytes, len(rows))
    payload = b"".join(parts)
    return MAGIC + _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode_batch(data: bytes) -> tuple[uuid.UUID, list[TickRecord]]:
    """Decode a spool file produced by :func:`encode_batch`.

    Returns ``(batch_id, rows)`` with tz-aware UTC times. Raises :class:`SpoolCorrupt` if
    ``data`` is truncated, has trailing bytes, or fails the checksum.
    """
    header = len(MAGIC) + _FRAME.size
    if len(data) < header or data[: len(MAGIC)] != MAGIC:
        raise SpoolCorrupt("not a desk spool file (bad magic or truncated header)")
    length, crc = _FRAME.unpack_from(data, len(MAGIC))
    payload = data[header:]
    if len(payload) != length:
        raise SpoolCorrupt(f"spool file payload is {len(payload)} bytes, header says {length}")
    if zlib.crc32(payload) != crc:
        raise SpoolCorrupt("spool file checksum mismatch")
    try:
        raw_id, n_rows = _BATCH.unpack_from(payload, 0)
        offset = _BATCH.size
        rows: list[TickRecord] = []
        unpack = _ROW.unpack_from
        size = _ROW.size
        for _ in range(n_rows):
            t, con_id, sym_len, kind_len, b, a, bs, az, p, z = unpack(payload, offset)
            offset += size
            symbol = payload[offset : offset + sym_len].decode()
            offset += sym_len
            kind = payload[offset : offset + kind_len].decode()
            offset += kind_len
            rows.append(TickRecord(from_epoch_us(t), con_id, symbol, kind, b, a, bs, az, p, z))
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise SpoolCorrupt(f"spool file payload is malformed: {exc}") from None
    if offset != len(payload) or len(rows) != n_rows:
        raise SpoolCorrupt("spool file payload has trailing bytes")
    return uuid.UUID(bytes=raw_id), rows


def read_header(path: Path) -> tuple[uuid.UUID, int]:
    """``(batch_id, n_rows)`` of a spool file from its first bytes (no checksum check)."""
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC) + _FRAME.size + _BATCH.size)
    if len(head) < len(MAGIC) + _FRAME.size + _BATCH.size or head[: len(MAGIC)] != MAGIC:
        raise SpoolCorrupt(f"{path.name}: not a desk spool file")
    raw_id, n_rows = _BATCH.unpack_from(head, len(MAGIC) + _FRAME.size)
    return uuid.UUID(bytes=raw_id), n_rows


@dataclass
class SpoolEntry:
    """One waiting batch: on disk (``path``) or in memory (``rows``)."""

    batch_id: uuid.UUID
    n_rows: int
    path: Path | None = None
    rows: list[TickRecord] | None = None


class Spool:
    """Ordered store of batches waiting for the database.

    ``directory=None`` keeps batches in memory only. Disk writes that fail (disk full,
    permissions) fall back to memory for that batch, keeping the order, and raise nothing;
    the failure is returned by :meth:`append` so the recorder can report it.

    Not thread-safe for concurrent writers: the recorder's writer thread is the only user
    (``rows_pending`` may be read from any thread).
    """

    #: the file in a spool directory naming the database its batches belong to
    IDENTITY = "DATABASE"

    def __init__(self, directory: str | os.PathLike[str] | None, identity: str | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory is not None else None
        #: the database these batches are for (safe to print), written to IDENTITY on open
        self.identity = identity
        self._entries: deque[SpoolEntry] = deque()
        self._seq = 0
        self._lock = threading.Lock()
        self.rows_pending = 0

    # -- set-up ----------------------------------------------------------------------
    def open(self) -> list[str]:
        """Create the directory and load the files left by a previous run, oldest first.

        Leftover ``*.tmp`` files (a crash during a spool write) are adopted if they verify
        and moved to ``corrupt/`` otherwise. Returns one warning line per problem.
        Raises :class:`StoreError` if the directory cannot be created or listed.
        """
        warnings: list[str] = []
        if self.directory is None:
            return warnings
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.identity is not None and not (self.directory / self.IDENTITY).exists():
                (self.directory / self.IDENTITY).write_text(self.identity + "\n", encoding="utf-8")
            for tmp in sorted(self.directory.glob("*.spool.tmp")):
                try:
                    decode_batch(tmp.read_bytes())
                    tmp.rename(tmp.with_suffix(""))
                    warnings.append(f"adopted complete spool file {tmp.name} left by a crash")
                except SpoolCorrupt as exc:
                    warnings.append(self._quarantine(tmp, str(exc)))
            found = []
            for path in self.directory.glob("*.spool"):
                match = _NAME_RE.match(path.name)
                if not match:
                    continue
                try:
                    batch_id, n_rows = read_header(path)
                except (SpoolCorrupt, OSError) as exc:
                    warnings.append(self._quarantine(path, str(exc)))
                    continue
                found.append((int(match.group(1)), path, batch_id, n_rows))
        except OSError as exc:
            raise StoreError(f"cannot use spool directory {self.directory}: {exc.strerror or exc}") from None
        found.sort(key=lambda item: item[0])
        with self._lock:
            for seq, path, batch_id, n_rows in found:
                self._entries.append(SpoolEntry(batch_id, n_rows, path=path))
                self.rows_pending += n_rows
                self._seq = max(self._seq, seq)
        return warnings

    # -- queue -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def first(self) -> SpoolEntry | None:
        """The oldest waiting batch, or ``None``."""
        return self._entries[0] if self._entries else None

    def append(self, batch_id: uuid.UUID, rows: list[TickRecord]) -> str:
        """Add a batch at the end. Returns ``""`` when it is durable on disk (or the spool
        is memory-only by design), else one line saying why it is held in memory."""
        problem = ""
        entry = SpoolEntry(batch_id, len(rows), rows=rows)
        if self.directory is not None:
            try:
                entry = SpoolEntry(batch_id, len(rows), path=self._write(batch_id, rows))
            except OSError as exc:
                problem = f"cannot write spool file in {self.directory}: {exc.strerror or exc}; batch held in memory"
            except (TypeError, ValueError, OverflowError, struct.error, AttributeError) as exc:
                problem = f"batch cannot be encoded for the spool ({exc}); held in memory"
        with self._lock:
            self._entries.append(entry)
            self.rows_pending += len(rows)
        return problem

    def load(self, entry: SpoolEntry) -> list[TickRecord]:
        """Rows of ``entry``. Raises :class:`SpoolCorrupt` (file damaged) or ``OSError``."""
        if entry.rows is not None:
            return entry.rows
        assert entry.path is not None
        batch_id, rows = decode_batch(entry.path.read_bytes())
        if batch_id != entry.batch_id:
            raise SpoolCorrupt(f"{entry.path.name}: batch id in file does not match its name")
        return rows

    def pop_first(self, entry: SpoolEntry) -> None:
        """Remove ``entry`` (the oldest) after it was written; deletes its file."""
        with self._lock:
            assert self._entries and self._entries[0] is entry
            self._entries.popleft()
            self.rows_pending -= entry.n_rows
        if entry.path is not None:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot delete replayed spool file %s: %s", entry.path, exc)

    def quarantine_first(self, entry: SpoolEntry, reason: str) -> str:
        """Drop a damaged ``entry`` from the queue, moving its file to ``corrupt/``."""
        with self._lock:
            assert self._entries and self._entries[0] is entry
            self._entries.popleft()
            self.rows_pending -= entry.n_rows
        if entry.path is not None:
            return self._quarantine(entry.path, reason)
        return f"spooled batch {entry.batch_id} dropped: {reason}"

    def reject(self, batch_id: uuid.UUID, rejected: Iterable[tuple[object, str]]) -> str:
        """Keep rows the database refused, with reasons, in ``rejected/<batch>.jsonl``.

        Returns where they went (or that they were only logged, without a directory).
        """
        items = list(rejected)
        if self.directory is None:
            for row, reason in items[:5]:
                log.error("rejected tick %r: %s", row, reason)
            return f"{len(items)} rows rejected (logged; no spool directory)"
        target = self.directory / "rejected" / f"{batch_id.hex}.jsonl"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a", encoding="utf-8") as fh:
                for row, reason in items:
                    fields = list(row) if isinstance(row, tuple) else [row]
                    fh.write(json.dumps({"row": [_jsonable(v) for v in fields], "reason": reason}) + "\n")
        except OSError as exc:
            log.error("cannot write %s: %s", target, exc)
            return f"{len(items)} rows rejected and could not be saved: {exc}"
        return f"{len(items)} rows rejected, kept in {target}"

    # -- internals -------------------------------------------------------------------
    def _write(self, batch_id: uuid.UUID, rows: Sequence[TickRecord]) -> Path:
        assert self.directory is not None
        data = encode_batch(batch_id, rows)
        self._seq += 1
        final = self.directory / f"{self._seq:012d}-{batch_id.hex}.spool"
        tmp = final.with_name(final.name + ".tmp")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.directory)
        return final

    def _quarantine(self, path: Path, reason: str) -> str:
        assert self.directory is not None
        target = self.directory / "corrupt" / path.name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
        except OSError as exc:
            return f"damaged spool file {path} ({reason}); cannot move it: {exc}"
        return f"damaged spool file moved to {target}: {reason}"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _jsonable(value: object) -> object:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, int | str) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return, attr-defined]
    return repr(value)


def other_spools(root: Path, own: Path) -> list[str]:
    """One line per spool under ``root`` other than ``own`` that holds batches: the
    database it is waiting for (its IDENTITY file) and its row count, or, for ``*.spool``
    files directly in ``root`` (an older desk's layout), that their database is unknown.
    Those batches are kept and never replayed into ``own``'s database."""
    lines: list[str] = []
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and p != own)
        loose = sorted(root.glob("*.spool"))
    except OSError:
        return lines
    for folder in folders:
        ident = folder / Spool.IDENTITY
        files = list(folder.glob("*.spool"))
        if not ident.exists() or not files:
            continue
        rows = 0
        for path in files:
            try:
                rows += read_header(path)[1]
            except (SpoolCorrupt, OSError):
                continue
        who = ident.read_text(encoding="utf-8", errors="replace").strip()
        lines.append(
            f"spool {folder} holds {rows} row(s) for another database ({who}): kept, "
            "written when the desk records to that database again"
        )
    if loose:
        lines.append(f"{len(loose)} spool file(s) in {root} from an older desk name no database: kept, not replayed")
    return lines
