"""The real GOOG chain of 2015-12-24 at 10:00 ET (LEAN minute quotes): American against
European IVs. GOOG paid no dividend, so calls are European (equal IVs); in-the-money puts
carry an early-exercise premium, and puts quoted below ``K - S`` are impossible for an
American put. Rate 0.5%, no dividend yield (as measured in issue 12)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from desk.pricing import IVReason, chain_greeks, times_to_expiry
from pricing_lean_chain import lean_dir, load_chain

RATE = 0.005


@pytest.fixture(scope="module")
def goog_10am():
    if not (lean_dir() / "option").is_dir():
        pytest.fail(f"LEAN data not found at {lean_dir()} (set DESK_LEAN_DIR)")
    chain = load_chain(10 * 3600 * 1000)
    T = times_to_expiry(chain.expiry, datetime(2015, 12, 24, 10, 0, tzinfo=ZoneInfo("America/New_York")))
    euro = chain_greeks(chain.is_call, chain.strike, chain.bid, chain.ask, chain.spot, T, RATE, q=0.0)
    amer = chain_greeks(chain.is_call, chain.strike, chain.bid, chain.ask, chain.spot, T, RATE, q=0.0, exercise="american")
    return chain, euro, amer


def test_goog_calls_have_the_european_iv(goog_10am) -> None:
    chain, euro, amer = goog_10am
    both = np.isfinite(euro.iv) & np.isfinite(amer.iv)
    assert 1650 < both.sum() < 1750
    calls = both & chain.is_call
    assert calls.sum() > 700
    assert np.max(np.abs(amer.iv[calls] - euro.iv[calls])) * 100 < 0.01
    np.testing.assert_array_equal(np.isfinite(amer.iv[chain.is_call]), np.isfinite(euro.iv[chain.is_call]))


def test_goog_impossible_put_quotes_are_flagged(goog_10am) -> None:
    chain, euro, amer = goog_10am
    with np.errstate(invalid="ignore"):
        mid = 0.5 * (chain.bid + chain.ask)
        impossible = ~chain.is_call & (mid < chain.strike - chain.spot)
    given_an_iv = impossible & np.isfinite(euro.iv)
    assert given_an_iv.sum() == 32  # the European solver gives these an IV
    assert np.all(amer.reason[impossible] == IVReason.BELOW_INTRINSIC)
    assert np.isnan(amer.iv[impossible]).all() and np.isnan(amer.delta[impossible]).all()


def test_goog_put_ivs_drop_in_the_money_only(goog_10am) -> None:
    chain, euro, amer = goog_10am
    both = np.isfinite(euro.iv) & np.isfinite(amer.iv) & ~chain.is_call
    diff = (euro.iv - amer.iv) * 100  # vol points, European minus American
    assert np.all(diff[both] >= -1e-6)  # the European IV of an American put is never lower
    otm = both & (chain.strike < chain.spot)
    itm = both & (chain.strike > chain.spot)
    assert np.max(diff[otm]) < 0.2
    assert np.median(diff[itm]) > 0.1 and np.max(diff[itm]) > 2.0
