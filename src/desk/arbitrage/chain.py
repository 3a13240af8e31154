"""Inputs of the scanners: a chain snapshot in arrays, the carry and the trading costs.

A :class:`ChainSnapshot` is one underlying's option chain at one instant, laid out on a
grid: ``n_e`` expiries (rows) by ``n_k`` strikes (columns). A strike that is not listed
for an expiry has NaN prices, zero sizes and conId 0 in that row. Prices are dollars per
share, sizes contracts (options) or shares (the underlying), times UTC.

Time to expiry: an expiry's options stop trading at the close of the last session on or
before its expiry date on the XNYS calendar (16:00 America/New_York, 13:00 on half days:
:func:`desk.pricing.expiry_instant`) unless ``expiry_closes`` says otherwise.
``years_to_expiry`` is ACT/365 calendar time from ``now`` to that close; ``days_to_expiry``
is the calendar-day difference between the expiry date and ``now``'s New York date.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import numpy as np

from desk.domain.calendar import exchange_date, exchange_midnight, years_between
from desk.domain.commission import CommissionRates
from desk.pricing import expiry_instant

_GRID_FIELDS = (
    "call_bid",
    "call_ask",
    "call_bid_size",
    "call_ask_size",
    "put_bid",
    "put_ask",
    "put_bid_size",
    "put_ask_size",
)


@dataclass(frozen=True, slots=True)
class Dividend:
    """An expected cash dividend: ``amount`` dollars per share, going ex on ``ex_date``
    (exchange date). The owner of the stock at the close of the day before the ex-date
    receives it."""

    ex_date: date
    amount: float

    def __post_init__(self) -> None:
        if not isinstance(self.ex_date, date) or isinstance(self.ex_date, datetime):
            raise ValueError(f"Dividend.ex_date must be a date, got {self.ex_date!r}")
        if not (math.isfinite(self.amount) and self.amount >= 0):
            raise ValueError(f"Dividend.amount must be a finite amount >= 0 dollars per share, got {self.amount!r}")


@dataclass(frozen=True, slots=True)
class Carry:
    """Cost of carry used to discount strikes.

    ``rate``: continuously compounded annual risk-free rate (0.045 = 4.5%), ACT/365.
    ``dividends``: expected cash dividends (:class:`Dividend` or ``(ex_date, amount)``
    pairs). ``borrow_rate``: continuously compounded annual fee for borrowing stock to sell
    short (reversals), on the short sale's value. ``excess_rate``: ``(expiry, spread)``
    pairs, the continuously compounded annual rate (>= 0, < 1) by which the financing rate
    that put-call parity implies for that expiry exceeds ``rate`` (the chain's forward is
    above the one ``rate`` gives: a negative implied dividend;
    :func:`desk.arbitrage.live.carry_with_dividends`). That expiry's conversions are
    discounted at ``rate + spread``: a conversion lends at the market's rate, and the gap
    to ``rate`` is no arbitrage. Reversals keep ``rate``, the stricter bound for them.
    """

    rate: float = 0.0
    dividends: tuple[Dividend, ...] = ()
    borrow_rate: float = 0.0
    excess_rate: tuple[tuple[date, float], ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and -1.0 < self.rate < 1.0):
            raise ValueError(f"Carry.rate must be a continuously compounded annual rate in (-1, 1), got {self.rate!r}")
        if not (math.isfinite(self.borrow_rate) and 0.0 <= self.borrow_rate < 10.0):
            raise ValueError(f"Carry.borrow_rate must be an annual rate in [0, 10), got {self.borrow_rate!r}")
        divs = []
        for item in self.dividends:
            if isinstance(item, Dividend):
                divs.append(item)
            else:
                try:
                    ex_date, amount = item
                except (TypeError, ValueError):
                    raise ValueError(f"Carry.dividends items must be (ex_date, amount) pairs, got {item!r}") from None
                divs.append(Dividend(ex_date, float(amount)))
        object.__setattr__(self, "dividends", tuple(sorted(divs, key=lambda d: d.ex_date)))
        spreads = []
        for item in self.excess_rate:
            try:
                expiry, spread = item
                spread = float(spread)
            except (TypeError, ValueError):
                raise ValueError(f"Carry.excess_rate items must be (expiry, spread) pairs, got {item!r}") from None
            if (
                not isinstance(expiry, date)
                or isinstance(expiry, datetime)
                or not (math.isfinite(spread) and 0.0 <= spread < 1.0)
            ):
                raise ValueError(f"Carry.excess_rate: need an expiry date and an annual spread in [0, 1), got {item!r}")
            spreads.append((expiry, spread))
        object.__setattr__(self, "excess_rate", tuple(sorted(spreads)))


@dataclass(frozen=True, slots=True)
class Costs(CommissionRates):
    """Commissions and fees of the scanners, by default IBKR Pro Fixed pricing for US
    stocks and options. The commission is the rule of
    :class:`desk.domain.commission.CommissionRates` (the very code the order ticket's
    estimate and the simulator's fills use, here over arrays), one order per leg:

    * stock: ``max(stock_min, stock_per_share * shares)``, capped at ``stock_max_pct``
      percent of the trade value (the cap wins over the minimum): $0.005/share, $1.00
      minimum, 1% maximum;
    * options: ``max(option_min, rate * contracts)`` where the rate per contract is
      ``option_per_contract`` ($0.65) for a premium >= ``option_low_premium`` ($0.10),
      ``option_per_contract_low`` ($0.50) from ``option_lowest_premium`` ($0.05) up to it,
      ``option_per_contract_lowest`` ($0.25) below; $1.00 minimum;
    * plus ``option_fee_per_contract`` and ``stock_fee_per_share`` for exchange, regulatory
      and clearing fees, which the ticket leaves out (default 0).

    Raises :class:`ValueError` for a negative or non-finite rate or fee.
    """

    option_fee_per_contract: float = 0.0
    stock_fee_per_share: float = 0.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Costs.{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def zero(cls) -> Costs:
        """No commissions or fees (for gross figures)."""
        return cls(**{name: 0.0 for name in cls.__dataclass_fields__})

    def option_order(self, contracts: np.ndarray | float, premium: np.ndarray | float = math.nan) -> np.ndarray:
        """Commission plus fees in dollars of one option order of ``contracts`` (> 0) at
        ``premium`` dollars per share (NaN: the full per-contract rate). Broadcasts."""
        n = np.abs(np.asarray(contracts, dtype=np.float64))
        return self.option_orders(n, premium) + self.option_fee_per_contract * n

    def stock_order(self, shares: np.ndarray | float, price: np.ndarray | float) -> np.ndarray:
        """Commission plus fees in dollars of one stock order of ``shares`` (> 0) at
        ``price`` dollars per share (NaN: no cap). Broadcasts."""
        n = np.abs(np.asarray(shares, dtype=np.float64))
        return self.stock_orders(n, price) + self.stock_fee_per_share * n


def _as_grid(name: str, value: object, shape: tuple[int, int], dtype: type) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"ChainSnapshot.{name} must have shape {shape} (n_expiries, n_strikes), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ChainSnapshot:
    """One underlying's option chain at one instant, on an expiry x strike grid.

    * ``symbol``: the underlying's symbol; ``now``: tz-aware time of the snapshot.
    * ``expiries``: ``n_e`` expiry dates, strictly increasing (exchange dates).
    * ``strikes``: ``n_k`` strikes, dollars per share, strictly increasing.
    * ``call_bid``/``call_ask``/``put_bid``/``put_ask``: float arrays ``(n_e, n_k)``, dollars
      per share; NaN where the strike is not listed or that side is not quoted.
    * ``*_bid_size``/``*_ask_size``: ``(n_e, n_k)`` displayed sizes in contracts (NaN or 0:
      nothing displayed, that side is not executable).
    * ``call_con_id``/``put_con_id``: int ``(n_e, n_k)`` conIds, 0 where not listed (optional).
    * ``under_bid``/``under_ask`` dollars per share, ``under_bid_size``/``under_ask_size``
      shares, ``under_con_id`` the stock's conId.
    * ``multiplier``: shares per contract (100 for US equity options).
    * ``expiry_closes``: optional per-expiry close times (tz-aware); default the exchange
      close of each expiry date (:func:`desk.pricing.expiry_instant`, XNYS calendar).

    Copy with changes: ``dataclasses.replace(snapshot, call_bid=..., now=...)`` (validated
    again). Raises ``ValueError`` naming the field for a wrong shape, unsorted strikes or
    expiries, negative prices or sizes, or a naive ``now`` (and, when times to expiry are
    first needed, for an expiry outside the exchange calendar's range).
    """

    symbol: str
    now: datetime
    expiries: tuple[date, ...]
    strikes: np.ndarray
    call_bid: np.ndarray
    call_ask: np.ndarray
    put_bid: np.ndarray
    put_ask: np.ndarray
    call_bid_size: np.ndarray
    call_ask_size: np.ndarray
    put_bid_size: np.ndarray
    put_ask_size: np.ndarray
    under_bid: float
    under_ask: float
    under_bid_size: float
    under_ask_size: float
    call_con_id: np.ndarray | None = None
    put_con_id: np.ndarray | None = None
    under_con_id: int = 0
    multiplier: float = 100.0
    expiry_closes: tuple[datetime, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.now, datetime) or self.now.tzinfo is None:
            raise ValueError(f"ChainSnapshot.now must be a timezone-aware datetime, got {self.now!r}")
        expiries = tuple(self.expiries)
        for e in expiries:
            if not isinstance(e, date) or isinstance(e, datetime):
                raise ValueError(f"ChainSnapshot.expiries must be dates, got {e!r}")
        if any(b <= a for a, b in zip(expiries, expiries[1:], strict=False)):
            raise ValueError("ChainSnapshot.expiries must be strictly increasing")
        object.__setattr__(self, "expiries", expiries)
        strikes = np.asarray(self.strikes, dtype=np.float64)
        if strikes.ndim != 1:
            raise ValueError(f"ChainSnapshot.strikes must be 1-D, got shape {strikes.shape}")
        if not np.all(np.isfinite(strikes)) or np.any(strikes <= 0):
            raise ValueError("ChainSnapshot.strikes must be finite and > 0 dollars")
        if np.any(np.diff(strikes) <= 0):
            raise ValueError("ChainSnapshot.strikes must be strictly increasing")
        object.__setattr__(self, "strikes", strikes)
        shape = (len(expiries), len(strikes))
        for name in _GRID_FIELDS:
            arr = _as_grid(name, getattr(self, name), shape, np.float64)
            if np.any(arr < 0):  # NaN compares False
                raise ValueError(f"ChainSnapshot.{name} has negative values")
            object.__setattr__(self, name, arr)
        for name in ("call_con_id", "put_con_id"):
            value = getattr(self, name)
            arr = np.zeros(shape, dtype=np.int64) if value is None else _as_grid(name, value, shape, np.int64)
            object.__setattr__(self, name, arr)
        for name in ("under_bid", "under_ask", "under_bid_size", "under_ask_size"):
            value = float(getattr(self, name))
            if value < 0:
                raise ValueError(f"ChainSnapshot.{name} must be >= 0 or NaN, got {value!r}")
            object.__setattr__(self, name, value)
        if not (math.isfinite(self.multiplier) and self.multiplier > 0):
            raise ValueError(f"ChainSnapshot.multiplier must be > 0, got {self.multiplier!r}")
        if self.expiry_closes is not None:
            closes = tuple(self.expiry_closes)
            if len(closes) != len(expiries):
                raise ValueError(f"ChainSnapshot.expiry_closes must have {len(expiries)} items, got {len(closes)}")
            for c in closes:
                if not isinstance(c, datetime) or c.tzinfo is None:
                    raise ValueError(f"ChainSnapshot.expiry_closes must be tz-aware datetimes, got {c!r}")
            object.__setattr__(self, "expiry_closes", closes)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_expiries, n_strikes)``."""
        return (len(self.expiries), len(self.strikes))

    @property
    def today(self) -> date:
        """The snapshot's exchange (New York) date."""
        return exchange_date(self.now)

    @cached_property
    def years_to_expiry(self) -> np.ndarray:
        """``(n_e,)`` ACT/365 years from ``now`` to each expiry's close (<= 0: expired)."""
        closes = self.expiry_closes or tuple(expiry_instant(e) for e in self.expiries)
        return np.array([years_between(self.now, c) for c in closes])

    @cached_property
    def days_to_expiry(self) -> np.ndarray:
        """``(n_e,)`` calendar days from the exchange date of ``now`` to each expiry date."""
        today = self.today
        return np.array([(e - today).days for e in self.expiries], dtype=np.int64)

    @cached_property
    def expiry_strings(self) -> tuple[str, ...]:
        """Expiries as IB's ``YYYYMMDD``."""
        return tuple(e.strftime("%Y%m%d") for e in self.expiries)


def dividend_pv(carry: Carry, snapshot: ChainSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Expected dividends per expiry of ``snapshot``.

    Returns ``(pv, largest)``, both ``(n_e,)`` dollars per share: the present value of the
    dividends going ex after the snapshot's exchange date and on or before each expiry
    date (a holder through the expiry date receives them), discounted from the ex-date's
    New York midnight at ``carry.rate``; and the largest single such dividend (for the
    early-exercise test of short calls).
    """
    n_e = len(snapshot.expiries)
    pv = np.zeros(n_e)
    largest = np.zeros(n_e)
    today = snapshot.today
    for div in carry.dividends:
        if div.ex_date <= today or div.amount == 0:
            continue
        t = years_between(snapshot.now, exchange_midnight(div.ex_date))
        mask = np.array([div.ex_date <= e for e in snapshot.expiries], dtype=bool)
        pv[mask] += div.amount * math.exp(-carry.rate * t)
        largest[mask] = np.maximum(largest[mask], div.amount)
    return pv, largest


def excess_rate(carry: Carry, snapshot: ChainSnapshot) -> np.ndarray:
    """Per expiry of ``snapshot``, ``(n_e,)`` annual rates: the spread of
    ``carry.excess_rate`` for exactly that expiry (0 where none)."""
    fees = dict(carry.excess_rate)
    return np.array([fees.get(e, 0.0) for e in snapshot.expiries], dtype=np.float64)


def dividends_between(carry: Carry, first: date, last: date) -> bool:
    """True if a dividend goes ex after ``first`` and on or before ``last``."""
    return any(first < d.ex_date <= last and d.amount > 0 for d in carry.dividends)


def as_dividends(items: Sequence[tuple[date, float]] | None) -> tuple[Dividend, ...]:
    """``[(ex_date, amount), ...]`` -> tuple of :class:`Dividend` (validated)."""
    return tuple(Dividend(d, float(a)) for d, a in (items or ()))


def carry_from_settings(settings: object, dividends: Sequence[tuple[date, float]] | None = None) -> Carry:
    """:class:`Carry` from desk settings (``arb_rate``, ``arb_borrow_rate``) and the
    expected ``dividends`` of the underlying (``(ex_date, amount)`` pairs)."""
    return Carry(
        rate=float(settings.arb_rate),
        dividends=as_dividends(dividends),
        borrow_rate=float(settings.arb_borrow_rate),
    )


def costs_from_settings(settings: object) -> Costs:
    """:class:`Costs` from desk settings: IBKR fixed commissions plus
    ``arb_fee_per_contract`` per option contract."""
    return Costs(option_fee_per_contract=float(settings.arb_fee_per_contract))
