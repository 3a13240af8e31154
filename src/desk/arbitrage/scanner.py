"""Incremental scanning: rescan only the expiries and strikes whose quotes changed.

Conversions, reversals, boxes, verticals and butterflies of one expiry depend only on that
expiry's row of the chain (and the stock); calendars of one strike only on that strike's
column. :class:`ChainScanner` keeps the previous snapshot and the opportunities found per
row and per column; on the next :meth:`ChainScanner.scan` it diffs the quote arrays (or
takes the caller's ``changed`` mask), rescans the changed rows with the row scanners and
the changed columns with the calendar scanner, and keeps the rest.

A full scan runs instead when the grid changed (other expiries or strikes), the stock's
quote changed (every conversion and every early-exercise flag depends on it), every expiry
has a change (one full pass is cheaper), or ``full_every`` seconds have passed since the
last full scan (time to expiry moves the discounting of every row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from desk.arbitrage.chain import _GRID_FIELDS, ChainSnapshot, Carry, Costs
from desk.arbitrage.scanners import AMERICAN, ROW_SCANNERS, STYLES, _check_kinds, _run
from desk.domain.opportunity import Opportunity


def changed_cells(old: ChainSnapshot, new: ChainSnapshot) -> np.ndarray:
    """``(n_e, n_k)`` bool: cells whose call or put quote (price or size) differs.

    NaN equals NaN here. Raises ``ValueError`` if the two grids differ.
    """
    if old.expiries != new.expiries or not np.array_equal(old.strikes, new.strikes):
        raise ValueError("changed_cells: the snapshots have different expiries or strikes")
    out = np.zeros(new.shape, dtype=bool)
    for name in _GRID_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        out |= (a != b) & ~(np.isnan(a) & np.isnan(b))
    return out


class ChainScanner:
    """Scanner of one underlying's chain that remembers its last scan.

    ``carry``, ``costs``, ``kinds``, ``style``, ``net_of_costs`` and ``min_edge`` as
    :func:`desk.arbitrage.scan_chain`. ``full_every``: seconds after which the next scan
    is a full one whatever changed.
    """

    def __init__(
        self,
        carry: Carry | None = None,
        costs: Costs | None = None,
        *,
        kinds: Sequence[str] | None = None,
        style: str = AMERICAN,
        net_of_costs: bool = True,
        min_edge: float = 0.0,
        full_every: float = 1.0,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        if not full_every >= 0:
            raise ValueError(f"full_every must be >= 0 seconds, got {full_every!r}")
        self.carry = carry or Carry()
        self.costs = costs or Costs()
        self.kinds = _check_kinds(kinds)
        self.style = style
        self.net_of_costs = net_of_costs
        self.min_edge = float(min_edge)
        self.full_every = float(full_every)
        self._last: ChainSnapshot | None = None
        self._last_full: datetime | None = None
        self._rows: dict[str, list[list[Opportunity]]] = {}
        self._cols: list[list[Opportunity]] = []
        #: what the last scan did: ``"full"`` or ``"incremental"``, rows and columns rescanned
        self.last_mode = ""
        self.last_rows = 0
        self.last_cols = 0

    def reset(self) -> None:
        """Forget the previous scan: the next one is full."""
        self._last = None

    def scan(self, snapshot: ChainSnapshot, changed: np.ndarray | None = None) -> list[Opportunity]:
        """Scan ``snapshot``, reusing the previous scan's results where nothing changed.

        ``changed``: optional ``(n_e, n_k)`` bool mask of the cells whose quotes changed
        since the previous snapshot (computed with :func:`changed_cells` when omitted).
        Returns every current opportunity, largest ``edge_total`` first (feed it to an
        :class:`~desk.arbitrage.book.OpportunityBook` for first / last seen).
        """
        prev = self._last
        full = (
            prev is None
            or prev.symbol != snapshot.symbol
            or prev.expiries != snapshot.expiries
            or not np.array_equal(prev.strikes, snapshot.strikes)
            or prev.multiplier != snapshot.multiplier
            or not _same(prev.under_bid, snapshot.under_bid)
            or not _same(prev.under_ask, snapshot.under_ask)
            or not _same(prev.under_bid_size, snapshot.under_bid_size)
            or not _same(prev.under_ask_size, snapshot.under_ask_size)
            or self._last_full is None
            or (snapshot.now - self._last_full).total_seconds() >= self.full_every
            or (snapshot.now - self._last_full).total_seconds() < 0
        )
        if full:
            self._full(snapshot)
        else:
            assert prev is not None
            if changed is None:
                changed = changed_cells(prev, snapshot)
            else:
                changed = np.asarray(changed, dtype=bool)
                if changed.shape != snapshot.shape:
                    raise ValueError(f"changed must have shape {snapshot.shape}, got {changed.shape}")
            rows = np.nonzero(changed.any(axis=1))[0]
            if len(rows) == len(snapshot.expiries) and len(rows) > 1:
                self._full(snapshot)  # every expiry changed: one full pass is cheaper
            else:
                self._partial(snapshot, rows, np.nonzero(changed.any(axis=0))[0])
        self._last = snapshot
        out = [o for per_row in self._rows.values() for row in per_row for o in row]
        out.extend(o for col in self._cols for o in col)
        out.sort(key=lambda o: o.edge_total, reverse=True)
        return out

    def _scan(self, snapshot: ChainSnapshot, rows: np.ndarray | None, cols: np.ndarray | None) -> dict[str, list[Opportunity]]:
        return _run(
            snapshot,
            self.carry,
            self.costs,
            self.kinds,
            style=self.style,
            net_of_costs=self.net_of_costs,
            min_edge=self.min_edge,
            rows=rows,
            cols=cols,
        )

    def _full(self, snapshot: ChainSnapshot) -> None:
        n_e, n_k = snapshot.shape
        results = self._scan(snapshot, None, None)
        self._rows = {name: [[] for _ in range(n_e)] for name in self.kinds if name in ROW_SCANNERS}
        expiry_row = {e: i for i, e in enumerate(snapshot.expiry_strings)}
        strike_col = {k: i for i, k in enumerate(snapshot.strikes.tolist())}
        for name, opps in results.items():
            if name in ROW_SCANNERS:
                for o in opps:
                    self._rows[name][expiry_row[o.expiry]].append(o)
        self._cols = [[] for _ in range(n_k)]
        for o in results.get("calendar", []):
            self._cols[strike_col[o.legs[0].strike]].append(o)
        self._last_full = snapshot.now
        self.last_mode, self.last_rows, self.last_cols = "full", n_e, n_k

    def _partial(self, snapshot: ChainSnapshot, rows: np.ndarray, cols: np.ndarray) -> None:
        results = self._scan(snapshot, rows, cols)
        expiry_row = {e: i for i, e in enumerate(snapshot.expiry_strings)}
        strike_col = {k: i for i, k in enumerate(snapshot.strikes.tolist())}
        for name in self._rows:
            if name not in results:
                continue
            for r in rows.tolist():
                self._rows[name][r] = []
            for o in results[name]:
                self._rows[name][expiry_row[o.expiry]].append(o)
        if "calendar" in results:
            for c in cols.tolist():
                self._cols[c] = []
            for o in results["calendar"]:
                self._cols[strike_col[o.legs[0].strike]].append(o)
        self.last_mode, self.last_rows, self.last_cols = "incremental", len(rows), len(cols)


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)
