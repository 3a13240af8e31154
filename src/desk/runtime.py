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
from desk.broker.account import AccountManager
from desk.broker.lines import LineBudget
from desk.broker.orders import OrderManager, OrderNotSent
from desk.domain import Clock, QuoteStore
from desk.domain.options import WindowSpec
from desk.opportunity_feed import OpportunityFeed
from desk.risk import RiskLimits
from desk.safety import NotTransmitted, OrderGate, OrderRouter
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
            symbols=settings.sim_replay_symbols if settings.sim_replay else settings.watchlist,
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
        #: live arbitrage scan of the chain on screen, its store writer and Redis publisher
        self.opportunities = OpportunityFeed(settings, self.chains, self.quotes, clock=self.clock)
        #: orders of the broker's connection (blotter rows, transmit, what-if, reconcile)
        self.orders = OrderManager(self.broker.ib, clock=self.clock)
        #: positions, account figures, P&L subscriptions, portfolio Greeks
        self.account = AccountManager(
            self.broker.ib, self.quotes, clock=self.clock, rate=settings.chain_rate,
            option_quotes=lambda con_id: self.chains.store.get(con_id),
        )
        #: the safety gate (mode, orders enabled, live override, kill switch)
        self.gate = OrderGate(settings)
        #: the one order path (desk.safety.OrderRouter); built in start() once the audit
        #: log is open. None: orders are refused (``router_error`` says why).
        self.router: OrderRouter | None = None
        self.router_error = "the audit log is not open yet"
        self.audit = None  # desk.store.AuditLog
        self.broker.add_connect_hook(self._reconcile_orders)
        self.broker.add_connect_hook(self.account.on_connected)
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

            sim_kwargs: dict = {"option_source": self.opportunities.sim_option_source()}
            if s.sim_replay:
                sim_kwargs = await self._replay_kwargs()
            self.sim = EmbeddedSim(host="127.0.0.1", port=0, seed=s.sim_seed, **sim_kwargs)
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
        await self._open_router()
        await self.opportunities.start()
        await self.broker.start()

    async def _open_router(self) -> None:
        """Open the audit log (write-ahead log of orders) and build the OrderRouter. A
        database that cannot be opened leaves ``router`` None: every order is refused."""
        from desk.store import AuditLog

        s = self.settings
        try:
            self.audit = await asyncio.to_thread(AuditLog, s.database_url, clock=self.clock)
        except Exception as exc:  # orders refused, everything else keeps running
            self.router_error = f"audit log unavailable, orders disabled: {exc}"
            log.warning(self.router_error)
            return
        orders = self.orders

        async def transmit(intent, client_order_id):
            try:
                return await orders.transmit(intent, client_order_id)
            except OrderNotSent as exc:
                raise NotTransmitted(str(exc)) from None

        async def cancel_all() -> None:
            try:
                await orders.global_cancel()
            except OrderNotSent as exc:
                raise ConnectionError(str(exc)) from None

        self.router = OrderRouter(
            self.gate, self.audit, RiskLimits.from_settings(s), transmit, cancel_all=cancel_all, clock=self.clock
        )
        router = self.router
        orders.reconcile = router.reconcile
        # Status and fill rows wait for the router's submit lock: a fast fill must not be
        # written before the submit's own 'sent' row (asyncio.Lock is FIFO, so rows keep
        # the order of the gateway's events).
        async def record_status(order) -> None:
            async with router._lock:
                await router.record_status(order)

        async def record_fill(fill, remaining, filled) -> None:
            async with router._lock:
                await router.record_fill(fill, remaining=remaining, filled=filled)

        orders.record_status = record_status
        orders.record_fill = record_fill
        self.router_error = ""

    async def _reconcile_orders(self) -> None:
        """Connect hook: reconcile the gateway's orders with the audit log, then say in
        the status bar what needs a human (orders that never left, orders not found)."""
        from desk.domain import StatusEvent

        plan = await self.orders.on_connected()
        if plan is None:
            return
        resend = plan.by_action("resend")
        human = plan.by_action("human")
        if resend:
            self.broker._emit(StatusEvent(
                "warning", f"{len(resend)} order(s) written but never sent before the restart: not resent; "
                           "enter them again if still wanted"))
        if human:
            self.broker._emit(StatusEvent(
                "error", f"{len(human)} order(s) may have reached the gateway but are not visible there: check "
                         "them in TWS (" + ", ".join(d.client_order_id for d in human[:3]) + ")"))

    def quote_for(self, instrument):
        """Latest :class:`~desk.domain.Quote` of a stock (quote store) or an option (the
        chain's store, copied into a Quote); ``None`` when there is none."""
        from desk.domain import Quote

        q = self.quotes.get(instrument.con_id)
        if q is not None:
            return q
        oq = self.chains.store.get(instrument.con_id)
        if oq is None:
            return None
        return Quote(instrument, bid=oq.bid, ask=oq.ask, last=oq.last, bid_size=oq.bid_size, ask_size=oq.ask_size,
                     time=oq.time)

    def market_context(self, intent, margin=None):
        """The :class:`desk.risk.MarketContext` of ``intent`` now: quotes of its
        instrument(s), positions, daily P&L and buying power from the account, the
        working orders, IB's what-if ``margin`` if known, the underlying's price."""
        from desk.risk import MarketContext

        instruments = [leg.instrument for leg in intent.legs] or [intent.instrument]
        quotes = {}
        for ins in instruments:
            q = self.quote_for(ins)
            if q is not None:
                quotes[ins.con_id] = q
        figures = self.account.figures()
        return MarketContext(
            now=self.clock.now(),
            quotes=quotes,
            positions={p.instrument.con_id: p for p in self.account.positions()},
            daily_pnl=figures.daily_pnl,
            buying_power=figures.buying_power,
            open_orders=self.orders.open_intents(),
            margin=margin,
            underlying_price=self.account.underlying_price(intent.instrument.symbol),
        )

    async def _replay_kwargs(self) -> dict:
        """Simulator arguments replaying ``settings.sim_replay`` (loaded off the event loop;
        imported from the LEAN folder first if the store lacks the day)."""
        from desk.sim.replay import replay_gateway_kwargs

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
        if self.audit is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.audit.close)
        self.started = False
