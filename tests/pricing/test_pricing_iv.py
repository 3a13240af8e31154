"""implied_vol / implied_vol_quotes: round trips over a wide grid, every edge case gives NaN
with its reason, garbage never raises nor hangs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from desk.pricing import IVReason, bsm_greeks, bsm_price, implied_vol, implied_vol_quotes


def _grid() -> tuple[np.ndarray, ...]:
    """Every combination: 2 rights x 21 strikes (K/S 0.25..4) x 8 expiries (1 hour .. 5 years)
    x 9 vols (1%..300%) x 3 rates x 2 yields = 18,144 contracts, S = 100."""
    axes = np.meshgrid(
        [True, False],
        100.0 * np.geomspace(0.25, 4.0, 21),
        [1 / (365 * 24), 1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0, 5.0],
        [0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 2.5, 3.0],
        [-0.01, 0.0, 0.08],
        [0.0, 0.04],
        indexing="ij",
    )
    return tuple(a.ravel() for a in axes)


def test_price_iv_price_round_trip_to_1e_10_over_a_wide_grid() -> None:
    call, K, T, sigma, r, q = _grid()
    S = 100.0
    price = bsm_price(call, S, K, T, r, q, sigma)
    res = implied_vol(call, price, S, K, T, r, q)
    ok = res.reason == IVReason.OK
    # no IV only where the price carries no volatility information at double precision
    assert set(np.unique(res.reason[~ok])) <= {IVReason.NO_PRICE, IVReason.NO_TIME_VALUE}
    assert np.all(price[res.reason == IVReason.NO_PRICE] == 0.0)  # underflow deep out of the money
    assert ok.mean() > 0.6
    repriced = bsm_price(call[ok], S, K[ok], T[ok], r[ok], q[ok], res.iv[ok])
    assert np.max(np.abs(repriced - price[ok])) <= 1e-10
    # the volatility itself is recovered wherever the price is sensitive to it
    vega = bsm_greeks(call, S, K, T, r, q, sigma).vega  # $ per vol point
    sensitive = ok & (vega > 1e-6)
    assert sensitive.sum() > 0.4 * call.size
    assert np.max(np.abs(res.iv[sensitive] - sigma[sensitive])) <= 1e-9


def test_round_trip_check_detects_a_wrong_iv() -> None:
    call, K, T, sigma, r, q = (a[::97] for a in _grid())
    price = bsm_price(call, 100.0, K, T, r, q, sigma)
    res = implied_vol(call, price, 100.0, K, T, r, q)
    ok = res.reason == IVReason.OK
    wrong = bsm_price(call[ok], 100.0, K[ok], T[ok], r[ok], q[ok], res.iv[ok] * (1 + 1e-6))
    assert np.max(np.abs(wrong - price[ok])) > 1e-10


@settings(max_examples=200, deadline=None)
@given(
    st.booleans(),
    st.floats(1.0, 5000.0),
    st.floats(0.2, 5.0),
    st.floats(1e-4, 10.0),
    st.floats(-0.05, 0.2),
    st.floats(0.0, 0.1),
    st.floats(0.005, 4.0),
)
def test_round_trip_property(call: bool, S: float, m: float, T: float, r: float, q: float, sigma: float) -> None:
    K = S * m
    price = float(bsm_price(call, S, K, T, r, q, sigma))
    res = implied_vol(call, price, S, K, T, r, q)
    assert res.reason != IVReason.NOT_CONVERGED
    if res.reason == IVReason.OK:
        assert abs(float(bsm_price(call, S, K, T, r, q, res.iv)) - price) <= 1e-12 * (S + K)
    else:
        assert res.reason in (IVReason.NO_PRICE, IVReason.NO_TIME_VALUE), IVReason(int(res.reason))
        assert np.isnan(res.iv)


def test_matches_scipy_brentq_on_textbook_quotes() -> None:
    # Hull 10th ed. sec. 15.11: a European call with S=21, K=20, r=0.1, T=0.25 priced 1.875 has IV 0.235
    res = implied_vol(True, 1.875, 21.0, 20.0, 0.25, 0.1, 0.0)
    assert res.reason == IVReason.OK and round(float(res.iv), 3) == 0.235
    ref = brentq(lambda v: float(bsm_price(True, 21.0, 20.0, 0.25, 0.1, 0.0, v)) - 1.875, 1e-4, 5.0, xtol=1e-15)
    assert abs(float(res.iv) - ref) <= 1e-12


def test_deep_in_and_out_of_the_money_and_expiry_day_are_solved() -> None:
    S, r, q = 100.0, 0.03, 0.01
    cases = [  # is_call, K, T, sigma: where a plain Newton from sigma=0.2 diverges or stalls
        (True, 30.0, 0.5, 0.3),  # deep ITM call
        (False, 300.0, 0.5, 0.3),  # deep ITM put
        (True, 250.0, 0.25, 0.4),  # deep OTM call, price ~ 1e-9
        (False, 60.0, 0.1, 0.25),  # deep OTM put
        (True, 101.0, 2 / (365 * 24), 0.2),  # expiry day, 2 hours left
        (False, 99.5, 0.5 / (365 * 24), 0.6),  # 30 minutes left
        (True, 100.0, 10.0, 2.0),  # long-dated, very high vol (price near the maximum)
    ]
    call, K, T, sigma = (np.array(c) for c in zip(*cases, strict=True))
    price = bsm_price(call, S, K, T, r, q, sigma)
    res = implied_vol(call, price, S, K, T, r, q)
    assert list(res.reason) == [IVReason.OK] * len(cases)
    assert np.max(np.abs(bsm_price(call, S, K, T, r, q, res.iv) - price)) <= 1e-12 * S
    # the IV is as accurate as the price allows: rounding of the price / vega
    vega = bsm_greeks(call, S, K, T, r, q, sigma).vega * 100  # per 1.00 of sigma
    assert np.all(np.abs(res.iv - sigma) <= 1e-10 + 4 * np.finfo(float).eps * (S + K) / vega)


def _one(call: bool, price: float, K: float = 100.0, T: float = 0.5, **kw: float) -> tuple[float, IVReason]:
    args = {"S": 100.0, "r": 0.05, "q": 0.02} | kw
    res = implied_vol(call, price, args["S"], K, T, args["r"], args["q"])
    return float(res.iv), IVReason(int(res.reason))


@pytest.mark.parametrize(
    ("call", "price", "K", "T", "kw", "reason"),
    [
        (True, 0.0, 100.0, 0.5, {}, IVReason.NO_PRICE),  # bid of zero
        (True, np.nan, 100.0, 0.5, {}, IVReason.NO_PRICE),
        (False, -0.05, 100.0, 0.5, {}, IVReason.NO_PRICE),
        # European lower bound of the call: S e^{-qT} - K e^{-rT} = 20.98 at K=80
        (True, 20.5, 80.0, 0.5, {}, IVReason.BELOW_INTRINSIC),
        (False, 0.5, 130.0, 0.5, {}, IVReason.BELOW_INTRINSIC),
        (True, 100.0 * np.exp(-0.01) - 80.0 * np.exp(-0.025), 80.0, 0.5, {}, IVReason.NO_TIME_VALUE),
        (True, 99.01, 100.0, 0.5, {}, IVReason.ABOVE_MAX),  # > S e^{-qT} = 99.005
        (False, 98.0, 100.0, 0.5, {}, IVReason.ABOVE_MAX),  # > K e^{-rT} = 97.53
        (True, 5.0, 100.0, 0.0, {}, IVReason.EXPIRED),  # at the expiry instant
        (True, 5.0, 100.0, -0.01, {}, IVReason.EXPIRED),
        (True, 5.0, 100.0, 0.5, {"S": 0.0}, IVReason.BAD_INPUT),
        (True, 5.0, np.nan, 0.5, {}, IVReason.BAD_INPUT),
        (True, 5.0, 100.0, 0.5, {"r": np.inf}, IVReason.BAD_INPUT),
        (True, 5.0, 1e-200, 0.5, {}, IVReason.BAD_INPUT),  # |ln(F/K)| = 465: no option market
        (True, 95.0, 100.0, 0.5, {}, IVReason.VOL_ABOVE_HI),  # needs sigma ~ 5.8 > hi = 5
    ],
)
def test_edge_cases_return_nan_with_their_reason(
    call: bool, price: float, K: float, T: float, kw: dict[str, float], reason: IVReason
) -> None:
    iv, got = _one(call, price, K, T, **kw)
    assert got == reason
    assert np.isnan(iv)


def test_vol_below_lo_and_the_bounds_are_configurable() -> None:
    price = float(bsm_price(True, 100.0, 100.0, 0.5, 0.0, 0.0, 5e-5))
    assert IVReason(int(implied_vol(True, price, 100.0, 100.0, 0.5, 0.0, 0.0).reason)) == IVReason.VOL_BELOW_LO
    res = implied_vol(True, price, 100.0, 100.0, 0.5, 0.0, 0.0, lo=1e-6)
    assert res.reason == IVReason.OK and abs(float(res.iv) - 5e-5) < 1e-15
    high = float(bsm_price(True, 100.0, 100.0, 0.5, 0.0, 0.0, 8.0))
    assert implied_vol(True, high, 100.0, 100.0, 0.5, 0.0, 0.0).reason == IVReason.VOL_ABOVE_HI
    res = implied_vol(True, high, 100.0, 100.0, 0.5, 0.0, 0.0, hi=10.0)
    assert res.reason == IVReason.OK and abs(float(res.iv) - 8.0) < 1e-9
    with pytest.raises(ValueError, match="lo < hi"):
        implied_vol(True, 5.0, 100.0, 100.0, 0.5, 0.0, 0.0, lo=0.5, hi=0.1)


def test_quotes_crossed_locked_and_one_sided() -> None:
    S, K, T, r, q = 100.0, 100.0, 0.25, 0.02, 0.0
    bid = np.array([4.0, 4.5, 4.5, 0.0, np.nan, 4.0])
    ask = np.array([4.5, 4.0, 4.5, 4.5, 4.5, 0.0])
    res = implied_vol_quotes(True, bid, ask, S, K, T, r, q)
    assert list(res.mid.reason) == [
        IVReason.OK,
        IVReason.CROSSED,
        IVReason.LOCKED,
        IVReason.NO_BID,
        IVReason.NO_BID,
        IVReason.NO_ASK,
    ]
    assert list(res.bid.reason) == [
        IVReason.OK,
        IVReason.CROSSED,
        IVReason.LOCKED,
        IVReason.NO_PRICE,
        IVReason.NO_PRICE,
        IVReason.OK,
    ]
    assert list(res.ask.reason) == [IVReason.OK, IVReason.CROSSED, IVReason.LOCKED, IVReason.OK, IVReason.OK, IVReason.NO_PRICE]
    for side in res:
        assert np.array_equal(np.isfinite(side.iv), side.reason == IVReason.OK)
    # the finite ones are the IVs of bid, ask and mid prices
    expected = implied_vol(True, [4.0, 4.5, 4.25], S, K, T, r, q).iv
    np.testing.assert_array_equal([res.bid.iv[0], res.ask.iv[0], res.mid.iv[0]], expected)
    assert res.bid.iv[0] < res.mid.iv[0] < res.ask.iv[0]


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e3),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e300]),
)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), finite_or_not, finite_or_not, finite_or_not, finite_or_not, finite_or_not, finite_or_not)
def test_garbage_never_raises_and_every_nan_has_a_reason(
    call: bool, price: float, S: float, K: float, T: float, r: float, q: float
) -> None:
    res = implied_vol(call, price, S, K, T, r, q)
    assert res.iv.shape == () and res.reason.dtype == np.int8
    reason = IVReason(int(res.reason))
    assert reason != IVReason.NOT_CONVERGED
    assert np.isfinite(res.iv) == (reason == IVReason.OK)
    if reason == IVReason.OK:
        assert 1e-4 <= res.iv <= 5.0


def test_shapes_broadcast_and_bad_shapes_raise() -> None:
    res = implied_vol([[True], [False]], [[5.0], [4.0]], 100.0, [95.0, 100.0, 105.0], 0.5, 0.01, 0.0)
    assert res.iv.shape == (2, 3) and res.reason.shape == (2, 3)
    with pytest.raises(ValueError, match="broadcast"):
        implied_vol(True, [1.0, 2.0], 100.0, [90.0, 100.0, 110.0], 0.5, 0.0, 0.0)
    with pytest.raises(TypeError, match="is_call must be boolean"):
        implied_vol(["C"], 1.0, 100.0, 100.0, 0.5, 0.0, 0.0)
