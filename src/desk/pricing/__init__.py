"""desk.pricing: vectorized Black-Scholes-Merton prices, implied volatility and Greeks.

Imports only desk.domain, numpy, scipy and exchange_calendars (never Textual or IB).
Units everywhere: prices in dollars per share, T in years of 365 calendar days (ACT/365,
to the expiry instant on the exchange calendar: :mod:`desk.pricing.expiry`), r and q
continuously compounded annual fractions, sigma annual fraction (0.20 = 20%), vega per vol
point, theta per calendar day, rho per 1% of r. European exercise; what that means for
American options is in :mod:`desk.pricing.iv`.

* :mod:`desk.pricing.bsm`: :func:`bsm_price`, :func:`bsm_greeks` (:class:`Greeks`)
* :mod:`desk.pricing.iv`: :func:`implied_vol`, :func:`implied_vol_quotes` (:class:`IVResult`,
  :class:`IVReason`)
* :mod:`desk.pricing.forward`: :func:`implied_forward` (put-call parity near the money)
* :mod:`desk.pricing.expiry`: :func:`time_to_expiry`, :func:`expiry_instant`, ...
* :mod:`desk.pricing.chain`: :func:`chain_greeks` for a whole chain in one call
* :mod:`desk.pricing.american`: :func:`american_price`, :func:`american_greeks` (ALO engine);
  :mod:`desk.pricing.american_iv`: :func:`american_implied_vol`; or ``exercise="american"``
  on :func:`implied_vol` / :func:`bsm_greeks`
* :mod:`desk.pricing.chain`: also :func:`contract_greeks` for one contract with the chain's
  :class:`Carry`
"""

from desk.pricing.american import american_greeks, american_price
from desk.pricing.american_iv import american_implied_vol
from desk.pricing.bsm import DAYS_PER_YEAR, Greeks, bsm_greeks, bsm_price
from desk.pricing.chain import Carry, ChainGreeks, ContractGreeks, chain_greeks, contract_greeks
from desk.pricing.expiry import (
    expiry_instant,
    time_to_expiry,
    times_to_expiry,
    trading_time_to_expiry,
)
from desk.pricing.forward import ImpliedForward, implied_forward
from desk.pricing.iv import IVReason, IVResult, QuoteIV, implied_vol, implied_vol_quotes

__all__ = [
    "DAYS_PER_YEAR",
    "Carry",
    "ChainGreeks",
    "ContractGreeks",
    "Greeks",
    "IVReason",
    "IVResult",
    "ImpliedForward",
    "QuoteIV",
    "american_greeks",
    "american_implied_vol",
    "american_price",
    "bsm_greeks",
    "bsm_price",
    "chain_greeks",
    "contract_greeks",
    "expiry_instant",
    "implied_forward",
    "implied_vol",
    "implied_vol_quotes",
    "time_to_expiry",
    "times_to_expiry",
    "trading_time_to_expiry",
]
