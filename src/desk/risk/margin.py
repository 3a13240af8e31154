"""Reg T / CBOE margin of a securities account: stock and equity option requirements.

The one definition of the margin rules: the simulator's accounts and what-if answers
(:mod:`desk.sim.account`, :mod:`desk.sim.matching`) and the risk engine's fallback when
IB's what-if has not answered (:func:`initial_margin_change`) call these functions.

Strategy-based (Reg T) rules as US brokers apply them, from Federal Reserve Regulation T
(12 CFR 220.12), FINRA Rule 4210 and the CBOE Margin Manual ("Margin requirements for
uncovered and spread positions"):

* **stock, long**: initial 50 % of market value, maintenance 25 %;
* **stock, short**: initial 50 % (the Reg T 150 % including the sale proceeds, which
  stay in cash); maintenance 30 % of market value but at least $5.00 a share (FINRA
  4210(c)(2)(D)), or 100 % and at least $2.50 a share below $5.00 (4210(c)(2)(C));
* **long options**: paid in full; they have no loan value, so no requirement (and no
  part of the equity with loan value, see :mod:`desk.sim.account`);
* **short options, uncovered** (CBOE), per contract, initial = maintenance:
  calls ``MV + p x U - OTM``, at least ``MV + 10 % x U``; puts ``MV + p x U - OTM``,
  at least ``MV + 10 % x K``, where MV is the option's market value, U the underlying's
  value (price x multiplier), K the strike x multiplier, OTM the out-of-the-money amount
  and p 20 % (15 % for the broad-based index ETFs in :data:`BROAD_BASED`);
* **covered**: a short call covered by long stock (multiplier shares each) or a short
  put covered by short stock needs nothing beyond the stock's own requirement, so a
  **conversion** (long stock, short call, long put) or a **reversal** (short stock, long
  call, short put) needs exactly its stock leg's requirement;
* **spreads**: a short option paired with a long option of the same underlying, right
  and multiplier expiring no earlier: the maximum loss, ``max(0, K_long - K_short)``
  for calls and ``max(0, K_short - K_long)`` for puts, x multiplier (0 for a debit
  spread);
* **box spreads, iron condors and iron butterflies**: a call credit spread and a put
  credit spread of one expiry (all four legs) and multiplier cannot both lose their
  width, so the pair needs its maximum loss at expiry once, not the sum of the two
  widths. A **short box** (sell the K1 call, buy the K2 call, sell the K2 put, buy the
  K1 put, K1 < K2) pays ``(K2 - K1) x multiplier`` at expiry whatever happens: it needs
  that width once. An iron condor needs the wider of its two spreads. A **long box** is
  two debit spreads: paid for, it needs nothing.

Pairing, per underlying, greedily: (1) short calls are covered by long stock and short
puts by short stock, most in-the-money shorts first; (2) every other short option is
paired with the long option (same right and multiplier, expiring no earlier) that gives
the smallest spread requirement, most in-the-money shorts first; (3) call credit spreads
and put credit spreads of the same expiry are matched into boxes / condors, largest
saving first, each pair charged its maximum loss at expiry (the payoff is piecewise
linear, so the maximum is at one of the four strikes); (4) what is left is uncovered.
Each charge is the maximum loss of the legs it covers, so for positions whose every short
option is covered the requirement is never below the positions' worst loss at expiry
(tests/risk/test_margin.py checks it against a brute-force payoff grid).

Holdings are grouped by ``symbol`` (IB names an option by its underlying's symbol), so
the functions take any contract with IB's fields (:class:`MarginContract`: the desk's
:class:`~desk.domain.Instrument` and the simulator's ``Tradable`` both qualify).

Units: prices in dollars per share (an option's too: its premium per share of the
underlying), quantities signed (shares / contracts, negative = short), results in
dollars. Pure functions: no I/O, nothing from the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol, SupportsFloat, TypeVar, cast

__all__ = [
    "BROAD_BASED",
    "MarginContract",
    "Requirement",
    "initial_margin_change",
    "margin_change",
    "reg_t",
    "short_option_requirement",
    "stock_requirement",
]

#: Underlyings whose options are broad-based index options for the CBOE 15 % rule.
BROAD_BASED = frozenset({"SPY", "QQQ", "IWM", "DIA"})

LONG_STOCK_INITIAL = 0.50
LONG_STOCK_MAINT = 0.25
SHORT_STOCK_INITIAL = 0.50
SHORT_STOCK_MAINT = 0.30
#: FINRA 4210(c)(2)(C)/(D): below this price (dollars a share) a short stock's maintenance
#: is 100 % of its value and at least SHORT_STOCK_LOW_FLOOR a share; at or above it, at
#: least SHORT_STOCK_FLOOR a share
SHORT_STOCK_LOW_PRICE = 5.00
SHORT_STOCK_LOW_FLOOR = 2.50
SHORT_STOCK_FLOOR = 5.00

_EPS = 1e-9


class MarginContract(Protocol):
    """What the margin rules read of a contract (IB's fields): ``con_id``, ``sec_type``
    (``STK`` or ``OPT``), ``symbol`` (an option's underlying symbol), ``right`` (``C`` /
    ``P``), ``strike`` (dollars per share), ``expiry`` (``YYYYMMDD``), ``multiplier``
    (shares per contract, 1 for stocks)."""

    @property
    def con_id(self) -> int: ...
    @property
    def sec_type(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def right(self) -> str: ...
    @property
    def strike(self) -> float: ...
    @property
    def expiry(self) -> str: ...
    @property
    def multiplier(self) -> int: ...


class Requirement(NamedTuple):
    """Initial and maintenance margin requirements, dollars."""

    initial: float
    maintenance: float

    def __add__(self, other: object) -> Requirement:
        if not isinstance(other, Requirement):
            return NotImplemented
        return Requirement(self.initial + other.initial, self.maintenance + other.maintenance)

    def __sub__(self, other: object) -> Requirement:
        if not isinstance(other, Requirement):
            return NotImplemented
        return Requirement(self.initial - other.initial, self.maintenance - other.maintenance)


ZERO = Requirement(0.0, 0.0)
_UNKNOWN = Requirement(math.nan, math.nan)


class _Held(Protocol):
    """A position as the margin rules read it: the desk's :class:`~desk.domain.orders.Position`
    and the simulator's positions (``instrument`` and signed ``quantity``)."""

    @property
    def instrument(self) -> MarginContract: ...
    @property
    def quantity(self) -> float: ...


#: ``(contract, signed quantity)`` pairs, or objects with ``instrument`` and ``quantity``
#: (the desk's :class:`~desk.domain.orders.Position`, see :class:`_Held`), or a mapping of either.
Holdings = Iterable[tuple[MarginContract, float]] | Iterable[object] | Mapping[object, object]
#: conId -> mark in dollars per share (a mapping or a function; NaN / missing: unknown).
Prices = Mapping[int, float] | Callable[[int], float]
#: underlying symbol -> price in dollars per share (a mapping or a function).
UnderlyingPrices = Mapping[str, float] | Callable[[str], float]


def stock_requirement(quantity: float, price: float) -> Requirement:
    """Reg T requirement of ``quantity`` shares (signed) at ``price`` dollars a share
    (zero without a positive price)."""
    if quantity == 0 or not price > 0:
        return ZERO
    mv = abs(quantity) * price
    if quantity > 0:
        return Requirement(LONG_STOCK_INITIAL * mv, LONG_STOCK_MAINT * mv)
    if price < SHORT_STOCK_LOW_PRICE:
        maint = max(mv, SHORT_STOCK_LOW_FLOOR * abs(quantity))
    else:
        maint = max(SHORT_STOCK_MAINT * mv, SHORT_STOCK_FLOOR * abs(quantity))
    return Requirement(SHORT_STOCK_INITIAL * mv, maint)


def short_option_requirement(
    is_call: bool, strike: float, option_price: float, underlying_price: float, multiplier: int = 100, broad_based: bool = False
) -> float:
    """CBOE requirement of ONE uncovered short option contract, dollars (initial and
    maintenance alike). ``strike``, ``option_price`` and ``underlying_price`` in dollars
    per share; ``broad_based``: 15 % of the underlying instead of 20 %."""
    mv = max(option_price, 0.0) * multiplier
    u = underlying_price * multiplier
    pct = 0.15 if broad_based else 0.20
    if is_call:
        otm = max(0.0, strike - underlying_price) * multiplier
        floor = mv + 0.10 * u
    else:
        otm = max(0.0, underlying_price - strike) * multiplier
        floor = mv + 0.10 * strike * multiplier
    return max(mv + pct * u - otm, floor)


# --- inputs ---------------------------------------------------------------------------------


def _pairs(holdings: Holdings) -> list[tuple[MarginContract, float]]:
    items = holdings.values() if isinstance(holdings, Mapping) else holdings
    out: list[tuple[MarginContract, float]] = []
    for item in items:
        if isinstance(item, tuple):
            contract, qty = item
        else:
            held = cast(_Held, item)  # not a pair: a position (duck-typed, see Holdings)
            contract, qty = held.instrument, held.quantity
        if contract.sec_type not in ("STK", "OPT"):
            raise ValueError(f"no margin rule for secType {contract.sec_type!r} ({contract.symbol}): pass the legs of a combo")
        out.append((contract, float(qty)))
    return out


_K = TypeVar("_K")


def _lookup(source: Mapping[_K, SupportsFloat | None] | Callable[[_K], SupportsFloat | None] | None, key: _K) -> float:
    if source is None:
        return math.nan
    value = source.get(key, math.nan) if isinstance(source, Mapping) else source(key)
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _net(pairs: Iterable[tuple[MarginContract, float]]) -> dict[int, tuple[MarginContract, float]]:
    """Quantities summed per conId (zero positions dropped)."""
    out: dict[int, tuple[MarginContract, float]] = {}
    for contract, qty in pairs:
        old = out.get(contract.con_id, (contract, 0.0))[1]
        out[contract.con_id] = (contract, old + qty)
    return {k: v for k, v in out.items() if abs(v[1]) > _EPS}


# --- the requirement --------------------------------------------------------------------


def reg_t(holdings: Holdings, price: Prices, underlying: UnderlyingPrices | None = None) -> Requirement:
    """Initial and maintenance requirement in dollars of ``holdings`` (``(contract,
    signed quantity)`` pairs or :class:`~desk.domain.orders.Position` objects; the same
    conId twice is summed).

    ``price(conId)`` is the mark of a holding in dollars per share; ``underlying(symbol)``
    the price of an option's underlying (default: the mark of a stock of that symbol among
    the holdings). Unknown prices (NaN, missing, <= 0) are not an error here: an unknown
    stock price gives no stock requirement, an unknown option price counts as 0 and an
    unknown underlying price is replaced by the option's strike (the simulator's
    convention). :func:`margin_change` refuses unknown prices instead. Raises
    :class:`ValueError` for a secType other than STK or OPT."""
    groups: dict[str, list[tuple[MarginContract, float]]] = {}
    for contract, qty in _net(_pairs(holdings)).values():
        groups.setdefault(contract.symbol, []).append((contract, qty))
    total = ZERO
    for symbol, items in groups.items():
        total = total + _group(symbol, items, price, underlying)
    return total


def _underlying_price(
    symbol: str, items: list[tuple[MarginContract, float]], price: Prices, underlying: UnderlyingPrices | None
) -> float:
    s = _lookup(underlying, symbol)
    if not s > 0:
        for contract, _ in items:
            if contract.sec_type == "STK":
                s = _lookup(price, contract.con_id)
                break
    return s if s > 0 else math.nan


@dataclass(slots=True)
class _Opt:
    contract: MarginContract
    qty: float  # contracts still to cover (short) or still free (long), > 0


@dataclass(slots=True)
class _Spread:
    short: MarginContract
    long: MarginContract
    qty: float
    per: float  # dollars per spread (the maximum loss of one short + one long)


def _spread_requirement(short: MarginContract, long: MarginContract) -> float | None:
    """Requirement in dollars of one short option covered by one ``long``, or ``None`` if
    the long cannot cover it (other right or multiplier, or an earlier expiry)."""
    if short.right != long.right or short.multiplier != long.multiplier:
        return None
    if long.expiry and short.expiry and long.expiry < short.expiry:
        return None
    width = long.strike - short.strike if short.right == "C" else short.strike - long.strike
    return max(0.0, width) * short.multiplier


def _same_expiry(s: _Spread) -> bool:
    return s.short.expiry == s.long.expiry


def _condor_loss(call: _Spread, put: _Spread) -> float:
    """Maximum loss at expiry, dollars, of one call credit spread plus one put credit
    spread of the same expiry and multiplier (a box, an iron condor or butterfly)."""
    a, b = call.short.strike, call.long.strike  # a < b
    c, d = put.short.strike, put.long.strike  # d < c

    def loss(s: float) -> float:
        return min(max(s - a, 0.0), b - a) + min(max(c - s, 0.0), c - d)

    return max(loss(k) for k in (a, b, c, d)) * call.short.multiplier


def _group(
    symbol: str, items: list[tuple[MarginContract, float]], price: Prices, underlying: UnderlyingPrices | None
) -> Requirement:
    """Requirement of the holdings of one underlying (see the module for the pairing)."""
    total = ZERO
    stock_qty = 0.0
    longs: list[_Opt] = []
    shorts: list[_Opt] = []
    for contract, qty in items:
        if contract.sec_type == "OPT":
            (longs if qty > 0 else shorts).append(_Opt(contract, abs(qty)))
        else:
            total = total + stock_requirement(qty, _lookup(price, contract.con_id))
            stock_qty += qty
    if not shorts:
        return total
    s = _underlying_price(symbol, items, price, underlying)

    def itm(o: _Opt) -> float:
        c = o.contract
        if math.isnan(s):
            return 0.0
        return (s - c.strike) if c.right == "C" else (c.strike - s)

    # 1. short calls covered by long stock, short puts by short stock
    cover = abs(stock_qty)
    right = "C" if stock_qty > 0 else "P"
    for o in sorted((o for o in shorts if o.contract.right == right), key=itm, reverse=True):
        if cover <= 0:
            break
        n = min(o.qty, math.floor(cover / o.contract.multiplier + _EPS))
        o.qty -= n
        cover -= n * o.contract.multiplier
    # 2. spreads: each short with the long of the smallest requirement
    spreads: list[_Spread] = []
    for o in sorted(shorts, key=itm, reverse=True):
        while o.qty > _EPS:
            best: tuple[float, _Opt] | None = None
            for lg in longs:
                if lg.qty <= _EPS:
                    continue
                req = _spread_requirement(o.contract, lg.contract)
                if req is not None and (best is None or req < best[0]):
                    best = (req, lg)
            if best is None:
                break
            req, lg = best
            n = min(o.qty, lg.qty)
            o.qty -= n
            lg.qty -= n
            spreads.append(_Spread(o.contract, lg.contract, n, req))
    # 3. a call credit spread and a put credit spread of one expiry: their maximum loss once
    calls = [sp for sp in spreads if sp.short.right == "C" and sp.per > 0 and _same_expiry(sp)]
    puts = [sp for sp in spreads if sp.short.right == "P" and sp.per > 0 and _same_expiry(sp)]
    while calls and puts:
        found: tuple[float, float, _Spread, _Spread] | None = None
        for cs in calls:
            for ps in puts:
                if (
                    cs.qty <= _EPS
                    or ps.qty <= _EPS
                    or cs.short.expiry != ps.short.expiry
                    or cs.short.multiplier != ps.short.multiplier
                ):
                    continue
                combined = _condor_loss(cs, ps)
                saving = cs.per + ps.per - combined
                if saving > _EPS and (found is None or saving > found[0]):
                    found = (saving, combined, cs, ps)
        if found is None:
            break
        _saving, combined, cs, ps = found
        n = min(cs.qty, ps.qty)
        cs.qty -= n
        ps.qty -= n
        total = total + Requirement(combined * n, combined * n)
    for sp in spreads:
        if sp.qty > _EPS:
            total = total + Requirement(sp.per * sp.qty, sp.per * sp.qty)
    # 4. what is left is uncovered
    for o in shorts:
        if o.qty <= _EPS:
            continue
        c = o.contract
        und = s if not math.isnan(s) else c.strike
        opt_price = _lookup(price, c.con_id)
        if not opt_price > 0:
            opt_price = 0.0
        per = short_option_requirement(c.right == "C", c.strike, opt_price, und, c.multiplier, c.symbol in BROAD_BASED)
        total = total + Requirement(per * o.qty, per * o.qty)
    return total


# --- what an order changes ------------------------------------------------------------------


def margin_change(positions: Holdings, legs: Holdings, prices: Prices, underlying: UnderlyingPrices | None = None) -> Requirement:
    """Reg T initial and maintenance requirement change, dollars, of adding ``legs`` (an
    order's legs filled: ``(contract, signed quantity)``, e.g.
    :meth:`desk.domain.intent.OrderIntent.leg_deltas`) to ``positions`` (``(contract, signed
    quantity)`` pairs or :class:`~desk.domain.orders.Position` objects, a mapping of them
    is fine), both marked at ``prices`` (conId -> dollars per share) and ``underlying``
    (symbol -> dollars per share; default: the mark of the stock of that symbol).

    Only the underlyings the legs trade are computed (the requirement of the others does
    not change). Fails closed: ``Requirement(nan, nan)`` when a price it needs is unknown
    (NaN, missing or <= 0): a stock position or leg, a short option before or after the
    order, or the underlying of an option of an underlying with short options. Positive =
    more margin needed. Raises :class:`ValueError` for a secType other than STK or OPT."""
    leg_pairs = _pairs(legs)
    symbols = {c.symbol for c, q in leg_pairs if q}
    if not symbols:
        return ZERO
    before = [(c, q) for c, q in _pairs(positions) if c.symbol in symbols]
    after = before + leg_pairs
    for holdings in (before, after):
        net = list(_net(holdings).values())
        for symbol in symbols:
            items = [(c, q) for c, q in net if c.symbol == symbol]
            if not _priced(symbol, items, prices, underlying):
                return _UNKNOWN
    return reg_t(after, prices, underlying) - reg_t(before, prices, underlying)


def initial_margin_change(
    positions: Holdings, legs: Holdings, prices: Prices, underlying: UnderlyingPrices | None = None
) -> float:
    """Reg T initial requirement change in dollars of adding ``legs`` to ``positions`` at
    ``prices`` (see :func:`margin_change`): what IB's what-if reports as
    ``initMarginChange``; NaN when a needed price is unknown. Excludes the premium and the
    commission, which move cash, not the requirement."""
    return margin_change(positions, legs, prices, underlying).initial


def _priced(symbol: str, items: list[tuple[MarginContract, float]], prices: Prices, underlying: UnderlyingPrices | None) -> bool:
    has_short_option = False
    for contract, qty in items:
        if contract.sec_type == "STK" or qty < 0:
            if not _lookup(prices, contract.con_id) > 0:
                return False
        has_short_option |= contract.sec_type == "OPT" and qty < 0
    return not has_short_option or not math.isnan(_underlying_price(symbol, items, prices, underlying))
