"""Reg T margin of a securities account: stock and equity option requirements.

Strategy-based (Reg T) rules as US brokers apply them, from Federal Reserve Regulation T
(12 CFR 220.12), FINRA Rule 4210 and the CBOE Margin Manual (2000, "Margin requirements
for uncovered and spread positions"):

* **stock, long**: initial 50 % of market value, maintenance 25 %;
* **stock, short**: initial 50 % (the Reg T 150 % including the sale proceeds, which
  stay in cash); maintenance 30 % of market value but at least $5.00 a share (FINRA
  4210(c)(2)(D)), or 100 % and at least $2.50 a share below $5.00 (4210(c)(2)(C));
* **long options**: paid in full; they have no loan value, so no requirement and no
  part of the equity with loan value (see :mod:`desk.sim.account`);
* **short options, uncovered** (CBOE), per contract, initial = maintenance:
  calls ``MV + p x U - OTM``, at least ``MV + 10 % x U``; puts ``MV + p x U - OTM``,
  at least ``MV + 10 % x K``, where MV is the option's market value, U the underlying's
  value (price x multiplier), K the strike x multiplier, OTM the out-of-the-money amount
  and p 20 % (15 % for the broad-based index ETFs SPY, QQQ, IWM, DIA);
* **covered**: a short call covered by long stock (multiplier shares each) or a short
  put covered by short stock needs nothing beyond the stock's own requirement;
* **spreads**: a short option paired with a long option of the same underlying and
  right expiring no earlier: the maximum loss, ``max(0, K_long - K_short)`` for calls and
  ``max(0, K_short - K_long)`` for puts, x multiplier (0 for a debit spread). A box
  spread and a conversion/reversal therefore need nothing beyond their stock leg.

Short options are covered greedily: first by stock (most in-the-money shorts first),
then paired with the long giving the smallest requirement; what is left is uncovered.

Units: prices in dollars per share, quantities signed (shares / contracts), results in
dollars. Pure functions: nothing here touches the gateway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from desk.sim.orders import Tradable

__all__ = [
    "BROAD_BASED",
    "Requirement",
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


class Requirement(NamedTuple):
    """Initial and maintenance margin requirements, dollars."""

    initial: float
    maintenance: float

    def __add__(self, other: object) -> Requirement:  # type: ignore[override]
        if not isinstance(other, Requirement):
            return NotImplemented
        return Requirement(self.initial + other.initial, self.maintenance + other.maintenance)


ZERO = Requirement(0.0, 0.0)


def stock_requirement(quantity: float, price: float) -> Requirement:
    """Reg T requirement of ``quantity`` shares (signed) at ``price`` dollars a share."""
    if quantity == 0 or not price > 0:
        return ZERO
    mv = abs(quantity) * price
    if quantity > 0:
        return Requirement(LONG_STOCK_INITIAL * mv, LONG_STOCK_MAINT * mv)
    if price < 5.0:
        maint = max(mv, 2.50 * abs(quantity))
    else:
        maint = max(SHORT_STOCK_MAINT * mv, 5.00 * abs(quantity))
    return Requirement(SHORT_STOCK_INITIAL * mv, maint)


def short_option_requirement(is_call: bool, strike: float, option_price: float,
                             underlying_price: float, multiplier: int = 100,
                             broad_based: bool = False) -> float:
    """CBOE requirement of ONE uncovered short option contract, dollars (initial and
    maintenance alike). Prices in dollars per share; ``strike`` dollars per share."""
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


class _Opt:
    __slots__ = ("contract", "qty")

    def __init__(self, contract: Tradable, qty: float) -> None:
        self.contract = contract
        self.qty = qty  # contracts, positive (long or short per the list it is in)


def _spread_requirement(short: Tradable, long: Tradable) -> float | None:
    """Requirement per pair of a short option covered by ``long``, or ``None`` if the
    long cannot cover it (different right or an earlier expiry)."""
    if short.right != long.right or (long.expiry and short.expiry and long.expiry < short.expiry):
        return None
    if short.right == "C":
        width = long.strike - short.strike
    else:
        width = short.strike - long.strike
    return max(0.0, width) * short.multiplier


def reg_t(holdings: Iterable[tuple[Tradable, float]],
          price: Callable[[int], float]) -> Requirement:
    """Initial and maintenance requirement of ``holdings`` (``(contract, signed
    quantity)`` pairs) with ``price(conId)`` giving the mark in dollars per share of a
    holding or of an option's underlying (NaN or <= 0 when unknown: an unknown
    underlying price is replaced by the option's strike)."""
    groups: dict[int, tuple[list[tuple[Tradable, float]], list[_Opt], list[_Opt]]] = {}
    for contract, qty in holdings:
        if qty == 0:
            continue
        key = contract.underlying_con_id or contract.con_id
        stocks, longs, shorts = groups.setdefault(key, ([], [], []))
        if contract.is_option:
            (longs if qty > 0 else shorts).append(_Opt(contract, abs(qty)))
        else:
            stocks.append((contract, qty))
    total = ZERO
    for und_id, (stocks, longs, shorts) in groups.items():
        stock_qty = 0.0
        for contract, qty in stocks:
            total = total + stock_requirement(qty, price(contract.con_id))
            stock_qty += qty
        if not shorts:
            continue
        s = price(und_id)
        if not (s > 0) or math.isnan(s):
            s = float("nan")

        def itm_amount(o: _Opt, s: float = s) -> float:
            c = o.contract
            if math.isnan(s):
                return 0.0
            return (s - c.strike) if c.right == "C" else (c.strike - s)

        # 1. cover short calls with long stock, short puts with short stock
        cover = abs(stock_qty)
        right = "C" if stock_qty > 0 else "P"
        for o in sorted((o for o in shorts if o.contract.right == right),
                        key=itm_amount, reverse=True):
            if cover <= 0:
                break
            n = min(o.qty, math.floor(cover / o.contract.multiplier))
            o.qty -= n
            cover -= n * o.contract.multiplier
        # 2. pair with long options (smallest requirement first)
        for o in sorted(shorts, key=itm_amount, reverse=True):
            while o.qty > 0:
                best: tuple[float, _Opt] | None = None
                for lg in longs:
                    if lg.qty <= 0:
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
                total = total + Requirement(req * n, req * n)
        # 3. what is left is uncovered
        for o in shorts:
            if o.qty <= 0:
                continue
            c = o.contract
            und = s if not math.isnan(s) else c.strike
            opt_price = price(c.con_id)
            if not (opt_price > 0):
                opt_price = 0.0
            per = short_option_requirement(c.right == "C", c.strike, opt_price, und,
                                           c.multiplier, c.symbol in BROAD_BASED)
            total = total + Requirement(per * o.qty, per * o.qty)
    return total
