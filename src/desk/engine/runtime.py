"""The engine's running parts wired together: simulator, recorder, Redis publisher,
broker, chains, account, order path, analytics, and the engine API's server.

The engine process (``desk --headless``, and the one ``desk`` starts for its view) runs
this one object; ``DESK_ENGINE_API=0`` runs it in the view's process. Nothing here
imports Textual.

Start order (:meth:`Runtime.start`): the database layer loads on a worker thread (the
``DESK_DATABASE_URL`` check, SQLAlchemy, psycopg) while the embedded simulator starts (in
its own thread) and the broker connects and subscribes, so the first quote does not wait
for it; ticks before the recorder opens are held and then recorded in order. The engine
API is served once the broker runs (orders are refused until the order path is ready);
then the recorder, the order path (its reconciliation after the connect waits for it) and
the scanners. Against a real gateway, or replaying a recorded day, the settings are
checked before the gateway is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from desk.broker import Broker
from desk.broker.chains import ChainManager
from desk.broker.lifecycle import RestartWindow
from desk.broker.account import AccountManager
from desk.broker.lines import LineBudget
from desk.broker.orders import IBOrderGateway
from desk.domain import Clock, QuoteStore, TickRecord
from desk.domain.options import WindowSpec
from desk.engine.analytics import Analytics
from desk.engine.opportunity_feed import OpportunityFeed
from desk.pricing.chain_analytics import price_window
from desk.pricing.positions import price_position
from desk.orders import AuditTrail, KillSwitch, OrderGate, OrderService, spool_path_for
from desk.risk import RiskLimits
from desk.settings import Settings, check_database_url

if TYPE_CHECKING:
    from desk.bus import RedisPublisher
    from desk.domain import Instrument, Quote
    from desk.domain.intent import OrderIntent
    from desk.engine.server import EngineServer
    from desk.metrics import MetricsServer
    from desk.risk import MarginImpact, MarketContext
    from desk.sim import EmbeddedSim
    from desk.store import AuditLog, TickRecorder

log = logging.getLogger(__name__)


class RuntimeStartError(Exception):
    """A part of the desk could not start. ``str()`` is one line naming the part and why."""


class SettingsRefused(RuntimeStartError):
    """A setting the engine checks as it starts is invalid (``DESK_DATABASE_URL``, parsed
    by the store): ``str()`` is ``DESK_DATABASE_URL: ...``, no password."""


def _load_store(settings: Settings) -> str | None:
    """On a worker thread: check ``DESK_DATABASE_URL`` with the store's parser and import
    the recorder and the audit log (SQLAlchemy, psycopg). Returns the problem line or None."""
    problem = check_database_url(settings)
    if problem is None:
        try:
            importlib.import_module("desk.store.recorder")
            importlib.import_module("desk.store.audit")
        except ImportError as exc:  # psycopg without libpq, a broken install: one line
            raise RuntimeStartError(f"store: cannot load the database layer: {exc}") from None
    return problem


async def _checked(store: asyncio.Future[str | None]) -> None:
    """Wait for :func:`_load_store`; :class:`SettingsRefused` for a bad URL."""
    problem = await store
    if problem:
        raise SettingsRefused(problem)


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
        self.sim: EmbeddedSim | None = None  # when the desk runs its own gateway
        self.recorder: TickRecorder | None = None
        self.publisher: RedisPublisher | None = None
        self.broker = Broker(
            settings.ib_host,
            settings.effective_port,
            settings.effective_client_id,
            symbols=settings.effective_watchlist,
            quotes=self.quotes,
            clock=self.clock,
            connect_timeout=settings.ib_connect_timeout,
            lines=LineBudget(settings.market_data_lines),
            market_data_type=settings.ib_market_data_type,
            restart=(
                RestartWindow.parse(settings.ib_restart_time, settings.ib_restart_timezone, settings.ib_restart_minutes)
                if settings.ib_restart_time
                else None
            ),
            client_id_fallback=settings.ib_client_id_fallback,
            stale_stock_seconds=settings.stale_stock_seconds,
            stale_option_seconds=settings.stale_option_seconds,
            # the simulated market never closes (unless a standalone `desk sim --market-hours`)
            always_open=settings.mode.value == "sim" and settings.risk_sim_any_hours,
        )
        #: the option chain of the selected underlying, within the broker's line budget
        self.chains = ChainManager(
            self.broker,
            spec=WindowSpec.parse(settings.chain_strikes),
            rate=settings.chain_rate,
            clock=self.clock,
            pricer=price_window,
        )
        #: live arbitrage scan of the chain on screen, its store writer and Redis publisher
        self.opportunities = OpportunityFeed(settings, self.chains, self.quotes, clock=self.clock)
        #: the chain's IV and Greeks and the arbitrage scan, on the engine's loop (desk.engine.analytics)
        self.analytics = Analytics(self.chains, scanner=self.opportunities.live)
        #: positions, account figures, P&L subscriptions, portfolio Greeks
        self.account = AccountManager(
            self.broker.ib, self.quotes, rate=settings.chain_rate, chain=self.chains, pricer=price_position
        )
        self.broker.add_listener(self.account.on_broker_event)
        #: the gate (trading state, mode, orders enabled, live override)
        self.gate = OrderGate(
            settings.mode.value,
            settings.orders_enabled,
            settings.effective_live_override_file,
            KillSwitch(settings.effective_kill_switch_file, clock=self.clock),
        )
        #: the audit trail of the order path (opened in start(); rows queued durably
        #: while the database is down)
        self.audit = AuditTrail(
            self._open_audit_log,
            functools.partial(spool_path_for, settings.effective_spool_dir, settings.database_url),
            clock=self.clock,
        )
        #: the order path: ticket, blotter, kill switch and `desk order` call it
        self.orders = OrderService(
            self.gate,
            self.audit,
            RiskLimits.from_settings(settings),
            IBOrderGateway(self.broker.ib),
            market=self.market_context,
            clock=self.clock,
        )
        self.orders.add_notice_listener(self.broker.notify)
        #: set once the order path has started (its audit trail open): the order path's
        #: reconciliation after a connect waits for it (the broker connects first)
        self._orders_started = asyncio.Event()
        self.broker.add_connect_hook(self._orders_on_connected)
        self.broker.add_connect_hook(self.account.on_connected)
        self.started = False
        self.metrics: MetricsServer | None = None  # with DESK_METRICS_PORT
        #: the engine API on DESK_ENGINE_SOCKET (desk.engine.server), once started
        self.api: EngineServer | None = None
        #: why the engine API is not served (another engine holds the socket...), else ""
        self.api_problem = ""
        self._on_stop: list[Callable[[], None]] = []

    @property
    def endpoint(self) -> str:
        """``host:port`` of the gateway (the embedded simulator's once started)."""
        port = self.broker.port or "?"
        return f"{self.broker.host}:{port}"

    async def start(self) -> None:
        """Start everything; returns once the broker's connect loop is running and the
        recorder, the order path, the analytics and the engine API have started.

        Order: the simulator and the broker first (the first quote does not wait for the
        database layer, which loads on a worker thread meanwhile; ticks before the
        recorder opens are held and recorded) and the engine API (views attach and see
        quotes; orders are refused until the order path is ready), then the recorder, the
        order path (its reconciliation after the connect waits for it) and the scanners.

        Raises :class:`SettingsRefused` for an invalid ``DESK_DATABASE_URL`` and
        :class:`RuntimeStartError` when the simulator cannot listen or the recorder /
        publisher cannot be configured (a database that is merely down is not an error:
        the recorder spools until it comes back); what had started is stopped again first.
        """
        if self.started:
            return
        self.started = True
        try:
            await self._start()
        except BaseException:
            # nothing half-started: a desk whose metrics port was taken must not go on
            # connected to the gateway with a "could not start" on screen
            with contextlib.suppress(Exception):
                await self.stop()
            raise

    async def _orders_on_connected(self) -> object:
        await self._orders_started.wait()
        return await self.orders.on_connected()

    async def _start(self) -> None:
        s = self.settings
        # the database layer (SQLAlchemy, psycopg: ~0.2 s of imports) loads on a worker
        # thread while the simulator starts and the broker connects and subscribes: the
        # first quote does not wait for it. Ticks before the recorder opens are held.
        store = asyncio.ensure_future(asyncio.to_thread(_load_store, s))
        try:
            await self._start_feed(store)
        finally:
            if not store.done():
                store.cancel()
            with contextlib.suppress(BaseException):
                await store  # retrieved, whatever it ended with (no "never retrieved")

    async def _start_feed(self, store: asyncio.Future[str | None]) -> None:
        s = self.settings
        if not s.embedded_sim or s.sim_replay:
            # a real gateway is not touched (client id, market data lines) before the
            # settings are known good; a replayed day is read from the store itself
            await _checked(store)
        if s.embedded_sim:
            from desk.sim import EmbeddedSim

            sim_kwargs: dict[str, Any] = {"option_source": self.opportunities.sim_option_source()}
            if s.sim_replay:
                sim_kwargs = await self._replay_kwargs()
            # the simulator keeps the desk's clock (a frozen one freezes both)
            sim_kwargs.setdefault("clock", self.clock)
            self.sim = EmbeddedSim(host="127.0.0.1", port=s.sim_port, seed=s.sim_seed, paused=s.sim_paused, **sim_kwargs)
            try:
                port = await asyncio.to_thread(self.sim.start)
            except OSError as exc:
                raise RuntimeStartError(f"simulator: cannot listen on 127.0.0.1: {exc}") from None
            self.broker.host = "127.0.0.1"
            self.broker.port = port
        # ticks before the recorder opens wait here; it takes them and the sink's place
        held: list[TickRecord] | None = [] if s.record else None
        if held is not None:
            self.broker.add_sink(held.append)
        if s.redis_url:
            from desk.bus import BusError, RedisPublisher

            try:
                self.publisher = RedisPublisher(s.redis_url)
                await self.publisher.start()
            except BusError as exc:
                self.publisher = None
                raise RuntimeStartError(f"redis: {exc}") from None
            self.broker.add_sink(self.publisher.submit)
        # a port that is taken fails the start before the gateway is touched
        if s.metrics_port is not None and self.metrics is None:
            from desk.metrics import MetricsServer

            server = MetricsServer(self, s.metrics_host, s.metrics_port)
            try:
                server.start()
            except OSError as exc:
                raise RuntimeStartError(
                    f"metrics: cannot listen on {s.metrics_host}:{s.metrics_port}: {exc.strerror or exc}"
                ) from None
            self.metrics = server
        await self.broker.start()
        if s.engine_api and self.api is None:
            # views attach now and see the quotes; orders are refused until the order path
            # has started and reconciled (OrderService.ready), the recorder counts show 0
            await self._serve_api()
        await _checked(store)
        if held is not None:
            from desk.store import StoreError, TickRecorder

            try:
                self.recorder = TickRecorder(
                    s.database_url,
                    flush_interval=s.flush_interval,
                    flush_rows=s.flush_rows,
                    spool_dir=s.effective_spool_dir,
                    write_timeout=s.db_write_timeout,
                    retention_days=s.tick_retention_days,
                )
                await self.recorder.start()
            except StoreError as exc:
                self.recorder = None
                raise RuntimeStartError(f"recorder: {exc}") from None
            # no await from here to the swap: nothing arrives in between, nothing is reordered
            self.recorder.submit_many(held)
            sinks = self.broker.sinks
            sinks[sinks.index(held.append)] = self.recorder.submit
            held.clear()
        await self.orders.start()
        self._orders_started.set()
        await self.opportunities.start()
        self.analytics.start()

    async def _serve_api(self) -> None:
        """Serve the engine API; another engine on the socket is not fatal (this one works
        on, unreachable by views: the problem is logged and kept in ``api_problem``)."""
        from desk.engine.server import EngineRunning, EngineServer

        s = self.settings
        server = EngineServer(self, s.effective_engine_socket, tcp_port=s.engine_tcp_port or None)
        try:
            await server.start()
        except (EngineRunning, OSError) as exc:
            self.api_problem = f"engine API not served: {exc}"
            log.warning("%s", self.api_problem)
            self.broker.notify("warning", self.api_problem)  # the desk's status line, the collector's log
            return
        self.api = server

    def _open_audit_log(self) -> AuditLog:
        """Open the audit log of ``DESK_DATABASE_URL`` (called by the audit trail's thread,
        again while it fails)."""
        from desk.store import AuditLog

        return AuditLog(self.settings.database_url, clock=self.clock)

    def quote_for(self, instrument: Instrument) -> Quote | None:
        """Latest :class:`~desk.domain.Quote` of a stock (quote store) or an option (the
        chain's store, copied into a Quote); ``None`` when there is none."""
        from desk.domain import Quote

        q = self.quotes.get(instrument.con_id)
        if q is not None:
            return q
        oq = self.chains.store.get(instrument.con_id)
        if oq is None:
            return None
        return Quote(instrument, bid=oq.bid, ask=oq.ask, last=oq.last, bid_size=oq.bid_size, ask_size=oq.ask_size, time=oq.time)

    def market_context(
        self, intent: OrderIntent, margin: MarginImpact | None = None, working: Sequence[OrderIntent] = ()
    ) -> MarketContext:
        """The :class:`desk.risk.MarketContext` of ``intent`` now: quotes of its
        instrument(s), of the ``working`` orders' instruments (a working combo is valued at
        its legs' quotes) and of the positions in its underlying, positions (with their
        marks), daily P&L, buying power and available funds from the account, IB's what-if
        ``margin`` if known, the underlying's price. The order service sets the working
        orders."""
        from desk.risk import MarketContext

        quotes: dict[int, Quote] = {}
        for order in (intent, *working):
            for ins in [leg.instrument for leg in order.legs] or [order.instrument]:
                if ins.con_id not in quotes and (q := self.quote_for(ins)) is not None:
                    quotes[ins.con_id] = q
        positions = {p.instrument.con_id: p for p in self.account.positions()}
        symbol = intent.instrument.symbol
        for p in positions.values():
            if p.instrument.symbol == symbol and p.instrument.con_id not in quotes:
                q = self.quote_for(p.instrument)
                if q is not None:
                    quotes[p.instrument.con_id] = q
        figures = self.account.figures()
        return MarketContext(
            now=self.clock.now(),
            quotes=quotes,
            positions=positions,
            daily_pnl=figures.daily_pnl,
            buying_power=figures.buying_power,
            available_funds=figures.available_funds,
            margin=margin,
            underlying_price=self.account.underlying_price(symbol),
        )

    async def _replay_kwargs(self) -> dict[str, Any]:
        """Simulator arguments replaying ``settings.sim_replay`` (loaded off the event loop;
        imported from the LEAN folder first if the store lacks the day)."""
        from desk.sim.replay_market import replay_gateway_kwargs

        s = self.settings
        try:
            kwargs = await asyncio.to_thread(
                replay_gateway_kwargs, s.database_url, s.sim_replay, s.sim_replay_symbols, stream=None
            )
        except Exception as exc:  # the replay loader's errors name the file / day / symbol
            raise RuntimeStartError(f"replay of {s.sim_replay}: {exc}") from None
        kwargs["speed"] = s.sim_replay_speed
        return kwargs

    async def stop(self) -> None:
        """Stop the broker, flush and close the recorder and publisher, stop the simulator.

        Safe to call more than once and after a failed :meth:`start`.
        """
        if self.api is not None:
            api, self.api = self.api, None
            await api.close()
        if self.metrics is not None:
            metrics, self.metrics = self.metrics, None
            await metrics.stop()
        await self.analytics.stop()
        await self.broker.stop()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.close()
        await self.opportunities.stop()
        if self.recorder is not None:
            await self.recorder.close()
        if self.sim is not None:
            sim, self.sim = self.sim, None
            await asyncio.to_thread(sim.stop)
        with contextlib.suppress(Exception):
            await self.orders.close()
        self.started = False
