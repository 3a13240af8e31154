"""The opportunities feed of a running desk: live scanner, store writer, Redis publisher.

:class:`OpportunityFeed` is what :class:`desk.engine.runtime.Runtime` owns for issue 6:

* ``live``: a :class:`desk.arbitrage.live.LiveArbitrage` over the runtime's chain
  manager and quote store, with the carry and costs of the settings (``DESK_ARB_*``);
  the UI calls ``live.poll()`` on its flush timer;
* with recording on, an :class:`desk.store.opportunities.OpportunityWriter` on
  ``DESK_DATABASE_URL`` (table ``opportunities``, its own thread);
* with ``DESK_REDIS_URL``, an :class:`desk.bus.opportunities.OpportunityPublisher`
  (stream and channel ``desk:opportunities``).

In sim mode with the embedded simulator every opportunity is labelled simulated. A
store or Redis that cannot start is reported in :attr:`OpportunityFeed.errors` and the
scanner runs without it (the tick recorder and publisher already fail the start when
their database / Redis is misconfigured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from desk.arbitrage import carry_from_settings, costs_from_settings
from desk.arbitrage.live import LiveArbitrage
from desk.domain import Clock
from desk.settings import Settings

__all__ = ["OpportunityFeed"]

log = logging.getLogger(__name__)


class OpportunityFeed:
    """Scanner plus outputs for one desk (see the module docstring)."""

    def __init__(self, settings: Settings, chains: Any, quotes: Any, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.live = LiveArbitrage(
            chains,
            quotes,
            carry=carry_from_settings(settings),
            costs=costs_from_settings(settings),
            min_edge=settings.arb_min_edge,
            full_every=settings.arb_full_scan_seconds,
            simulated=settings.embedded_sim and not settings.sim_replay,  # a replay shows recorded (real) quotes
            stale_after=settings.chain_stale_seconds,
            clock=clock,
        )
        self.writer: Any = None  # desk.store.opportunities.OpportunityWriter
        self.publisher: Any = None  # desk.bus.opportunities.OpportunityPublisher
        #: one line per output that could not start
        self.errors: list[str] = []

    def sim_option_source(self) -> Any:
        """The embedded simulator's option source: a
        :class:`desk.sim.mispricing.MispricingSource` when ``DESK_SIM_MISPRICING_RATE`` > 0,
        else ``None`` (the simulator's default). Its options are listed as of the desk's
        clock (a frozen or replayed day lists that day's expiries, as the simulator does)."""
        s = self.settings
        if not s.sim_mispricing_rate:
            return None
        from desk.domain.calendar import exchange_date
        from desk.sim.mispricing import MispricingSource

        return MispricingSource(rate_per_minute=s.sim_mispricing_rate, seed=s.sim_seed, today=exchange_date(self.clock.now()))

    async def start(self) -> None:
        """Start the store writer (recording on) and the Redis publisher (URL set)."""
        s = self.settings
        if s.record and self.writer is None:
            from desk.store import StoreError
            from desk.store.opportunities import OpportunityStore, OpportunityWriter, opportunities_url

            try:  # SQLite: a file of its own, one writer per file (opportunities_url)
                store = OpportunityStore(opportunities_url(s.database_url))
                await asyncio.to_thread(store.ensure)
            except StoreError as exc:
                self.errors.append(f"opportunities store: {exc}")
                log.warning("opportunities not recorded: %s", exc)
            else:
                self.writer = OpportunityWriter(store)
                self.writer.start()
                self.live.add_sink(self.writer.submit)
        if s.redis_url and self.publisher is None:
            from desk.bus import BusError
            from desk.bus.opportunities import OpportunityPublisher

            try:
                publisher = OpportunityPublisher(s.redis_url)
                await publisher.start()
            except BusError as exc:
                self.errors.append(f"opportunities to Redis: {exc}")
                log.warning("opportunities not published: %s", exc)
            else:
                self.publisher = publisher
                self.live.add_sink(publisher.submit)

    async def stop(self) -> None:
        """Write / publish what is pending, then close the outputs (safe to call twice)."""
        if self.publisher is not None:
            publisher, self.publisher = self.publisher, None
            with contextlib.suppress(Exception):
                await publisher.close()
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(writer.close)
