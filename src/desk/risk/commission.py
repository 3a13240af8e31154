"""Commission estimates, after IBKR Pro **Fixed** pricing for US stocks and options.

Source: Interactive Brokers, "Commissions - Stocks, ETFs and Warrants" and "Commissions -
Options", IBKR Pro Fixed pricing, United States
(https://www.interactivebrokers.com/en/pricing/commissions-stocks.php and
.../commissions-options.php):

* stocks and ETFs: USD 0.005 per share, minimum USD 1.00 per order, maximum 1.0% of the
  trade value (the maximum wins over the minimum: 1,000 shares at USD 0.25 cost USD 2.50);
* options: USD 0.65 per contract for a premium >= USD 0.10, USD 0.50 for 0.05 <= premium
  < 0.10, USD 0.25 below 0.05; minimum USD 1.00 per order.

Not included: exchange, regulatory (SEC fee, FINRA TAF, ORF) and clearing fees, which
Fixed pricing passes through only in part. A combo is estimated leg by leg, each leg
as its own order (IB charges combo legs as separate executions), which is the
conservative reading of the per-order minimum. IB's own what-if estimate, when the broker
has it, is in :class:`~desk.risk.context.MarginImpact`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from desk.domain.commission import CommissionRates
from desk.risk.errors import RiskInputError

__all__ = ["CommissionSchedule", "IBKR_FIXED"]


@dataclass(frozen=True, slots=True)
class CommissionSchedule(CommissionRates):
    """Rates of a fixed commission plan, dollars. Defaults: IBKR Pro Fixed, US (see module);
    the rates are :class:`desk.domain.commission.CommissionRates`, shared with the
    arbitrage scanners' costs."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise RiskInputError(f"commission {name} must be a finite number >= 0, got {value!r}")

    def stock(self, shares: float, price: float) -> float:
        """Commission in dollars of one stock order of ``shares`` (absolute) at ``price``
        dollars per share (``nan`` price: the 1% cap is not applied)."""
        shares = abs(shares)
        if shares == 0:
            return 0.0
        fee = max(shares * self.stock_per_share, self.stock_min)
        if math.isfinite(price) and price > 0:
            fee = min(fee, shares * price * self.stock_max_pct / 100.0)
        return fee

    def option(self, contracts: float, premium: float) -> float:
        """Commission in dollars of one option order of ``contracts`` (absolute) at
        ``premium`` dollars per share (``nan``: the full per-contract rate)."""
        contracts = abs(contracts)
        if contracts == 0:
            return 0.0
        rate = self.option_per_contract
        if math.isfinite(premium):
            premium = abs(premium)
            if premium < self.option_lowest_premium:
                rate = self.option_per_contract_lowest
            elif premium < self.option_low_premium:
                rate = self.option_per_contract_low
        return max(contracts * rate, self.option_min)

    def for_instrument(self, sec_type: str, quantity: float, price: float) -> float:
        """Dispatch on IB secType: ``STK`` per share, ``OPT`` per contract."""
        if sec_type == "STK":
            return self.stock(quantity, price)
        if sec_type == "OPT":
            return self.option(quantity, price)
        raise RiskInputError(f"no commission rule for secType {sec_type!r}")


#: IBKR Pro Fixed, United States (the default schedule).
IBKR_FIXED = CommissionSchedule()
