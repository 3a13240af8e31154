"""desk.risk: pre-trade checks and the risk preview of the order ticket.

Pure functions and immutable values (no I/O, no Textual, no IB): the ticket builds an
:class:`OrderIntent` and a :class:`MarketContext` and calls :func:`evaluate` on every
change; the :class:`RiskReport` lists every check with the number behind it, the
notional, an IBKR-Fixed commission estimate, positions and buying power after the fill,
IB's what-if margin impact when the broker has it, and for options the payoff at expiry
of the resulting position. A report with ``blocked`` true must not be sent.

* :mod:`desk.risk.intent` — OrderIntent, ComboLeg, Action, OrderType, TimeInForce
* :mod:`desk.risk.context` — MarketContext, RecentOrder, MarginImpact
* :mod:`desk.risk.limits` — RiskLimits (from ``DESK_RISK_*`` settings)
* :mod:`desk.risk.engine` — evaluate, RiskReport, CheckResult
* :mod:`desk.risk.commission` — CommissionSchedule (IBKR Pro Fixed)
* :mod:`desk.risk.payoff` — payoff_at_expiry
* :mod:`desk.risk.hours` — XNYS market phases

The safety gates (modes, live override, typed confirmation, kill switch) are in
:mod:`desk.safety`, which does file I/O.
"""

from desk.risk.commission import IBKR_FIXED, CommissionSchedule
from desk.risk.context import MarginImpact, MarketContext, RecentOrder
from desk.risk.engine import CHECK_NAMES, CheckResult, RiskReport, evaluate
from desk.risk.errors import RiskInputError
from desk.risk.hours import MarketHours, MarketPhase, nyse_hours
from desk.risk.intent import Action, ComboLeg, OrderIntent, OrderType, TimeInForce
from desk.risk.limits import RiskLimits
from desk.risk.payoff import PayoffLeg, PayoffProfile, payoff_at_expiry

__all__ = [
    "CHECK_NAMES",
    "IBKR_FIXED",
    "Action",
    "CheckResult",
    "ComboLeg",
    "CommissionSchedule",
    "MarginImpact",
    "MarketContext",
    "MarketHours",
    "MarketPhase",
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
    "nyse_hours",
    "payoff_at_expiry",
]
