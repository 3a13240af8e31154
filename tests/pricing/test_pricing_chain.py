"""chain_greeks on a synthetic European chain (exact) and on the real GOOG chain of
2015-12-24 (LEAN minute quotes, American options, a half-day session with an expiry)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from desk.pricing import IVReason, bsm_greeks, bsm_price, chain_greeks, times_to_expiry

from pricing_lean_chain import Chain, lean_dir, load_chain

NY = ZoneInfo("America/New_York")


def _synthetic() -> tuple[np.ndarray, ...]:
    S, r, q = 200.0, 0.04, 0.025
    strikes = np.arange(150.0, 251.0, 5.0)
    T = np.array([30 / 365, 0.5])
    call, K, TT = (a.ravel() for a in np.meshgrid([True, False], strikes, T, indexing="ij"))
    sigma = 0.22 + 0.4 * np.log(K / S) ** 2 + 0.02 * TT
    price = bsm_price(call, S, K, TT, r, q, sigma)
    vega = bsm_greeks(call, S, K, TT, r, q, sigma).vega
    half_spread = np.minimum(0.2 * vega, 0.5 * price)  # about +-0.2 vol point, bids stay positive
    return (
        call,
        K,
        TT,
        sigma,
        price - half_spread,
        price + half_spread,
        np.full(call.shape, S),
        np.full(call.shape, r),
        np.full(call.shape, q),
    )


def test_synthetic_chain_recovers_yield_iv_and_greeks() -> None:
    call, K, T, sigma, bid, ask, S, r, q = _synthetic()
    mid = 0.5 * (bid + ask)
    res = chain_greeks(call, K, bid, ask, float(S[0]), T, r)
    np.testing.assert_allclose(res.q, q, atol=1e-10)  # implied from parity, per expiry
    assert np.all(res.reason == IVReason.OK)
    expected_iv = _iv_of(call, mid, S, K, T, r, q)
    np.testing.assert_allclose(res.iv, expected_iv, atol=1e-8)
    np.testing.assert_allclose(res.iv, sigma, atol=1e-8)
    ref = bsm_greeks(call, S, K, T, r, q, sigma)
    for name in ("delta", "gamma", "vega", "theta", "rho"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-6, atol=1e-10, err_msg=name)
    assert np.all(res.bid_iv < res.iv) and np.all(res.iv < res.ask_iv)


def test_mid_only_gives_the_same_mid_iv_and_greeks_and_skips_the_sides() -> None:
    call, K, T, sigma, bid, ask, S, r, q = _synthetic()
    bid, ask = bid.copy(), ask.copy()
    bid[0], ask[0] = ask[0], bid[0]  # crossed
    bid[2] = 0.0  # no bid
    for exercise in ("european", "american"):
        both = chain_greeks(call, K, bid, ask, float(S[0]), T, r, q=0.025, exercise=exercise)
        mid_only = chain_greeks(call, K, bid, ask, float(S[0]), T, r, q=0.025, exercise=exercise, sides=False)
        np.testing.assert_array_equal(mid_only.reason, both.reason)
        for name in ("iv", "delta", "gamma", "vega", "theta", "rho"):
            np.testing.assert_array_equal(getattr(mid_only, name), getattr(both, name), err_msg=name)
        assert np.isnan(mid_only.bid_iv).all() and np.isnan(mid_only.ask_iv).all()
        assert np.all(mid_only.bid_reason == IVReason.NOT_COMPUTED) and np.all(mid_only.ask_reason == IVReason.NOT_COMPUTED)
        assert both.reason[0] == IVReason.CROSSED and both.reason[2] == IVReason.NO_BID


def _iv_of(call, price, S, K, T, r, q):  # type: ignore[no-untyped-def]
    from desk.pricing import implied_vol

    return implied_vol(call, price, S, K, T, r, q).iv


def test_given_yield_is_used_and_quote_problems_become_reasons() -> None:
    call, K, T, sigma, bid, ask, S, r, q = _synthetic()
    bid, ask = bid.copy(), ask.copy()
    bid[0], ask[0] = ask[0], bid[0]  # crossed
    ask[1] = bid[1]  # locked
    bid[2] = 0.0  # no bid
    ask[3] = np.nan  # no ask
    res = chain_greeks(call, K, bid, ask, float(S[0]), T, r, q=0.025)
    assert list(res.reason[:4]) == [IVReason.CROSSED, IVReason.LOCKED, IVReason.NO_BID, IVReason.NO_ASK]
    assert np.isnan(res.iv[:4]).all() and np.isnan(res.delta[:4]).all()
    assert np.all(res.reason[4:] == IVReason.OK) and np.all(res.q == 0.025)
    with pytest.raises(ValueError, match="S must be finite"):
        chain_greeks(call, K, bid, ask, 0.0, T, r)
    with pytest.raises(ValueError, match="strike"):
        chain_greeks(call, np.where(K == 150.0, -1.0, K), bid, ask, 200.0, T, r)


@pytest.fixture(scope="module")
def goog_11am() -> tuple[Chain, np.ndarray]:
    if not (lean_dir() / "option").is_dir():
        pytest.fail(f"LEAN data not found at {lean_dir()} (set DESK_LEAN_DIR)")
    chain = load_chain(11 * 3600 * 1000)
    T = times_to_expiry(chain.expiry, datetime(2015, 12, 24, 11, 0, tzinfo=NY))
    return chain, T


def test_real_goog_chain_every_option_gets_an_iv_or_a_reason(goog_11am: tuple[Chain, np.ndarray]) -> None:
    chain, T = goog_11am
    res = chain_greeks(chain.is_call, chain.strike, chain.bid, chain.ask, chain.spot, T, 0.003)
    assert chain.strike.size == 2192
    assert np.array_equal(np.isfinite(res.iv), res.reason == IVReason.OK)
    reasons = set(np.unique(res.reason).tolist())
    assert IVReason.NOT_CONVERGED not in reasons and IVReason.BAD_INPUT not in reasons
    assert (res.reason == IVReason.OK).sum() > 1500
    # one-sided deep out-of-the-money quotes (no bid) are flagged, not solved
    no_bid = ~(chain.bid > 0) & (chain.ask > 0)
    assert no_bid.sum() > 100 and np.all(res.reason[no_bid] == IVReason.NO_BID)
    # mids below intrinsic (American quotes with wide spreads) only happen in the money
    below = res.reason == IVReason.BELOW_INTRINSIC
    itm = np.where(chain.is_call, res.forward > chain.strike, res.forward < chain.strike)
    assert below.sum() > 0 and np.all(itm[below])
    # solved IVs reprice the mids and give Greeks of the right sign
    ok = res.reason == IVReason.OK
    repriced = bsm_price(chain.is_call[ok], chain.spot, chain.strike[ok], T[ok], 0.003, res.q[ok], res.iv[ok])
    assert np.max(np.abs(repriced - res.mid[ok])) <= 1e-10
    assert np.all((res.delta[ok] > 0) == chain.is_call[ok])
    assert np.all(res.gamma[ok] >= 0) and np.all(res.vega[ok] >= 0)


def test_real_goog_chain_forward_and_at_the_money_smile(goog_11am: tuple[Chain, np.ndarray]) -> None:
    chain, T = goog_11am
    res = chain_greeks(chain.is_call, chain.strike, chain.bid, chain.ask, chain.spot, T, 0.003)
    expiries = np.array(chain.expiry)
    assert np.all(np.abs(res.forward / chain.spot - 1) < 0.02)  # GOOG paid no dividend
    for expiry in sorted(set(chain.expiry)):
        group = expiries == expiry
        strikes = np.unique(chain.strike[group])
        atm = strikes[np.argmin(np.abs(strikes - res.forward[group][0]))]
        call_iv = res.iv[group & (chain.strike == atm) & chain.is_call][0]
        put_iv = res.iv[group & (chain.strike == atm) & ~chain.is_call][0]
        # with the parity-implied forward, call and put at one strike agree on the IV
        tolerance = 0.05 if expiry == "20151224" else 0.005
        assert 0.1 < call_iv < 0.5 and abs(call_iv - put_iv) < tolerance, (expiry, call_iv, put_iv)
    # expiry day, two hours before the 13:00 close: options near the money still have IVs
    expiring = (expiries == "20151224") & (np.abs(chain.strike - chain.spot) < 25)
    assert (res.reason[expiring] == IVReason.OK).sum() >= 10
