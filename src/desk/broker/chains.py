"""Option chains: definitions, the visible window's market data lines, quotes and our Greeks.

:class:`ChainManager` shows one underlying's chain, one expiry at a time:

1. **definitions**: ``reqSecDefOptParams`` lists the expiries and strikes (one message per
   exchange; desk takes the ``SMART`` one, trading class = the underlying symbol when
   there are several). The contracts of the selected expiry come from one
   ``reqContractDetails`` with the expiry and no strike or right (conIds, local symbols,
   the strikes that expiry really lists); they are cached per expiry.
2. **the window**: the strikes around the money, ``N`` strikes or ``+/- p %`` of the
   underlying (:class:`WindowSpec`, setting ``DESK_CHAIN_STRIKES``). It re-centres when
   the underlying moves past the next strike by more than a quarter of the strike step
   (hysteresis, so a price sitting between two strikes does not make it flap).
3. **lines** (:mod:`desk.broker.chain_lines`, the manager's base class): only the window's
   contracts are subscribed, within the :class:`~desk.broker.lines.LineBudget` shared
   with the watchlist (a window that needs more lines than are free is trimmed from the
   far strikes in, and :attr:`ChainManager.message` says so); lines are released when the
   window moves, the expiry or the underlying changes, and requested again after a
   reconnect.
4. **quotes**: ticker updates are translated into the
   :class:`~desk.domain.options.OptionChainStore` (bid, ask, last, sizes, volume, open
   interest, IB's model Greeks) and marked dirty; quote and trade ticks also go to the
   broker's tick sinks (recorder, Redis).
5. **our Greeks**, on the engine's analytics timer (:meth:`ChainManager.flush`), for the
   window only, by the :class:`~desk.domain.chain.ChainPricer` the engine gives the
   manager (:func:`desk.pricing.chain_analytics.price_window`: the forward implied from
   put-call parity near the money, the dividend/borrow yield that reconciles it with the
   spot, then each contract's mid IV and its Greeks, American for US equity and ETF
   options, European for SPX/NDX/RUT, :func:`desk.domain.options.exercise_style`). The
   manager gathers the window's quotes and the *gateway's* clock (``reqCurrentTime``, so a
   replayed day prices at the replayed time) and stores what comes back; it imports no
   pricing code (design.md: the broker translates and nothing else). Without a pricer
   (``pricer=None``) the chain shows IB's model Greeks only.

Units: prices in dollars per share; IV a fraction per year; vega per vol point; theta per
calendar day (see :mod:`desk.domain.options`). Times are UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from desk.broker.chain_lines import CHAIN_OWNER, ChainLines
from desk.broker.chain_support import CLOCK_SYNC_SECONDS, ChainFlush, ServerClock, greeks_from_computation, same_number
from desk.broker.chain_window import (
    ChainDefinition,
    ChainRow,
    ExpiryContracts,
    choose_definition,
    default_expiry,
    expiry_contracts,
    nearest_index,
)
from desk.broker.ib_worker import DataLost, StateChanged, instrument_from_contract
from desk.broker.lines import LineBudget
from desk.broker.ticks import Line
from desk.domain import Clock, ConnectionState, Instrument, QuoteStore
from desk.domain.calendar import DAYS_PER_YEAR, exchange_date
from desk.domain.chain import ChainError, ChainPricer
from desk.domain.options import Carry, OptionChainStore, OptionGreeks, OptionQuote, WindowSpec, exercise_style

# still reachable here as before the split: GENERIC_TICKS was defined in this module, and
# desk.broker.chain_window's docstring says this module re-exports its names
from desk.broker.chain_lines import GENERIC_TICKS as GENERIC_TICKS
from desk.broker.chain_window import should_recentre as should_recentre
from desk.broker.chain_window import window_strikes as window_strikes

if TYPE_CHECKING:
    from ib_async import ContractDetails

    from desk.broker.ib_worker import Broker

__all__ = [
    "CHAIN_OWNER",
    "ChainError",
    "ChainFlush",
    "ChainManager",
    "ServerClock",
    "greeks_from_computation",
]

log = logging.getLogger(__name__)

#: Seconds between two recomputations of our Greeks when no quote changed (T decays).
RECOMPUTE_SECONDS = 5.0


# ---------------------------------------------------------------------------------- manager


class ChainManager(ChainLines):
    """One underlying's option chain, one expiry at a time (see the module docstring).

    ``broker`` provides the ib_async connection, the underlying's quotes and the tick
    sinks; ``None`` builds an offline manager fed through :meth:`install` (snapshots,
    benches, recorded data). ``budget`` is the line budget shared with the watchlist
    (default: the broker's). ``spec`` is the strike window; ``rate`` the continuously
    compounded risk-free rate used for discounting (fraction per year); ``clock`` the
    base clock (the gateway's offset is added to it when connected); ``pricer`` computes
    our IV and Greeks of the window (``None``: none are computed, IB's model Greeks only).

    Async methods (:meth:`set_underlying`, :meth:`set_expiry`, :meth:`step_expiry`) raise
    :class:`ChainError` with a one-line reason; on error the previous state stays shown.
    Read the state from :attr:`underlying`, :attr:`definition`, :attr:`expiry`,
    :attr:`rows`, :attr:`store`, :attr:`spot`, :attr:`forward`, :attr:`atm_strike` and
    :attr:`message`; call :meth:`flush` from the engine's analytics timer.
    """

    def __init__(
        self,
        broker: Broker | None,
        *,
        quotes: QuoteStore | None = None,
        budget: LineBudget | None = None,
        spec: WindowSpec | None = None,
        rate: float = 0.04,
        clock: Clock | None = None,
        sync_clock: bool = True,
        record: bool = True,
        pricer: ChainPricer | None = None,
    ) -> None:
        if not (-0.5 < rate < 1.0):
            raise ValueError(f"risk-free rate {rate!r} is not a plausible annual fraction (e.g. 0.04)")
        self.broker = broker
        self.quotes = quotes if quotes is not None else (broker.quotes if broker is not None else QuoteStore())
        self.budget = budget if budget is not None else (broker.lines if broker is not None else LineBudget(100))
        self.spec = spec or WindowSpec()
        self.rate = float(rate)
        self.clock = ServerClock(clock or (broker.clock if broker is not None else None))
        self.sync_clock = sync_clock and broker is not None
        self.record = record
        self.pricer = pricer
        self.store = OptionChainStore()
        self.underlying: Instrument | None = None
        self.definition: ChainDefinition | None = None
        self.expiry: str | None = None
        self.rows: list[ChainRow] = []
        #: the underlying price used for the window and ITM shading (mid, else last), $/share
        self.spot = math.nan
        #: the parity forward of the selected expiry (``nan`` until computed), $/share
        self.forward = math.nan
        #: implied dividend / borrow yield of the last computation (fraction per year)
        self.q = math.nan
        #: years to expiry at the last computation
        self.T = math.nan
        #: the carry each computation used, by (underlying symbol, expiry): the rate and the
        #: parity-implied yield; positions use it (:meth:`carry`) so a contract has one IV
        self.carries: dict[tuple[str, str], Carry] = {}
        self.anchor: float | None = None  # strike the window is centred on
        self.message = ""
        self.message_level = "info"
        self.message_seq = 0
        #: bumped whenever rows / expiry / underlying change (the pane rebuilds)
        self.layout_seq = 0
        self.loading = False
        #: how many strikes the budget cut from the window (0 when it fits)
        self.trimmed = 0
        self.compute_count = 0
        self._expiries: dict[str, ExpiryContracts] = {}
        self._lines: dict[int, Line] = {}  # conId -> subscribed line
        self._by_ticker: dict[int, Line] = {}  # id(ticker) -> line
        self._gen = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._need_compute = True
        self._computed_at = -math.inf
        self._layout_flag = True
        self.budget.set_reclaimer(CHAIN_OWNER, self._reclaim)
        if broker is not None:
            broker.ib.pendingTickersEvent += self._on_pending_tickers
            broker.add_listener(self._on_broker_event)
            broker.watchdog.add(self)  # silent option lines are re-requested too

    # ------------------------------------------------------------------ state

    @property
    def expiries(self) -> tuple[str, ...]:
        return self.definition.expiries if self.definition is not None else ()

    @property
    def contracts(self) -> ExpiryContracts | None:
        """The selected expiry's contracts (``None`` before they are loaded)."""
        return self._expiries.get(self.expiry) if self.expiry else None

    @property
    def atm_strike(self) -> float:
        """The listed strike of the selected expiry nearest the underlying (``nan`` if unknown)."""
        contracts = self.contracts
        price = self._centre_price()
        if contracts is None or not contracts.strikes or price != price:
            return math.nan
        return contracts.strikes[nearest_index(contracts.strikes, price)]

    @property
    def subscribed(self) -> frozenset[int]:
        """conIds of the options with a market data line."""
        return frozenset(self._lines)

    def quote(self, instrument: Instrument | None) -> OptionQuote | None:
        return self.store.get(instrument.con_id) if instrument is not None else None

    @property
    def exercise(self) -> str:
        """Exercise style of the chain shown: ``"european"`` for SPX/NDX/RUT-style index
        options, ``"american"`` for US equity and ETF options
        (:func:`desk.domain.options.exercise_style` on the trading class and the underlying's
        secType)."""
        if self.underlying is None:
            return "american"
        root = self.definition.trading_class if self.definition is not None else ""
        return exercise_style(root or self.underlying.symbol, self.underlying.sec_type)

    def carry(self, symbol: str, expiry: str) -> Carry:
        """The carry to price an option of ``symbol`` expiring ``expiry`` with: the one the
        chain last used for that expiry; else that of the same underlying's nearest
        expiry the chain computed; else this manager's rate and no dividend yield."""
        known = self.carries.get((symbol, expiry))
        if known is not None:
            return known
        same = [(e, c) for (sym, e), c in self.carries.items() if sym == symbol]
        if same:

            def distance(item: tuple[str, Carry]) -> int:
                try:
                    a = datetime.strptime(item[0][:8], "%Y%m%d")
                    b = datetime.strptime(expiry[:8], "%Y%m%d")
                except ValueError:
                    return 1 << 30
                return abs((a - b).days)

            return min(same, key=distance)[1]
        return Carry(self.rate, 0.0)

    def live_greeks(self, con_id: int) -> OptionGreeks | None:
        """The chain's own IV and Greeks of ``con_id`` (per share) while it has a line in the
        window and a solved IV; ``None`` otherwise."""
        if con_id not in self._lines:
            return None
        quote = self.store.get(con_id)
        ours = quote.ours if quote is not None else None
        if ours is None or not math.isfinite(ours.iv):
            return None
        return ours

    def days_to_expiry(self) -> float:
        """Calendar days to the selected expiry's close (``nan`` before the first computation)."""
        return self.T * DAYS_PER_YEAR if self.T == self.T else math.nan

    # ------------------------------------------------------------------ user actions

    async def set_underlying(self, instrument: Instrument) -> None:
        """Show the chain of ``instrument`` (a stock/ETF): definitions, default expiry, window.

        Releases every line of the previous chain at once. When not connected the chain
        loads on the next connect. Raises :class:`ChainError` for an option instrument,
        when nothing is listed, or when a request fails.
        """
        if instrument.sec_type == "OPT":
            raise ChainError(f"{instrument.key}: an option has no option chain; select a stock or ETF")
        if self.underlying is not None and self.underlying.con_id == instrument.con_id and self.definition is not None:
            return
        self._reset()
        self.underlying = instrument
        self._set_message(f"{instrument.symbol}: loading the option chain…")
        if self.broker is None:
            self._set_message(f"{instrument.symbol}: no gateway, so no option chain (offline chain)", "warning")
            return
        if not self._connected():
            self._set_message(f"{instrument.symbol}: the option chain loads when the gateway is connected")
            return
        await self._load(self._gen)

    async def set_expiry(self, expiry: str) -> None:
        """Show ``expiry`` (``YYYYMMDD``, one of :attr:`expiries`); loads its contracts once.

        Raises :class:`ChainError` for an expiry that is not listed or a failed request.
        """
        if self.definition is None:
            raise ChainError("no option chain loaded yet")
        if expiry not in self.definition.expiries:
            raise ChainError(
                f"{self.definition.underlying.symbol}: no expiry {expiry} (listed: {', '.join(self.definition.expiries[:6])}…)"
            )
        if expiry == self.expiry and expiry in self._expiries:
            return
        self._gen += 1
        await self._load_expiry(expiry, self._gen)

    async def step_expiry(self, step: int) -> str | None:
        """Move ``step`` expiries later (negative: earlier), clamped; returns the new expiry."""
        expiries = self.expiries
        if not expiries:
            return None
        i = expiries.index(self.expiry) if self.expiry in expiries else 0
        target = expiries[max(0, min(len(expiries) - 1, i + step))]
        await self.set_expiry(target)
        return self.expiry

    def set_window(self, spec: WindowSpec) -> None:
        """Change the strike window and re-subscribe (lines of strikes left are released)."""
        self.spec = spec
        self.anchor = None
        self._recentre(force=True)

    def widen(self) -> WindowSpec:
        """One step wider window (:meth:`WindowSpec.wider`); returns it."""
        self.set_window(self.spec.wider())
        return self.spec

    def narrow(self) -> WindowSpec:
        """One step narrower window (:meth:`WindowSpec.narrower`); returns it."""
        self.set_window(self.spec.narrower())
        return self.spec

    def install(
        self,
        definition: ChainDefinition,
        expiry: str,
        instruments: Iterable[Instrument],
        contracts: Iterable[Any] = (),
    ) -> None:
        """Show ``expiry`` of ``definition`` with its option ``instruments`` (no gateway needed).

        What :meth:`set_underlying` does after its requests; offline managers (snapshots,
        benches, recorded chains) call it directly, then write quotes into :attr:`store`.
        Raises ``ValueError`` if ``expiry`` is not in the definition.
        """
        if expiry not in definition.expiries:
            raise ValueError(f"expiry {expiry} is not in the definition of {definition.underlying.symbol}")
        if self.underlying is None or self.underlying.con_id != definition.underlying.con_id:
            self._reset()
            self.underlying = definition.underlying
        self.definition = definition
        self._expiries[expiry] = expiry_contracts(expiry, instruments, contracts)
        self._show_expiry(expiry)

    def add_expiry(self, expiry: str, instruments: Iterable[Instrument], contracts: Iterable[Any] = ()) -> None:
        """Cache the option ``instruments`` of ``expiry`` without showing it (offline managers:
        :meth:`set_expiry` then switches to it without a gateway). Call after :meth:`install`."""
        self._expiries[expiry] = expiry_contracts(expiry, instruments, contracts)

    def close(self) -> None:
        """Release every line and stop listening to the broker."""
        self._reset()
        self.budget.set_reclaimer(CHAIN_OWNER, None)
        if self.broker is not None:
            with contextlib.suppress(ValueError):
                self.broker.ib.pendingTickersEvent -= self._on_pending_tickers
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ flush (UI timer)

    def flush(self) -> ChainFlush:
        """Called by the engine's analytics timer: re-centre, recompute our Greeks (with the
        pricer), drain the dirty set.

        Our Greeks are recomputed for the window when a quote of the window or the
        underlying price changed since the last run, or :data:`RECOMPUTE_SECONDS` passed.
        """
        spot = self._underlying_price()
        if not same_number(spot, self.spot):
            self.spot = spot
            self._need_compute = True
        self._recentre()
        if self.sync_clock and self._connected() and self.clock.base.time() - self.clock.synced_at > CLOCK_SYNC_SECONDS:
            self.clock.synced_at = self.clock.base.time()  # one sync in flight at a time
            self._spawn(self._sync_clock())
        dirty = self.store.drain_dirty()
        computed = False
        if self.rows and (dirty or self._need_compute or self.clock.base.time() - self._computed_at > RECOMPUTE_SECONDS):
            computed = self._compute()
            dirty |= self.store.drain_dirty()
        layout, self._layout_flag = self._layout_flag, False
        return ChainFlush(frozenset(dirty), layout, computed)

    def _compute(self) -> bool:
        """Our IV and Greeks for every contract of the window; True if it ran."""
        items: list[Instrument] = []
        for row in self.rows:
            if row.call is not None:
                items.append(row.call)
            if row.put is not None:
                items.append(row.put)
        if not items or self.expiry is None or self.pricer is None:
            return False
        quotes = [self.store.get(i.con_id) for i in items]
        bids = np.array([q.bid if q is not None else math.nan for q in quotes])
        asks = np.array([q.ask if q is not None else math.nan for q in quotes])
        is_call = np.array([i.right == "C" for i in items])
        strikes = np.array([i.strike for i in items])
        now = self.clock.now()
        try:
            result = self.pricer(
                self.expiry, now, is_call, strikes, bids, asks, spot=self.spot, r=self.rate, exercise=self.exercise
            )
        except (ValueError, ArithmeticError) as exc:
            log.warning("chain Greeks not computed: %s", exc)
            self._need_compute = False
            self._computed_at = self.clock.base.time()
            return False
        self.forward, self.q, self.T = result.forward, result.q, result.T
        if self.underlying is not None and math.isfinite(result.q):
            self.carries[(self.underlying.symbol, self.expiry)] = Carry(self.rate, result.q)
        for ins, greeks, reason in zip(items, result.greeks, result.reasons):
            self.store.set_ours(ins.con_id, greeks, reason)
        self._need_compute = False
        self._computed_at = self.clock.base.time()
        self.compute_count += 1
        return True

    # ------------------------------------------------------------------ loading

    async def _load(self, gen: int) -> None:
        broker, underlying = self.broker, self.underlying
        assert broker is not None and underlying is not None
        self.loading = True
        try:
            if self.sync_clock:
                await self._sync_clock()
            try:
                chains = await asyncio.wait_for(
                    broker.ib.reqSecDefOptParamsAsync(underlying.symbol, "", underlying.sec_type or "STK", underlying.con_id),
                    broker.connect_timeout * 2,
                )
            except asyncio.TimeoutError:
                raise self._fail(f"{underlying.symbol}: the gateway did not list the options in time") from None
            except Exception as exc:  # ib_async RequestError and friends
                raise self._fail(f"{underlying.symbol}: option definitions failed: {exc}") from None
            if gen != self._gen:
                return
            definition = choose_definition(underlying, chains or [])
            if definition is None:
                raise self._fail(f"{underlying.symbol}: no options listed", "warning")
            self.definition = definition
            expiry = default_expiry(definition.expiries, exchange_date(self.clock.now()))
            assert expiry is not None
            await self._load_expiry(expiry, gen)
        finally:
            if gen == self._gen:
                self.loading = False

    async def _load_expiry(self, expiry: str, gen: int) -> None:
        definition = self.definition
        assert definition is not None
        if expiry not in self._expiries:
            if self.broker is None:
                raise self._fail(f"{definition.underlying.symbol} {expiry}: contracts not installed (offline chain)", "warning")
            from ib_async import Option

            query = Option(
                definition.underlying.symbol,
                expiry,
                0.0,
                "",
                definition.exchange or "SMART",
                tradingClass=definition.trading_class,
                currency=definition.underlying.currency or "USD",
            )
            self.loading = True
            try:
                details: list[ContractDetails] = await asyncio.wait_for(
                    self.broker.ib.reqContractDetailsAsync(query), self.broker.connect_timeout * 4
                )
            except asyncio.TimeoutError:
                raise self._fail(
                    f"{definition.underlying.symbol} {expiry}: the gateway did not send the contracts in time"
                ) from None
            except Exception as exc:
                raise self._fail(f"{definition.underlying.symbol} {expiry}: contract details failed: {exc}") from None
            finally:
                if gen == self._gen:
                    self.loading = False
            if gen != self._gen:
                return
            instruments, contracts = [], []
            for d in details or []:
                c = d.contract
                if c is None or c.secType != "OPT" or not c.conId:
                    continue
                c.exchange = definition.exchange or "SMART"
                instruments.append(instrument_from_contract(c, d.minTick or 0.01, d.longName or ""))
                contracts.append(c)
            if not instruments:
                raise self._fail(f"{definition.underlying.symbol} {expiry}: the gateway listed no contracts", "warning")
            self._expiries[expiry] = expiry_contracts(expiry, instruments, contracts)
        if gen != self._gen:
            return
        self._show_expiry(expiry)

    def _show_expiry(self, expiry: str) -> None:
        if expiry != self.expiry:
            self._release_lines()
            self.store.clear()
        self.expiry = expiry
        self.forward = self.q = self.T = math.nan
        self.anchor = None
        self.loading = False
        self._layout_flag = True
        self.layout_seq += 1
        self.spot = self._underlying_price()
        self.trimmed = 0
        self._set_message("")
        self._recentre(force=True)

    def _fail(self, text: str, level: str = "error") -> ChainError:
        self._set_message(text, level)
        return ChainError(text)

    def _reset(self) -> None:
        self._gen += 1
        self._release_lines()
        self.store.clear()
        self.underlying = None
        self.definition = None
        self.expiry = None
        self.rows = []
        self._expiries.clear()
        self.spot = self.forward = self.q = self.T = math.nan
        self.anchor = None
        self.trimmed = 0
        self.loading = False
        self._layout_flag = True
        self.layout_seq += 1

    # ------------------------------------------------------------------ broker events

    def _on_broker_event(self, event: object) -> None:
        if isinstance(event, DataLost):
            n = self.rerequest_all()
            log.info("option chain: %d lines requested again (%s)", n, event.reason)
            return
        if not isinstance(event, StateChanged):
            return
        if event.state is ConnectionState.CONNECTED:
            if self.underlying is not None and self.definition is None and not self.loading:
                self._spawn(self._load_quietly(self._gen))
            else:
                for line in self._lines.values():
                    if line.ticker is None:
                        self._request(line)
        elif event.state in (ConnectionState.RECONNECTING, ConnectionState.DISCONNECTED):
            # ib_async dropped its tickers; the lines stay wanted and are requested again
            for line in self._lines.values():
                line.ticker = None
            self._by_ticker.clear()

    async def _load_quietly(self, gen: int) -> None:
        with contextlib.suppress(ChainError):
            await self._load(gen)

    async def _sync_clock(self) -> None:
        if self.broker is None or not self.broker.ib.isConnected():
            return
        try:
            await asyncio.wait_for(self.clock.sync(self.broker.ib.reqCurrentTimeAsync), self.broker.connect_timeout)
        except (asyncio.TimeoutError, ConnectionError, OSError) as exc:
            log.info("gateway clock not synced: %s", exc)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ helpers

    def _underlying_price(self) -> float:
        if self.underlying is None:
            return math.nan
        quote = self.quotes.get(self.underlying.con_id)
        if quote is None:
            return math.nan
        mid = quote.mid
        if mid == mid:
            return mid
        return quote.last if quote.last > 0 else math.nan
