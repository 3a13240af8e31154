"""Feed health: lines that go quiet while their market is open, and what to do about it.

IB gateways sometimes leave market-data lines silently dead: after a farm blip
(2103 broken, then 2104 OK), after 1101 ("connectivity restored, data lost"), or one line
alone for no stated reason. Neither ib_async nor the gateway says so; the only sign is
silence. :class:`LineWatchdog` watches every line desk holds (the watchlist's, the
chain window's, those of ``desk order``) and:

* marks a line **stale** when it has had no tick for ``stale_after(line)`` seconds while
  its market is open (stocks: the regular session and IB's extended hours; options: the
  regular session; :mod:`desk.domain.calendar`) — or always, when the market is taken as
  always open (the simulator);
* re-requests a stale line (cancel + reqMktData), at most ``max_retries`` times, then
  says once that it stays dead; a tick clears the mark and the count;
* when every line of the feed is silent at once, the feed itself is dead: every line is
  re-requested together (one message, not one per line).

Times are seconds of the watchdog's clock (monotonic for a real desk); thresholds are
per instrument class, because options quote far less often than stocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from desk.broker.ticks import Line

__all__ = ["LineProvider", "LineWatchdog", "WatchReport"]

log = logging.getLogger(__name__)


class LineProvider(Protocol):
    """An owner of market-data lines (the broker's watchlist, the option chain)."""

    def market_lines(self) -> Iterable[Line]:
        """The lines currently subscribed."""

    def rerequest(self, line: Line) -> None:
        """Cancel and request ``line`` again (a new ticker)."""


@dataclass
class WatchReport:
    """What one :meth:`LineWatchdog.check` did: ``rerequested`` lines, lines that ``died``
    (retries used up, reported once), ``feed_dead`` (every line silent), and ``stale``:
    the conIds stale now."""

    rerequested: list[Line] = field(default_factory=list)
    died: list[Line] = field(default_factory=list)
    feed_dead: bool = False
    stale: set[int] = field(default_factory=set)


class LineWatchdog:
    """Watches the lines of ``providers`` (see the module doc).

    ``now``: seconds (monotonic). ``market_open(line, when)``: whether the line's market is
    open at UTC ``when`` (``wall``); ``stale_after(line)``: seconds of silence that make it
    stale. ``max_retries``: re-requests before a line is given up as dead.
    """

    def __init__(
        self,
        providers: Iterable[LineProvider],
        *,
        now: Callable[[], float],
        wall: Callable[[], datetime],
        market_open: Callable[[Line, datetime], bool],
        stale_after: Callable[[Line], float],
        max_retries: int = 3,
    ) -> None:
        self.providers = list(providers)
        self.now = now
        self.wall = wall
        self.market_open = market_open
        self.stale_after = stale_after
        self.max_retries = max_retries
        #: conIds stale now (for the panes' marks and the stats line)
        self.stale: set[int] = set()
        #: conIds given up on (retries used)
        self.dead: set[int] = set()
        self.rerequests = 0

    def add(self, provider: LineProvider) -> None:
        self.providers.append(provider)

    def check(self) -> WatchReport:
        """Look at every line once (call it every second or so)."""
        report = WatchReport()
        now, wall = self.now(), self.wall()
        watched: list[tuple[LineProvider, Line]] = []
        silent: list[tuple[LineProvider, Line]] = []
        for provider in self.providers:
            for line in provider.market_lines():
                if line.ticker is None or not self.market_open(line, wall):
                    continue
                watched.append((provider, line))
                since = max(line.last_tick, line.requested_at)
                if now - since > self.stale_after(line):
                    silent.append((provider, line))
                else:
                    line.retries = 0
                    self.dead.discard(line.instrument.con_id)
        self.stale = {line.instrument.con_id for _, line in silent}
        report.stale = set(self.stale)
        report.feed_dead = len(watched) > 1 and len(silent) == len(watched)
        for provider, line in silent:
            con_id = line.instrument.con_id
            if line.retries >= self.max_retries:
                if con_id not in self.dead:
                    self.dead.add(con_id)
                    report.died.append(line)
                continue
            line.retries += 1
            self.rerequests += 1
            provider.rerequest(line)
            report.rerequested.append(line)
        return report
