"""Durable simulator state (``desk sim --state FILE``): a snapshot and an append-only journal.

Files (``FILE`` is the path given to ``--state`` / ``SimGateway(state_file=...)``)

``FILE``
    The snapshot: one JSON object (:func:`image`) with the accounts, every order
    (working and done), the day's executions, the id counters and ``journal_seq``, the
    number of the last journal batch it contains. Replaced atomically: written to
    ``FILE.tmp``, fsynced, renamed over ``FILE``, then the folder is fsynced.
``FILE.journal``
    JSON lines, one per **batch**: everything one handled request or one market step
    changed, ``{"n": seq, "day": true?, "orders": [...], "completed": [permId...],
    "executions": [...], "accounts": [...], "ids": {...}}`` (keys present only when not
    empty). Orders and accounts are written whole as they are after the batch (so
    replay is an upsert: by permId, by account id); executions (with their commission
    and realized P&L) are appended by execId; ``completed`` lists the orders that became
    done, in order; ``ids`` are the counters (next order id per client, next permId,
    execId prefix and sequence); ``day`` clears the day's executions and completed
    orders (:meth:`desk.sim.matching.OrderEngine.end_of_day`) before the rest applies.

Durability
    :meth:`StateStore.commit` writes a batch as one ``write`` of one line and fsyncs it
    (``fdatasync``) *before* the engine sends the replies that report the changes, so a
    client never hears of an order, fill or cancel that a crash (``kill -9``, power
    loss after the fsync) could lose. A batch is all or nothing: a crash mid-write
    leaves a torn last line, which :func:`load` ignores with one warning (the batch was
    never acknowledged). When the journal outgrows ``max(compact_bytes, snapshot size)``
    a new snapshot compacts it (amortised O(1) per event), as do the start and a clean
    stop. A write that fails (disk full) is logged once, the file is cut back to its
    last whole line and the batch is retried with the next commit; the replies still
    go out meanwhile (the simulator cannot take them back), so those changes are not
    durable until a write succeeds.

Recovery (:func:`load`)
    The snapshot, then every journal batch numbered above its ``journal_seq``. A line
    that is not a valid batch anywhere but at the end is an error naming the file and
    the line (``ValueError``); so is a snapshot that is not a state image. The journal
    is locked (``flock``) while a simulator uses it: a second one is refused.

Ids that grow across restarts (:func:`clock_id`)
    Without a state file a restarted simulator cannot know the ids it handed out, so
    order ids (per client) and permIds start from the wall clock: 1,000 per second since
    2025-01-01 UTC, modulo 2,000,000,000 (they stay below 2**31, IB's ``int``; the cycle
    is ~23 days). A restart then gives ids above the previous run's unless that run used
    more than 1,000 ids per second of its life, or it ran across the wrap. The execId
    prefix is the same clock value in hex. With a state file the counters come from the
    journal and never repeat.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from desk.domain.commission import Traded
from desk.sim.account import SimAccount
from desk.sim.contracts import ContractQuery
from desk.sim.orders import ComboLeg, Execution, Leg, OrderRequest, SimOrder, Tradable

__all__ = [
    "Counters",
    "Restored",
    "StateStore",
    "clock_id",
    "image",
    "journal_path",
    "load",
    "parse_image",
]

log = logging.getLogger("desk.sim.journal")

#: Version of the snapshot image (1: the exit-only file before the journal; still read).
STATE_VERSION = 2

#: ``clock_id`` epoch (2025-01-01T00:00:00Z), rate (ids per second) and cycle.
ID_EPOCH = 1_735_689_600
IDS_PER_SECOND = 1000
ID_SPAN = 2_000_000_000

#: Journal bytes below which no compaction happens (then: above the snapshot's size).
COMPACT_BYTES = 1 << 20


def clock_id(now: float | None = None) -> int:
    """An id that grows with the wall clock (``now``: UNIX seconds, default now): 1 +
    (milliseconds since 2025-01-01 UTC) modulo 2,000,000,000; between 1 and 2e9."""
    t = time.time() if now is None else now
    return 1 + int((t - ID_EPOCH) * IDS_PER_SECOND) % ID_SPAN


class IdSource:
    """The permIds and execIds of one order engine.

    Seeded from the wall clock (:func:`clock_id`, not the gateway's clock, which a replay
    sets back) so that a restart without a state file does not repeat them, or restored
    from a journal's :class:`Counters`. execIds look like IB's:
    ``xxxxxxxx.xxxxxxxx.01.01`` (prefix, then the sequence number, in hex)."""

    __slots__ = ("next_perm", "exec_prefix", "exec_seq")

    def __init__(self, seed: int | None = None) -> None:
        seed = clock_id() if seed is None else seed
        self.next_perm = seed
        self.exec_prefix = f"{seed:08x}"
        self.exec_seq = 0

    def perm_id(self) -> int:
        """A new permId."""
        p = self.next_perm
        self.next_perm += 1
        return p

    def exec_id(self) -> str:
        """A new execId."""
        self.exec_seq += 1
        return f"{self.exec_prefix}.{self.exec_seq:08x}.01.01"

    def counters(self, next_order_ids: dict[int, int]) -> Counters:
        """The counters to journal, with the gateway's next order id by clientId."""
        return Counters(self.next_perm, self.exec_prefix, self.exec_seq, next_order_ids)

    def restore(self, c: Counters) -> None:
        self.next_perm, self.exec_prefix, self.exec_seq = c.next_perm, c.exec_prefix, c.exec_seq


@dataclass(slots=True)
class Counters:
    """The engine's id counters: ``next_perm`` (next permId), ``exec_prefix`` (8 hex
    digits) and ``exec_seq`` (last execId sequence number), ``next_order_ids`` (next
    valid order id by clientId)."""

    next_perm: int
    exec_prefix: str
    exec_seq: int
    next_order_ids: dict[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_perm": self.next_perm,
            "exec_prefix": self.exec_prefix,
            "exec_seq": self.exec_seq,
            "next_order_ids": {str(c): n for c, n in self.next_order_ids.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counters:
        return cls(
            int(d["next_perm"]),
            str(d["exec_prefix"]),
            int(d["exec_seq"]),
            {int(c): int(n) for c, n in d["next_order_ids"].items()},
        )


@dataclass(slots=True)
class Restored:
    """A state image read back (:func:`parse_image`): accounts, orders (in placement
    order), completed orders (in completion order), executions and counters. The
    counters are raised above every permId and, per client, every order id in
    ``orders``."""

    accounts: list[SimAccount]
    orders: list[SimOrder]
    completed: list[SimOrder]
    executions: list[Execution]
    counters: Counters


# --- the image: JSON of accounts, orders, executions, counters ---------------------------


def image(
    accounts: Iterable[SimAccount],
    orders: Iterable[SimOrder],
    completed: Iterable[SimOrder],
    executions: Iterable[Execution],
    counters: Counters,
) -> dict[str, Any]:
    """A JSON-able image of everything the order engine keeps."""
    return {
        "version": STATE_VERSION,
        "accounts": [a.to_dict() for a in accounts],
        "orders": [order_dict(o) for o in orders],
        "completed": [o.perm_id for o in completed],
        "executions": [execution_dict(e) for e in executions],
        "ids": counters.to_dict(),
    }


def parse_image(state: dict[str, Any], managed: Sequence[str]) -> Restored:
    """Read an image of :func:`image` back. ``managed``: the account ids of this
    gateway. ``ValueError`` for another version or an account it does not manage;
    ``KeyError`` / ``TypeError`` / ``ValueError`` for a malformed image."""
    version = state.get("version")
    if version not in (1, STATE_VERSION):
        raise ValueError(f"simulator state version {version!r} is not {STATE_VERSION}")
    accounts = [SimAccount.from_dict(a) for a in state["accounts"]]
    for acc in accounts:
        if acc.account_id not in managed:
            raise ValueError(f"saved account {acc.account_id!r} is not managed by this gateway ({', '.join(sorted(managed))})")
    orders = [order_from(d) for d in state["orders"]]
    by_perm = {o.perm_id: o for o in orders}
    completed = [by_perm[p] for p in state["completed"] if p in by_perm]
    executions = [execution_from(d, by_perm) for d in state["executions"]]
    ids = (
        state["ids"]
        if version == STATE_VERSION
        else {k: state[k] for k in ("next_perm", "exec_prefix", "exec_seq", "next_order_ids")}
    )
    counters = Counters.from_dict(ids)
    for o in orders:
        counters.next_perm = max(counters.next_perm, o.perm_id + 1)
        n = counters.next_order_ids.get(o.client_id, 1)
        counters.next_order_ids[o.client_id] = max(n, o.order_id + 1)
    return Restored(accounts, orders, completed, executions, counters)


def _time_text(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _time_from(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(OrderRequest))


@functools.lru_cache(maxsize=4096)
def _flat_dict(value: Any) -> dict[str, Any]:
    """The fields of a frozen dataclass of plain values (Tradable, ContractQuery,
    ComboLeg), cached: the same instruments recur in every batch. Not to be mutated."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _request_dict(r: OrderRequest) -> dict[str, Any]:
    d = {name: getattr(r, name) for name in _REQUEST_FIELDS}
    d["contract"] = _flat_dict(r.contract)
    d["legs"] = [_flat_dict(leg) for leg in r.legs]
    return d  # tuples of plain values become JSON arrays as they are


def order_dict(o: SimOrder) -> dict[str, Any]:
    """JSON-able image of an order (all but the transient ``marketable`` flag)."""
    return {
        "client_id": o.client_id,
        "order_id": o.order_id,
        "perm_id": o.perm_id,
        "account": o.account,
        "request": _request_dict(o.request),
        "contract": _flat_dict(o.contract) if o.contract is not None else None,
        "legs": [{"contract": _flat_dict(lg.contract), "ratio": lg.ratio, "action": lg.action} for lg in o.legs],
        "status": o.status,
        "filled": o.filled,
        "fill_value": o.fill_value,
        "last_fill_price": o.last_fill_price,
        "triggered": o.triggered,
        "commission": o.commission,
        "traded": {str(k): list(v) for k, v in o.traded.items()},
        "placed_at": _time_text(o.placed_at),
        "done_at": _time_text(o.done_at),
        "completed_status": o.completed_status,
        "expires_at": _time_text(o.expires_at),
    }


def order_from(d: dict[str, Any]) -> SimOrder:
    """The order of an :func:`order_dict` image."""
    r = dict(d["request"])
    r["contract"] = ContractQuery(**r["contract"])
    r["legs"] = tuple(ComboLeg(**leg) for leg in r["legs"])
    r["leg_prices"] = tuple(r["leg_prices"])
    r["combo_params"] = tuple(tuple(p) for p in r["combo_params"])
    r["unsupported"] = tuple(r["unsupported"])
    return SimOrder(
        client_id=int(d["client_id"]),
        order_id=int(d["order_id"]),
        perm_id=int(d["perm_id"]),
        account=d["account"],
        request=OrderRequest(**r),
        contract=Tradable(**d["contract"]) if d["contract"] else None,
        legs=tuple(Leg(Tradable(**lg["contract"]), int(lg["ratio"]), lg["action"]) for lg in d["legs"]),
        status=d["status"],
        filled=float(d["filled"]),
        fill_value=float(d["fill_value"]),
        last_fill_price=float(d["last_fill_price"]),
        triggered=bool(d["triggered"]),
        commission=float(d["commission"]),
        traded={int(k): Traded(*map(float, v)) for k, v in d["traded"].items()},
        placed_at=_time_from(d["placed_at"]),
        done_at=_time_from(d["done_at"]),
        completed_status=d["completed_status"],
        expires_at=_time_from(d["expires_at"]),
    )


_EXECUTION_FIELDS = tuple(f.name for f in dataclasses.fields(Execution))


def execution_dict(e: Execution) -> dict[str, Any]:
    """JSON-able image of an execution; its order by permId."""
    out = {name: getattr(e, name) for name in _EXECUTION_FIELDS}
    out["order"] = e.order.perm_id
    out["contract"] = _flat_dict(e.contract) if e.contract is not None else None
    out["time"] = e.time.isoformat()
    return out


def execution_from(d: dict[str, Any], by_perm: dict[int, SimOrder]) -> Execution:
    """The execution of an :func:`execution_dict` image (``KeyError`` if its order is
    not in ``by_perm``)."""
    d = dict(d)
    d["order"] = by_perm[int(d["order"])]
    d["contract"] = Tradable(**d["contract"]) if d["contract"] else None
    d["time"] = datetime.fromisoformat(d["time"])
    return Execution(**d)


# --- reading back: snapshot + journal ------------------------------------------------------


def journal_path(path: str | os.PathLike[str]) -> Path:
    """The journal of the state file ``path``: ``path`` + ``.journal``."""
    p = Path(path)
    return p.with_name(p.name + ".journal")


class _Merge:
    """A state image being brought up to date by journal batches (dicts, not objects:
    an order written twice is simply replaced)."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self.orders = {int(d["perm_id"]): d for d in base["orders"]}
        self.completed = list(base["completed"])
        self.executions = {d["exec_id"]: d for d in base["executions"]}
        self.accounts = {a["account_id"]: a for a in base["accounts"]}
        ids = base.get("ids")
        if ids is None:  # version 1
            ids = {k: base[k] for k in ("next_perm", "exec_prefix", "exec_seq", "next_order_ids")}
        self.ids = ids

    def apply(self, batch: dict[str, Any]) -> None:
        if batch.get("day"):
            self.executions.clear()
            self.completed.clear()
        for d in batch.get("orders", ()):
            order_from(d)  # checked now, so that an error names the line
            self.orders[int(d["perm_id"])] = d
        done = set(self.completed)
        for p in map(int, batch.get("completed", ())):
            if p not in self.orders:
                raise ValueError(f"completed order permId {p} is unknown")
            if p not in done:
                self.completed.append(p)
                done.add(p)
        for d in batch.get("executions", ()):
            if int(d["order"]) not in self.orders:
                raise ValueError(f"execution {d.get('exec_id')!r} of unknown permId {d['order']}")
            execution_from(d, {int(d["order"]): order_from(self.orders[int(d["order"])])})
            self.executions[str(d["exec_id"])] = d
        for a in batch.get("accounts", ()):
            SimAccount.from_dict(a)
            self.accounts[str(a["account_id"])] = a
        if "ids" in batch:
            Counters.from_dict(batch["ids"])
            self.ids = batch["ids"]

    def result(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "accounts": list(self.accounts.values()),
            "orders": list(self.orders.values()),
            "completed": self.completed,
            "executions": list(self.executions.values()),
            "ids": self.ids,
        }


def _read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{path}: cannot read simulator state: {e.strerror or e}") from e
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or "version" not in state:
            raise ValueError("not a JSON object with a version")
        _Merge(state)  # the parts the journal updates must be there
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a simulator state file: {e}") from e
    return state


def _read_journal(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The journal's batches ``(line number, batch)``; a torn last line is left out with
    one warning (the start's snapshot then empties the journal)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise ValueError(f"{path}: cannot read simulator journal: {e.strerror or e}") from e
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        log.warning("%s line %d: ignoring a torn last line (%d bytes) left by a crash", path, len(lines) + 1, len(tail))
    out: list[tuple[int, dict[str, Any]]] = []
    for i, raw in enumerate(lines, 1):
        try:
            batch = json.loads(raw)
            if not isinstance(batch, dict) or not isinstance(batch.get("n"), int):
                raise ValueError("not a journal batch (a JSON object with a number n)")
        except ValueError as e:
            if i == len(lines) and not tail:  # the last line: a torn write
                log.warning("%s line %d: ignoring a torn last line (%s) left by a crash", path, i, _short(e))
                break
            raise ValueError(f"{path} line {i}: corrupt simulator journal: {_short(e)}") from e
        out.append((i, batch))
    return out


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) <= 120 else text[:117] + "..."


def load(path: str | os.PathLike[str], fresh: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any] | None, int]:
    """Read ``path`` and its journal back: ``(image, last batch number)``, the image
    ``None`` if neither file exists. ``fresh()`` gives the image to replay a journal on
    when there is no snapshot. ``ValueError`` naming the file (and line) if either
    cannot be read back."""
    path = Path(path)
    jpath = journal_path(path)
    snapshot = _read_snapshot(path)
    batches = _read_journal(jpath)
    if snapshot is None and not batches:
        return None, 0
    base = snapshot if snapshot is not None else fresh()
    seq = int(base.get("journal_seq", 0)) if snapshot is not None else 0
    merge = _Merge(base)
    applied = 0
    for line, batch in batches:
        n = batch["n"]
        if n <= seq:
            continue  # already in the snapshot (a crash between snapshot and truncation)
        try:
            merge.apply(batch)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{jpath} line {line}: corrupt simulator journal: {_short(e)}") from e
        seq = n
        applied += 1
    if applied:
        log.info("%s: %d journal batches replayed", jpath, applied)
    return merge.result(), seq


# --- writing: the journal and its snapshots -----------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


_sync = getattr(os, "fdatasync", os.fsync)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateStore:
    """The state file and journal of one running engine.

    ``StateStore(path)``; :meth:`open` locks the journal and returns what :func:`load`
    read back; :meth:`start` writes the first snapshot (compacting what was replayed)
    and begins journaling. Then the engine calls :meth:`touch` for every order it
    changes, :meth:`new_day` at the end of a day and :meth:`commit` before it sends
    replies; :meth:`close` writes a last snapshot. ``image``: a callable giving the
    engine's full image (:func:`image`), used by every snapshot. ``compact_bytes``: the
    journal size below which no compaction happens (default :data:`COMPACT_BYTES`,
    1 MiB). ``OSError`` from the file system become ``ValueError`` naming the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, compact_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.compact_bytes = int(COMPACT_BYTES if compact_bytes is None else compact_bytes)
        self.seq = 0
        #: batches written and snapshots taken since start (for benches and tests)
        self.batches = 0
        self.snapshots = 0
        self._fd: int | None = None
        self._image: Callable[[], dict[str, Any]] | None = None
        self._journal_bytes = 0
        self._snapshot_bytes = 0
        self._orders: dict[int, SimOrder] = {}
        self._accounts: dict[str, SimAccount] = {}
        self._day = False
        self._n_exec = 0
        self._n_completed = 0
        self._ids: dict[str, Any] | None = None
        self._failing = False

    # --- life cycle --------------------------------------------------------------------

    def open(self, fresh: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Lock the journal (creating it and the folder's entry) and read the state back
        (:func:`load`). ``ValueError`` if another simulator holds it or it cannot be
        read."""
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise ValueError(f"{self.journal}: cannot open simulator journal: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f"{self.journal}: in use by another simulator") from e
            raise ValueError(f"{self.journal}: cannot lock: {e.strerror or e}") from e
        self._fd = fd
        try:
            state, self.seq = load(self.path, fresh)
        except BaseException:
            self.close(snapshot=False)
            raise
        return state

    def start(self, image: Callable[[], dict[str, Any]], executions: int, completed: int) -> None:
        """Begin journaling: ``image`` gives the full image for snapshots;
        ``executions`` / ``completed``: how many the engine holds now (already in the
        snapshot this writes)."""
        self._image = image
        self._n_exec = executions
        self._n_completed = completed
        self._ids = None
        try:
            self.snapshot()
        except BaseException:
            self.close(snapshot=False)
            raise

    def close(self, snapshot: bool = True) -> None:
        """Write a last snapshot (if ``snapshot`` and started; a failure is logged, the
        journal still holds everything) and release the journal. Safe to call twice."""
        if self._fd is None:
            return
        try:
            if snapshot and self._image is not None:
                try:
                    self.snapshot()
                except ValueError as e:
                    log.error("%s", e)
        finally:
            os.close(self._fd)
            self._fd = None

    # --- changes -------------------------------------------------------------------------

    def touch(self, order: SimOrder) -> None:
        """``order`` changed: journal it (as it is then) with the next commit."""
        self._orders[order.perm_id] = order

    def new_day(self) -> None:
        """The engine forgets the day's executions and completed orders (call right
        after a commit, before it clears them)."""
        self._day = True
        self._n_exec = 0
        self._n_completed = 0

    @property
    def pending(self) -> bool:
        """Whether changes wait for :meth:`commit`."""
        return bool(self._orders or self._accounts) or self._day

    def commit(
        self, executions: Sequence[Execution], completed: Sequence[SimOrder], accounts: Iterable[SimAccount], counters: Counters
    ) -> bool:
        """Write one batch: the orders touched, the executions and completed orders
        beyond those already written, ``accounts`` (those changed) and the counters if
        they changed; fsync it. Returns whether a batch was written. A failed write is
        logged (once until one succeeds) and retried with the next commit."""
        fd = self._fd
        if fd is None:
            return False
        batch: dict[str, Any] = {}
        if self._day:
            batch["day"] = True
        if self._orders:
            batch["orders"] = [order_dict(o) for o in self._orders.values()]
        if len(completed) > self._n_completed:
            batch["completed"] = [o.perm_id for o in completed[self._n_completed :]]
        if len(executions) > self._n_exec:
            batch["executions"] = [execution_dict(e) for e in executions[self._n_exec :]]
        for a in accounts:  # kept until written: a failed write retries them too
            self._accounts[a.account_id] = a
        if self._accounts:
            batch["accounts"] = [a.to_dict() for a in self._accounts.values()]
        ids = counters.to_dict()
        if ids != self._ids:
            batch["ids"] = ids
        if not batch:
            return False
        batch = {"n": self.seq + 1, **batch}
        line = (json.dumps(batch, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            _write_all(fd, line)
            _sync(fd)
        except OSError as e:
            if not self._failing:
                log.error(
                    "%s: journal write failed, changes are not durable until it works again: %s", self.journal, e.strerror or e
                )
                self._failing = True
            try:
                os.ftruncate(fd, self._journal_bytes)
            except OSError:
                pass
            return False
        if self._failing:
            log.warning("%s: journal writes work again", self.journal)
            self._failing = False
        self.seq += 1
        self.batches += 1
        self._journal_bytes += len(line)
        self._orders.clear()
        self._accounts.clear()
        self._day = False
        self._n_exec = len(executions)
        self._n_completed = len(completed)
        self._ids = ids
        if self._journal_bytes > max(self.compact_bytes, self._snapshot_bytes):
            try:
                self.snapshot()
            except ValueError as e:
                log.error("%s", e)
        return True

    def snapshot(self) -> None:
        """Write the full image atomically (temp file, fsync, rename, fsync of the
        folder) and empty the journal. ``ValueError`` naming the file on failure (the
        journal then still holds everything)."""
        fd = self._fd
        if fd is None or self._image is None:
            return
        state = self._image()
        state["journal_seq"] = self.seq
        data = json.dumps(state, separators=(",", ":")).encode("utf-8")
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(out, data)
                os.fsync(out)
            finally:
                os.close(out)
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            os.ftruncate(fd, 0)  # batches up to seq are in the snapshot now
            os.fsync(fd)
        except OSError as e:
            raise ValueError(f"{self.path}: cannot write simulator state: {e.strerror or e}") from e
        self._journal_bytes = 0
        self._snapshot_bytes = len(data)
        self.snapshots += 1
        self._ids = state["ids"]
        log.info("simulator state saved to %s (%d orders, %d bytes)", self.path, len(state["orders"]), len(data))
