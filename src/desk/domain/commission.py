"""Commissions of a fixed plan: the one definition of the rule, used by the order ticket's
estimate (:mod:`desk.risk.engine`), the simulator's fills and what-if answers
(:mod:`desk.sim.matching`) and the arbitrage scanners' costs
(:class:`desk.arbitrage.chain.Costs`, vectorized over a chain).

Defaults (:data:`IBKR_FIXED`): IBKR Pro **Fixed** pricing, United States. Source:
Interactive Brokers, "Commissions - Stocks, ETFs and Warrants" and "Commissions - Options"
(https://www.interactivebrokers.com/en/pricing/commissions-stocks.php and
.../commissions-options.php):

* stocks and ETFs: USD 0.005 per share, minimum USD 1.00 per order, maximum 1.0% of the
  trade value (the maximum wins over the minimum: 1,000 shares at USD 0.25 cost USD 2.50);
* options: USD 0.65 per contract for a premium >= USD 0.10, USD 0.50 for
  0.05 <= premium < 0.10, USD 0.25 below 0.05 (premium in dollars per share); minimum
  USD 1.00 per order.

Not included: exchange, regulatory (SEC fee, FINRA TAF, ORF) and clearing fees, which
Fixed pricing passes through only in part (the scanners add their own, see ``Costs``).
A combo is charged leg by leg, each leg as its own order (IB reports combo legs as
separate executions with their own commission), which is the conservative reading of the
per-order minimum.

**An order filled in several executions** pays the commission of the whole order once:
each execution is charged ``commission(order so far) - commission(before it)``
(:meth:`CommissionRates.execution`, with the running totals in :class:`Traded`), so the
USD 1.00 minimum is paid once, by the first execution, and the 1% cap applies to the
order's whole trade value. The option tier of each contract is that of the premium it
executed at. For one execution at one price this is exactly :meth:`CommissionRates.stock`
/ :meth:`CommissionRates.option`.

The arithmetic is written once (``_rate``, ``_stock_total``, ``_option_total``) over four
operations (where, maximum, minimum, isfinite) that run either on Python floats (the
scalar methods ``stock``, ``option``, ``execution``: about a microsecond a call) or on
numpy arrays (``option_rate``, ``stock_orders``, ``option_orders``: broadcasting, for the
scanners); tests/risk/test_commission.py holds the two equal element by element.
"""

from __future__ import annotations

import functools
import math
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

if TYPE_CHECKING:  # numpy is imported by the array methods (the scanners'), not with the
    # module: the settings import this rule for the risk limits' defaults, and a view
    # need not load numpy before it has started its engine
    import numpy as np
    from numpy.typing import NDArray

    #: what the array methods return: the rule run on float64 inputs gives float64
    FloatArray = NDArray[np.float64]

__all__ = ["IBKR_FIXED", "CommissionRates", "Traded"]


class Traded(NamedTuple):
    """What one order has traded so far in one contract, the running totals of its
    commission: ``quantity`` shares or contracts (> 0 once anything traded), ``value``
    dollars (sum of quantity x price x multiplier), ``base`` dollars (sum of quantity x the
    per-share or per-contract rate at each execution's price: the commission before the
    per-order minimum and the 1% cap)."""

    quantity: float = 0.0
    value: float = 0.0
    base: float = 0.0


@dataclass(frozen=True, slots=True)
class CommissionRates:
    """Rates of a fixed commission plan and its arithmetic. Rates in dollars per share
    (stocks) or per contract (options), minimums in dollars per order, ``stock_max_pct``
    in percent of the trade value, the tier thresholds ``option_low_premium`` /
    ``option_lowest_premium`` in dollars per share of premium. Defaults: IBKR Pro Fixed,
    US (see the module).

    Raises :class:`ValueError` (one line naming the field) for a negative, non-finite or
    non-numeric rate.
    """

    stock_per_share: float = 0.005
    stock_min: float = 1.00
    stock_max_pct: float = 1.0
    option_per_contract: float = 0.65
    option_per_contract_low: float = 0.50
    option_per_contract_lowest: float = 0.25
    option_low_premium: float = 0.10
    option_lowest_premium: float = 0.05
    option_min: float = 1.00

    def __post_init__(self) -> None:
        for name in CommissionRates.__dataclass_fields__:
            _check_rate(f"commission {name}", getattr(self, name))

    # --- the rule, written once for both backends ------------------------------------------

    def _rate(self, p: Any, ops: Any) -> Any:
        return ops.where(
            p < self.option_lowest_premium,
            self.option_per_contract_lowest,
            ops.where(p < self.option_low_premium, self.option_per_contract_low, self.option_per_contract),
        )

    def _stock_total(self, n: Any, v: Any, base: Any, ops: Any) -> Any:
        fee = ops.maximum(base, self.stock_min)
        capped = ops.isfinite(v) & (v > 0)
        fee = ops.where(capped, ops.minimum(fee, ops.where(capped, v, 0.0) * self.stock_max_pct / 100.0), fee)
        return ops.where(n > 0, fee, 0.0)

    def _option_total(self, n: Any, base: Any, ops: Any) -> Any:
        return ops.where(n > 0, ops.maximum(base, self.option_min), 0.0)

    # --- arrays (the scanners) ---------------------------------------------------------------

    def option_rate(self, premium: np.ndarray | float) -> FloatArray:
        """Dollars per contract at ``premium`` dollars per share (absolute; NaN: the full
        rate ``option_per_contract``). Broadcasts."""
        import numpy as np

        return cast("FloatArray", self._rate(np.abs(np.asarray(premium, dtype=np.float64)), _array()))

    def stock_orders(self, shares: np.ndarray | float, price: np.ndarray | float) -> FloatArray:
        """Commission in dollars of stock orders of ``shares`` (absolute) at ``price``
        dollars per share (NaN or <= 0: no cap), each filled at one price. Broadcasts."""
        import numpy as np

        n = np.abs(np.asarray(shares, dtype=np.float64))
        with np.errstate(invalid="ignore"):
            v = n * np.asarray(price, dtype=np.float64)
            return cast("FloatArray", self._stock_total(n, v, n * self.stock_per_share, _array()))

    def option_orders(self, contracts: np.ndarray | float, premium: np.ndarray | float = math.nan) -> FloatArray:
        """Commission in dollars of option orders of ``contracts`` (absolute) at
        ``premium`` dollars per share (NaN: the full per-contract rate). Broadcasts."""
        import numpy as np

        n = np.abs(np.asarray(contracts, dtype=np.float64))
        return cast("FloatArray", self._option_total(n, n * self.option_rate(premium), _array()))

    # --- one order (the ticket, the simulator) -------------------------------------------------

    def stock(self, shares: float, price: float) -> float:
        """Commission in dollars of one stock order of ``shares`` (absolute) at ``price``
        dollars per share (``nan``: the 1% cap is not applied)."""
        n = abs(float(shares))
        return float(self._stock_total(n, n * float(price) if n else 0.0, n * self.stock_per_share, _SCALAR))

    def option(self, contracts: float, premium: float) -> float:
        """Commission in dollars of one option order of ``contracts`` (absolute) at
        ``premium`` dollars per share (``nan``: the full per-contract rate)."""
        n = abs(float(contracts))
        return float(self._option_total(n, n * self._rate(abs(float(premium)), _SCALAR), _SCALAR))

    def for_instrument(self, sec_type: str, quantity: float, price: float) -> float:
        """Commission in dollars of one order of ``quantity`` (absolute) at ``price`` dollars
        per share, by IB secType: ``STK`` per share, ``OPT`` per contract. Raises
        :class:`ValueError` for another secType."""
        if sec_type == "STK":
            return self.stock(quantity, price)
        if sec_type == "OPT":
            return self.option(quantity, price)
        raise ValueError(f"no commission rule for secType {sec_type!r}")

    # --- an order filled in several executions ---------------------------------------------

    def order_total(self, sec_type: str, traded: Traded) -> float:
        """Commission in dollars of an order that has traded ``traded`` so far (``STK`` or
        ``OPT``; raises :class:`ValueError` for another secType)."""
        if sec_type == "STK":
            return float(self._stock_total(traded.quantity, traded.value, traded.base, _SCALAR))
        if sec_type == "OPT":
            return float(self._option_total(traded.quantity, traded.base, _SCALAR))
        raise ValueError(f"no commission rule for secType {sec_type!r}")

    def execution(
        self, sec_type: str, before: Traded, quantity: float, price: float, multiplier: float = 1.0
    ) -> tuple[Traded, float]:
        """One execution of ``quantity`` (absolute: shares or contracts) at ``price``
        dollars per share of an order that had traded ``before``: the order's totals after
        it and the commission of this execution in dollars, ``order_total(after) -
        order_total(before)`` (>= 0: the minimum is paid once per order, the cap applies to
        the order's whole value). ``multiplier``: shares per contract (1 for stocks)."""
        q = abs(float(quantity))
        if sec_type == "STK":
            rate = self.stock_per_share
        elif sec_type == "OPT":
            rate = float(self._rate(abs(float(price)), _SCALAR))
        else:
            raise ValueError(f"no commission rule for secType {sec_type!r}")
        after = Traded(before.quantity + q, before.value + q * abs(price) * multiplier, before.base + q * rate)
        return after, self.order_total(sec_type, after) - self.order_total(sec_type, before)


class _Scalar:
    """The operations the rule uses, on Python floats (no numpy overhead per call)."""

    @staticmethod
    def where(cond: bool, a: float, b: float) -> float:
        return a if cond else b

    maximum = staticmethod(max)
    minimum = staticmethod(min)
    isfinite = staticmethod(math.isfinite)


@functools.cache
def _array() -> Any:
    """The same operations on numpy arrays (broadcasting), built on first use."""
    import numpy as np

    return types.SimpleNamespace(where=np.where, maximum=np.maximum, minimum=np.minimum, isfinite=np.isfinite)


_SCALAR = _Scalar()


def _check_rate(what: str, value: object) -> None:
    if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")


#: IBKR Pro Fixed, United States: the plan the ticket estimates and the simulator charges.
IBKR_FIXED = CommissionRates()
