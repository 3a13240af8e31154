"""The simulated IB Gateway: a TCP server speaking the TWS API to unmodified ib_async.

:class:`SimGateway` runs on the caller's asyncio loop; :class:`EmbeddedSim` runs one on
its own loop in a daemon thread (what the desk uses, so the simulator never competes
with the UI's loop); :func:`serve` is the blocking entry point of ``desk sim``.

One :class:`~desk.sim.market.MarketModel` is shared by every connection (all clients
see the same market). A timer steps it every ``tick_interval`` seconds (0.25 s is IB's
stock ticking cadence) and fans every change out to the subscribed lines: each change
is formatted once, then only the subscriber's request id is spliced in, and each
connection gets one ``transport.write`` per step.

The gateway is the simulator's composition root: it builds the sessions and the services
(options, history, orders, faults) and hands each one itself as a
:class:`~desk.sim.ports.Host`. None of them imports this module or each other back; what
each uses of the others is spelled out in :mod:`desk.sim.ports`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from desk.domain.clock import Clock
from desk.sim import messages as m
from desk.sim.account import SimAccount
from desk.sim.control import open_control
from desk.sim.faults import FaultInjector
from desk.sim.history import HistoryService
from desk.sim.journal import clock_id
from desk.sim.market import MarketModel
from desk.sim.matching import OrderEngine
from desk.sim.chain import SimOption
from desk.sim.delayed import to_delayed
from desk.sim.messages import TickEncoder
from desk.sim.option_source import OptionSource
from desk.sim.options import DEFAULT_RATE, OptionEngine
from desk.sim.ports import Client, OptionLine, SimQuote, Subscription
from desk.sim.session import Session
from desk.sim.universe import SimStock, by_con_id

__all__ = ["EmbeddedSim", "SimGateway", "serve"]

log = logging.getLogger("desk.sim")

#: Longest market time one model step simulates, seconds (IB's ~250 ms aggregation).
MAX_STEP_DT = 0.25


class SimGateway:
    """A simulated IB Gateway on the running asyncio loop.

    Arguments:

    * ``host``, ``port``: where to listen; port 0 picks a free port (read ``.port`` after
      :meth:`start`). The socket uses ``SO_REUSEADDR``, so a stopped gateway's port can be
      bound again at once (reconnect tests).
    * ``seed``: seed of the market model (same seed, same prices).
    * ``clock``: source of timestamps (``currentTime``, last-trade time, handshake time);
      defaults to the wall clock. The market's pace is the loop's timer, not the clock.
    * ``tick_interval``: wall-clock seconds between market updates (0.25 s = IB's
      aggregated ~4 snapshots/s per stock; smaller gives smoother, smaller batches).
    * ``speed``: market seconds simulated per wall-clock second (1.0 = real time). Each
      timer tick advances the market by ``tick_interval * speed`` seconds in steps of at
      most :data:`MAX_STEP_DT` (0.25 s, IB's cadence), so the message rate grows about
      linearly with ``speed``: the stress knob of benches (``speed=100`` with
      ``tick_interval=0.01`` gives ~20,000 tick messages/s with every symbol subscribed).
    * ``accounts``: managed account ids (paper style ``DU...``); must not be empty.
    * ``symbols``: restrict the market to these universe symbols (default all).
    * ``max_tickers``: market data lines per connection (IB's default is 100; error 101).
    * ``market``: the market source (default ``MarketModel(seed, symbols)``); the replay of
      a recorded day passes a :class:`~desk.sim.replay.ReplayMarket` (with its clock).
    * ``max_write_buffer``: bytes a client may fall behind before its ticks are dropped
      (counted in ``Session.dropped_ticks``); replies are never dropped.
    * ``rate``: risk-free rate of option prices and Greeks (annual fraction, continuously
      compounded; default 4.5 %).
    * ``option_source``: where options come from (:class:`~desk.sim.option_source.OptionSource`;
      default the synthetic chains and vol surfaces of :mod:`desk.sim.options`).
    * ``delayed_data``: ``reqMarketDataType(3/4)`` gives delayed lines (error 10167 and
      delayed tick types, as for an account without subscriptions; default); ``False``:
      live data whatever type is asked (as for a subscribed account).
    * ``cash``: starting cash of each account, USD (Reg T margin accounts).
    * ``market_hours``: orders work only in the sessions of the desk's exchange calendar
      at ``clock`` (:mod:`desk.domain.calendar`: NYSE sessions, holidays and half days;
      09:30 ET to the close, or 04:00 ET to 4 hours after it with outsideRth) and DAY
      orders expire at the close; default False: the simulated market is always open
      (see :mod:`desk.sim.matching`).
    * ``state_file``: JSON snapshot of the accounts, orders, executions and id counters,
      with every change journaled to ``state_file + ".journal"`` (fsynced before it is
      reported) and compacted into the snapshot now and then: read back when the
      gateway starts, so that they survive a restart and a crash (``kill -9``); see
      :mod:`desk.sim.journal`. Default None: a restart starts afresh (order ids and
      permIds still grow, seeded from the wall clock).
    * ``paused``: start with the market standing still (:attr:`paused`): every line gets
      its opening quote and nothing moves until ``paused`` is cleared or :meth:`step` is
      called; orders are matched on steps, so a resting order waits too.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 7,
        clock: Clock | None = None,
        tick_interval: float = 0.25,
        accounts: Iterable[str] = ("DU1234567",),
        speed: float = 1.0,
        symbols: Iterable[str] | None = None,
        max_tickers: int = 100,
        market: Any = None,
        max_write_buffer: int = 32 * 1024 * 1024,
        rate: float = DEFAULT_RATE,
        option_source: OptionSource | None = None,
        delayed_data: bool = True,
        cash: float = 1_000_000.0,
        market_hours: bool = False,
        state_file: str | os.PathLike[str] | None = None,
        paused: bool = False,
    ) -> None:
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        if speed <= 0:
            raise ValueError("speed must be positive")
        if max_tickers < 1:
            raise ValueError(f"max_tickers (market data lines) must be >= 1, got {max_tickers}")
        self.host = host
        self.port = port
        self.seed = seed
        self.clock = clock or Clock()
        self.tick_interval = float(tick_interval)
        self.speed = float(speed)
        #: the market timer does not step while set (quotes stand at their last values;
        #: :meth:`step` by hand still advances them): screenshots, demos, step-by-step tests
        self.paused = bool(paused)
        self.timer_ticks = 0  # market timer periods run (stepped or, paused, skipped)
        span = self.tick_interval * self.speed  # market seconds per timer tick
        self._steps_per_tick = max(1, math.ceil(span / MAX_STEP_DT - 1e-9))
        self._step_dt = span / self._steps_per_tick
        self.accounts = [SimAccount(a, cash) for a in accounts]
        if not self.accounts:
            raise ValueError("at least one account is needed (ib_async waits for one)")
        self.max_tickers = max_tickers
        self.max_write_buffer = max_write_buffer
        self.market = market if market is not None else MarketModel(seed, symbols)
        self.encoder = TickEncoder()
        #: historical bars (desk.sim.history) and faults on demand (desk.sim.faults)
        self.history = HistoryService(self)
        self.faults = FaultInjector(self)
        self.delayed_data = bool(delayed_data)
        #: options: chains, contract details, quotes and option lines (desk.sim.options)
        self.options = OptionEngine(self, rate, option_source)
        #: orders, matching, executions and account streaming (desk.sim.matching)
        self.orders = OrderEngine(self, market_hours=market_hours)
        self.state_file = state_file
        self.sessions: set[Client] = set()
        self._by_client_id: dict[int, Client] = {}
        #: next valid order id by clientId; a client not seen yet starts at the clock
        #: seed, so that ids grow across restarts even without a state file
        self._next_order_id: dict[int, int] = {}
        self._order_id_seed = clock_id()
        self._subs: dict[str, list[Subscription]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stopped: asyncio.Event | None = None
        #: tick frames written since start (all connections)
        self.ticks_sent = 0

    # --- public API ----------------------------------------------------------------------

    @property
    def account_ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    @property
    def clients(self) -> int:
        """Connections that completed startApi (have a client id)."""
        return len(self._by_client_id)

    @property
    def client_ids(self) -> list[int]:
        return sorted(self._by_client_id)

    @property
    def running(self) -> bool:
        return self._server is not None

    def account(self, account_id: str = "") -> SimAccount | None:
        """The account with this id; the first one for ``""``; ``None`` if unknown."""
        if not account_id:
            return self.accounts[0]
        return next((a for a in self.accounts if a.account_id == account_id), None)

    async def start(self) -> int:
        """Bind and start listening and ticking; return the port. ``OSError`` if the
        port is taken, ``ValueError`` naming the file if ``state_file`` cannot be read
        back or written (or another simulator uses it)."""
        if self._server is not None:
            return self.port
        if self.state_file is not None:
            self.orders.open_state(self.state_file)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: Session(self), self.host, self.port, reuse_address=True)
        except BaseException:
            self.orders.close_state()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._stopped = asyncio.Event()
        self._ticker = loop.create_task(self._run_market(), name="desk-sim-market")
        log.info("simulated gateway listening on %s:%d (seed %d)", self.host, self.port, self.seed)
        return self.port

    async def stop(self) -> None:
        """Stop listening and ticking and close every connection (clients see the socket
        close, as when TWS exits). Safe to call twice."""
        if self._server is None:
            return
        self.faults.close()  # pending fault timers (restart, farm OK, outage end)
        server, self._server = self._server, None
        server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        await self._close_sessions()
        await server.wait_closed()
        self.orders.close_state()  # last snapshot of the state file, if any
        if self._stopped is not None:
            self._stopped.set()
        log.info("simulated gateway on port %d stopped", self.port)

    async def drop_clients(self, timeout: float = 2.0) -> int:
        """Close every client connection but keep listening (fault injection: clients
        see a disconnect and may reconnect). Returns how many were closed."""
        return await self._close_sessions(timeout)

    async def close_listener(self, timeout: float = 2.0) -> int:
        """Stop accepting connections (connection attempts are refused) and close every
        client connection, keeping the market, orders, accounts, executions and order id
        counters (TWS's daily restart, :meth:`desk.sim.faults.FaultInjector.restart`).
        Returns the connections closed; :meth:`open_listener` listens again."""
        server = self._server
        if server is None:
            raise RuntimeError("gateway not started")
        server.close()
        n = await self._close_sessions(timeout)
        await server.wait_closed()
        return n

    async def open_listener(self) -> bool:
        """Listen again on the same port after :meth:`close_listener`; ``False`` if
        already listening or stopped meanwhile. ``OSError`` if the port was taken."""
        old = self._server
        if old is None or old.is_serving():
            return False
        server = await asyncio.get_running_loop().create_server(lambda: Session(self), self.host, self.port, reuse_address=True)
        if self._server is not old:  # stopped (or reopened) while binding
            server.close()
            return False
        self._server = server
        return True

    async def serve_forever(self) -> None:
        """Start if needed and run until :meth:`stop` is called (or the task is
        cancelled, which stops the gateway)."""
        await self.start()
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def next_order_id(self, client_id: int) -> int:
        """The next valid order id of ``client_id`` (nextValidId): above every id it has
        used (placed, modified or what-if), also across restarts with a state file; a
        client not seen before starts at the wall-clock seed
        (:func:`desk.sim.journal.clock_id`), above the ids of a previous run."""
        return self._next_order_id.setdefault(client_id, self._order_id_seed)

    def note_order_id(self, client_id: int, order_id: int) -> None:
        """Record that ``client_id`` used ``order_id``."""
        if order_id >= self.next_order_id(client_id):
            self._next_order_id[client_id] = order_id + 1

    def order_ids(self) -> dict[int, int]:
        """The next valid order id of every client seen, by clientId (a copy)."""
        return dict(self._next_order_id)

    def restore_order_ids(self, next_ids: dict[int, int]) -> None:
        """Raise the next valid order ids to ``next_ids`` (clientId -> id), read back
        from a state file; ids already above stay."""
        for client_id, n in next_ids.items():
            self._next_order_id[client_id] = max(int(n), self._next_order_id.get(client_id, 0))

    def quote_for(self, con_id: int) -> SimQuote | None:
        """Current ``(bid, ask, bid_size, ask_size, last)`` of any simulated instrument,
        stock or option, by conId; ``None`` if unknown or not in this gateway's market.

        Prices in dollars per share (options too: times ``multiplier`` per contract);
        sizes in shares for stocks, contracts for options; an option without a bid has
        ``bid == 0.0`` and ``bid_size == 0``; ``last`` NaN before any trade. Asking for
        an option keeps it quoted (stepped with the market) from then on. Call it on the
        gateway's loop (from another thread: ``EmbeddedSim.call``).
        """
        stock = by_con_id(con_id)
        if stock is not None:
            if stock.symbol not in self.market:
                return None
            st = self.market.state(stock.symbol)
            return SimQuote(st.bid, st.ask, st.bid_size, st.ask_size, st.last)
        return self.options.quote(con_id)

    def contract_for(self, con_id: int) -> SimStock | SimOption | None:
        """The definition of a conId: a :class:`~desk.sim.universe.SimStock` (``sec_type``
        ``"STK"``, multiplier 1 implied) or a :class:`~desk.sim.chain.SimOption`
        (``sec_type`` ``"OPT"``: ``multiplier`` 100, ``right``, ``strike``, ``expiry``,
        ``underlying_con_id``); ``None`` if unknown."""
        stock = by_con_id(con_id)
        if stock is not None:
            return stock
        return self.options.option(con_id)

    def epoch_ms(self) -> int:
        """The clock's time, UTC milliseconds since the epoch."""
        return int(self.clock.time() * 1000)

    def step(self) -> int:
        """Run one timer tick by hand: advance the market by ``tick_interval * speed``
        seconds and fan the changes out. Returns the number of tick frames queued. (The
        gateway calls it on its timer.)"""
        market = self.market
        dt = self._step_dt
        subs_by_symbol = self._subs
        encode = self.encoder.encode
        render = m.render
        epoch_ms = self.epoch_ms()
        frames = 0
        for _ in range(self._steps_per_tick):
            for ch in market.step(dt):
                subs = subs_by_symbol.get(ch.symbol)
                if not subs:
                    continue
                parts, rt, rtt = encode(subs[0].stock, ch, epoch_ms)
                delayed_parts = None
                for sub in subs:
                    out = sub.session.out
                    if sub.delayed:
                        if delayed_parts is None:
                            delayed_parts = to_delayed(parts)
                        render(delayed_parts, sub.rid, out)
                    else:
                        render(parts, sub.rid, out)
                    frames += len(parts)
                    if rt and sub.rt_volume:
                        render(rt, sub.rid, out)
                        frames += 1
                    if rtt and sub.rt_trade_volume:
                        render(rtt, sub.rid, out)
                        frames += 1
            frames += self.options.step(dt, epoch_ms)
        if frames:
            for session in self.sessions:
                session.flush_ticks()
            self.ticks_sent += frames
        self.history.on_step()
        self.orders.on_step()
        return frames

    # --- internals -------------------------------------------------------------------------

    async def _run_market(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.tick_interval
        next_t = loop.time() + interval
        while True:
            delay = next_t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.timer_ticks += 1
            if self.paused:
                next_t = loop.time() + interval
                continue
            try:
                self.step()
            except Exception:
                log.exception("market step failed")
            next_t += interval
            now = loop.time()
            if next_t < now:  # fell behind (busy loop): skip the missed steps
                next_t = now + interval

    async def _close_sessions(self, timeout: float = 2.0) -> int:
        sessions = list(self.sessions)
        for s in sessions:
            s.close()
        waits = [s.closed for s in sessions if not s.closed.done()]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=timeout)
            if pending:
                for s in sessions:
                    if not s.closed.done():
                        s.abort()
                await asyncio.wait(pending, timeout=timeout)
        return len(sessions)

    def session_for(self, client_id: int) -> Client | None:
        """The connected session with this client id, if any."""
        return self._by_client_id.get(client_id)

    def session_opened(self, session: Client) -> None:
        self.sessions.add(session)

    def session_closed(self, session: Client) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self._by_client_id.get(session.client_id) is session:
            del self._by_client_id[session.client_id]
        for sub in session.subscriptions.values():
            self.unsubscribe(sub)
        self.orders.session_closed(session)

    def register_client(self, session: Client, client_id: int) -> bool:
        if client_id in self._by_client_id or self.faults.client_id_held(client_id):
            return False
        self._by_client_id[client_id] = session
        return True

    def subscribe(self, sub: Subscription) -> None:
        self._subs.setdefault(sub.stock.symbol, []).append(sub)

    def unsubscribe(self, sub: Subscription | OptionLine) -> None:
        if isinstance(sub, OptionLine):
            self.options.unsubscribe(sub)
            return
        subs = self._subs.get(sub.stock.symbol)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.stock.symbol]


class EmbeddedSim:
    """A :class:`SimGateway` on its own event loop in a daemon thread.

    ``EmbeddedSim(port=0, seed=7, ...)`` takes the :class:`SimGateway` arguments.
    :meth:`start` blocks until the gateway listens and returns the port; :meth:`stop`
    closes everything and joins the thread. All methods are thread-safe and blocking;
    use as a context manager to stop on exit::

        with EmbeddedSim(seed=7) as sim:
            await ib.connectAsync("127.0.0.1", sim.port, clientId=1)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **gateway_kwargs: Any) -> None:
        self._host = host
        self._port = port
        self._kwargs = gateway_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.gateway: SimGateway | None = None

    @property
    def port(self) -> int:
        """The listening port (after :meth:`start`)."""
        return self.gateway.port if self.gateway else self._port

    @property
    def clients(self) -> int:
        """Connected API clients (read across threads; a snapshot)."""
        return self.gateway.clients if self.gateway else 0

    def start(self, timeout: float = 10.0) -> int:
        """Start the thread and the gateway; return the port. Raises what binding raised
        (``OSError`` if the port is taken) or ``TimeoutError``."""
        if self._thread is not None:
            return self.port
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="desk-sim", daemon=True)
        self._thread.start()
        try:
            return ready.result(timeout)
        except BaseException:
            self._thread.join(timeout)
            self._thread = None
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the gateway, its loop and the thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self.gateway is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self.gateway.stop(), loop).result(timeout)
            except RuntimeError:  # loop already stopped
                pass
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def drop_clients(self, timeout: float = 10.0) -> int:
        """Close every client connection, keep listening; returns how many."""
        return self.call(lambda gw: gw.drop_clients(), timeout)

    def call(self, fn: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(gateway)`` on the gateway's loop and return its result (awaited if it
        is a coroutine). For tests and tools that need to poke the running gateway."""
        loop, gw = self._loop, self.gateway
        if loop is None or gw is None:
            raise RuntimeError("simulator not started")

        async def run() -> Any:
            result = fn(gw)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def __enter__(self) -> EmbeddedSim:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            gw = SimGateway(self._host, self._port, **self._kwargs)
            loop.run_until_complete(gw.start())
        except BaseException as e:
            ready.set_exception(e)
            loop.close()
            return
        self.gateway = gw
        ready.set_result(gw.port)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(gw.stop())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 7,
    *,
    tick_interval: float = 0.25,
    speed: float = 1.0,
    max_tickers: int = 100,
    rate: float = DEFAULT_RATE,
    cash: float = 1_000_000.0,
    market_hours: bool = False,
    state_file: str | None = None,
    gateway_kwargs: dict[str, Any] | None = None,
    pacing: int | None = None,
    control: bool = True,
    label: str | None = None,
) -> None:
    """Run a simulated gateway until SIGINT or SIGTERM (the ``desk sim`` command).

    Prints one line ``desk sim listening on HOST:PORT (seed S)`` once listening, then
    blocks; returns normally on the signal after closing every connection. ``OSError``
    if the port is taken. ``max_tickers``: market data lines per connection (error 101
    beyond); ``rate``: the options' risk-free rate (annual fraction); ``cash``: starting
    cash of the account, USD; ``market_hours``: orders work only in US market hours;
    ``state_file``: keep accounts, orders and executions across restarts and crashes
    (see :class:`SimGateway`).
    ``gateway_kwargs``: more :class:`SimGateway` arguments (the replay's market and clock,
    :func:`desk.sim.replay.replay_gateway_kwargs`); ``pacing``: enforce that many messages
    per second per client (error 100, :mod:`desk.sim.faults`); ``control``: listen for
    fault commands on :func:`desk.sim.control.control_path` (``desk sim ctl``); ``label``:
    shown instead of the seed in the first line.
    """

    async def main() -> None:
        gw = SimGateway(
            host,
            port,
            seed=seed,
            tick_interval=tick_interval,
            speed=speed,
            max_tickers=max_tickers,
            rate=rate,
            cash=cash,
            market_hours=market_hours,
            state_file=state_file,
            **(gateway_kwargs or {}),
        )
        await gw.start()
        print(f"desk sim listening on {host}:{gw.port} ({label or f'seed {seed}'})", flush=True)
        if pacing:
            gw.faults.set_pacing(pacing)
        ctl = await open_control(gw.faults, gw.port) if control else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread / Windows
                pass
        try:
            await stop.wait()
        finally:
            if ctl is not None:
                await ctl.stop()
            await gw.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # signal arrived before the handlers were installed
        print("desk sim stopped", file=sys.stderr)
