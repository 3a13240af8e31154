"""The engine's analytics timer: the option chain's IV and Greeks and the arbitrage scan
run here, on the engine's loop, not in a view.

:class:`Analytics` calls :meth:`desk.broker.chains.ChainManager.flush` (re-centre the
window, recompute desk's IV and Greeks of the window's contracts when a quote or the
underlying moved, drain the chain's dirty set) every :data:`ANALYTICS_INTERVAL` seconds,
whether or not a view is attached, and hands what changed to every :class:`ChainTap`.
A tap is one view's look at the chain (:class:`desk.engine.backend.ChainView`): its
:meth:`ChainTap.flush` returns what changed since that view last looked, so any number of
views (in this process, or over the engine API) see every change without draining each
other's. The live arbitrage scanner (:class:`desk.arbitrage.live.LiveArbitrage`, when
the engine runs one) is polled on the same timer, right after the chain's flush (it
scans the chain's window; it throttles itself to its own interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from desk.domain import Instrument
from desk.domain.chain import ChainFlush, ChainRow
from desk.domain.options import OptionQuote

__all__ = ["ANALYTICS_INTERVAL", "Analytics", "ChainTap"]

log = logging.getLogger("desk.engine")

#: Seconds between two runs of the chain analytics (~6.7 Hz, the view's flush rate).
ANALYTICS_INTERVAL = 0.15


class ChainTap:
    """One view's look at the engine's chain manager (``chains``): the chain's state as
    it is now, and :meth:`flush` with what changed since this tap's previous flush."""

    def __init__(self, chains: Any) -> None:
        self.manager = chains
        self._con_ids: set[int] = set()
        self._layout = False
        self._computed = False

    def add(self, flush: ChainFlush) -> None:
        """Collect one run of the analytics."""
        self._con_ids |= flush.con_ids
        self._layout = self._layout or flush.layout
        self._computed = self._computed or flush.computed

    def flush(self) -> ChainFlush:
        """What changed since the previous call (contracts, layout, a recomputation)."""
        out = ChainFlush(frozenset(self._con_ids), self._layout, self._computed)
        self._con_ids, self._layout, self._computed = set(), False, False
        return out

    # --- the chain as it is (read from the manager) -------------------------------------

    @property
    def underlying(self) -> Instrument | None:
        underlying: Instrument | None = self.manager.underlying
        return underlying

    @property
    def expiry(self) -> str | None:
        expiry: str | None = self.manager.expiry
        return expiry

    @property
    def expiries(self) -> tuple[str, ...]:
        return tuple(self.manager.expiries)

    @property
    def rows(self) -> list[ChainRow]:
        return list(self.manager.rows)

    @property
    def atm_strike(self) -> float:
        return float(self.manager.atm_strike)

    @property
    def spot(self) -> float:
        return float(self.manager.spot)

    @property
    def forward(self) -> float:
        return float(self.manager.forward)

    @property
    def loading(self) -> bool:
        return bool(self.manager.loading)

    @property
    def message(self) -> str:
        return str(self.manager.message)

    @property
    def message_level(self) -> str:
        return str(self.manager.message_level)

    @property
    def message_seq(self) -> int:
        return int(self.manager.message_seq)

    @property
    def layout_seq(self) -> int:
        return int(self.manager.layout_seq)

    @property
    def spec(self) -> object:
        spec: object = self.manager.spec
        return spec

    def days_to_expiry(self) -> float:
        return float(self.manager.days_to_expiry())

    def quote(self, instrument: Instrument | None) -> OptionQuote | None:
        quote: OptionQuote | None = self.manager.quote(instrument)
        return quote

    async def set_underlying(self, instrument: Instrument) -> None:
        await self.manager.set_underlying(instrument)

    async def set_expiry(self, expiry: str) -> None:
        await self.manager.set_expiry(expiry)

    def widen(self) -> None:
        self.manager.widen()

    def narrow(self) -> None:
        self.manager.narrow()


class Analytics:
    """The engine's analytics timer over ``chains`` (the engine's chain manager) and
    ``scanner`` (its live arbitrage scanner, or ``None``)."""

    def __init__(self, chains: Any, *, scanner: Any = None, interval: float = ANALYTICS_INTERVAL) -> None:
        self.chains = chains
        self.scanner = scanner
        self.interval = interval
        self._taps: list[ChainTap] = []
        self._task: asyncio.Task[None] | None = None
        #: analytics runs so far
        self.runs = 0

    def tap(self) -> ChainTap:
        """A new view's look at the chain (see :class:`ChainTap`)."""
        tap = ChainTap(self.chains)
        self._taps.append(tap)
        return tap

    def release(self, tap: ChainTap) -> None:
        """Stop feeding ``tap`` (its view went away)."""
        with contextlib.suppress(ValueError):
            self._taps.remove(tap)

    def run_once(self) -> ChainFlush:
        """One run: the chain's flush, handed to every tap."""
        flush: ChainFlush = self.chains.flush()
        self.runs += 1
        for tap in self._taps:
            tap.add(flush)
        if self.scanner is not None:
            self.scanner.poll()
        return flush

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="desk-analytics")

    async def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # one bad run must not stop the analytics
                log.exception("chain analytics failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
