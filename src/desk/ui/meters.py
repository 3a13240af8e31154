"""Small measuring helpers for the status bar (no Textual here)."""

from __future__ import annotations


class RateMeter:
    """Smoothed rate of a monotonically increasing counter (e.g. ``QuoteStore.ticks_seen``).

    Call :meth:`sample` about once a second with the counter and the time in seconds
    (any monotonic-enough clock; the desk passes the injected :class:`~desk.domain.Clock`'s
    ``time()``, so a frozen clock gives a frozen rate). The rate is an exponential moving
    average of per-interval rates with weight ``alpha`` on the newest interval; units are
    counts per second.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.rate = 0.0
        self._last: tuple[int, float] | None = None

    def sample(self, count: int, now: float) -> float:
        """Record ``count`` at time ``now`` (seconds); return the smoothed rate per second."""
        if self._last is None:
            self._last = (count, now)
            return self.rate
        last_count, last_time = self._last
        elapsed = now - last_time
        if elapsed <= 0:
            return self.rate
        if count < last_count:  # the counter was reset (a new quote store)
            last_count = count
        instant = (count - last_count) / elapsed
        self.rate = instant if self.rate == 0.0 else self.alpha * instant + (1 - self.alpha) * self.rate
        self._last = (count, now)
        return self.rate
