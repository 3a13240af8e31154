"""Self-contained pieces of the option chain (:mod:`desk.broker.chains`): IB's option
computation (``tickOptionComputation``) as :class:`~desk.domain.options.OptionGreeks`,
:class:`ServerClock` (the gateway's clock the chain prices with), and :class:`ChainFlush`
(what a flush of the chain changed). No ib_async import.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from desk.domain import Clock
from desk.domain.chain import ChainFlush
from desk.domain.options import OptionGreeks

__all__ = ["CLOCK_SYNC_SECONDS", "ChainFlush", "ServerClock", "greeks_from_computation", "same_number"]

#: Seconds between two syncs of :class:`ServerClock` with the gateway's clock.
CLOCK_SYNC_SECONDS = 2.0


# ---------------------------------------------------------------------------------- translation


def _clean(value: float | None, *, unset_minus_two: bool = False) -> float:
    """ib_async leaves ``None``, IB's UNSET double (1.8e308) and, for vega/theta, the -2
    "not computed" sentinel in Greeks (docs/tws-protocol.md): all become ``nan``."""
    if value is None:
        return math.nan
    value = float(value)
    if value != value or abs(value) > 1e300:
        return math.nan
    if unset_minus_two and value == -2.0:
        return math.nan
    return value


def greeks_from_computation(comp: Any) -> OptionGreeks | None:
    """IB's ``OptionComputation`` (``tickOptionComputation``) as :class:`OptionGreeks`.

    IB's units are desk's: IV a fraction, vega per vol point, theta per calendar day, per
    share. ``None`` in, ``None`` out; missing values become ``nan``.
    """
    if comp is None:
        return None
    return OptionGreeks(
        iv=_clean(comp.impliedVol),
        delta=_clean(comp.delta),
        gamma=_clean(comp.gamma),
        vega=_clean(comp.vega, unset_minus_two=True),
        theta=_clean(comp.theta, unset_minus_two=True),
        price=_clean(comp.optPrice),
        und_price=_clean(comp.undPrice),
    )


# ---------------------------------------------------------------------------------- clock


class ServerClock(Clock):
    """The gateway's clock: ``base`` plus the offset measured with ``reqCurrentTime``.

    TWS answers in whole seconds, so the offset is good to about a second; for a live
    gateway it is ~0, for a replayed day (``desk sim --replay``) it is the distance to
    the replayed time, re-measured every :data:`CLOCK_SYNC_SECONDS` while a chain is
    shown (a replay can run faster than real time).
    """

    def __init__(self, base: Clock | None = None) -> None:
        self.base = base or Clock()
        self.offset = 0.0
        self.synced_at = -math.inf  # base.time() of the last sync

    def now(self) -> datetime:
        return self.base.now() + timedelta(seconds=self.offset)

    def time(self) -> float:
        return self.base.time() + self.offset

    async def sync(self, request: Callable[[], Awaitable[datetime]]) -> None:
        """Measure the offset with ``request`` (``ib.reqCurrentTimeAsync``)."""
        before = self.base.time()
        server = await request()
        after = self.base.time()
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        self.offset = server.timestamp() - (before + after) / 2.0
        self.synced_at = after


# ---------------------------------------------------------------------------------- flush


def same_number(a: float, b: float) -> bool:
    """``a == b``, with ``nan`` equal to ``nan`` (has a price changed?)."""
    return a == b or (a != a and b != b)
