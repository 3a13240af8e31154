"""desk.risk: pre-trade checks and the risk preview of the order ticket.

Pure functions and immutable values (no I/O, no Textual, no IB): the ticket builds an
:class:`OrderIntent` and a :class:`MarketContext` and calls :func:`evaluate` on every
change; the :class:`RiskReport` lists every check with the number behind it, the
notional, an IBKR-Fixed commission estimate, positions and buying power after the fill,
IB's what-if margin impact when the broker has it, and for options the payoff at expiry
of the resulting position. A report with ``blocked`` true must not be sent.

* :mod:`desk.domain.intent` — OrderIntent, ComboLeg, Action, OrderType, TimeInForce,
  MarginImpact (IB's what-if) and RiskInputError: domain values, re-exported here
* :mod:`desk.risk.context` — MarketContext, RecentOrder
* :mod:`desk.risk.limits` — RiskLimits (from ``DESK_RISK_*`` settings)
* :mod:`desk.risk.engine` — evaluate, RiskReport, CheckResult
* :mod:`desk.risk.margin` — Reg T / CBOE margin requirements (shared with desk.sim)
* :mod:`desk.risk.payoff` — payoff_at_expiry
* the commission estimate is :mod:`desk.domain.commission` (IBKR Pro Fixed), the rule the
  simulator charges and the scanners' costs use; market hours are
  :mod:`desk.domain.calendar` (XNYS)

The order path's gates (modes, live override, kill switch) are in :mod:`desk.orders`.
"""

from typing import TYPE_CHECKING

from desk.domain.lazy import lazy_exports

if TYPE_CHECKING:
    from desk.domain.intent import Action, ComboLeg, MarginImpact, OrderIntent, OrderType, RiskInputError, TimeInForce
    from desk.risk.context import MarketContext, RecentOrder
    from desk.risk.engine import CHECK_NAMES, CheckResult, RiskReport, evaluate
    from desk.risk.limits import RiskLimits
    from desk.risk.payoff import PayoffLeg, PayoffProfile, payoff_at_expiry

#: where each name of the package lives: imported on first use (PEP 562), so importing
#: one module (the settings import desk.risk.limits) does not load the risk engine and
#: numpy with it
_HOMES = {
    **dict.fromkeys(
        ("Action", "ComboLeg", "MarginImpact", "OrderIntent", "OrderType", "RiskInputError", "TimeInForce"),
        "desk.domain.intent",
    ),
    **dict.fromkeys(("MarketContext", "RecentOrder"), "desk.risk.context"),
    **dict.fromkeys(("CHECK_NAMES", "CheckResult", "RiskReport", "evaluate"), "desk.risk.engine"),
    "RiskLimits": "desk.risk.limits",
    **dict.fromkeys(("PayoffLeg", "PayoffProfile", "payoff_at_expiry"), "desk.risk.payoff"),
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())


__all__ = [
    "CHECK_NAMES",
    "Action",
    "CheckResult",
    "ComboLeg",
    "MarginImpact",
    "MarketContext",
    "OrderIntent",
    "OrderType",
    "PayoffLeg",
    "PayoffProfile",
    "RecentOrder",
    "RiskInputError",
    "RiskLimits",
    "RiskReport",
    "TimeInForce",
    "evaluate",
    "payoff_at_expiry",
]
