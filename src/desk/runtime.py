"""The desk's running parts wired together: simulator, recorder, Redis publisher, broker.

Both front ends use this one object: the Textual app (``desk``) and the headless
collector (``desk --headless``). Nothing here imports Textual.

Start order: the embedded simulator (in its own thread, so it never competes with the
UI's event loop), then the recorder and the Redis publisher (so no tick arrives before
there is somewhere to put it), then the broker's connect loop, which returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from desk.broker import Broker
from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain import Clock, QuoteStore
from desk.domain.options import WindowSpec
from desk.settings import Settings

log = logging.getLogger(__name__)


class RuntimeStartError(Exception):
    """A part of the desk could not start. ``str()`` is one line naming the part and why."""


class Runtime:
    """Owns the embedded simulator (sim mode), the tick recorder, the Redis publisher and the broker.

    ``broker`` and ``quotes`` exist from construction, so a UI can bind to them before
    :meth:`start`. ``recorder`` and ``publisher`` are ``None`` until started (and stay
    ``None`` when recording is off / no Redis URL is set).
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.quotes = QuoteStore()
        self.sim = None  # desk.sim EmbeddedSim when the desk runs its own gateway
        self.recorder = None  # desk.store.TickRecorder
        self.publisher = None  # desk.bus.RedisPublisher
        self.broker = Broker(
            settings.ib_host,
            settings.effective_port,
            settings.ib_client_id,
            symbols=settings.watchlist,
            quotes=self.quotes,
            clock=self.clock,
            connect_timeout=settings.ib_connect_timeout,
            lines=LineBudget(settings.market_data_lines),
        )
        #: the option chain of the selected underlying, within the broker's line budget
        self.chains = ChainManager(
            self.broker,
            spec=WindowSpec.parse(settings.chain_strikes),
            rate=settings.chain_rate,
            clock=self.clock,
        )
        self.started = False
        self._on_stop: list[Callable[[], None]] = []

    @property
    def endpoint(self) -> str:
        """``host:port`` of the gateway (the embedded simulator's once started)."""
        port = self.broker.port or "?"
        return f"{self.broker.host}:{port}"

    async def start(self) -> None:
        """Start everything; returns once the broker's connect loop is running.

        Raises :class:`RuntimeStartError` when the simulator cannot listen or the
        recorder / publisher cannot be configured (a database that is merely down is
        not an error: the recorder spools until it comes back).
        """
        if self.started:
            return
        self.started = True
        s = self.settings
        if s.embedded_sim:
            from desk.sim import EmbeddedSim

            self.sim = EmbeddedSim(host="127.0.0.1", port=0, seed=s.sim_seed)
            try:
                port = await asyncio.to_thread(self.sim.start)
            except OSError as exc:
                raise RuntimeStartError(f"simulator: cannot listen on 127.0.0.1: {exc}") from None
            self.broker.host = "127.0.0.1"
            self.broker.port = port
        if s.record:
            from desk.store import StoreError, TickRecorder

            try:
                self.recorder = TickRecorder(
                    s.database_url,
                    flush_interval=s.flush_interval,
                    flush_rows=s.flush_rows,
                    spool_dir=s.effective_spool_dir,
                )
                await self.recorder.start()
            except StoreError as exc:
                self.recorder = None
                raise RuntimeStartError(f"recorder: {exc}") from None
            self.broker.add_sink(self.recorder.submit)
        if s.redis_url:
            from desk.bus import BusError, RedisPublisher

            try:
                self.publisher = RedisPublisher(s.redis_url)
                await self.publisher.start()
            except BusError as exc:
                self.publisher = None
                raise RuntimeStartError(f"redis: {exc}") from None
            self.broker.add_sink(self.publisher.submit)
        await self.broker.start()

    async def stop(self) -> None:
        """Stop the broker, flush and close the recorder and publisher, stop the simulator.

        Safe to call more than once and after a failed :meth:`start`.
        """
        await self.broker.stop()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.close()
        if self.recorder is not None:
            await self.recorder.close()
        if self.sim is not None:
            sim, self.sim = self.sim, None
            await asyncio.to_thread(sim.stop)
        self.started = False
