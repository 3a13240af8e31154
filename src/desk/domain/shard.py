"""How collectors split the symbols between them (``desk --headless --shard I/N``).

The symbols, upper-cased, de-duplicated and sorted, are dealt round-robin: the k-th goes to
shard ``k % N + 1``. The split is balanced (shard sizes differ by at most one, so each
connection's market data lines are used evenly), stable (the same settings give the same
split on every machine and at every start, whatever the order of the list), and disjoint,
so N collectors with the same settings record into one database with nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Shard", "parse_shard"]

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 64


class Shard:
    """Shard ``index`` of ``count`` (1-based). ``Shard(1, 1)`` holds every symbol."""

    __slots__ = ("count", "index")

    def __init__(self, index: int, count: int) -> None:
        if not (1 <= count <= MAX_SHARDS and 1 <= index <= count):
            raise ValueError(f"shard must be I/N with 1 <= I <= N <= {MAX_SHARDS}, got {index}/{count}")
        self.index = index
        self.count = count

    def select(self, symbols: Iterable[str]) -> list[str]:
        """This shard's share of ``symbols`` (the whole list of every shard), in the
        list's order."""
        symbols = list(symbols)
        ranked = sorted({s.strip().upper() for s in symbols})
        mine = {s for k, s in enumerate(ranked) if k % self.count + 1 == self.index}
        seen: set[str] = set()
        out = []
        for s in symbols:
            key = s.strip().upper()
            if key in mine and key not in seen:
                seen.add(key)
                out.append(s)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shard) and (self.index, self.count) == (other.index, other.count)

    def __hash__(self) -> int:
        return hash((self.index, self.count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; ValueError with one line for anything else."""
    m = _SHARD_RE.match(text or "")
    if not m:
        raise ValueError(f"shard must be I/N, e.g. 1/2, got {text!r}")
    return Shard(int(m.group(1)), int(m.group(2)))
