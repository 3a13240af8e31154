"""Synthetic option chains for the arbitrage tests: parity-consistent by construction.

Mids are Black-Scholes-Merton European prices (``desk.pricing.bsm_price``) on the
escrowed-dividend stock price ``S - PV(dividends before expiry)``, so put-call parity with
dividends holds exactly at the mids (Hull, 10th ed., ch. 11 and ch. 15, escrowed dividends), prices fall and rise
with strike, are convex in strike, and calls gain value with time when no dividend goes
ex between two expiries. Bid and ask sit a half-spread either side of the mid (a bid that
would fall to 0 or below is withdrawn: NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np

from desk.arbitrage import Carry, ChainSnapshot
from desk.arbitrage.chain import dividend_pv
from desk.pricing import bsm_price

NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 New York
EXPIRIES = (date(2024, 3, 15), date(2024, 4, 19), date(2024, 6, 21), date(2024, 12, 20))


def make_chain(
    *,
    spot: float = 100.0,
    strikes: Sequence[float] | None = None,
    expiries: Sequence[date] = EXPIRIES,
    carry: Carry | None = None,
    sigma: float = 0.25,
    half_spread: float = 0.02,
    stock_half_spread: float = 0.01,
    size: float = 50.0,
    stock_size: float = 10_000.0,
    now: datetime = NOW,
    symbol: str = "XYZ",
) -> ChainSnapshot:
    """A parity-consistent chain; ``half_spread`` dollars per share either side of the mid
    (absolute) for options, ``stock_half_spread`` for the stock; sizes in contracts/shares."""
    carry = carry or Carry()
    strikes = np.asarray(strikes if strikes is not None else np.arange(60.0, 141.0, 5.0), dtype=np.float64)
    n_e, n_k = len(expiries), len(strikes)
    base = ChainSnapshot(
        symbol=symbol,
        now=now,
        expiries=tuple(expiries),
        strikes=strikes,
        **{name: np.full((n_e, n_k), np.nan) for name in ("call_bid", "call_ask", "put_bid", "put_ask")},
        **{name: np.zeros((n_e, n_k)) for name in ("call_bid_size", "call_ask_size", "put_bid_size", "put_ask_size")},
        under_bid=spot - stock_half_spread,
        under_ask=spot + stock_half_spread,
        under_bid_size=stock_size,
        under_ask_size=stock_size,
    )
    T = base.years_to_expiry[:, None]
    dpv, _ = dividend_pv(carry, base)
    S = spot - dpv[:, None]
    K = strikes[None, :]
    call = bsm_price(True, S, K, T, carry.rate, 0.0, sigma)
    put = bsm_price(False, S, K, T, carry.rate, 0.0, sigma)
    con = np.arange(n_e * n_k, dtype=np.int64).reshape(n_e, n_k)

    def bid(mid: np.ndarray) -> np.ndarray:
        b = mid - half_spread
        return np.where(b > 0, b, np.nan)

    return replace(
        base,
        call_bid=bid(call),
        call_ask=call + half_spread,
        put_bid=bid(put),
        put_ask=put + half_spread,
        call_bid_size=np.full((n_e, n_k), size),
        call_ask_size=np.full((n_e, n_k), size),
        put_bid_size=np.full((n_e, n_k), size),
        put_ask_size=np.full((n_e, n_k), size),
        call_con_id=1000 + con,
        put_con_id=5000 + con,
        under_con_id=1,
    )


def crr_price(
    is_call: bool, spot: float, strikes: np.ndarray, T: float, rate: float, sigma: float, *, american: bool, steps: int = 400
) -> np.ndarray:
    """Cox-Ross-Rubinstein binomial price per share of calls or puts on a stock without
    dividends, vectorized over ``strikes`` (Hull, 10th ed., ch. 13 binomial trees, ch. 21 numerical procedures)."""
    K = np.asarray(strikes, dtype=np.float64)[None, :]
    dt = T / steps
    u = np.exp(sigma * np.sqrt(dt))
    p = (np.exp(rate * dt) - 1 / u) / (u - 1 / u)
    disc = np.exp(-rate * dt)

    def payoff(i: int) -> np.ndarray:
        s = spot * u ** (2.0 * np.arange(i + 1) - i)
        return np.maximum(s[:, None] - K, 0.0) if is_call else np.maximum(K - s[:, None], 0.0)

    v = payoff(steps)
    for i in range(steps - 1, -1, -1):
        v = disc * (p * v[1:] + (1 - p) * v[:-1])
        if american:
            v = np.maximum(v, payoff(i))
    return v[0]


def make_american_chain(
    *,
    spot: float = 100.0,
    strikes: Sequence[float] | None = None,
    expiries: Sequence[date] = EXPIRIES,
    rate: float = 0.05,
    sigma: float = 0.25,
    half_spread: float = 0.02,
    size: float = 50.0,
    now: datetime = NOW,
) -> ChainSnapshot:
    """A chain of American options without dividends, priced on a CRR tree: calls equal
    European calls, puts carry their early-exercise premium (put-call parity becomes the
    inequality ``S - K <= C - P <= S - K e^{-rT}``, Hull ch. 11)."""
    base = make_chain(
        spot=spot, strikes=strikes, expiries=expiries, carry=Carry(rate=rate), half_spread=half_spread, size=size, now=now
    )
    T = base.years_to_expiry
    call = np.array([crr_price(True, spot, base.strikes, t, rate, sigma, american=True) for t in T])
    put = np.array([crr_price(False, spot, base.strikes, t, rate, sigma, american=True) for t in T])

    def bid(mid: np.ndarray) -> np.ndarray:
        b = mid - half_spread
        return np.where(b > 0, b, np.nan)

    return replace(base, call_bid=bid(call), call_ask=call + half_spread, put_bid=bid(put), put_ask=put + half_spread)
