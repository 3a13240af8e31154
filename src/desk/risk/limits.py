"""Pre-trade limits: :class:`RiskLimits`, built from settings (``DESK_RISK_*``).

The defaults are deliberately small (a desk for one person's account): an order of at
most 1,000 shares or 20 contracts and $50,000; limit price within 5% of mid; no identical
order twice within 10 s; at most 20 orders a minute; at most 5,000 shares or 100
contracts per instrument; no new risk after a $2,000 daily loss; quotes older than 10 s
are stale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from desk.risk.commission import IBKR_FIXED, CommissionSchedule
from desk.risk.errors import RiskInputError

__all__ = ["RiskLimits"]


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of the pre-trade checks.

    ``max_order_quantity``: shares per stock order. ``max_order_contracts``: contracts
    (or combo units) per option / combo order. ``max_notional``: dollars per order
    (quantity x price x multiplier). ``price_collar_pct``: largest distance of a limit
    price from mid, percent of mid. ``duplicate_window_s``: seconds within which an
    identical order counts as a duplicate. ``max_orders_per_minute``: orders sent in any
    60 s, this one included. ``max_position_shares`` / ``max_position_contracts``: largest
    absolute position per instrument (conId) after the order and every working order on it
    in the same direction fill. ``daily_loss_limit``: dollars; once today's P&L is at or
    below minus this, only orders that reduce positions pass. ``restricted_symbols``:
    symbols (underlyings for options) that may not be traded. ``stale_quote_s``: a quote
    older than this many seconds blocks the order. ``enforce_market_hours``: check XNYS
    hours (False in sim mode by default, see ``DESK_RISK_SIM_ANY_HOURS``).
    ``commission``: the schedule of the commission estimate.

    Raises :class:`RiskInputError` for a negative or non-finite limit.
    """

    max_order_quantity: int = 1_000
    max_order_contracts: int = 20
    max_notional: float = 50_000.0
    price_collar_pct: float = 5.0
    duplicate_window_s: float = 10.0
    max_orders_per_minute: int = 20
    max_position_shares: int = 5_000
    max_position_contracts: int = 100
    daily_loss_limit: float = 2_000.0
    restricted_symbols: frozenset[str] = field(default_factory=frozenset)
    stale_quote_s: float = 10.0
    enforce_market_hours: bool = True
    commission: CommissionSchedule = IBKR_FIXED

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
        if not isinstance(self.commission, CommissionSchedule):
            raise RiskInputError("commission must be a CommissionSchedule")

    @classmethod
    def from_settings(cls, settings: object) -> RiskLimits:
        """Limits from a :class:`desk.settings.Settings` (read by attribute, so desk.risk
        does not import the settings module): ``risk_max_order_quantity`` ... and ``mode``.
        Market hours are not enforced when ``mode`` is sim and ``risk_sim_any_hours`` is
        true."""
        get = lambda name, default: getattr(settings, name, default)  # noqa: E731
        mode = get("mode", "sim")
        mode = getattr(mode, "value", mode)
        enforce = not (mode == "sim" and bool(get("risk_sim_any_hours", True)))
        restricted: Iterable[str] = get("risk_restricted_symbols", ()) or ()
        d = cls()
        return cls(
            max_order_quantity=get("risk_max_order_quantity", d.max_order_quantity),
            max_order_contracts=get("risk_max_order_contracts", d.max_order_contracts),
            max_notional=get("risk_max_notional", d.max_notional),
            price_collar_pct=get("risk_price_collar_pct", d.price_collar_pct),
            duplicate_window_s=get("risk_duplicate_window", d.duplicate_window_s),
            max_orders_per_minute=get("risk_max_orders_per_minute", d.max_orders_per_minute),
            max_position_shares=get("risk_max_position_shares", d.max_position_shares),
            max_position_contracts=get("risk_max_position_contracts", d.max_position_contracts),
            daily_loss_limit=get("risk_daily_loss_limit", d.daily_loss_limit),
            restricted_symbols=frozenset(restricted),
            stale_quote_s=get("risk_stale_quote_seconds", d.stale_quote_s),
            enforce_market_hours=enforce,
        )
