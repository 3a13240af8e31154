"""The runtime side of the scanners: the desk's watched chain, scanned live.

:class:`LiveArbitrage` turns what the desk watches into opportunities, on the UI's flush
timer (never in the broker's tick callback):

1. :func:`snapshot_from_chain` lays the chain manager's window (one underlying, the
   selected expiry, the strikes of the visible window: the lines the
   :class:`~desk.broker.lines.LineBudget` allows) and the underlying's quote out as a
   one-expiry :class:`~desk.arbitrage.ChainSnapshot`;
2. an incremental :class:`~desk.arbitrage.ChainScanner` rescans what changed, an
   :class:`~desk.arbitrage.OpportunityBook` keeps first / last seen and the best edge;
3. every sink gets the changes as JSON-ready payloads
   (:func:`desk.domain.opportunity_codec.opportunity_payload`): new ones, gone ones and
   the ones whose edge changed (the store upserts them, Redis publishes them).

Limitations (documented in the README): only the chain on screen is scanned, one
expiry at a time, so calendars (two expiries) are never found live, and strikes outside
the window are not seen. Widen the window (``+`` in the chain pane) within the line
budget to scan more.

Dividends: the desk does not know the underlying's dividends, so by default
(``implied_dividends=True``) the present value of the dividends (less the cost of
borrow) up to the expiry is implied from the chain itself, as the median over the
strikes nearest the money of ``S - (C - P) - K e^{-rT}`` (mids; put-call parity, Hull,
*Options, Futures, and Other Derivatives*, 10th ed., ch. 11), and passed to the scanners
as one cash dividend going ex on the expiry date. A single mispriced strike does not
move the median, so it still shows; a mispricing of the whole chain's carry does not.
A negative implied value means the chain's forward is above the one the rate gives (the
market finances at a rate above ``DESK_ARB_RATE``): it is passed as that expiry's excess
rate (``Carry.excess_rate``: ``s`` with ``S (e^{-rT} - e^{-(r+s)T}) = -pv``, the strikes
nearest the money being about ``S``), at which its conversions are discounted, so that
they too are measured against the chain's own carry. (Counting it as no dividends made
every conversion of a stock without dividends look like an arbitrage worth the rate
gap: on the simulator, whose rate is 4.5 % against the desk's 4 %, TSLA conversions of
$40-340 a combo in every clean minute.)

No Textual, no IB, no database here: the chain manager, the quote store and the sinks
are passed in (duck-typed), so this module stays in ``desk.arbitrage``'s layer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from desk.arbitrage.book import BookUpdate, OpportunityBook
from desk.arbitrage.chain import Carry, ChainSnapshot, Costs, Dividend
from desk.arbitrage.scanner import ChainScanner
from desk.domain import Clock
from desk.domain.calendar import exchange_midnight, years_between
from desk.domain.opportunity import Opportunity, RiskFlag, Tracked
from desk.domain.opportunity_codec import opportunity_key, opportunity_payload

__all__ = [
    "LiveArbitrage",
    "LiveStats",
    "OpportunitySink",
    "Tracked",
    "implied_dividend_pv",
    "snapshot_from_chain",
]

log = logging.getLogger(__name__)

#: ``sink(payloads)``: JSON-ready dicts of :func:`~desk.domain.opportunity_codec.opportunity_payload`.
#: Called on the event loop once per scan that changed something; must not block.
OpportunitySink = Callable[[list[dict[str, Any]]], None]


def _expiry_date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except (TypeError, ValueError):
        raise ValueError(f"expiry must be YYYYMMDD, got {text!r}") from None


def snapshot_from_chain(chains: Any, quotes: Any, now: datetime) -> ChainSnapshot | None:
    """The chain manager's visible window as a one-expiry :class:`ChainSnapshot`.

    ``chains``: a :class:`desk.broker.chains.ChainManager` (read: ``underlying``,
    ``expiry``, ``rows``, ``store``, ``definition.multiplier``); ``quotes``: the
    :class:`~desk.domain.QuoteStore` holding the underlying's quote; ``now``: tz-aware.
    Prices dollars per share, sizes contracts / shares, as quoted. Returns ``None`` when
    no chain is loaded (no underlying, expiry or rows yet).
    """
    if now.tzinfo is None:
        raise ValueError("snapshot_from_chain needs a timezone-aware now")
    underlying = getattr(chains, "underlying", None)
    expiry = getattr(chains, "expiry", None)
    rows = list(getattr(chains, "rows", ()) or ())
    if underlying is None or not expiry or not rows:
        return None
    rows.sort(key=lambda r: r.strike)
    n = len(rows)
    grid = {
        name: np.full((1, n), np.nan)
        for name in (
            "call_bid",
            "call_ask",
            "call_bid_size",
            "call_ask_size",
            "put_bid",
            "put_ask",
            "put_bid_size",
            "put_ask_size",
        )
    }
    call_id = np.zeros((1, n), dtype=np.int64)
    put_id = np.zeros((1, n), dtype=np.int64)
    store = chains.store
    for j, row in enumerate(rows):
        for side, ins, ids in (("call", row.call, call_id), ("put", row.put, put_id)):
            if ins is None:
                continue
            ids[0, j] = ins.con_id
            q = store.get(ins.con_id)
            if q is None:
                continue
            grid[f"{side}_bid"][0, j] = q.bid if q.bid > 0 else math.nan
            grid[f"{side}_ask"][0, j] = q.ask if q.ask > 0 else math.nan
            grid[f"{side}_bid_size"][0, j] = q.bid_size if q.bid_size >= 0 else math.nan
            grid[f"{side}_ask_size"][0, j] = q.ask_size if q.ask_size >= 0 else math.nan
    uq = quotes.get(underlying.con_id) if quotes is not None else None

    def pos(x: float) -> float:
        return x if x == x and x > 0 else math.nan

    definition = getattr(chains, "definition", None)
    multiplier = float(getattr(definition, "multiplier", 100) or 100)
    return ChainSnapshot(
        symbol=underlying.symbol,
        now=now,
        expiries=(_expiry_date(expiry),),
        strikes=np.array([r.strike for r in rows], dtype=np.float64),
        call_con_id=call_id,
        put_con_id=put_id,
        under_bid=pos(uq.bid) if uq is not None else math.nan,
        under_ask=pos(uq.ask) if uq is not None else math.nan,
        under_bid_size=pos(uq.bid_size) if uq is not None else math.nan,
        under_ask_size=pos(uq.ask_size) if uq is not None else math.nan,
        under_con_id=underlying.con_id,
        multiplier=multiplier,
        **grid,
    )


def implied_dividend_pv(snapshot: ChainSnapshot, rate: float, nearest: int = 5) -> np.ndarray:
    """Per expiry of ``snapshot``: the present value (dollars per share) of the dividends
    less borrow implied by put-call parity, ``median(S - (C - P) - K e^{-rT})`` over the
    ``nearest`` strikes nearest the underlying mid that have both mids (at least 3;
    otherwise NaN). ``rate`` continuously compounded annual fraction. Shape ``(n_e,)``."""
    s_mid = 0.5 * (snapshot.under_bid + snapshot.under_ask)
    out = np.full(len(snapshot.expiries), np.nan)
    if not (s_mid == s_mid and s_mid > 0):
        return out
    c = 0.5 * (snapshot.call_bid + snapshot.call_ask)
    p = 0.5 * (snapshot.put_bid + snapshot.put_ask)
    T = snapshot.years_to_expiry
    K = snapshot.strikes
    order = np.argsort(np.abs(K - s_mid), kind="stable")
    for i in range(len(snapshot.expiries)):
        if T[i] <= 0:
            continue
        ok = order[np.isfinite(c[i, order]) & np.isfinite(p[i, order])][:nearest]
        if len(ok) < 3:
            continue
        values = s_mid - (c[i, ok] - p[i, ok]) - K[ok] * math.exp(-rate * T[i])
        out[i] = float(np.median(values))
    return out


def carry_with_dividends(base: Carry, snapshot: ChainSnapshot, pv: np.ndarray) -> Carry:
    """``base`` plus, per expiry with a positive implied ``pv`` (dollars per share), one
    cash dividend going ex on the expiry date whose present value at ``base.rate`` is
    ``pv`` (amount = pv * e^{r t}, t from ``now`` to the ex-date's New York midnight);
    per expiry with a negative ``pv``, the excess rate of that expiry's financing over
    ``base.rate`` (``Carry.excess_rate``, from the snapshot's underlying mid; see the module
    docstring). NaN: nothing."""
    divs = list(base.dividends)
    spreads = list(base.excess_rate)
    s_mid = 0.5 * (snapshot.under_bid + snapshot.under_ask)
    today = snapshot.today
    for e, value in zip(snapshot.expiries, pv.tolist(), strict=True):
        if not (value == value and value != 0) or e <= today:
            continue
        if value < 0:
            T = float(snapshot.years_to_expiry[snapshot.expiries.index(e)])
            base_disc = math.exp(-base.rate * T)
            if T > 0 and s_mid > 0 and base_disc + value / s_mid > 0:
                spread = -math.log(base_disc + value / s_mid) / T - base.rate
                spreads.append((e, min(max(spread, 0.0), 0.99)))
            continue
        t = years_between(snapshot.now, exchange_midnight(e))
        divs.append(Dividend(e, value * math.exp(base.rate * max(t, 0.0))))
    return Carry(rate=base.rate, dividends=tuple(divs), borrow_rate=base.borrow_rate, excess_rate=tuple(spreads))


@dataclass(slots=True)
class LiveStats:
    """Counters since start: ``scans`` run, ``skipped`` flush ticks throttled, ``found``
    opportunities first seen, ``gone``; ``last_cpu_ms`` CPU milliseconds of the last scan
    (snapshot + scan + book); ``last_mode`` the scanner's ``full`` / ``incremental``;
    ``sink_errors`` sink calls that raised."""

    scans: int = 0
    skipped: int = 0
    found: int = 0
    gone: int = 0
    last_cpu_ms: float = 0.0
    last_mode: str = ""
    sink_errors: int = 0


class LiveArbitrage:
    """Scans the desk's watched chain on a timer and tracks its opportunities.

    ``chains``: the :class:`~desk.broker.chains.ChainManager`; ``quotes``: the stock
    :class:`~desk.domain.QuoteStore`. ``carry`` / ``costs``: as the scanners
    (``carry_from_settings`` / ``costs_from_settings``); ``implied_dividends``: see the
    module docstring. ``min_edge``: dollars per combo after costs at or below which an
    opportunity is ignored. ``full_every``: seconds between full rescans.
    ``interval``: seconds between scans at least, on the process's monotonic clock
    (calls of :meth:`poll` in between do nothing; a frozen or replayed ``clock`` does not
    stop the scans). ``linger``: seconds a gone opportunity stays listed. ``simulated``: label
    every opportunity as simulated (the desk on its embedded simulator). ``stale_after``:
    seconds after which a leg's quote (its last update, the chain's and the quote store's
    ``time``) is stale: the opportunity gets ``RiskFlag.STALE`` at each scan while it is
    (``DESK_CHAIN_STALE_SECONDS``, as the chain's ``*``). ``sinks``: see
    :data:`OpportunitySink`. ``clock``: time of scans (UTC).

    Raises ``ValueError`` for a negative ``interval`` / ``linger`` / ``min_edge`` or a
    ``stale_after`` that is not positive.
    """

    def __init__(
        self,
        chains: Any,
        quotes: Any,
        *,
        carry: Carry | None = None,
        costs: Costs | None = None,
        implied_dividends: bool = True,
        min_edge: float = 0.0,
        full_every: float = 1.0,
        interval: float = 0.5,
        linger: float = 10.0,
        simulated: bool = False,
        stale_after: float = 30.0,
        sinks: Iterable[OpportunitySink] = (),
        clock: Clock | None = None,
    ) -> None:
        for name, value in (("interval", interval), ("linger", linger), ("min_edge", min_edge)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"LiveArbitrage {name} must be a number >= 0, got {value!r}")
        if not (isinstance(stale_after, int | float) and math.isfinite(stale_after) and stale_after > 0):
            raise ValueError(f"LiveArbitrage stale_after must be a number of seconds > 0, got {stale_after!r}")
        self.stale_after = float(stale_after)
        self.chains = chains
        self.quotes = quotes
        self.base_carry = carry or Carry()
        self.implied_dividends = implied_dividends
        self.scanner = ChainScanner(self.base_carry, costs or Costs(), min_edge=min_edge, full_every=full_every)
        self.book = OpportunityBook()
        self.interval = float(interval)
        self.linger = float(linger)
        self.simulated = bool(simulated)
        self.clock = clock or Clock()
        self.sinks: list[OpportunitySink] = list(sinks)
        self.stats = LiveStats()
        #: bumped whenever :attr:`tracked` changes (the pane repaints on a new value)
        self.seq = 0
        self._symbol: str | None = None
        self._last_scan = -math.inf
        self._tracked: dict[str, Tracked] = {}
        #: per key: the total edge and risk flags last sent to the sinks
        self._last_sent: dict[str, tuple[float, frozenset[RiskFlag]]] = {}
        self._carry_key: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ reading

    @property
    def enabled(self) -> bool:
        """The engine scans (always, for a scanner that exists)."""
        return True

    @property
    def tracked(self) -> list[Tracked]:
        """Every listed opportunity: live ones by ``edge_total`` (largest first), then gone ones."""
        items = list(self._tracked.values())
        items.sort(key=lambda t: (t.state != "live", -t.opportunity.edge_total))
        return items

    def get(self, key: str) -> Tracked | None:
        return self._tracked.get(key)

    def add_sink(self, sink: OpportunitySink) -> None:
        self.sinks.append(sink)

    # ------------------------------------------------------------------ scanning

    def poll(self) -> BookUpdate | None:
        """Called on the UI's flush timer: scan if ``interval`` passed since the last scan.
        Returns the book's update, or ``None`` when throttled or no chain is loaded."""
        t = time.monotonic()
        if t - self._last_scan < self.interval:
            self.stats.skipped += 1
            return None
        self._last_scan = t
        return self.scan_now()

    def scan_now(self) -> BookUpdate | None:
        """Scan the chain on screen now (see the module docstring); ``None`` without a chain."""
        cpu0 = time.process_time()
        now = self.clock.now()
        snapshot = snapshot_from_chain(self.chains, self.quotes, now)
        changed: list[dict[str, Any]] = []
        if snapshot is None or (self._symbol is not None and snapshot.symbol != self._symbol):
            if self._symbol is not None:  # the chain went away or changed underlying
                changed += self._apply(self._symbol, self.book.update(self._symbol, [], now), now)
                self._symbol = None
                self.scanner.reset()
        update = None
        if snapshot is not None:
            self._symbol = snapshot.symbol
            self._set_carry(snapshot)
            opps = self.scanner.scan(snapshot)
            update = self.book.update(snapshot.symbol, opps, now)
            changed += self._apply(snapshot.symbol, update, now)
            self.stats.last_mode = self.scanner.last_mode
        self._expire(now)
        self.stats.scans += 1
        self.stats.last_cpu_ms = (time.process_time() - cpu0) * 1000.0
        if changed:
            self._emit(changed)
        return update

    def _set_carry(self, snapshot: ChainSnapshot) -> None:
        carry = self.base_carry
        if self.implied_dividends:
            pv = implied_dividend_pv(snapshot, carry.rate)
            # rounded to a tenth of a cent: quote noise must not force a full rescan every time
            pv = np.round(pv, 3)
            carry = carry_with_dividends(carry, snapshot, pv)
        key = (
            carry.rate,
            carry.borrow_rate,
            tuple((d.ex_date, round(d.amount, 3)) for d in carry.dividends),
            tuple((e, round(v, 5)) for e, v in carry.excess_rate),
        )
        if key != self._carry_key:
            self._carry_key = key
            self.scanner.carry = carry
            self.scanner.reset()

    def _quote_time(self, opp: Opportunity) -> datetime | None:
        times = []
        store = getattr(self.chains, "store", None)
        for leg in opp.legs:
            q = self.quotes.get(leg.con_id) if leg.sec_type == "STK" else (store.get(leg.con_id) if store is not None else None)
            t = getattr(q, "time", None) if q is not None else None
            if t is None:
                return None
            times.append(t)
        return min(times) if times else None

    def _staled(self, opp: Opportunity, now: datetime) -> tuple[Opportunity, datetime | None]:
        """``opp`` with ``RiskFlag.STALE`` when a leg's quote is older than ``stale_after``
        at ``now``, and the oldest leg quote time."""
        quote_time = self._quote_time(opp)
        if quote_time is not None and (now - quote_time).total_seconds() > self.stale_after:
            opp = replace(opp, risks=opp.risks | {RiskFlag.STALE})
        return opp, quote_time

    def _apply(self, symbol: str, update: BookUpdate, now: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        sim = self.simulated
        for opp in update.new:
            key = opportunity_key(opp)
            opp, quote_time = self._staled(opp, now)
            self._tracked[key] = Tracked(opp, key, "live", sim, quote_time)
            self._last_sent[key] = (opp.edge_total, opp.risks)
            self.stats.found += 1
            log.info("opportunity%s: %s", " (simulated)" if sim else "", opp.describe())
            out.append(opportunity_payload(opp, state="new", simulated=sim))
        for opp in update.kept:
            key = opportunity_key(opp)
            opp, quote_time = self._staled(opp, now)
            self._tracked[key] = Tracked(opp, key, "live", sim, quote_time)
            if self._last_sent.get(key) != (opp.edge_total, opp.risks):  # re-priced or re-classified
                self._last_sent[key] = (opp.edge_total, opp.risks)
                out.append(opportunity_payload(opp, state="live", simulated=sim))
        for opp in update.gone:
            key = opportunity_key(opp)
            prev = self._tracked.get(key)
            if prev is not None:  # keep the flags it was last seen with (stale or not)
                opp = replace(opp, risks=prev.opportunity.risks)
            self._tracked[key] = Tracked(opp, key, "gone", sim, prev.quote_time if prev else None, now)
            self._last_sent.pop(key, None)
            self.stats.gone += 1
            out.append(opportunity_payload(opp, state="gone", simulated=sim))
        if update.new or update.kept or update.gone:
            self.seq += 1
        return out

    def _expire(self, now: datetime) -> None:
        cutoff = now - timedelta(seconds=self.linger)
        dead = [k for k, t in self._tracked.items() if t.state == "gone" and t.gone_at is not None and t.gone_at <= cutoff]
        for k in dead:
            del self._tracked[k]
        if dead:
            self.seq += 1

    def _emit(self, payloads: list[dict[str, Any]]) -> None:
        for sink in self.sinks:
            try:
                sink(payloads)
            except Exception:  # a sink must never stop the scanner
                self.stats.sink_errors += 1
                log.warning("opportunity sink %r failed", sink, exc_info=True)

    def clear(self) -> None:
        """Forget every opportunity (no sink is told)."""
        self.book.clear()
        self._tracked.clear()
        self._last_sent.clear()
        self._symbol = None
        self.scanner.reset()
        self.seq += 1
