"""The chain's window and definitions, pure functions of strikes and contracts: the strikes
shown around the money and when to re-centre them, which ``reqSecDefOptParams`` answer to
use, and the contracts of one expiry by strike and right. No I/O; used by
:class:`desk.broker.chains.ChainManager` (which re-exports these names) and the chain pane.
Prices in dollars per share; expiries ``YYYYMMDD``."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from desk.domain import Instrument
from desk.domain.chain import ChainRow
from desk.domain.options import WindowSpec

if TYPE_CHECKING:
    from ib_async import OptionChain

__all__ = [
    "RECENTRE_HYSTERESIS",
    "ChainDefinition",
    "ChainRow",
    "ExpiryContracts",
    "choose_definition",
    "default_expiry",
    "expiry_contracts",
    "nearest_index",
    "should_recentre",
    "window_strikes",
]

#: Fraction of the strike step the underlying must pass the midpoint by to re-centre.
RECENTRE_HYSTERESIS = 0.25


def nearest_index(strikes: Sequence[float], price: float) -> int:
    """Index of the strike nearest ``price`` (the lower one on a tie); ``strikes`` ascending, non-empty."""
    i = bisect.bisect_left(strikes, price)
    if i <= 0:
        return 0
    if i >= len(strikes):
        return len(strikes) - 1
    return i if strikes[i] - price < price - strikes[i - 1] else i - 1


def window_strikes(strikes: Sequence[float], price: float, spec: WindowSpec) -> list[float]:
    """The strikes of ``spec`` around ``price`` (dollars per share), ascending.

    Count window: ``spec.count`` consecutive strikes with the strike nearest ``price`` in
    the middle (``count // 2`` below it), shifted inwards at the ends of the list. Percent
    window: every strike in ``[price (1 - pct/100), price (1 + pct/100)]``, and at least
    the nearest strike. A ``nan`` price centres on the middle strike.
    """
    if not strikes:
        return []
    strikes = list(strikes)
    if price != price or price <= 0:
        price = strikes[len(strikes) // 2]
    atm = nearest_index(strikes, price)
    if spec.pct:
        lo, hi = price * (1 - spec.pct / 100.0), price * (1 + spec.pct / 100.0)
        chosen = [k for k in strikes if lo <= k <= hi]
        return chosen or [strikes[atm]]
    n = min(spec.count, len(strikes))
    start = max(0, min(atm - n // 2, len(strikes) - n))
    return strikes[start : start + n]


def should_recentre(strikes: Sequence[float], anchor: float | None, price: float) -> bool:
    """True when the window centred on strike ``anchor`` should move for ``price``.

    It moves when the strike nearest ``price`` is another one *and* the price has gone
    past the midpoint towards it by more than :data:`RECENTRE_HYSTERESIS` of the step
    (i.e. ``|price - anchor| >= 0.75 x |nearest - anchor|``); always when there is no
    anchor yet; never for a ``nan`` price.
    """
    if price != price or price <= 0 or not strikes:
        return False
    if anchor is None:
        return True
    nearest = strikes[nearest_index(strikes, price)]
    if nearest == anchor:
        return False
    return abs(price - anchor) >= (0.5 + RECENTRE_HYSTERESIS) * abs(nearest - anchor)


@dataclass(frozen=True, slots=True)
class ChainDefinition:
    """What ``reqSecDefOptParams`` says is listed on ``underlying``.

    ``expiries`` ``YYYYMMDD`` ascending; ``strikes`` dollars per share ascending (the union
    over expiries: an expiry lists a subset); ``multiplier`` shares per contract.
    """

    underlying: Instrument
    exchange: str
    trading_class: str
    multiplier: int
    expiries: tuple[str, ...]
    strikes: tuple[float, ...]


def choose_definition(underlying: Instrument, chains: Iterable[OptionChain]) -> ChainDefinition | None:
    """Pick one definition from ``reqSecDefOptParams``' answers (one per exchange and class).

    Prefers exchange ``SMART`` and the trading class named like the underlying (IB lists
    e.g. ``SPX`` and ``SPXW``, or adjusted classes after corporate actions, separately);
    otherwise the answer with the most expiries. ``None`` when nothing is listed.
    """
    chains = [c for c in chains if c.expirations and c.strikes]
    if not chains:
        return None

    def rank(c: OptionChain) -> tuple[int, int, int]:
        return (c.exchange == "SMART", c.tradingClass == underlying.symbol, len(c.expirations))

    best = max(chains, key=rank)
    same = [c for c in chains if c.tradingClass == best.tradingClass and c.exchange == best.exchange]
    expiries = sorted({e for c in same for e in c.expirations})
    strikes = sorted({float(k) for c in same for k in c.strikes if k > 0})
    try:
        multiplier = int(float(best.multiplier or 100))
    except ValueError:
        multiplier = 100
    return ChainDefinition(underlying, best.exchange, best.tradingClass, multiplier, tuple(expiries), tuple(strikes))


@dataclass(slots=True)
class ExpiryContracts:
    """The contracts of one expiry: ``strikes`` ascending; ``calls``/``puts`` by strike;
    ``contracts`` the qualified ib_async contracts by conId (empty when built offline)."""

    expiry: str
    strikes: tuple[float, ...]
    calls: dict[float, Instrument]
    puts: dict[float, Instrument]
    contracts: dict[int, Any] = field(default_factory=dict)

    def row(self, strike: float) -> ChainRow:
        return ChainRow(strike, self.calls.get(strike), self.puts.get(strike))


def expiry_contracts(expiry: str, instruments: Iterable[Instrument], contracts: Iterable[Any] = ()) -> ExpiryContracts:
    """Group option ``instruments`` of one ``expiry`` by strike and right.

    ``contracts`` are the matching ib_async contracts (needed to subscribe). Instruments of
    another expiry or without a right ``C``/``P`` are ignored.
    """
    calls: dict[float, Instrument] = {}
    puts: dict[float, Instrument] = {}
    for ins in instruments:
        if ins.expiry != expiry:
            continue
        if ins.right == "C":
            calls[ins.strike] = ins
        elif ins.right == "P":
            puts[ins.strike] = ins
    by_id = {c.conId: c for c in contracts}
    strikes = tuple(sorted(set(calls) | set(puts)))
    return ExpiryContracts(expiry, strikes, calls, puts, by_id)


def default_expiry(expiries: Sequence[str], today: date) -> str | None:
    """The first expiry after ``today`` (an exchange date); the last one if all are past or today."""
    key = today.strftime("%Y%m%d")
    later = [e for e in expiries if e > key]
    if later:
        return later[0]
    return expiries[-1] if expiries else None
