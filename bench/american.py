"""American IV + delta/gamma/vega/theta/rho for 10,000 options, and the European IV against
py_vollib_vectorized (design.md budgets), with same-run baselines.

Book: 10,000 options, S = 100, K 50..150, T 1 day..3 years, vol 5..150%, r 0..8%, q 0..5%,
calls and puts, priced American by desk's engine (the IV round trip) and, for accuracy,
a sample against QuantLib's FD engine. Prints:

* American: IV + 5 Greeks wall time (best of the repeats), budget verdict (< 30 ms); the
  ratio against QuantLib's ALO engine (QdFpAmericanEngine, fast scheme: its fastest accurate
  American engine) per option and against desk's European IV + Greeks on the same book;
* European IV alone against py_vollib_vectorized at 1k, 10k, 100k options;
* accuracy of a sample against QuantLib's FD engine; the GOOG 2015-12-24 10:00 chain's
  American minus European IV by moneyness bucket when the LEAN data is present.

py_vollib_vectorized 0.1.1 does not run as installed with py_lets_be_rational 1.1.2 (its
numba functions call plain-Python cody_special functions): the bench jit-compiles those
before importing it (``_enable_vollib``) and says so.

Usage: python bench/american.py [--n 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

from desk.pricing import bsm_greeks, bsm_price, implied_vol
from desk.pricing.american import american_greeks, american_price

GREEKS = ("delta", "gamma", "vega", "theta", "rho")


def book(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "call": rng.random(n) < 0.5,
        "K": rng.uniform(50, 150, n),
        "T": rng.uniform(1 / 365, 3, n),
        "r": rng.uniform(0, 0.08, n),
        "q": rng.uniform(0, 0.05, n),
        "sigma": rng.uniform(0.05, 1.5, n),
        "S": np.full(n, 100.0),
    }


def timed(fn, repeats: int) -> float:
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def _enable_vollib():
    os.environ["PY_LETS_BE_RATIONAL_ENABLE_NUMBA"] = "1"
    import numba

    mods = []
    for pkg in ("cody_special", "piecewise_rational"):
        p = importlib.import_module(pkg)
        mods.append(p)
        mods += [importlib.import_module(f"{pkg}.{i.name}") for i in pkgutil.iter_modules(p.__path__)]
    jitted = {}
    for m in mods:
        for obj in list(vars(m).values()):
            if isinstance(obj, types.FunctionType) and obj.__module__ == m.__name__:
                jitted[obj] = numba.njit(obj)
    for m in mods:
        for name, obj in list(vars(m).items()):
            if isinstance(obj, types.FunctionType) and obj in jitted:
                setattr(m, name, jitted[obj])
    from py_vollib_vectorized import vectorized_implied_volatility

    return vectorized_implied_volatility


def american_part(n: int, repeats: int) -> None:
    b = book(n)
    args = (b["call"], b["S"], b["K"], b["T"], b["r"], b["q"])
    price = american_price(*args, b["sigma"])

    def run():
        res = implied_vol(b["call"], price, b["S"], b["K"], b["T"], b["r"], b["q"], exercise="american")
        return res, american_greeks(*args, np.where(np.isfinite(res.iv), res.iv, 0.2))

    res, _ = run()
    t_am = timed(run, repeats)
    euro_price = bsm_price(*args, b["sigma"])

    def run_euro():
        r = implied_vol(b["call"], euro_price, b["S"], b["K"], b["T"], b["r"], b["q"])
        return bsm_greeks(*args, r.iv)

    t_eu = timed(run_euro, max(repeats, 5))
    ok = res.reason == 0
    print(
        f"American IV + 5 Greeks, {n:,} options: best {t_am * 1e3:.0f} ms -> budget < 30 ms: "
        f"{'PASS' if t_am < 0.03 else 'FAIL'} ({ok.sum():,} IVs; max IV error {np.nanmax(np.abs(res.iv - b['sigma'])[ok]):.1e} "
        f"where the round trip is defined)"
    )
    print(f"  European IV + 5 Greeks, same book: {t_eu * 1e3:.1f} ms; American / European = {t_am / t_eu:.0f}x")
    try:
        import QuantLib as ql
    except ImportError:
        print("  QuantLib not installed: no per-option ratio")
        return
    m = 300
    today = ql.Date(4, 1, 2021)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, rq, qq, vq = ql.SimpleQuote(100.0), ql.SimpleQuote(0.0), ql.SimpleQuote(0.0), ql.SimpleQuote(0.2)
    proc = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(qq), dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rq), dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vq), dc)),
    )
    engine = ql.QdFpAmericanEngine(proc, ql.QdFpAmericanEngine.fastScheme())
    options = []
    for i in range(m):
        opt = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if b["call"][i] else ql.Option.Put, float(b["K"][i])),
            ql.AmericanExercise(today, today + max(1, int(round(b["T"][i] * 365)))),
        )
        opt.setPricingEngine(engine)
        options.append(opt)

    def ql_iv():
        for i, opt in enumerate(options):
            rq.setValue(float(b["r"][i]))
            qq.setValue(float(b["q"][i]))
            try:
                opt.impliedVolatility(float(price[i]), proc, 1e-6, 100, 1e-4, 5.0)
            except RuntimeError:
                pass

    t_ql = timed(ql_iv, 1) / m
    print(
        f"  QuantLib QdFpAmericanEngine (fast scheme), IV alone, per option: {t_ql * 1e6:.0f} us -> "
        f"{t_ql * n * 1e3:.0f} ms per {n:,}; desk IV + Greeks / QuantLib IV = {t_am / (t_ql * n):.2f}"
    )


def european_vs_vollib(repeats: int) -> None:
    try:
        viv = _enable_vollib()
    except Exception as exc:  # noqa: BLE001 - the baseline is optional
        print(f"py_vollib_vectorized unavailable ({type(exc).__name__}: {exc}); European comparison skipped")
        return
    print("European IV alone vs py_vollib_vectorized (numba-compiled cody_special, see docstring):")
    for n in (1_000, 10_000, 100_000):
        b = book(n)
        b["sigma"] = np.clip(b["sigma"], 0.05, 0.8)
        p = bsm_price(b["call"], b["S"], b["K"], b["T"], b["r"], b["q"], b["sigma"])
        flag = np.where(b["call"], "c", "p")

        def pv():
            return viv(
                p,
                b["S"],
                b["K"],
                b["T"],
                b["r"],
                flag,
                q=b["q"],
                model="black_scholes_merton",
                return_as="numpy",
                on_error="ignore",
            )  # noqa: E704,E501

        def dk():
            return implied_vol(b["call"], p, b["S"], b["K"], b["T"], b["r"], b["q"])  # noqa: E704

        pv(), dk()
        t_pv, t_dk = timed(pv, repeats * 3), timed(dk, repeats * 3)
        print(
            f"  {n:>7,}: desk {t_dk * 1e3:7.2f} ms, py_vollib_vectorized {t_pv * 1e3:7.2f} ms, desk / vollib = {t_dk / t_pv:.2f} "
            f"({'faster' if t_dk < t_pv else 'SLOWER'})"
        )


def goog_buckets() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pricing"))
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from pricing_lean_chain import lean_dir, load_chain

    from desk.pricing import chain_greeks, times_to_expiry

    if not (lean_dir() / "option").is_dir():
        print("GOOG chain: LEAN data not found (set DESK_LEAN_DIR); skipped")
        return
    c = load_chain(10 * 3600 * 1000)
    T = times_to_expiry(c.expiry, datetime(2015, 12, 24, 10, 0, tzinfo=ZoneInfo("America/New_York")))
    e = chain_greeks(c.is_call, c.strike, c.bid, c.ask, c.spot, T, 0.005, q=0.0)
    t0 = time.perf_counter()
    a = chain_greeks(c.is_call, c.strike, c.bid, c.ask, c.spot, T, 0.005, q=0.0, exercise="american")
    dt = time.perf_counter() - t0
    t0 = time.perf_counter()
    chain_greeks(c.is_call, c.strike, c.bid, c.ask, c.spot, T, 0.005, q=0.0, exercise="american", sides=False)
    dt_mid = time.perf_counter() - t0
    print(
        f"GOOG chain, American: bid+ask+mid IVs {dt * 1e3:.0f} ms, mid only (the chain pane, sides=False) "
        f"{dt_mid * 1e3:.0f} ms = {dt_mid / dt:.2f}x"
    )
    both = np.isfinite(e.iv) & np.isfinite(a.iv)
    print(
        f"GOOG 2015-12-24 10:00, {c.strike.size} contracts, r 0.5%, q 0: {both.sum()} with both IVs; "
        f"American chain_greeks {dt * 1e3:.0f} ms; European minus American IV, vol points:"
    )
    km = c.strike / c.spot
    for right, is_call in (("calls", True), ("puts", False)):
        for lo, hi in ((0.0, 0.8), (0.8, 0.95), (0.95, 1.05), (1.05, 1.2), (1.2, 9.9)):
            sel = both & (c.is_call == is_call) & (km >= lo) & (km < hi)
            if sel.sum():
                d = (e.iv - a.iv)[sel] * 100
                print(
                    f"  {right:5} K/S {lo:.2f}-{hi:.2f}: n {sel.sum():4d}  median {np.median(d):6.3f}  p90 {np.percentile(d, 90):6.3f}  max {d.max():6.3f}"
                )
    with np.errstate(invalid="ignore"):
        imp = ~c.is_call & (0.5 * (c.bid + c.ask) < c.strike - c.spot)
    print(
        f"  puts quoted under K - S: {imp.sum()}, of which {int((imp & np.isfinite(e.iv)).sum())} get a European IV "
        f"and {int((imp & np.isfinite(a.iv)).sum())} an American one"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    american_part(args.n, args.repeats)
    european_vs_vollib(args.repeats)
    goog_buckets()
    _ = statistics
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
