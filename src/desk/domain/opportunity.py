"""Arbitrage opportunities: the shape the scanners (``desk.arbitrage``) produce and the
opportunities pane, the recorder and the Redis publisher consume.

Units, as everywhere in desk: option and stock prices are dollars per share; a combo's
dollar figures (``*_combo``, ``edge_total``, ``capital_combo``) are dollars for one combo
(one unit of every leg's ``ratio``; an option contract is ``multiplier`` shares). Sizes are
in combos. Times are timezone-aware UTC ``datetime`` objects.

Sign convention of ``net_price``: positive is a debit (cash paid to open the combo),
negative a credit (cash received).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class OpportunityKind(str, Enum):
    """The no-arbitrage relation an opportunity violates (see ``desk.arbitrage``)."""

    CONVERSION = "conversion"
    """Long stock + short call + long put at one strike and expiry, cheaper than the
    discounted strike plus dividends."""
    REVERSAL = "reversal"
    """Short stock + long call + short put, richer than the discounted strike plus
    dividends plus the cost of borrow."""
    BOX = "box"
    """Two strikes, four options (a bull call spread plus a bear put spread, or the
    reverse) priced away from the discounted strike difference."""
    VERTICAL = "vertical"
    """Two strikes, one right: call prices must fall and put prices rise with strike,
    by no more than the discounted strike difference."""
    BUTTERFLY = "butterfly"
    """Three strikes, one right: prices must be convex in strike."""
    CALENDAR = "calendar"
    """One strike, two expiries: the nearer expiry must not cost more than the farther."""


class LegAction(str, Enum):
    """IB's order action of a leg."""

    BUY = "BUY"
    SELL = "SELL"


class RiskFlag(str, Enum):
    """Why an opportunity's edge may not be locked in (short American legs, estimates)."""

    EARLY_EXERCISE_CALL = "early-exercise-call"
    """A short call is in the money and a dividend with an ex-date before expiry is larger
    than the put's time value at that strike: the holder may exercise the day before the
    ex-date, taking the dividend the combo counted on (Hull, *Options, Futures, and Other
    Derivatives*, 10th ed., ch. 15, American calls on dividend-paying stocks)."""
    EARLY_EXERCISE_PUT = "early-exercise-put"
    """A short put is deep in the money: the interest on the strike until expiry
    (r * K * T) is larger than the call's time value at that strike, so the holder gains by
    exercising now (Hull, 10th ed., ch. 11, early exercise of puts)."""
    AMERICAN_PREMIUM = "american-premium"
    """The edge is no larger than the gap between the European bound the scanners use and
    the bound that holds however the American short legs are exercised (reversal: the
    interest on the strike ``K (1 - e^{-rT})`` less dividends and borrow; conversion: the
    dividends; short box: ``K2 (1 - e^{-rT})`` plus dividends; the slope of verticals:
    ``(K2 - K1)(1 - e^{-rT})``; see ``desk.arbitrage.scanners``). It can be
    the American early-exercise premium of a short leg, not an arbitrage (Hull, 10th ed.,
    ch. 11, put-call relations for American options; Merton 1973)."""
    DIVIDEND = "dividend"
    """The edge counts expected dividends (amount and ex-date are estimates)."""
    STALE = "stale"
    """A leg's quote was older than the stale threshold when the opportunity was last
    scanned (set by :class:`desk.arbitrage.live.LiveArbitrage`): the prices may no longer
    be there."""


_EXERCISE_RISKS = frozenset({RiskFlag.EARLY_EXERCISE_CALL, RiskFlag.EARLY_EXERCISE_PUT, RiskFlag.AMERICAN_PREMIUM})
#: Flags that keep an opportunity out of the riskless view whatever its legs.
_NOT_RISKLESS = _EXERCISE_RISKS | {RiskFlag.STALE}


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a combo.

    ``sec_type`` is ``STK`` or ``OPT``; ``right`` ``C``/``P`` (empty for stock); ``strike``
    dollars per share (0 for stock); ``expiry`` ``YYYYMMDD`` (empty for stock). ``ratio``
    is the leg quantity per combo: contracts for options, shares for stock (a conversion
    has 1 call, 1 put and ``multiplier`` shares). ``price`` is the executable price used,
    dollars per share: the ask for a BUY, the bid for a SELL. ``size`` is the displayed
    size on that side (contracts or shares).
    """

    con_id: int
    sec_type: str
    right: str
    strike: float
    expiry: str
    action: LegAction
    ratio: int
    price: float
    size: float = math.nan

    @property
    def sign(self) -> int:
        """+1 for BUY (cash out), -1 for SELL (cash in)."""
        return 1 if self.action is LegAction.BUY else -1

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two legs the same leg, whatever their prices."""
        return (self.con_id, self.sec_type, self.right, self.strike, self.expiry, self.action.value, self.ratio)

    def describe(self) -> str:
        """``BUY 1 C 750 20160115`` or ``SELL 100 STK``."""
        if self.sec_type == "STK":
            return f"{self.action.value} {self.ratio} STK"
        return f"{self.action.value} {self.ratio} {self.right} {self.strike:g} {self.expiry}"


@dataclass(frozen=True, slots=True)
class Opportunity:
    """One executable violation of a no-arbitrage relation, net of costs.

    Prices per share (dollars), combo figures in dollars per combo, sizes in combos:

    * ``net_price``: sum over legs of sign * ratio * price per share (a stock leg counts
      its shares divided by ``multiplier``); positive is a debit, negative a credit.
      ``net_price_combo`` is the same in dollars for one combo.
    * ``bound``: the no-arbitrage value of the combo per share, in the same sign convention
      (e.g. for a conversion ``K * exp(-r T) + PV(dividends)``, received at expiry).
    * ``edge``: per share, before costs: how far the executable price is through the bound.
      ``edge_combo`` = ``edge`` * multiplier dollars.
    * ``costs_combo``: commissions and fees per combo when ``max_size`` combos are traded
      (per-order minimums spread over the size).
    * ``edge_combo_net`` = ``edge_combo`` - ``costs_combo``; ``edge_total`` =
      ``edge_combo_net`` * ``max_size`` (dollars).
    * ``max_size``: combos executable against the displayed sizes of every leg.
    * ``expiry``: the (nearest) expiry of the combo, ``YYYYMMDD``; ``days_to_expiry`` in
      calendar days from the snapshot's exchange date; ``years_to_expiry`` ACT/365 from the
      snapshot time to the expiry's close.
    * ``capital_combo``: dollars tied up per combo (see ``desk.arbitrage.scanners`` for the
      measure of each kind: the debit, the amount owed at expiry, or the premium of the legs
      bought); ``annualized_return`` = ``edge_combo_net`` / ``capital_combo`` /
      ``years_to_expiry`` (simple, not compounded; a fraction: 0.05 is 5% a year). The edge
      is measured after discounting at the carry rate, so this is the return *in excess of*
      that rate (NaN when the capital or the time to expiry is 0).
    * ``risks``: early-exercise and dividend risks of the short American legs, and
      ``STALE`` when a leg's quote was old at the last scan; :attr:`riskless` says whether
      the edge is locked in.
    * ``first_seen`` / ``last_seen`` (UTC): maintained by ``desk.arbitrage.OpportunityBook``
      across scans; a fresh scan sets both to the snapshot time. ``best_edge_total`` is the
      largest ``edge_total`` seen since ``first_seen``.
    """

    kind: OpportunityKind
    rule: str
    symbol: str
    legs: tuple[Leg, ...]
    multiplier: float
    net_price: float
    net_price_combo: float
    bound: float
    edge: float
    edge_combo: float
    costs_combo: float
    edge_combo_net: float
    edge_total: float
    max_size: int
    expiry: str
    days_to_expiry: int
    years_to_expiry: float
    capital_combo: float
    annualized_return: float
    risks: frozenset[RiskFlag]
    first_seen: datetime
    last_seen: datetime
    best_edge_total: float

    @property
    def key(self) -> tuple[object, ...]:
        """Identity across scans: the kind, the rule and the legs (not the prices)."""
        return (self.kind.value, self.rule, tuple(leg.identity for leg in self.legs))

    @property
    def edge_total_gross(self) -> float:
        """Edge at ``max_size`` before costs, dollars."""
        return self.edge_combo * self.max_size

    @property
    def profitable(self) -> bool:
        """True when the edge survives costs (``edge_combo_net`` > 0)."""
        return self.edge_combo_net > 0

    @property
    def at_risk(self) -> bool:
        """True when early exercise of a short American leg can take the edge away: any of
        ``EARLY_EXERCISE_CALL``, ``EARLY_EXERCISE_PUT``, ``AMERICAN_PREMIUM`` (the pane's
        ``!`` flag)."""
        return bool(self.risks & _EXERCISE_RISKS)

    @property
    def short_stock(self) -> bool:
        """True when the combo sells the stock short (a reversal)."""
        return any(leg.sec_type == "STK" and leg.action is LegAction.SELL for leg in self.legs)

    @property
    def risk_reasons(self) -> frozenset[RiskFlag]:
        """The flags that make this opportunity not riskless (empty when it is): an
        early-exercise risk of a short American leg (``EARLY_EXERCISE_CALL`` / ``_PUT``), an
        edge no larger than the American gap (``AMERICAN_PREMIUM``), a stale leg
        (``STALE``), and for a combo short the stock, ``DIVIDEND`` (the dividends owed to the
        stock lender are an estimate: a larger one takes the edge). A combo long the stock
        keeps ``DIVIDEND`` out of the reasons: the dividends are received, and an edge that
        is not flagged ``AMERICAN_PREMIUM`` is larger than them, so it is there even if
        none is paid."""
        reasons = self.risks & _NOT_RISKLESS
        if RiskFlag.DIVIDEND in self.risks and self.short_stock:
            reasons |= {RiskFlag.DIVIDEND}
        return reasons

    @property
    def riskless(self) -> bool:
        """The one definition of an arbitrage the desk ranks as riskless: the edge survives
        costs (:attr:`profitable`) and is locked in whatever the holders of the short
        American legs do, whatever dividends are paid and with every leg's quote fresh
        (no :attr:`risk_reasons`). The opportunities pane's default view lists only these;
        the others are its "at risk" view. The scanners' sources for each flag are in
        :mod:`desk.arbitrage.scanners`."""
        return self.profitable and not self.risk_reasons

    def describe(self) -> str:
        """One line for logs: kind, rule, legs, edge and size."""
        legs = ", ".join(leg.describe() for leg in self.legs)
        flags = f" [{', '.join(sorted(r.value for r in self.risks))}]" if self.risks else ""
        return (
            f"{self.kind.value} ({self.rule}) {self.symbol}: {legs}; net {self.net_price:+.4f}/sh, "
            f"edge ${self.edge_combo:.2f}/combo, after costs ${self.edge_combo_net:.2f} x {self.max_size}"
            f" = ${self.edge_total:.2f}{flags}"
        )


@dataclass(frozen=True, slots=True)
class Tracked:
    """One opportunity as the pane shows it.

    ``state``: ``live`` (found by the latest scan) or ``gone`` (missing from it since
    ``gone_at``, kept ``linger`` seconds so the trader sees it went). ``quote_time``: the
    oldest update time (UTC) of its legs' quotes (``None`` if unknown); when that was
    older than :attr:`desk.arbitrage.live.LiveArbitrage.stale_after` at the scan the opportunity carries
    ``RiskFlag.STALE`` (so it is not riskless). ``simulated``: found on the simulator (not
    real). ``key``: :func:`~desk.domain.opportunity_codec.opportunity_key`. Built by
    :class:`desk.arbitrage.live.LiveArbitrage` in the engine; views receive them over the
    engine API.
    """

    opportunity: Opportunity
    key: str
    state: str = "live"
    simulated: bool = False
    quote_time: datetime | None = None
    gone_at: datetime | None = None
