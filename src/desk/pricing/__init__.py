"""desk.pricing: vectorized Black-Scholes-Merton prices, implied volatility and Greeks.

Imports only desk.domain, numpy, scipy and exchange_calendars (never Textual or IB).
Units everywhere: prices in dollars per share, T in years of 365 calendar days, r and q
continuously compounded annual fractions, sigma annual fraction (0.20 = 20%), vega per
vol point, theta per calendar day, rho per 1% of r. See :mod:`desk.pricing.bsm`.
"""

from desk.pricing.bsm import DAYS_PER_YEAR, Greeks, bsm_greeks, bsm_price

__all__ = ["DAYS_PER_YEAR", "Greeks", "bsm_greeks", "bsm_price"]
