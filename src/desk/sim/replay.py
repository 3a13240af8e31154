"""Replay of a recorded day through the simulated gateway.

``desk import lean PATH`` loads LEAN-format data into the tick store
(:mod:`desk.store.lean`); ``desk sim --replay 2015-12-24 --symbols GOOG --speed 60`` then
streams that day to every client as if it were live: the underlying's quotes and trades
and the **whole option chain** (contract details, reqSecDefOptParams, quotes, Greeks),
historical bars from the recorded bars, and orders filled against the recorded quotes.
When the store has no data for the day, it is imported on demand from the LEAN folder
(``$DESK_LEAN_DIR`` or the sample data in the package, :func:`desk.store.lean.default_lean_dir`),
with a progress line.

The pieces, each plugging into the gateway's existing seams:

* :class:`ReplayClock` — the gateway's clock, at the **recorded time** (UTC), moved only
  by the replay: ``currentTime``, the handshake, tick timestamps, executions and the
  order engine's market hours all see 2015-12-24;
* :class:`ReplayMarket` — ``SimGateway(market=...)`` in place of the synthetic
  :class:`~desk.sim.market.MarketModel` (same interface: ``step(dt)`` returns
  :class:`~desk.sim.market.MarketChange` per changed symbol; ``state(symbol)``);
* :class:`ReplayOptions` — ``SimGateway(option_source=...)``, an
  :class:`~desk.sim.options.OptionSource` listing the recorded contracts (conIds from
  :func:`desk.store.lean.option_con_id`, OCC local symbols) and quoting them from their
  recorded minute bars (IV and Greeks are implied by the option engine from the mid);
* :class:`ReplayHistory` — the :class:`~desk.sim.history.HistorySource` of the day's
  recorded bars (and recorded daily bars before it).

Timing (no look-ahead, LEAN's convention): a minute bar that starts at ``t`` is known at
its end, ``t + 60 s``. From then on the quote is the bar's close: bid = bid close, ask =
ask close, sizes = the last displayed sizes; a trade bar adds its volume to the day's
volume and reports its close as the last price (with the minute's volume as the last
size: one aggregated print) and its high/low to the day's. A bar with no quote on one side
means no bid (or no ask): bid 0 / size 0, as IB shows it. Historical requests return the
bars completed by the replay clock. The underlying's previous close (tick 9) is the last
recorded daily close before the day, its open (tick 14) the first regular-hours trade.

``speed`` is the gateway's: replay seconds per wall-clock second (``speed=60``: one
recorded minute per second). The replay starts at ``start`` (default: the day's regular open, 09:30 ET) and
holds the last recorded state after the data ends.

Prices are dollars per share (options too), sizes shares or contracts, times UTC.
"""

from __future__ import annotations

import logging
import math
import sys
import time as _time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import NEW_YORK, SECONDS_PER_YEAR, nyse_calendar
from desk.domain.calendar import exchange_midnight as exchange_midnight_dt
from desk.domain.clock import Clock
from desk.sim.chain import OPTION_EXCHANGES, SimOption, expiry_epoch
from desk.sim.contracts import ContractQuery, resolve
from desk.sim.history import Bars, HistoryKey, bid_ask_bars, daily_from_minutes, exchange_midnight, rth_mask
from desk.sim.market import Changed, MarketChange, Snapshot
from desk.sim.options import OptionRows, SecDefParams
from desk.sim.universe import SimStock, lookup

__all__ = [
    "ReplayClock",
    "ReplayData",
    "ReplayError",
    "ReplayHistory",
    "ReplayMarket",
    "ReplayOptions",
    "load_replay",
    "parse_day",
    "replay_gateway_kwargs",
    "run_import",
]

log = logging.getLogger("desk.sim")

_MINUTE = 60


class ReplayError(Exception):
    """The replay cannot start: no data for the day and no LEAN folder to import it from,
    a symbol outside the simulator's universe, a bad date. ``str()`` is one line."""


def parse_day(text: str) -> date:
    """``2015-12-24`` or ``20151224`` -> ``date``; :class:`ReplayError` otherwise."""
    s = text.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    raise ReplayError(f"bad date {text!r}: expected YYYY-MM-DD (e.g. 2015-12-24)")


# --------------------------------------------------------------------------------------
# the clock
# --------------------------------------------------------------------------------------


class ReplayClock(Clock):
    """The recorded time: starts at ``start`` (aware) and moves only by :meth:`advance`
    (the replay market calls it on every step). ``now()`` is UTC-aware, ``time()`` UTC
    epoch seconds."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ReplayClock needs a timezone-aware datetime")
        self._t = start.timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def time(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds


# --------------------------------------------------------------------------------------
# recorded data
# --------------------------------------------------------------------------------------


class _Series:
    """One contract's recorded minute bars of one kind, as arrays sorted by bar start
    (UTC epoch seconds); prices NaN where that side had no quote."""

    __slots__ = ("t", "o", "h", "l", "c", "v")

    def __init__(self, rows: list[tuple[float, float, float, float, float, float]]) -> None:
        a = np.array(rows, dtype=np.float64).reshape(-1, 6)
        self.t = a[:, 0].astype(np.int64)
        self.o, self.h, self.l, self.c, self.v = a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def known(self, now: float) -> int:
        """How many bars are complete at ``now`` (end = start + 60 <= now)."""
        return int(np.searchsorted(self.t, now - _MINUTE, "right"))

    def bars(self, start: int, end: int, now: float, volume: bool) -> Bars:
        hi = min(int(np.searchsorted(self.t, end, "left")), self.known(now))
        lo = int(np.searchsorted(self.t, start, "left"))
        if lo >= hi:
            return Bars.empty()
        s = slice(lo, hi)
        n = hi - lo
        if volume:
            vol = self.v[s]
            wap = (self.h[s] + self.l[s] + self.c[s]) / 3.0
            count = np.maximum(1, np.ones(n, dtype=np.int64))
            return Bars(self.t[s], self.o[s], self.h[s], self.l[s], self.c[s], vol, wap, count)
        nan = np.full(n, np.nan)
        return Bars(self.t[s], self.o[s], self.h[s], self.l[s], self.c[s], nan, nan,
                    np.full(n, -1, dtype=np.int64))


_EMPTY = _Series([])


@dataclass
class _Recorded:
    """Everything recorded for one contract on the day."""

    bid: _Series = _EMPTY
    ask: _Series = _EMPTY
    trades: _Series = _EMPTY


@dataclass
class ReplayData:
    """A recorded day loaded from the store: per conId the BID / ASK / TRADES minute
    series, the option chain (:class:`~desk.sim.chain.SimOption` per recorded contract),
    open interest, the underlyings' daily bars before the day, and the replay start."""

    day: date
    start: datetime
    stocks: dict[str, SimStock]
    series: dict[int, _Recorded]
    options: dict[int, SimOption]
    chains: dict[str, list[SimOption]]
    open_interest: dict[int, int]
    daily: dict[str, Bars]
    end: float = 0.0  # UTC epoch seconds when the last recorded bar completes
    load_seconds: float = 0.0
    imported: bool = False

    @property
    def symbols(self) -> list[str]:
        return list(self.stocks)


def run_import(url: str, lean_dir: str | Path, *, symbols: Iterable[str] | None = None,
               dates: Iterable[date] | None = None, schema: str | None = None,
               stream: TextIO | None = sys.stderr) -> Any:
    """Import LEAN data with the simulator's stock conIds (GOOG keeps 208813720) and a
    progress line on ``stream`` (``\\r``-updated, at most 10 per second; ``None``: quiet).
    Returns :class:`desk.store.lean.ImportResult`; raises what
    :func:`desk.store.lean.import_lean` raises."""
    from desk.sim.universe import UNIVERSE
    from desk.store.lean import ImportProgress, import_lean

    last = [0.0]
    shown = [False]
    tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def show(p: ImportProgress) -> None:
        if stream is None:
            return
        now = _time.monotonic()
        if p.phase == "import" and (not tty or now - last[0] < 0.1) and p.files_done < p.files_total:
            return  # a terminal gets a live line (10 per second); a log file only the end
        last[0] = now
        shown[0] = True
        what = "committing" if p.phase == "commit" else "importing"
        line = (f"{what} {p.fraction * 100:5.1f}%  {p.files_done:,}/{p.files_total:,} files  "
                f"{p.rows:,} rows  {p.bytes_done / 1e6:,.1f}/{p.bytes_total / 1e6:,.1f} MB")
        stream.write(f"\r{line}\x1b[K" if tty else line + "\n")
        stream.flush()

    stocks = {s.symbol: s.to_instrument() for s in UNIVERSE.values()}
    try:
        return import_lean(url, lean_dir, symbols=symbols, dates=dates, schema=schema, stocks=stocks,
                           progress=show)
    finally:
        if stream is not None and tty and shown[0]:
            stream.write("\n")
            stream.flush()


def load_replay(
    url: str,
    day: date,
    symbols: Sequence[str],
    *,
    schema: str | None = None,
    start: dtime | datetime | None = None,
    lean_dir: str | Path | None = None,
    import_missing: bool = True,
    stream: TextIO | None = sys.stderr,
) -> ReplayData:
    """Load ``day`` of ``symbols`` (and their option chains) from the store at ``url``.

    If the store has no minute bars of a symbol for the day and ``import_missing``, the
    day is imported first from ``lean_dir`` (default :func:`desk.store.lean.default_lean_dir`),
    showing progress on ``stream``. ``start``: time of day (New York time) or an aware
    datetime where the replay begins (default: the session's regular open, 09:30 ET, on the
    exchange calendar; :class:`ReplayError` if ``day`` is not a session).

    Raises :class:`ReplayError` (unknown symbol, no data and nothing to import) and what
    the store raises (:class:`~desk.store.StoreError`, :class:`~desk.store.lean.LeanFormatError`).
    """
    from desk.store import StoreError
    from desk.store.lean import default_lean_dir, has_day, read_bar_table, read_bars, read_open_interest

    t0 = _time.perf_counter()
    if not symbols:
        raise ReplayError("a replay needs at least one symbol (--symbols GOOG)")
    stocks: dict[str, SimStock] = {}
    for sym in symbols:
        stock = lookup(sym)
        if stock is None:
            raise ReplayError(f"{sym.upper()} is not in the simulator's universe; replayable symbols are "
                              "the universe's (desk.sim.universe)")
        stocks[stock.symbol] = stock
    missing = [s for s in stocks if not has_day(url, s, day, schema=schema)]
    imported = False
    if missing:
        if not import_missing:
            raise ReplayError(f"the store has no {day} data for {', '.join(missing)}; run desk import lean PATH")
        folder = Path(lean_dir) if lean_dir else default_lean_dir()
        if folder is None or not folder.exists():
            raise ReplayError(f"the store has no {day} data for {', '.join(missing)} and no LEAN folder to import "
                              "it from: set DESK_LEAN_DIR or run desk import lean PATH")
        if stream is not None:
            stream.write(f"desk: importing {day} of {', '.join(missing)} from {folder}\n")
        try:
            run_import(url, folder, symbols=missing, dates=[day], schema=schema, stream=stream)
        except StoreError as exc:
            if "no LEAN files to import" not in str(exc):
                raise
            raise ReplayError(f"{folder} has no {day} minute data for {', '.join(missing)}") from None
        imported = True
        still = [s for s in missing if not has_day(url, s, day, schema=schema)]
        if still:
            raise ReplayError(f"{folder} has no {day} minute data for {', '.join(still)}")

    tz = NEW_YORK
    day_start = exchange_midnight_dt(day)
    day_end = day_start + timedelta(days=1)
    if start is None:  # the regular open of the day's session (09:30 ET)
        try:
            start_at = nyse_calendar().session(day).open
        except ValueError:
            raise ReplayError(f"{day} is not a trading day on the exchange calendar (XNYS)") from None
    elif isinstance(start, datetime):
        start_at = start
    else:
        start_at = datetime.combine(day, start, tz)

    from desk.store import make_engine

    engine = make_engine(url, application_name="desk-replay")
    series: dict[int, _Recorded] = {}
    options: dict[int, SimOption] = {}
    chains: dict[str, list[SimOption]] = {}
    oi: dict[int, int] = {}
    daily: dict[str, Bars] = {}
    last_end = 0.0
    try:
        for sym, stock in stocks.items():
            rows = read_bar_table(engine, symbol=sym, start=day_start, end=day_end, schema=schema)
            opts = []
            for group in _groups(rows):
                first = group[0]
                con_id, sec_type, expiry, strike, right, kind = first[1:7]
                key = stock.con_id if sec_type == "STK" else int(con_id)
                s = _Series([(r[0], r[7], r[8], r[9], r[10], r[11]) for r in group])
                last_end = max(last_end, float(s.t[-1]) + _MINUTE)
                rec = series.get(key)
                if rec is None:
                    rec = series[key] = _Recorded()
                    if sec_type == "OPT":
                        from desk.store.lean import occ_symbol

                        opt = SimOption(key, sym, expiry, float(strike), right, stock.con_id, sym,
                                        occ_symbol(sym, expiry, right, float(strike)), penny=False)
                        options[key] = opt
                        opts.append(opt)
                setattr(rec, {"BID": "bid", "ASK": "ask", "TRADES": "trades"}[kind], s)
            opts.sort(key=lambda o: (o.expiry, o.right, o.strike))
            chains[sym] = opts
            oi.update(read_open_interest(engine, sym, day, schema=schema))
            d = read_bars(engine, symbol=sym, sec_type="STK", bar_size="1 day", end=day_start, schema=schema)
            t = np.array([exchange_midnight(b.time.astimezone(tz).date()) for b in d], dtype=np.int64)
            vol = np.array([b.volume for b in d])
            daily[sym] = Bars(t, np.array([b.open for b in d]), np.array([b.high for b in d]),
                              np.array([b.low for b in d]), np.array([b.close for b in d]), vol,
                              np.array([(b.high + b.low + b.close) / 3.0 for b in d]),
                              np.full(len(d), 1, dtype=np.int64))
    finally:
        engine.dispose()
    data = ReplayData(day, start_at.astimezone(UTC), stocks, series, options, chains, oi, daily,
                      end=last_end, imported=imported)
    data.load_seconds = _time.perf_counter() - t0
    log.info("replay of %s loaded: %d contracts, %d options in %.1f s", day, len(series), len(options),
             data.load_seconds)
    return data


def _groups(rows: list[tuple[Any, ...]]) -> Iterable[list[tuple[Any, ...]]]:
    """Consecutive runs of rows with the same (conId, kind) (the rows are sorted so)."""
    start = 0
    n = len(rows)
    for i in range(1, n + 1):
        if i == n or rows[i][1] != rows[start][1] or rows[i][6] != rows[start][6]:
            yield rows[start:i]
            start = i


# --------------------------------------------------------------------------------------
# the underlyings
# --------------------------------------------------------------------------------------


class _Cursor:
    """Position of a contract in its recorded series (bars already applied)."""

    __slots__ = ("bid", "ask", "trades")

    def __init__(self) -> None:
        self.bid = 0
        self.ask = 0
        self.trades = 0


class ReplayState:
    """The replayed state of one underlying: what :meth:`MarketModel.state` returns for
    the synthetic market (the gateway, the option engine and the order engine read it).
    Prices dollars per share; ``bid``/``ask`` 0 with size 0 when that side has no quote."""

    def __init__(self, stock: SimStock, rec: _Recorded, prev_close: float) -> None:
        self.stock = stock
        self.rec = rec
        self.cur = _Cursor()
        self.bid = 0.0
        self.ask = 0.0
        self.bid_size = 0
        self.ask_size = 0
        self.last = prev_close
        self.last_size = 0
        self.volume = 0
        self.notional = 0.0
        self.trades = 0
        self.high = math.nan
        self.low = math.nan
        self.close = prev_close
        self.open = math.nan

    @property
    def vwap(self) -> float:
        return self.notional / self.volume if self.volume else self.last

    def snapshot(self) -> Snapshot:
        return Snapshot(self.bid, self.ask, self.last, self.bid_size, self.ask_size, self.last_size, self.volume,
                        self.close)

    def change(self, fields: int, trades: int = 0) -> MarketChange:
        high = self.high if self.high == self.high else self.last
        low = self.low if self.low == self.low else self.last
        return MarketChange(self.stock.symbol, self.stock.con_id, fields, self.bid, self.ask, self.bid_size,
                            self.ask_size, self.last, self.last_size, self.volume, high, low, round(self.vwap, 4),
                            trades)

    def advance(self, now: float) -> tuple[int, int]:
        """Apply every bar completed at ``now``; return (Changed bits, prints)."""
        fields = 0
        rec, cur = self.rec, self.cur
        k = rec.bid.known(now)
        if k > cur.bid:
            cur.bid = k
            price, size = _side(rec.bid, k - 1)
            if price != self.bid:
                fields |= Changed.BID
            elif size != self.bid_size:
                fields |= Changed.BID_SIZE
            self.bid, self.bid_size = price, size
        k = rec.ask.known(now)
        if k > cur.ask:
            cur.ask = k
            price, size = _side(rec.ask, k - 1)
            if price != self.ask:
                fields |= Changed.ASK
            elif size != self.ask_size:
                fields |= Changed.ASK_SIZE
            self.ask, self.ask_size = price, size
        k = rec.trades.known(now)
        prints = 0
        if k > cur.trades:
            tr = rec.trades
            for i in range(cur.trades, k):
                v = int(tr.v[i])
                self.volume += v
                self.notional += v * (tr.h[i] + tr.l[i] + tr.c[i]) / 3.0
                self.last, self.last_size = float(tr.c[i]), v
                if self.open != self.open and _in_rth(int(tr.t[i])):
                    self.open = float(tr.o[i])
                if not self.high >= tr.h[i]:
                    self.high = float(tr.h[i])
                    fields |= Changed.HIGH
                if not self.low <= tr.l[i]:
                    self.low = float(tr.l[i])
                    fields |= Changed.LOW
                prints += 1
            self.trades += prints
            cur.trades = k
            fields |= Changed.TRADE
        return int(fields), prints


def _side(s: _Series, i: int) -> tuple[float, int]:
    c = s.c[i]
    if c != c:  # no quote on this side during the minute
        return 0.0, 0
    return float(c), int(s.v[i])


def _in_rth(t: int) -> bool:
    return bool(rth_mask(np.array([t], dtype=np.int64))[0])


class ReplayMarket:
    """The market source of a replayed day (``SimGateway(market=...)``): same interface
    as :class:`~desk.sim.market.MarketModel`. :meth:`step` advances the
    :class:`ReplayClock` by ``dt`` and applies the bars completed by then.

    Build it with :func:`replay_gateway_kwargs` (which also wires the clock and the
    options), or ``ReplayMarket(data)``."""

    def __init__(self, data: ReplayData, clock: ReplayClock | None = None) -> None:
        self.data = data
        self.clock = clock or ReplayClock(data.start)
        self.options = ReplayOptions(data)
        self._states: dict[str, ReplayState] = {}
        for sym, stock in data.stocks.items():
            d = data.daily.get(sym)
            prev_close = float(d.close[-1]) if d is not None and len(d) else math.nan
            rec = data.series.get(stock.con_id, _Recorded())
            st = ReplayState(stock, rec, prev_close)
            st.advance(self.clock.time())
            if prev_close != prev_close:  # no daily bars: the first quote's mid stands in
                st.close = st.last = (st.bid + st.ask) / 2.0 if st.bid and st.ask else 0.0
            self._states[sym] = st
        #: replay seconds since the start, and steps taken
        self.elapsed = 0.0
        self.steps = 0

    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    @property
    def finished(self) -> bool:
        """True once the clock is past the last recorded bar."""
        return self.clock.time() >= self.data.end

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._states

    def state(self, symbol: str) -> ReplayState:
        return self._states[symbol]

    def snapshot(self, symbol: str) -> Snapshot:
        return self._states[symbol].snapshot()

    def snapshots(self) -> dict[str, Snapshot]:
        return {s: st.snapshot() for s, st in self._states.items()}

    def changes(self) -> list[MarketChange]:
        full = int(Changed.BID | Changed.ASK | Changed.TRADE | Changed.HIGH | Changed.LOW)
        return [st.change(full) for st in self._states.values()]

    def step(self, dt: float) -> list[MarketChange]:
        """Advance the recorded time by ``dt`` seconds; the symbols whose quote or trades
        changed (bars completed meanwhile)."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt!r}")
        self.clock.advance(dt)
        self.elapsed += dt
        self.steps += 1
        now = self.clock.time()
        out = []
        for st in self._states.values():
            fields, prints = st.advance(now)
            if fields:
                out.append(st.change(fields, prints))
        return out

    def history_source(self) -> ReplayHistory:
        """The historical bars of this replay (the gateway's history service asks)."""
        return ReplayHistory(self.data, self.clock, self)


def replay_gateway_kwargs(
    url: str, day: date | str, symbols: Sequence[str], *, schema: str | None = None,
    start: dtime | datetime | None = None, lean_dir: str | Path | None = None,
    stream: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Load a replay (:func:`load_replay`) and return the :class:`~desk.sim.gateway.SimGateway`
    keyword arguments that run it: ``market``, ``clock``, ``option_source``,
    ``symbols``. Add ``speed`` (replay seconds per second) yourself::

        gw = SimGateway(port=4002, speed=60, **replay_gateway_kwargs(url, "2015-12-24", ["GOOG"]))
    """
    d = parse_day(day) if isinstance(day, str) else day
    data = load_replay(url, d, symbols, schema=schema, start=start, lean_dir=lean_dir, stream=stream)
    market = ReplayMarket(data)
    return {"market": market, "clock": market.clock, "option_source": market.options,
            "symbols": market.symbols}


# --------------------------------------------------------------------------------------
# the option chain
# --------------------------------------------------------------------------------------


def _norm_right(right: str) -> str:
    r = right.strip().upper()
    return {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}.get(r, "")


class ReplayOptions:
    """The :class:`~desk.sim.options.OptionSource` of a replay: the recorded contracts
    and their recorded quotes (see the module docstring for the timing). Open interest is
    the day's recorded value (contracts); the option's previous close is not recorded
    (sent as NaN); the dividend yield is 0 (none of the replayed underlyings paid one)."""

    def __init__(self, data: ReplayData) -> None:
        self.data = data
        self._cursors: list[_Cursor] = []
        self._next = np.zeros(0)  # per row: when its next bar completes (inf: none)

    # --- definitions -------------------------------------------------------------------

    def sec_def_params(self, symbol: str, con_id: int) -> list[SecDefParams] | None:
        stock = self.data.stocks.get(symbol.strip().upper()) if symbol else None
        if stock is None and con_id:
            stock = next((s for s in self.data.stocks.values() if s.con_id == con_id), None)
        if stock is None or (con_id and stock.con_id != con_id):
            return None
        chain = self.data.chains.get(stock.symbol, [])
        if not chain:
            return []
        exps = tuple(sorted({o.expiry for o in chain}))
        strikes = tuple(sorted({o.strike for o in chain}))
        return [SecDefParams(ex, stock.con_id, stock.symbol, "100", exps, strikes) for ex in OPTION_EXCHANGES]

    def find(self, q: ContractQuery) -> list[SimOption]:
        if q.multiplier not in ("", "0", "100") or q.currency not in ("", "USD"):
            return []
        if q.exchange and q.exchange not in OPTION_EXCHANGES:
            return []
        if q.con_id:
            opt = self.data.options.get(q.con_id)
            cands = [opt] if opt is not None else []
        elif q.symbol:
            cands = self.data.chains.get(q.symbol.upper(), [])
        elif q.local_symbol:
            cands = [o for c in self.data.chains.values() for o in c]
        else:
            return []
        right = _norm_right(q.right)
        local = q.local_symbol.replace(" ", "").upper()
        out = [o for o in cands
               if (not q.symbol or o.symbol == q.symbol.upper())
               and (not q.last_trade_date or o.expiry.startswith(q.last_trade_date))
               and (not q.strike or abs(o.strike - q.strike) < 1e-6)
               and (not right or o.right == right)
               and (not q.trading_class or o.trading_class == q.trading_class)
               and (not local or o.local_symbol.replace(" ", "") == local)]
        out.sort(key=lambda o: (o.expiry, o.strike, o.right))
        return out

    def option(self, con_id: int) -> SimOption | None:
        return self.data.options.get(con_id)

    def dividend_yield(self, symbol: str) -> float:
        return 0.0

    # --- quotes --------------------------------------------------------------------------

    def open_rows(self, rows: OptionRows, new: slice, S: NDArray[np.float64], now: float, r: float) -> None:
        for i in range(new.start, new.stop):
            self._cursors.append(_Cursor())
            rows.close[i] = math.nan
            rows.open[i] = math.nan
            rows.high[i] = math.nan
            rows.low[i] = math.nan
            rows.last[i] = math.nan
            rows.open_interest[i] = self.data.open_interest.get(int(rows.con_id[i]), 0)
            rows.model_iv[i] = math.nan
        self._next = np.concatenate([self._next, np.full(new.stop - new.start, -np.inf)])
        self._apply(rows, np.arange(new.start, new.stop), now)

    def step_rows(self, rows: OptionRows, S: NDArray[np.float64], now: float, dt: float,
                  r: float) -> NDArray[np.integer]:
        bits = np.zeros(rows.n, dtype=np.int64)
        due = np.flatnonzero(self._next[: rows.n] <= now)
        if due.size:
            bits[due] = self._apply(rows, due, now)
        return bits

    def _apply(self, rows: OptionRows, idx: NDArray[np.integer], now: float) -> NDArray[np.int64]:
        out = np.zeros(len(idx), dtype=np.int64)
        series = self.data.series
        for j, i in enumerate(idx.tolist()):
            rec = series.get(int(rows.con_id[i]))
            if rec is None:
                self._next[i] = np.inf
                continue
            cur = self._cursors[i]
            f = 0
            k = rec.bid.known(now)
            if k > cur.bid:
                cur.bid = k
                price, size = _side(rec.bid, k - 1)
                if price != rows.bid[i]:
                    f |= Changed.BID
                elif size != rows.bid_size[i]:
                    f |= Changed.BID_SIZE
                rows.bid[i], rows.bid_size[i] = price, size
            k = rec.ask.known(now)
            if k > cur.ask:
                cur.ask = k
                price, size = _side(rec.ask, k - 1)
                if price != rows.ask[i]:
                    f |= Changed.ASK
                elif size != rows.ask_size[i]:
                    f |= Changed.ASK_SIZE
                rows.ask[i], rows.ask_size[i] = price, size
            tr = rec.trades
            k = tr.known(now)
            if k > cur.trades:
                for m in range(cur.trades, k):
                    px, v = float(tr.c[m]), int(tr.v[m])
                    rows.last[i], rows.last_size[i] = px, v
                    rows.volume[i] += v
                    if rows.open[i] != rows.open[i]:
                        rows.open[i] = float(tr.o[m])
                    if not rows.high[i] >= tr.h[m]:
                        rows.high[i] = float(tr.h[m])
                        f |= Changed.HIGH
                    if not rows.low[i] <= tr.l[m]:
                        rows.low[i] = float(tr.l[m])
                        f |= Changed.LOW
                cur.trades = k
                f |= Changed.TRADE
            # next bar end of any kind
            nxt = [float(s.t[c]) + _MINUTE for s, c in ((rec.bid, cur.bid), (rec.ask, cur.ask), (tr, cur.trades))
                   if c < len(s)]
            self._next[i] = min(nxt) if nxt else np.inf
            out[j] = int(f)
        return out

    def underlying_stats(self, symbol: str, S: float, now: float, r: float
                         ) -> tuple[int, int, int, int, float] | None:
        chain = self.data.chains.get(symbol)
        if not chain:
            return None
        oi = self.data.open_interest
        call_oi = sum(oi.get(o.con_id, 0) for o in chain if o.right == "C")
        put_oi = sum(oi.get(o.con_id, 0) for o in chain if o.right == "P")
        vols = {"C": 0, "P": 0}
        for o in chain:
            rec = self.data.series.get(o.con_id)
            if rec is not None and len(rec.trades):
                vols[o.right] += int(rec.trades.v[: rec.trades.known(now)].sum())
        return call_oi, put_oi, vols["C"], vols["P"], self._atm_iv(chain, S, now, r)

    def _atm_iv(self, chain: list[SimOption], S: float, now: float, r: float) -> float:
        """Implied vol of the call nearest the money at the expiry nearest 30 days, from
        its recorded mid (NaN when it has no two-sided quote)."""
        from desk.pricing import implied_vol

        if not S == S or S <= 0:
            return math.nan
        target = now + 30 * 86400
        calls = [o for o in chain if o.right == "C" and expiry_epoch(o.expiry) > now]
        if not calls:
            return math.nan
        exp = min({o.expiry for o in calls}, key=lambda e: abs(expiry_epoch(e) - target))
        opt = min((o for o in calls if o.expiry == exp), key=lambda o: abs(o.strike - S))
        rec = self.data.series.get(opt.con_id)
        if rec is None:
            return math.nan
        kb, ka = rec.bid.known(now), rec.ask.known(now)
        if not kb or not ka:
            return math.nan
        bid, _ = _side(rec.bid, kb - 1)
        ask, _ = _side(rec.ask, ka - 1)
        if bid <= 0 or ask <= 0:
            return math.nan
        T = (expiry_epoch(opt.expiry) - now) / SECONDS_PER_YEAR
        res = implied_vol(np.array([True]), np.array([(bid + ask) / 2.0]), np.array([S]), np.array([opt.strike]),
                          np.array([T]), r, 0.0)
        return float(res.iv[0])


# --------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------


class ReplayHistory:
    """Historical bars of a replay (:class:`~desk.sim.history.HistorySource`): the day's
    recorded minute bars completed by the replay clock (underlyings and options), and the
    underlyings' recorded daily bars before the day (TRADES only: LEAN keeps no daily
    quotes)."""

    def __init__(self, data: ReplayData, clock: ReplayClock, market: ReplayMarket) -> None:
        self.data = data
        self.clock = clock
        self.market = market

    def resolve(self, q: ContractQuery) -> HistoryKey | None:
        if q.sec_type in ("", "STK"):
            found = resolve(q)
            if found is not None and found[0].symbol in self.data.stocks:
                return HistoryKey(found[0].con_id, 2)
            if q.sec_type == "STK":
                return None
        hits = self.market.options.find(q) if (q.sec_type == "OPT" or q.con_id) else []
        if len(hits) == 1:
            return HistoryKey(hits[0].con_id, 2)
        return None

    def minute_bars(self, key: Any, what: str, start: int, end: int) -> Bars:
        rec = self.data.series.get(key)
        if rec is None:
            return Bars.empty()
        now = self.clock.time()
        if what == "TRADES":
            return rec.trades.bars(start, end, now, True)
        if what == "BID":
            return _quotes(rec.bid.bars(start, end, now, False))
        if what == "ASK":
            return _quotes(rec.ask.bars(start, end, now, False))
        # MIDPOINT: the mean of the bid and ask bars of the same minute
        bid = _quotes(rec.bid.bars(start, end, now, False))
        ask = _quotes(rec.ask.bars(start, end, now, False))
        common, ib, ia = np.intersect1d(bid.time, ask.time, assume_unique=True, return_indices=True)
        b, a = bid.take(ib), ask.take(ia)
        nan = np.full(len(common), np.nan)
        return Bars(common, (b.open + a.open) / 2, (b.high + a.high) / 2, (b.low + a.low) / 2,
                    (b.close + a.close) / 2, nan, nan, np.full(len(common), -1, dtype=np.int64))

    def daily_bars(self, key: Any, what: str, first: date, last: date) -> Bars:
        parts = []
        stock_sym = next((s for s, st in self.data.stocks.items() if st.con_id == key), None)
        if stock_sym is not None and what == "TRADES":
            d = self.data.daily.get(stock_sym)
            if d is not None and len(d):
                parts.append(d.window(exchange_midnight(first), exchange_midnight(last) + 1))
        if first <= self.data.day <= last:
            lo = exchange_midnight(self.data.day)
            hi = exchange_midnight(self.data.day + timedelta(days=1))
            if what == "BID_ASK":
                mins = bid_ask_bars(self.minute_bars(key, "BID", lo, hi), self.minute_bars(key, "ASK", lo, hi))
            else:
                mins = self.minute_bars(key, what, lo, hi)
            if len(mins):
                mins = mins.take(rth_mask(mins.time))
            parts.append(daily_from_minutes(mins, what))
        return Bars.concat(parts)

    def head_time(self, key: Any) -> float | None:
        stock_sym = next((s for s, st in self.data.stocks.items() if st.con_id == key), None)
        if stock_sym is not None:
            d = self.data.daily.get(stock_sym)
            if d is not None and len(d):
                return float(d.time[0])
        rec = self.data.series.get(key)
        if rec is None:
            return None
        firsts = [float(s.t[0]) for s in (rec.bid, rec.ask, rec.trades) if len(s)]
        return min(firsts) if firsts else None

    def sample(self, now: float) -> None:
        """Nothing to record: the bars are the recorded ones."""


def _quotes(b: Bars) -> Bars:
    """Drop minutes without a quote on the side (NaN prices)."""
    if not len(b):
        return b
    return b.take(~np.isnan(b.close))



# --------------------------------------------------------------------------------------
# command line helpers (desk import lean, desk sim --replay)
# --------------------------------------------------------------------------------------


def _symbols(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return [p.strip().upper() for p in parts if p.strip()]


def import_command(path: str, url: str, symbols: str | None = None, dates: Sequence[str] | None = None,
                   stream: TextIO = sys.stderr) -> int:
    """``desk import lean PATH [--symbols A,B] [--date D ...]`` into the store at ``url``:
    a progress line on ``stream``, then one summary line on stdout. Exit code 0; 2 for a
    bad argument; 1 for a malformed file (named with its line) or a database failure, in
    which case nothing was imported."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.store import StoreError, parse_database_url

    try:
        days = [parse_day(d) for d in dates] if dates else None
        where = parse_database_url(url).where
    except (ReplayError, StoreError) as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_import(url, path, symbols=_symbols(symbols) or None, dates=days, stream=stream)
    except StoreError as exc:
        print(f"desk: import failed, nothing imported: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"desk: import failed, nothing imported: {where}: {first}", file=sys.stderr)
        return 1
    print(f"desk: imported {result.summary()} into {where}", flush=True)
    if result.skipped:
        print(f"desk: skipped {len(result.skipped)} file(s) not in a supported LEAN layout, e.g. {result.skipped[0]}",
              flush=True)
    return 0


def replay_command_kwargs(url: str, day: str, symbols: str | Sequence[str] | None, start: str | None = None,
                          stream: TextIO | None = sys.stderr) -> tuple[dict[str, Any], str]:
    """The :class:`~desk.sim.gateway.SimGateway` arguments and a banner label for
    ``desk sim --replay DAY --symbols A,B [--start HH:MM]`` (``desk`` in sim mode uses the
    same). Every failure is a :class:`ReplayError` with one line to show."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.store import StoreError

    syms = _symbols(symbols)
    if not syms:
        raise ReplayError("--replay needs --symbols, e.g. --replay 2015-12-24 --symbols GOOG")
    d = parse_day(day)
    at: dtime | None = None
    if start:
        try:
            at = datetime.strptime(start.strip(), "%H:%M").time()
        except ValueError:
            raise ReplayError(f"bad --start {start!r}: expected HH:MM (US/Eastern), e.g. 09:30") from None
    try:
        kwargs = replay_gateway_kwargs(url, d, syms, start=at, stream=stream)
    except StoreError as exc:
        raise ReplayError(str(exc)) from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ReplayError(f"cannot read the tick store: {first}") from None
    market: ReplayMarket = kwargs["market"]
    n_opt = len(market.data.options)
    label = f"replay of {d} {','.join(syms)}, {n_opt:,} options, from {market.clock.now():%H:%M} UTC"
    return kwargs, label
