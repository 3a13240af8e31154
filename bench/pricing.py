"""IV + delta, gamma, vega, theta, rho for 10,000 options (budget < 30 ms, design.md).

Builds a reproducible book of 10,000 European options (S = 100, strikes 50..150, expiries
1 day .. 2 years, vols 10%..80%, calls and puts, r = 3%, q = 1%), prices them with
``bsm_price`` at known volatilities (the analytic reference), then times:

* desk.pricing (vectorized): ``implied_vol`` on the prices, then ``bsm_greeks`` at the IVs;
* baseline, in the same run: the same computation one option at a time, with
  ``scipy.optimize.brentq`` on a scalar ``math`` BSM price and scalar analytic Greeks.

Prints the wall time of each (best and median of the repeats), the ratio baseline /
vectorized, the budget verdict, and accuracy: max abs error of IV and of every Greek
against the analytic values at the reference volatility (budget: 1e-9), for both methods.
It also times ``chain_greeks`` on the real GOOG chain of 2015-12-24 (2,192 options) when
the LEAN data folder is present.

Usage: python bench/pricing.py [--n 10000] [--repeats 30] [--baseline-repeats 1]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from desk.pricing import IVReason, bsm_greeks, bsm_price, chain_greeks, implied_vol, times_to_expiry

BUDGET_MS = 30.0
ACCURACY = 1e-9
GREEKS = ("delta", "gamma", "vega", "theta", "rho")


def make_book(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "call": rng.random(n) < 0.5,
        "K": rng.uniform(50.0, 150.0, n),
        "T": rng.uniform(1.0 / 365.0, 2.0, n),
        "sigma": rng.uniform(0.10, 0.80, n),
        "S": np.full(n, 100.0),
        "r": np.full(n, 0.03),
        "q": np.full(n, 0.01),
    }


# --- baseline: one option at a time -------------------------------------------------


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _scalar_price(call: bool, S: float, K: float, T: float, r: float, q: float, v: float) -> float:
    st = v * math.sqrt(T)
    d1 = (math.log(S / K) + (r - q + 0.5 * v * v) * T) / st
    d2 = d1 - st
    if call:
        return S * math.exp(-q * T) * _ncdf(d1) - K * math.exp(-r * T) * _ncdf(d2)
    return K * math.exp(-r * T) * _ncdf(-d2) - S * math.exp(-q * T) * _ncdf(-d1)


def _scalar_greeks(call: bool, S: float, K: float, T: float, r: float, q: float, v: float) -> tuple[float, ...]:
    sq = math.sqrt(T)
    d1 = (math.log(S / K) + (r - q + 0.5 * v * v) * T) / (v * sq)
    d2 = d1 - v * sq
    dq, dr = math.exp(-q * T), math.exp(-r * T)
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    th = 1.0 if call else -1.0
    n1, n2 = _ncdf(th * d1), _ncdf(th * d2)
    delta = th * dq * n1
    gamma = dq * pdf / (S * v * sq)
    vega = S * dq * pdf * sq / 100.0
    theta = (-S * dq * pdf * v / (2 * sq) - th * r * K * dr * n2 + th * q * S * dq * n1) / 365.0
    rho = th * K * T * dr * n2 / 100.0
    return delta, gamma, vega, theta, rho


def baseline(book: dict[str, np.ndarray], prices: np.ndarray) -> dict[str, np.ndarray]:
    n = prices.size
    out = {name: np.full(n, np.nan) for name in ("iv", *GREEKS)}
    for i in range(n):
        args = tuple(float(book[k][i]) for k in ("S", "K", "T", "r", "q"))
        args = (bool(book["call"][i]), *args)
        target = float(prices[i])

        def f(v: float, a: tuple = args, p: float = target) -> float:
            return _scalar_price(*a, v) - p

        if not (target > 0 and f(1e-4) < 0 < f(5.0)):  # no sign change: no IV in [1e-4, 5]
            continue
        iv = brentq(f, 1e-4, 5.0, xtol=1e-15, rtol=8.9e-16)
        out["iv"][i] = iv
        for name, value in zip(GREEKS, _scalar_greeks(*args, iv), strict=True):
            out[name][i] = value
    return out


# --- desk.pricing ----------------------------------------------------------------------


def vectorized(book: dict[str, np.ndarray], prices: np.ndarray) -> dict[str, np.ndarray]:
    b = book
    res = implied_vol(b["call"], prices, b["S"], b["K"], b["T"], b["r"], b["q"])
    g = bsm_greeks(b["call"], b["S"], b["K"], b["T"], b["r"], b["q"], res.iv)
    return {"iv": res.iv, "reason": res.reason, **{name: getattr(g, name) for name in GREEKS}}


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def errors(result: dict[str, np.ndarray], reference: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, float]:
    return {name: float(np.max(np.abs(result[name][mask] - reference[name][mask]))) for name in ("iv", *GREEKS)}


def lean_chain_bench(repeats: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pricing"))
    try:
        from pricing_lean_chain import lean_dir, load_chain
    except ImportError:
        return
    if not (lean_dir() / "option").is_dir():
        print(f"\nreal chain: LEAN data not found at {lean_dir()} (set DESK_LEAN_DIR); skipped")
        return
    from datetime import datetime
    from zoneinfo import ZoneInfo

    chain = load_chain(11 * 3600 * 1000)
    T = times_to_expiry(chain.expiry, datetime(2015, 12, 24, 11, 0, tzinfo=ZoneInfo("America/New_York")))

    def run() -> object:
        return chain_greeks(chain.is_call, chain.strike, chain.bid, chain.ask, chain.spot, T, 0.003)

    best, med = timed(run, repeats)
    res = run()
    ok = int(np.count_nonzero(res.reason == IVReason.OK))
    print(
        f"\nreal chain GOOG 2015-12-24 11:00 ET, {chain.strike.size} options, 12 expiries: chain_greeks "
        f"(parity forwards + bid/ask/mid IV + Greeks) best {best * 1e3:.2f} ms, median {med * 1e3:.2f} ms; "
        f"{ok} mid IVs, the rest NaN with a reason"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--baseline-repeats", type=int, default=1)
    args = parser.parse_args()

    book = make_book(args.n)
    b = book
    prices = bsm_price(b["call"], b["S"], b["K"], b["T"], b["r"], b["q"], b["sigma"])
    ref_g = bsm_greeks(b["call"], b["S"], b["K"], b["T"], b["r"], b["q"], b["sigma"])
    reference = {"iv": b["sigma"], **{name: getattr(ref_g, name) for name in GREEKS}}

    vectorized(book, prices)  # warm-up (imports, caches)
    v_best, v_med = timed(lambda: vectorized(book, prices), args.repeats)
    iv_best, _ = timed(lambda: implied_vol(b["call"], prices, b["S"], b["K"], b["T"], b["r"], b["q"]), args.repeats)
    base_best, base_med = timed(lambda: baseline(book, prices), args.baseline_repeats)

    vec = vectorized(book, prices)
    base = baseline(book, prices)
    ok = vec["reason"] == IVReason.OK
    both = ok & np.isfinite(base["iv"])
    # IV is only defined by the price to within (price rounding) / vega: deep in the money,
    # a time value of 1e-12 leaves sigma undetermined. Markets quote in cents, so options with
    # a time value of at least half a cent are the ones whose IV means something.
    lower = np.maximum(
        np.where(b["call"], 1.0, -1.0) * (b["S"] * np.exp(-b["q"] * b["T"]) - b["K"] * np.exp(-b["r"] * b["T"])), 0.0
    )
    quotable = both & (prices - lower >= 0.005)

    print(f"desk.pricing bench: {args.n:,} options (S=100, K 50..150, T 1d..2y, vol 10%..80%, r=3%, q=1%)")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print()
    print(
        f"vectorized IV + 5 Greeks : best {v_best * 1e3:7.2f} ms   median {v_med * 1e3:7.2f} ms"
        f"   (IV alone best {iv_best * 1e3:.2f} ms)"
    )
    print(f"per-option brentq baseline: best {base_best * 1e3:7.1f} ms   median {base_med * 1e3:7.1f} ms")
    print(f"ratio baseline / vectorized (best): {base_best / v_best:,.0f}x")
    verdict = "PASS" if v_med * 1e3 < BUDGET_MS else "FAIL"
    print(f"budget < {BUDGET_MS:.0f} ms for {args.n:,} options: {verdict} (median {v_med * 1e3:.2f} ms)")
    print()
    print(
        f"IV found: vectorized {int(ok.sum()):,}, brentq {int(np.isfinite(base['iv']).sum()):,} "
        f"(others: price 0 or no IV in [1e-4, 5]; vectorized reasons: "
        + ", ".join(f"{IVReason(c).name} {int((vec['reason'] == c).sum())}" for c in np.unique(vec["reason"]) if c)
        + ")"
    )
    for label, mask in (("all solved", both), ("time value >= $0.005", quotable)):
        ev, eb = errors(vec, reference, mask), errors(base, reference, mask)
        print(f"max abs error vs analytic reference, {label} ({int(mask.sum()):,} options):")
        print("  " + "  ".join(f"{k:>7}" for k in ev) + "   (units: IV fraction; Greeks as bsm_greeks)")
        if mask is quotable:
            verdict = "PASS" if max(ev.values()) <= ACCURACY else "FAIL"
            note = f"   within {ACCURACY:g}: {verdict}"
        else:
            note = "   (IV error here is where the price does not determine sigma: time value ~ 0)"
        print("  vec  " + " ".join(f"{v:8.1e}" for v in ev.values()) + note)
        print("  brent" + " ".join(f"{v:8.1e}" for v in eb.values()))
    repriced = bsm_price(b["call"][ok], b["S"][ok], b["K"][ok], b["T"][ok], b["r"][ok], b["q"][ok], vec["iv"][ok])
    print(
        f"price -> IV -> price round trip, all {int(ok.sum()):,} solved: max abs error "
        f"{float(np.max(np.abs(repriced - prices[ok]))):.1e} $/share"
    )
    lean_chain_bench(max(3, args.repeats // 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
