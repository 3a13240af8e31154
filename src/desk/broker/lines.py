"""The market-data line budget shared by every subscriber of one gateway connection.

IB limits how many market data lines (``reqMktData`` subscriptions) an account may hold at
once: 100 by default, more with quote booster packs or high commissions ("Market Data
Lines" in IB's market data documentation); one line over the limit is refused with error
101 "Max number of tickers has been reached". desk's simulator enforces the same limit.

:class:`LineBudget` counts the lines desk holds, by owner (``"watchlist"``,
``"chain"``...), keyed by what each owner subscribed (a conId), so a subscriber asks before
it calls ``reqMktData`` and hands the line back when it cancels. Acquiring a key that is
already held is a no-op that succeeds, so re-subscribing everything after a reconnect
never counts a line twice.

An owner that can shrink (the option chain's strike window) registers a *reclaimer*: when
a higher-priority owner (the watchlist, which asks with ``reclaim=True``) finds the
budget full, the reclaimers are asked to give lines back before the request is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

__all__ = ["LineBudget"]

#: A reclaimer is called with the number of lines wanted and returns how many it freed.
Reclaimer = Callable[[int], int]


class LineBudget:
    """At most ``limit`` market data lines held at once, counted per owner.

    Raises ``ValueError`` if ``limit`` is not a positive integer.
    """

    def __init__(self, limit: int = 100) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"market data line limit must be a positive integer, got {limit!r}")
        self.limit = limit
        self._by_owner: dict[str, set[Hashable]] = {}
        self._used = 0
        self._reclaimers: dict[str, Reclaimer] = {}

    # ------------------------------------------------------------------ queries

    @property
    def used(self) -> int:
        """Lines held by all owners."""
        return self._used

    @property
    def free(self) -> int:
        """Lines still available."""
        return max(0, self.limit - self._used)

    def used_by(self, owner: str) -> int:
        """Lines held by ``owner``."""
        return len(self._by_owner.get(owner, ()))

    def available_to(self, owner: str) -> int:
        """Lines ``owner`` could hold in total: its own plus the free ones."""
        return self.used_by(owner) + self.free

    def holds(self, owner: str, key: Hashable) -> bool:
        return key in self._by_owner.get(owner, ())

    def keys(self, owner: str) -> frozenset[Hashable]:
        """The keys ``owner`` holds."""
        return frozenset(self._by_owner.get(owner, ()))

    def describe(self) -> str:
        """One line for the user: ``market data lines: 97 of 100 in use (watchlist 10, chain 87)``."""
        parts = ", ".join(f"{owner} {len(keys)}" for owner, keys in self._by_owner.items() if keys)
        text = f"market data lines: {self.used} of {self.limit} in use"
        return f"{text} ({parts})" if parts else text

    # ------------------------------------------------------------------ changes

    def acquire(self, owner: str, key: Hashable, *, reclaim: bool = False) -> bool:
        """Take one line for ``key``; True if ``owner`` now holds it.

        Already held by ``owner``: True, nothing changes. (The same key held by two owners
        counts twice: IB counts each ``reqMktData`` request as a line.) Budget full: with
        ``reclaim`` the other owners' reclaimers are asked to free lines first; otherwise
        (or if they free nothing) False.
        """
        keys = self._by_owner.setdefault(owner, set())
        if key in keys:
            return True
        if self._used >= self.limit and reclaim:
            for name, reclaimer in list(self._reclaimers.items()):
                if name != owner and self._used >= self.limit:
                    reclaimer(self._used - self.limit + 1)
        if self._used >= self.limit:
            return False
        keys.add(key)
        self._used += 1
        return True

    def release(self, owner: str, key: Hashable) -> bool:
        """Give back ``owner``'s line of ``key``; False if ``owner`` did not hold it."""
        keys = self._by_owner.get(owner)
        if keys is None or key not in keys:
            return False
        keys.discard(key)
        self._used -= 1
        return True

    def release_all(self, owner: str) -> int:
        """Give back every line of ``owner``; returns how many."""
        keys = self._by_owner.pop(owner, set())
        self._used -= len(keys)
        return len(keys)

    def set_reclaimer(self, owner: str, reclaimer: Reclaimer | None) -> None:
        """Register (or with ``None`` remove) the function that frees ``owner``'s lines on demand."""
        if reclaimer is None:
            self._reclaimers.pop(owner, None)
        else:
            self._reclaimers[owner] = reclaimer
