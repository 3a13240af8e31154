"""Pre-trade limits: :class:`RiskLimits`, built from settings (``DESK_RISK_*``).

The defaults are sized for one person's account of about $1,000,000 (the simulator's):
an order of at most 1,000 shares or 20 contracts (combo units) and $250,000 of notional
(gross over a combo's legs), at most $1,000,000 of working orders; a limit may be beyond
the touch by at most max(10 ticks, 3 % of the price, 1 spread); no identical order twice
within 10 s; at most 20 orders a minute; at most 5,000 shares or 100 contracts per
instrument, working orders included; no new risk after a $2,000 daily loss; quotes older
than 10 s are stale. These let a 1-lot conversion, reversal or box on any simulator
underlying through (SPY at about $600: 100 shares and two options, about $62,000 gross)
and stop a 100-lot (quantity and notional).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TypeVar, cast

from desk.domain.commission import IBKR_FIXED, CommissionRates
from desk.risk.errors import RiskInputError

__all__ = ["RiskLimits"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of the pre-trade checks (see :mod:`desk.risk.checks` for each rule).

    ``max_order_quantity``: shares per stock order. ``max_order_contracts``: contracts
    (or combo units) per option / combo order. ``max_notional``: dollars per order: the
    quantity x |price| x multiplier of a single instrument, the gross over the legs of a
    combo. ``max_working_notional``: dollars: the notional of every working order plus
    this one. Collar: a limit beyond the touch (a buy above the ask, a sell below the
    bid) may be beyond it by at most max(``collar_ticks`` ticks, ``price_collar_pct`` %
    of the touch price, ``collar_spreads`` x the bid-ask spread); a MKT order's expected
    fill (the touch) at most max(``collar_ticks`` ticks, ``price_collar_pct`` % of mid)
    from mid. ``duplicate_window_s``: seconds within which an identical order counts as
    a duplicate. ``max_orders_per_minute``: orders sent in any 60 s, this one included.
    ``max_position_shares`` / ``max_position_contracts``: largest absolute position per
    instrument (conId) after the order and every working order on it in the same
    direction fill. ``daily_loss_limit``: dollars; once today's P&L is at or below minus
    this, only orders that reduce positions pass. ``restricted_symbols``: symbols
    (underlyings for options) that may not be traded. ``stale_quote_s``: a quote older
    than this many seconds blocks the order. ``enforce_market_hours``: check XNYS hours
    (False in sim mode by default, see ``DESK_RISK_SIM_ANY_HOURS``). ``commission``: the
    plan of the commission estimate (:class:`desk.domain.commission.CommissionRates`,
    default IBKR Pro Fixed).

    Raises :class:`RiskInputError` for a negative or non-finite limit.
    """

    max_order_quantity: int = 1_000
    max_order_contracts: int = 20
    max_notional: float = 250_000.0
    max_working_notional: float = 1_000_000.0
    price_collar_pct: float = 3.0
    collar_ticks: int = 10
    collar_spreads: float = 1.0
    duplicate_window_s: float = 10.0
    max_orders_per_minute: int = 20
    max_position_shares: int = 5_000
    max_position_contracts: int = 100
    daily_loss_limit: float = 2_000.0
    restricted_symbols: frozenset[str] = field(default_factory=frozenset)
    stale_quote_s: float = 10.0
    enforce_market_hours: bool = True
    commission: CommissionRates = IBKR_FIXED

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("restricted_symbols", "enforce_market_hours", "commission"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise RiskInputError(f"risk limit {f.name} must be a finite number >= 0, got {value!r}")
        restricted = self.restricted_symbols
        if isinstance(restricted, str):
            restricted = [s for s in restricted.replace(",", " ").split() if s]
        object.__setattr__(self, "restricted_symbols", frozenset(str(s).strip().upper() for s in restricted))
        if not isinstance(self.enforce_market_hours, bool):
            raise RiskInputError(f"enforce_market_hours must be true or false, got {self.enforce_market_hours!r}")
        if not isinstance(self.commission, CommissionRates):
            raise RiskInputError("commission must be a desk.domain.commission.CommissionRates")

    @classmethod
    def from_settings(cls, settings: object) -> RiskLimits:
        """Limits from a :class:`desk.settings.Settings` (read by attribute, so desk.risk
        does not import the settings module): ``risk_max_order_quantity`` ... and ``mode``.
        Market hours are not enforced when ``mode`` is sim and ``risk_sim_any_hours`` is
        true."""

        def get(name: str, default: _T) -> _T:
            # read by attribute (duck-typed): the cast only names the expected type;
            # __post_init__ checks every limit and raises RiskInputError for a non-number
            return cast(_T, getattr(settings, name, default))

        mode: object = get("mode", "sim")
        mode = getattr(mode, "value", mode)
        enforce = not (mode == "sim" and bool(get("risk_sim_any_hours", True)))
        restricted: Iterable[str] = get("risk_restricted_symbols", ()) or ()
        d = cls()
        return cls(
            max_order_quantity=get("risk_max_order_quantity", d.max_order_quantity),
            max_order_contracts=get("risk_max_order_contracts", d.max_order_contracts),
            max_notional=get("risk_max_notional", d.max_notional),
            max_working_notional=get("risk_max_working_notional", d.max_working_notional),
            price_collar_pct=get("risk_price_collar_pct", d.price_collar_pct),
            collar_ticks=get("risk_collar_ticks", d.collar_ticks),
            collar_spreads=get("risk_collar_spreads", d.collar_spreads),
            duplicate_window_s=get("risk_duplicate_window", d.duplicate_window_s),
            max_orders_per_minute=get("risk_max_orders_per_minute", d.max_orders_per_minute),
            max_position_shares=get("risk_max_position_shares", d.max_position_shares),
            max_position_contracts=get("risk_max_position_contracts", d.max_position_contracts),
            daily_loss_limit=get("risk_daily_loss_limit", d.daily_loss_limit),
            restricted_symbols=frozenset(restricted),
            stale_quote_s=get("risk_stale_quote_seconds", d.stale_quote_s),
            enforce_market_hours=enforce,
        )
