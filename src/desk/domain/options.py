"""Option quotes and the option chain store (no Textual, no IB).

:class:`OptionQuote` is the latest state of one option contract: top of book, last trade,
volume, open interest, and two sets of analytics, IB's model Greeks (``model``, from
``tickOptionComputation`` tick type 13) and desk's own (``ours``, computed in the engine by
:mod:`desk.pricing` and stored by the broker's chain manager). :class:`OptionChainStore`
holds them by conId with a dirty set, exactly like :class:`~desk.domain.QuoteStore` does
for stocks: the broker's tick callback writes, the engine's analytics drain the dirty set on
their timer.

Units (the field's standard conventions, the same for both sets of Greeks):

* prices (``bid``, ``ask``, ``last``, ``price``, ``und_price``) are dollars per share of
  the underlying; multiply by the contract's ``multiplier`` (100 for US equity options)
  for dollars per contract;
* ``iv`` is the annualised implied volatility as a fraction (0.25 = 25 %);
* ``delta``: option price change per $1 of the underlying; ``gamma``: delta change per $1
  of the underlying; ``vega``: price change per 1 vol point (0.01 of ``iv``); ``theta``:
  price change per calendar day (negative for a long option); all per share;
* sizes in contracts; ``volume`` is the day's volume in contracts; ``open_interest`` is in
  contracts as of the previous close (what exchanges publish);
* ``time`` is the UTC time of the last update (tz-aware), ``None`` before the first one.

Missing values are ``nan``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from desk.domain.models import Instrument
from desk.domain.quotes import KeyedQuoteStore

__all__ = [
    "EUROPEAN_INDEX_ROOTS",
    "NO_GREEKS",
    "Carry",
    "OptionChainStore",
    "OptionGreeks",
    "OptionQuote",
    "WindowSpec",
    "exercise_style",
]

#: Option roots (trading classes) with European exercise: the cash-settled index options.
EUROPEAN_INDEX_ROOTS = frozenset({"SPX", "SPXW", "XSP", "NDX", "NDXP", "XND", "RUT", "RUTW", "MRUT", "VIX", "VIXW", "DJX"})


def exercise_style(symbol: str, sec_type: str = "STK") -> str:
    """``"european"`` for options on the cash-settled indices (SPX, NDX, RUT, their weeklies
    and minis, VIX, DJX; underlying ``sec_type`` ``IND``), ``"american"`` for US equity and ETF
    options (``STK``), the listed style of each. OEX (S&P 100, American) is American."""
    root = symbol.upper().strip()
    if root in EUROPEAN_INDEX_ROOTS:
        return "european"
    if sec_type.upper() == "IND":
        return "american" if root == "OEX" else "european"
    return "american"


class OptionGreeks(NamedTuple):
    """Implied volatility and Greeks of one option, per share (see the module docstring).

    ``iv`` fraction per year; ``delta`` per $1; ``gamma`` per $1 per $1; ``vega`` dollars
    per vol point; ``theta`` dollars per calendar day; ``price`` the model's option price
    and ``und_price`` the underlying price the model used, dollars per share.
    """

    iv: float = math.nan
    delta: float = math.nan
    gamma: float = math.nan
    vega: float = math.nan
    theta: float = math.nan
    price: float = math.nan
    und_price: float = math.nan

    def same(self, other: OptionGreeks | None) -> bool:
        """True if ``other`` has the same values (nan equals nan)."""
        if other is None:
            return False
        return all(a == b or (a != a and b != b) for a, b in zip(self, other))


class Carry(NamedTuple):
    """The carry of one underlying and expiry: ``rate`` (risk-free, continuously compounded
    annual fraction) and ``q`` (dividend + borrow yield, same units), so the forward is
    ``F = S e^{(rate - q) T}``. The option chain implies ``q`` from put-call parity
    (:func:`desk.pricing.chain_greeks` with ``q=None``); positions priced with the chain's
    carry get the chain's IV for the same mid (:func:`desk.pricing.contract_greeks`)."""

    rate: float
    q: float = 0.0


#: Greeks with every value missing.
NO_GREEKS = OptionGreeks()


@dataclass(slots=True)
class OptionQuote:
    """Latest state of one option contract (``instrument.sec_type == "OPT"``).

    ``model`` are IB's model Greeks (``None`` until the gateway sends them); ``ours`` are
    desk's, computed from this quote's mid (``None`` until computed); ``iv_reason`` is the
    :class:`desk.pricing.IVReason` code of ``ours.iv`` (0 = OK), so the UI can say why an
    IV is missing. ``seq`` counts updates (cheap change detection for the UI's row cache).
    """

    instrument: Instrument
    bid: float = math.nan
    ask: float = math.nan
    last: float = math.nan
    bid_size: float = math.nan
    ask_size: float = math.nan
    last_size: float = math.nan
    volume: float = math.nan
    open_interest: float = math.nan
    model: OptionGreeks | None = None
    ours: OptionGreeks | None = None
    iv_reason: int = 0
    time: datetime | None = None
    seq: int = 0

    @property
    def mid(self) -> float:
        """(bid + ask) / 2, dollars per share; ``nan`` unless both sides are positive and not crossed."""
        bid, ask = self.bid, self.ask
        if bid > 0 and ask > 0 and ask >= bid:
            return (bid + ask) / 2.0
        return math.nan

    @property
    def spread(self) -> float:
        """ask - bid in dollars per share (``nan`` unless both sides are positive)."""
        if self.bid > 0 and self.ask > 0:
            return self.ask - self.bid
        return math.nan

    def greeks(self, source: str) -> OptionGreeks | None:
        """``ours`` for ``source == "ours"``, IB's ``model`` for ``"ib"``.

        Raises ``ValueError`` for any other source name.
        """
        if source == "ours":
            return self.ours
        if source == "ib":
            return self.model
        raise ValueError(f"unknown Greeks source {source!r}: expected 'ours' or 'ib'")


class OptionChainStore(KeyedQuoteStore[OptionQuote]):
    """Latest :class:`OptionQuote` per conId, plus the conIds changed since the last drain
    (the mechanics of :class:`desk.domain.quotes.KeyedQuoteStore`).

    Used from one asyncio event loop (the broker's tick callback and the UI's flush timer
    share it in the desk); no locking. ``clear()`` forgets every quote (another underlying
    was selected).
    """

    quote_type = OptionQuote

    def update(
        self,
        con_id: int,
        *,
        time: datetime | None = None,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        volume: float | None = None,
        open_interest: float | None = None,
        model: OptionGreeks | None = None,
        ticks: int = 1,
    ) -> OptionQuote | None:
        """Apply the given fields (``None`` means unchanged) and mark the conId dirty.

        Units as in the module docstring; ``nan`` is a valid value (the side was
        withdrawn). Returns the quote, or ``None`` for an unknown conId (the update
        belongs to a released subscription and is ignored).
        """
        quote = self._quotes.get(con_id)
        if quote is None:
            return None
        if bid is not None:
            quote.bid = bid
        if ask is not None:
            quote.ask = ask
        if last is not None:
            quote.last = last
        if bid_size is not None:
            quote.bid_size = bid_size
        if ask_size is not None:
            quote.ask_size = ask_size
        if last_size is not None:
            quote.last_size = last_size
        if volume is not None:
            quote.volume = volume
        if open_interest is not None:
            quote.open_interest = open_interest
        if model is not None:
            quote.model = model
        if time is not None:
            quote.time = time
        quote.seq += 1
        self.ticks_seen += ticks
        self._dirty.add(con_id)
        return quote

    def set_ours(self, con_id: int, greeks: OptionGreeks, reason: int = 0) -> bool:
        """Store desk's own Greeks of ``con_id``; marks it dirty only if they changed.

        Returns True if the quote changed.
        """
        quote = self._quotes.get(con_id)
        if quote is None:
            return False
        if greeks.same(quote.ours) and reason == quote.iv_reason:
            return False
        quote.ours = greeks
        quote.iv_reason = reason
        quote.seq += 1
        self._dirty.add(con_id)
        return True


# ---------------------------------------------------------------------------------- window

_SPEC_RE = re.compile(r"^\s*(?:(\d+)|(?:\+/-|±)?\s*(\d+(?:\.\d+)?)\s*%)\s*$")


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Which strikes the chain shows: ``count`` strikes around the money, or every strike
    within ``pct`` percent of the underlying (exactly one of them is non-zero).

    Parse the setting's text with :meth:`parse`: ``"20"`` (20 strikes) or ``"10%"``
    (``"±10%"`` and ``"+/-10%"`` too).
    """

    count: int = 20
    pct: float = 0.0

    #: bounds of a count window (strikes) and of a percent window
    MIN_COUNT = 2
    MAX_COUNT = 200
    MIN_PCT = 0.5
    MAX_PCT = 100.0

    def __post_init__(self) -> None:
        if self.pct:
            if not (self.MIN_PCT <= self.pct <= self.MAX_PCT):
                raise ValueError(f"strike window of {self.pct:g}% is outside {self.MIN_PCT:g}..{self.MAX_PCT:g}%")
            if self.count:
                raise ValueError("a strike window is a count of strikes or a percent, not both")
        elif not (self.MIN_COUNT <= self.count <= self.MAX_COUNT):
            raise ValueError(f"strike window of {self.count} strikes is outside {self.MIN_COUNT}..{self.MAX_COUNT}")

    @classmethod
    def parse(cls, text: str | int) -> WindowSpec:
        """``"20"`` -> 20 strikes; ``"10%"`` / ``"±10%"`` -> +/-10 %. Raises ``ValueError``."""
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(count=text)
        match = _SPEC_RE.match(str(text))
        if match is None:
            raise ValueError(f"{text!r} is not a strike window: give a number of strikes (20) or a percent (10%)")
        if match.group(1) is not None:
            return cls(count=int(match.group(1)))
        return cls(count=0, pct=float(match.group(2)))

    def __str__(self) -> str:
        """For people: ``20 strikes`` or ``±10%``."""
        return f"±{self.pct:g}%" if self.pct else f"{self.count} strikes"

    @property
    def text(self) -> str:
        """The setting's form, which :meth:`parse` reads back: ``20`` or ``10%``."""
        return f"{self.pct:g}%" if self.pct else str(self.count)

    def wider(self) -> WindowSpec:
        """The next larger window: +2 strikes, or +1 percentage point (+0.5 below 2 %)."""
        if self.pct:
            step = 0.5 if self.pct < 2 else 1.0
            return WindowSpec(count=0, pct=min(self.MAX_PCT, self.pct + step))
        return WindowSpec(count=min(self.MAX_COUNT, self.count + 2))

    def narrower(self) -> WindowSpec:
        """The next smaller window: -2 strikes, or -1 percentage point (-0.5 at 2 % and below)."""
        if self.pct:
            step = 0.5 if self.pct <= 2 else 1.0
            return WindowSpec(count=0, pct=max(self.MIN_PCT, self.pct - step))
        return WindowSpec(count=max(self.MIN_COUNT, self.count - 2))
