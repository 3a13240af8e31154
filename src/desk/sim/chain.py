"""Listed option chains of the simulator: expiries, strikes, contracts and their conIds.

Every stock and ETF of :data:`~desk.sim.universe.UNIVERSE` has a chain of American-style
US equity options (secType ``OPT``, multiplier 100, currency USD, trading class = the
underlying symbol). What is listed, as of an exchange date ``today``:

* **expiries** (the desk's exchange calendar, :func:`desk.domain.calendar.nyse_calendar`:
  ``XNYS`` of ``exchange_calendars``): every Friday of the
  next 6 weeks (weeklies), the third Friday of the current and next 6 months (monthlies)
  and the January third Friday of the next one or two years beyond the monthlies (LEAPS).
  An expiry that falls on an exchange holiday moves to the previous trading day (as OCC
  does for Good Friday). Expiries before ``today`` are not listed.
* **strikes** around the underlying's reference price (:attr:`SimStock.price`, so the
  grid does not depend on the seed): a fine step near the money and a coarse step farther
  out (the fine step over the inner 60 % of the range), over a range of
  ``+/- clip(3 x vol x sqrt(T), 15 %, 30 %)`` of the reference price (``+/- 50 %`` with
  the coarse step alone for LEAPS). Steps by price level, after
  the exchanges' strike-interval rules: index ETFs (SPY, QQQ, IWM, DIA) $1 near / $5 far,
  other ETFs below $100 $0.50 / $1; stocks below $25 $0.50 / $1, below $75 $1 / $2.50,
  below $500 $2.50 / $5, else $5 / $10.
* **conIds**: ``blake2b("SYMBOL|YYYYMMDD|strike in cents|C")`` mapped into
  ``[OPTION_CON_ID_MIN, OPTION_CON_ID_MAX)`` = ``[1e9, 2e9)``, above every stock conId of
  the universe (< 4e8) and inside IB's 32-bit range (the store keeps conIds in int4).
  Collisions (a handful among ~60,000 contracts) are resolved by linear probing in a
  fixed order (symbol, expiry, strike, right), so a contract's conId depends only on its
  own terms and on which contracts are listed that day: the same across gateway
  restarts, seeds and clients.
* **localSymbol**: the OCC symbol, root padded to 6 characters, ``YYMMDD``, ``C``/``P``,
  strike x 1000 on 8 digits: ``"SPY   261218C00600000"``.
* **tick rules** (price increments, dollars per share): the penny program names
  (:data:`PENNY_PROGRAM`: the whole universe here, as all of them are in the real program)
  quote in $0.01 below $3 and $0.05 from $3, except SPY, QQQ and IWM (:data:`PENNY_ALL`)
  in $0.01 at every price; others $0.05 below $3 and $0.10 from $3.

The listing of a date is built once per process for the whole universe (about 0.1 s)
and shared by every gateway: see :func:`listing_for`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from desk.domain.calendar import DAYS_PER_YEAR, nyse_calendar
from desk.sim.universe import UNIVERSE, SimStock

__all__ = [
    "INDEX_ETFS",
    "OPTION_CON_ID_MAX",
    "OPTION_CON_ID_MIN",
    "OPTION_EXCHANGES",
    "PENNY_ALL",
    "PENNY_PROGRAM",
    "ChainListing",
    "ListedChain",
    "ListedExpiry",
    "SimOption",
    "listed_expiries",
    "listing_for",
    "expiry_epoch",
    "occ_symbol",
    "option_con_id",
    "strike_grid",
]

#: Lowest conId given to a simulated option (every stock conId of the universe is below).
OPTION_CON_ID_MIN = 1_000_000_000
#: One past the highest conId given to a simulated option (below 2**31 - 1).
OPTION_CON_ID_MAX = 2_000_000_000
#: Exchanges that list the simulated options, as reqSecDefOptParams reports them
#: (one securityDefinitionOptionParameter message each); SMART routes to all of them.
OPTION_EXCHANGES: tuple[str, ...] = (
    "SMART",
    "AMEX",
    "BATS",
    "BOX",
    "CBOE",
    "CBOE2",
    "EDGX",
    "EMERALD",
    "GEMINI",
    "IBUSOPT",
    "ISE",
    "MEMX",
    "MERCURY",
    "MIAX",
    "NASDAQBX",
    "NASDAQOM",
    "PEARL",
    "PHLX",
    "PSE",
)
#: Underlyings with $1 near-the-money strikes (broad index ETFs).
INDEX_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
#: Underlyings in the penny program ($0.01 increments below $3, $0.05 above).
PENNY_PROGRAM = frozenset(UNIVERSE)
#: Underlyings whose options quote in $0.01 at every price level.
PENNY_ALL = frozenset({"SPY", "QQQ", "IWM"})

_WEEKLY_DAYS = 42  # weeklies listed for the next 6 weeks
_MONTHLY_COUNT = 7  # the current month's third Friday and the next 6
_LEAPS_DAYS = 800  # LEAPS Januaries up to ~26 months out
_SPAN = OPTION_CON_ID_MAX - OPTION_CON_ID_MIN


@dataclass(frozen=True, slots=True)
class SimOption:
    """One listed option contract (IB secType ``OPT``), as contractDetails reports it.

    * ``con_id``: IB conId (see the module docstring for how it is derived);
    * ``symbol``: the underlying's symbol (IB ``symbol`` of an option is the underlying);
    * ``expiry``: ``lastTradeDateOrContractMonth``, ``YYYYMMDD``, exchange date; the
      option stops trading at that session's close (16:00 ET, 13:00 ET on a half day:
      :func:`expiry_epoch`);
    * ``strike``: dollars per share; ``right``: ``"C"`` or ``"P"``;
    * ``multiplier``: shares per contract (100); a price of 1.25 costs $125 per contract;
    * ``underlying_con_id``: conId of the underlying stock/ETF;
    * ``trading_class``: IB trading class (the underlying symbol here);
    * ``local_symbol``: the OCC symbol, e.g. ``"SPY   261218C00600000"``;
    * ``penny``: True if the penny program tick rules apply, ``penny_all`` if the
      contract quotes in pennies at every price (see :meth:`tick_for`).

    Stocks come from :class:`~desk.sim.universe.SimStock`; use ``sec_type`` to tell them
    apart (``"OPT"`` here, ``"STK"`` there).
    """

    con_id: int
    symbol: str
    expiry: str
    strike: float
    right: str
    underlying_con_id: int
    trading_class: str
    local_symbol: str
    penny: bool = True
    penny_all: bool = False
    multiplier: int = 100
    currency: str = "USD"
    exchange: str = "SMART"
    sec_type: str = "OPT"

    @property
    def is_call(self) -> bool:
        return self.right == "C"

    @property
    def expiry_date(self) -> date:
        """The expiry as a date (exchange calendar day)."""
        e = self.expiry
        return date(int(e[:4]), int(e[4:6]), int(e[6:8]))

    @property
    def contract_month(self) -> str:
        """``YYYYMM`` of the expiry (IB contractDetails ``contractMonth``)."""
        return self.expiry[:6]

    @property
    def min_tick(self) -> float:
        """Smallest price increment, dollars per share (the increment below $3)."""
        return 0.01 if self.penny else 0.05

    def tick_for(self, price: float) -> float:
        """Price increment at ``price`` (dollars per share): $0.01 at every price for
        SPY / QQQ / IWM; penny program $0.01 below $3 and $0.05 from $3; others $0.05
        below $3 and $0.10 from $3."""
        if self.penny_all:
            return 0.01
        if self.penny:
            return 0.01 if price < 3.0 else 0.05
        return 0.05 if price < 3.0 else 0.10

    def describe(self) -> str:
        """``SPY 20261218 600 C`` (for log lines and error texts)."""
        return f"{self.symbol} {self.expiry} {self.strike:g} {self.right}"


@dataclass(frozen=True, slots=True)
class ListedExpiry:
    """One expiry of a chain: ``strikes`` ascending (dollars per share), with the conIds
    of the call and the put at each strike (same order)."""

    expiry: str  # YYYYMMDD
    kind: str  # "weekly", "monthly" or "leaps"
    strikes: tuple[float, ...]
    call_ids: tuple[int, ...]
    put_ids: tuple[int, ...]

    @property
    def expiry_date(self) -> date:
        e = self.expiry
        return date(int(e[:4]), int(e[4:6]), int(e[6:8]))


@dataclass(frozen=True, slots=True)
class ListedChain:
    """The listed options of one underlying: ``expiries`` ascending."""

    underlying: SimStock
    trading_class: str
    expiries: tuple[ListedExpiry, ...]

    @property
    def expirations(self) -> list[str]:
        """Every expiry, ``YYYYMMDD``, ascending (reqSecDefOptParams ``expirations``)."""
        return [e.expiry for e in self.expiries]

    @property
    def strikes(self) -> list[float]:
        """The union of every expiry's strikes, ascending (reqSecDefOptParams ``strikes``)."""
        return sorted({k for e in self.expiries for k in e.strikes})

    def expiry(self, expiry: str) -> ListedExpiry | None:
        return next((e for e in self.expiries if e.expiry == expiry), None)

    def __len__(self) -> int:
        return sum(2 * len(e.strikes) for e in self.expiries)


def occ_symbol(root: str, expiry: str, right: str, strike: float) -> str:
    """OCC option symbol: root left-justified on 6, ``YYMMDD``, ``C``/``P``, strike in
    thousandths of a dollar on 8 digits. ``occ_symbol("SPY", "20261218", "C", 600)`` is
    ``"SPY   261218C00600000"``."""
    return f"{root:<6}{expiry[2:]}{right}{int(round(strike * 1000)):08d}"


def option_con_id(symbol: str, expiry: str, strike: float, right: str, probe: int = 0) -> int:
    """The conId candidate of a contract (before collision probing): a blake2b hash of
    ``SYMBOL|YYYYMMDD|strike in cents|right`` in ``[OPTION_CON_ID_MIN, OPTION_CON_ID_MAX)``,
    moved ``probe`` places on (modulo the range)."""
    key = f"{symbol}|{expiry}|{int(round(strike * 100))}|{right}".encode()
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return OPTION_CON_ID_MIN + (h + probe) % _SPAN


# --- calendar ------------------------------------------------------------------------------


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def listed_expiries(today: date) -> list[tuple[date, str]]:
    """``(expiry date, kind)`` listed as of exchange date ``today``, ascending; kind is
    ``"weekly"``, ``"monthly"`` or ``"leaps"`` (see the module docstring). A date that is
    both a weekly and a monthly is a monthly."""
    cal = nyse_calendar()  # loads exchange_calendars on first use (~1 s once per process)
    raw: dict[date, str] = {}
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    while friday <= today + timedelta(days=_WEEKLY_DAYS):
        raw[friday] = "weekly"
        friday += timedelta(days=7)
    year, month = today.year, today.month
    last_monthly = today
    for _ in range(_MONTHLY_COUNT):
        d = _third_friday(year, month)
        if d >= today:
            raw[d] = "monthly"
            last_monthly = max(last_monthly, d)
        month += 1
        if month > 12:
            year, month = year + 1, 1
    leaps = 0
    for y in (today.year + 1, today.year + 2, today.year + 3):
        d = _third_friday(y, 1)
        if d > last_monthly and d <= today + timedelta(days=_LEAPS_DAYS) and leaps < 2:
            raw[d] = "leaps"
            leaps += 1
    out: dict[date, str] = {}
    rank = {"weekly": 0, "monthly": 1, "leaps": 2}
    for d, kind in raw.items():
        adj = cal.previous_session(d, inclusive=True).day
        if adj < today:
            continue
        if adj not in out or rank[kind] > rank[out[adj]]:
            out[adj] = kind
    return sorted(out.items())


# --- strikes --------------------------------------------------------------------------------


def _steps(stock: SimStock) -> tuple[int, int]:
    """(near, far) strike steps in cents for the underlying's price level."""
    p = stock.price
    if stock.symbol in INDEX_ETFS:
        return 100, 500
    if stock.stock_type == "ETF":
        return (50, 100) if p < 100 else (100, 500)
    if p < 25:
        return 50, 100
    if p < 75:
        return 100, 250
    if p < 500:
        return 250, 500
    return 500, 1000


def strike_grid(stock: SimStock, years: float, kind: str = "monthly") -> tuple[float, ...]:
    """Strikes (dollars per share, ascending) listed for ``stock`` at an expiry ``years``
    away (see the module docstring for the rule)."""
    ref = stock.price
    near, far = _steps(stock)
    if kind == "leaps":
        half = 0.5
        near = far
    else:
        half = min(0.30, max(0.15, 3.0 * stock.annual_vol * math.sqrt(max(years, 1.0 / 52))))
    lo_c, hi_c = ref * (1 - half) * 100, ref * (1 + half) * 100
    in_lo, in_hi = ref * (1 - 0.6 * half) * 100, ref * (1 + 0.6 * half) * 100
    cents: set[int] = set()
    k = math.ceil(lo_c / far) * far
    while k <= hi_c:
        cents.add(k)
        k += far
    k = math.ceil(in_lo / near) * near
    while k <= in_hi:
        cents.add(k)
        k += near
    return tuple(c / 100.0 for c in sorted(cents) if c > 0)


# --- the listing ----------------------------------------------------------------------------


class ChainListing:
    """Every listed option of some stocks as of exchange date ``today`` (immutable).

    ``ChainListing(date(2026, 11, 23))`` lists the whole universe; ``stocks`` restricts it
    (conIds are then probed among those stocks only). Lookups:

    * :meth:`chain` (``ListedChain`` of an underlying symbol, or ``None``);
    * :meth:`option` (``SimOption`` by conId, or ``None``);
    * :meth:`find` (every contract matching a partial description).
    """

    def __init__(self, today: date, stocks: Iterable[SimStock] | None = None) -> None:
        self.today = today
        chosen = sorted(stocks if stocks is not None else UNIVERSE.values(), key=lambda s: s.symbol)
        expiries = listed_expiries(today)
        taken: dict[int, tuple[str, str, float, str]] = {}
        chains: dict[str, ListedChain] = {}
        # conId -> (symbol, expiry index, strike index, right)
        self._where: dict[int, tuple[str, int, int, str]] = {}
        for stock in chosen:
            listed: list[ListedExpiry] = []
            for ei, (d, kind) in enumerate(expiries):
                years = max((d - today).days, 0) / DAYS_PER_YEAR
                strikes = strike_grid(stock, years, kind)
                exp = d.strftime("%Y%m%d")
                calls: list[int] = []
                puts: list[int] = []
                for si, k in enumerate(strikes):
                    for right, ids in (("C", calls), ("P", puts)):
                        probe = 0
                        cid = option_con_id(stock.symbol, exp, k, right)
                        while cid in taken:
                            probe += 1
                            cid = option_con_id(stock.symbol, exp, k, right, probe)
                        taken[cid] = (stock.symbol, exp, k, right)
                        self._where[cid] = (stock.symbol, ei, si, right)
                        ids.append(cid)
                listed.append(ListedExpiry(exp, kind, strikes, tuple(calls), tuple(puts)))
            chains[stock.symbol] = ListedChain(stock, stock.symbol, tuple(listed))
        self._chains: Mapping[str, ListedChain] = MappingProxyType(chains)
        self._options: dict[int, SimOption] = {}

    @property
    def chains(self) -> Mapping[str, ListedChain]:
        """Every chain by underlying symbol."""
        return self._chains

    def __len__(self) -> int:
        """Number of listed contracts."""
        return len(self._where)

    def chain(self, symbol: str) -> ListedChain | None:
        return self._chains.get(symbol.strip().upper())

    def option(self, con_id: int) -> SimOption | None:
        """The contract with this conId, or ``None``."""
        opt = self._options.get(con_id)
        if opt is not None:
            return opt
        where = self._where.get(con_id)
        if where is None:
            return None
        symbol, ei, si, right = where
        chain = self._chains[symbol]
        e = chain.expiries[ei]
        strike = e.strikes[si]
        opt = SimOption(
            con_id=con_id,
            symbol=symbol,
            expiry=e.expiry,
            strike=strike,
            right=right,
            underlying_con_id=chain.underlying.con_id,
            trading_class=chain.trading_class,
            local_symbol=occ_symbol(chain.trading_class, e.expiry, right, strike),
            penny=symbol in PENNY_PROGRAM,
            penny_all=symbol in PENNY_ALL,
        )
        self._options[con_id] = opt
        return opt

    def find(
        self,
        symbol: str = "",
        expiry: str = "",
        strike: float = 0.0,
        right: str = "",
        trading_class: str = "",
        local_symbol: str = "",
    ) -> list[SimOption]:
        """Every listed contract matching the given terms (empty / 0 = any), ordered by
        expiry, strike, then call before put.

        ``expiry`` is ``YYYYMMDD`` or a contract month ``YYYYMM``; ``right`` is ``C``,
        ``P``, ``CALL`` or ``PUT`` (any case); ``local_symbol`` is the OCC symbol (spaces
        as IB pads them; compared without spaces)."""
        right = _norm_right(right)
        if local_symbol:
            parsed = _parse_occ(local_symbol)
            if parsed is None:
                return []
            root, exp, r, k = parsed
            if (
                (symbol and symbol.upper() != root)
                or (expiry and not exp.startswith(expiry))
                or (right and right != r)
                or (strike and abs(strike - k) > 1e-6)
            ):
                return []
            symbol, expiry, right, strike = root, exp, r, k
        chains: Iterable[ListedChain]
        if symbol:
            c = self.chain(symbol)
            chains = [c] if c is not None else []
        else:
            chains = self._chains.values()
        out: list[SimOption] = []
        for chain in chains:
            if trading_class and trading_class != chain.trading_class:
                continue
            for e in chain.expiries:
                if expiry and not e.expiry.startswith(expiry):
                    continue
                for si, k in enumerate(e.strikes):
                    if strike and abs(strike - k) > 1e-6:
                        continue
                    if right != "P":
                        out.append(self.option(e.call_ids[si]))  # type: ignore[arg-type]
                    if right != "C":
                        out.append(self.option(e.put_ids[si]))  # type: ignore[arg-type]
        return out


def _norm_right(right: str) -> str:
    r = right.strip().upper()
    if r in ("", "?", "0"):
        return ""
    if r in ("C", "CALL"):
        return "C"
    if r in ("P", "PUT"):
        return "P"
    return "X"  # matches nothing


def _parse_occ(text: str) -> tuple[str, str, str, float] | None:
    s = text.strip().upper()
    if len(s) < 16:
        return None
    body = s[-15:]
    root = s[:-15].strip()
    yymmdd, right, strike = body[:6], body[6], body[7:]
    if not (yymmdd.isdigit() and strike.isdigit() and right in "CP" and root):
        return None
    return root, "20" + yymmdd, right, int(strike) / 1000.0


@functools.lru_cache(maxsize=4)
def listing_for(today: date) -> ChainListing:
    """The listing of the whole universe as of exchange date ``today`` (built once per
    date and process, then shared)."""
    return ChainListing(today)


@functools.lru_cache(maxsize=1024)
def expiry_epoch(expiry: str) -> float:
    """UTC epoch seconds of the close of ``expiry`` (``YYYYMMDD``) on the desk's exchange
    calendar (:meth:`desk.domain.calendar.ExchangeCalendar.expiry_close`: 16:00 ET, 13:00
    ET on a half day, the previous session's if the date is not one): when the option
    stops trading; time to expiry is measured to this instant."""
    return nyse_calendar().expiry_close(expiry).timestamp()
