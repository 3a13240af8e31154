"""Injected clocks: every layer asks a Clock for the time, so tests can freeze it.

``now()`` returns a timezone-aware UTC ``datetime``; ``time()`` returns epoch seconds
(UTC) as a float. The simulator's replay mode moves a :class:`ReplayClock` to the
recorded time.
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()


class FrozenClock(Clock):
    """A clock that stands still at ``at`` (UTC) until moved with :meth:`advance`."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def time(self) -> float:
        return self._at.timestamp()

    def advance(self, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)
