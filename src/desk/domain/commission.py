"""Commission rates of a fixed plan: one definition shared by the order ticket's estimate
(:class:`desk.risk.commission.CommissionSchedule`, scalar) and the arbitrage scanners'
costs (:class:`desk.arbitrage.chain.Costs`, vectorized over a chain).

Defaults: IBKR Pro **Fixed** pricing, United States. Source: Interactive Brokers,
"Commissions - Stocks, ETFs and Warrants" and "Commissions - Options"
(https://www.interactivebrokers.com/en/pricing/commissions-stocks.php and
.../commissions-options.php):

* stocks and ETFs: USD 0.005 per share, minimum USD 1.00 per order, maximum 1.0% of the
  trade value (the maximum wins over the minimum);
* options: USD 0.65 per contract for a premium >= USD 0.10, USD 0.50 for
  0.05 <= premium < 0.10, USD 0.25 below 0.05; minimum USD 1.00 per order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommissionRates:
    """Rates of a fixed commission plan, in dollars (``stock_max_pct`` in percent of the
    trade value; premiums in dollars per share). Subclasses add the arithmetic and their
    own validation."""

    stock_per_share: float = 0.005
    stock_min: float = 1.00
    stock_max_pct: float = 1.0
    option_per_contract: float = 0.65
    option_per_contract_low: float = 0.50
    option_per_contract_lowest: float = 0.25
    option_low_premium: float = 0.10
    option_lowest_premium: float = 0.05
    option_min: float = 1.00
