"""The scanners on the real GOOG chain of 2015-12-24 (LEAN minute quotes, read in place by
bench/arbitrage.py's loader from the packaged sample data or DESK_LEAN_DIR).

What real American quotes show: with the carry rate near the market's (0.5% in Dec 2015)
nothing at all; with a rate too low, conversions that merely earn the interest rate; with a
rate too high, reversals and short boxes that are the early-exercise premium of the short
American puts, every one of them flagged.
"""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from datetime import time
from pathlib import Path

import pytest

from desk.arbitrage import Carry, Costs, RiskFlag, scan_chain

ROOT = Path(__file__).resolve().parents[2]
MINUTES = (time(10, 1), time(11, 1), time(12, 31))


def _bench():
    spec = importlib.util.spec_from_file_location("arbitrage_bench", ROOT / "bench" / "arbitrage.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def goog():
    bench = _bench()
    root = bench.lean_dir()
    assert (root / "option/usa/minute/goog/20151224_quote_american.zip").exists(), f"LEAN data not found under {root}"
    return bench, bench.load_lean_chain(root)


def test_loader_reads_the_grid_and_scales_deci_cents(goog) -> None:
    bench, chain = goog
    assert len(chain.expiries) == 12 and chain.expiries[0].isoformat() == "2015-12-24"
    assert chain.strikes[0] == 290.0 and chain.strikes[-1] == 1140.0
    assert len(chain.bars) == 2192
    snap, age_c, _ = chain.snapshot(time(11, 1))
    # the stock's bar that started at 11:00 (ms 39,600,000) closed at 11:01
    with zipfile.ZipFile(bench.lean_dir() / "equity/usa/minute/goog/20151224_quote.zip") as z:
        row = next(line.split(",") for line in z.read(z.namelist()[0]).decode().splitlines() if line.startswith("39600000,"))
    assert snap.under_bid == int(row[4]) / 10_000 and snap.under_ask == int(row[9]) / 10_000
    assert snap.under_bid_size == float(row[5])
    assert 740 < snap.under_bid < snap.under_ask < 760
    assert snap.years_to_expiry[0] == pytest.approx(119 / (60 * 365 * 24))  # 11:01 to the 13:00 half-day close
    assert (age_c[age_c < float("inf")] >= 0).all()


@pytest.mark.parametrize("at", MINUTES)
def test_near_the_market_rate_real_quotes_hold_no_arbitrage(goog, at: time) -> None:
    _, chain = goog
    snap, _, _ = chain.snapshot(at)
    found = scan_chain(snap, Carry(rate=0.005, borrow_rate=0.0025), Costs(), net_of_costs=False)
    # at most a handful, each earning a sliver over the rate
    assert len(found) <= 5
    assert all(abs(o.annualized_return) < 0.001 for o in found)


@pytest.mark.parametrize("at", MINUTES)
def test_a_rate_too_high_shows_only_the_american_put_premium(goog, at: time) -> None:
    _, chain = goog
    snap, _, _ = chain.snapshot(at)
    found = scan_chain(snap, Carry(rate=0.015, borrow_rate=0.0025), Costs(), net_of_costs=False)
    assert len(found) > 20
    assert {o.rule for o in found} <= {"reversal", "short box", "put slope"}
    assert all(RiskFlag.AMERICAN_PREMIUM in o.risks for o in found)


@pytest.mark.parametrize("at", MINUTES)
def test_a_rate_too_low_shows_conversions_that_earn_the_interest_rate(goog, at: time) -> None:
    _, chain = goog
    snap, _, _ = chain.snapshot(at)
    found = scan_chain(snap, Carry(rate=0.0), Costs(), net_of_costs=False)
    conversions = [o for o in found if o.rule == "conversion"]
    assert len(conversions) > 20
    assert not any(o.at_risk for o in conversions)  # no dividends: calls are not exercised early
    # what they "earn" is financing at the 2015 rates (~0.5%/yr), not an arbitrage
    assert all(0 < o.annualized_return < 0.01 for o in conversions)
