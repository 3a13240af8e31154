"""The universe and the seeded market model (no sockets)."""

from __future__ import annotations

import math
import statistics

import pytest

from desk.domain import Instrument
from desk.sim.market import Changed, MarketModel, Snapshot
from desk.sim.universe import UNIVERSE, by_con_id, by_isin, lookup

REQUIRED = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA"]
KNOWN_CON_IDS = {
    "SPY": 756733,
    "AAPL": 265598,
    "MSFT": 272093,
    "QQQ": 320227571,
    "IWM": 9579970,
    "NVDA": 4815747,
    "AMZN": 3691937,
    "GOOG": 208813720,
    "META": 107113386,
    "TSLA": 76792991,
}


def on_grid(price: float, tick: float = 0.01) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


# --- universe --------------------------------------------------------------------------


def test_universe_has_the_required_symbols_with_real_con_ids() -> None:
    for sym in REQUIRED:
        assert sym in UNIVERSE
    for sym, con_id in KNOWN_CON_IDS.items():
        assert UNIVERSE[sym].con_id == con_id


def test_universe_static_data_is_consistent() -> None:
    con_ids = [s.con_id for s in UNIVERSE.values()]
    assert len(set(con_ids)) == len(con_ids)
    for s in UNIVERSE.values():
        assert s.min_tick == 0.01 and s.decimals == 2
        assert s.long_name.isascii() and s.long_name
        assert s.primary_exchange in {"ARCA", "NASDAQ", "NYSE"}
        assert s.spread_ticks >= 1 and s.display_size >= 100 and s.price > 1
        assert len(s.isin) == 12 and s.isin.startswith("US")
    assert UNIVERSE["SPY"].primary_exchange == "ARCA"
    assert UNIVERSE["SPY"].stock_type == "ETF"
    assert UNIVERSE["AAPL"].stock_type == "COMMON"


def test_lookups() -> None:
    assert lookup("spy") is UNIVERSE["SPY"]
    assert lookup(" aapl ") is UNIVERSE["AAPL"]
    assert lookup("NOPE") is None
    assert by_con_id(265598) is UNIVERSE["AAPL"]
    assert by_con_id(1) is None
    assert by_isin("us78462f1030") is UNIVERSE["SPY"]


def test_to_instrument() -> None:
    inst = UNIVERSE["AAPL"].to_instrument()
    assert isinstance(inst, Instrument)
    assert (inst.symbol, inst.con_id, inst.exchange, inst.primary_exchange) == ("AAPL", 265598, "SMART", "NASDAQ")


# --- market model ----------------------------------------------------------------------


def _path(model: MarketModel, steps: int, dt: float = 0.25) -> list:
    return [tuple(model.step(dt)) for _ in range(steps)]


def test_same_seed_same_path() -> None:
    a, b = MarketModel(seed=11), MarketModel(seed=11)
    assert a.snapshots() == b.snapshots()
    assert _path(a, 400) == _path(b, 400)
    assert a.snapshots() == b.snapshots()


def test_different_seed_different_path() -> None:
    a, b = MarketModel(seed=1), MarketModel(seed=2)
    _path(a, 50), _path(b, 50)
    assert a.snapshots() != b.snapshots()


def test_symbol_path_does_not_depend_on_other_symbols() -> None:
    alone = MarketModel(seed=5, symbols=["AAPL"])
    crowd = MarketModel(seed=5)
    for _ in range(200):
        alone.step(0.25)
        crowd.step(0.25)
    assert alone.snapshot("AAPL") == crowd.snapshot("AAPL")


def test_unknown_symbol_and_bad_dt() -> None:
    with pytest.raises(KeyError):
        MarketModel(seed=1, symbols=["NOPE"])
    with pytest.raises(ValueError):
        MarketModel(seed=1).step(0)


def test_snapshot_shape_and_invariants_along_a_path() -> None:
    model = MarketModel(seed=3)
    volumes = {s: model.snapshot(s).volume for s in model.symbols}
    for _ in range(2000):
        for ch in model.step(0.25):
            assert ch.bid < ch.ask
            assert on_grid(ch.bid) and on_grid(ch.ask) and on_grid(ch.last)
            assert ch.ask - ch.bid >= 0.01 - 1e-9
            assert ch.bid_size >= 100 and ch.bid_size % 100 == 0
            assert ch.ask_size >= 100 and ch.ask_size % 100 == 0
            assert ch.volume >= volumes[ch.symbol]
            volumes[ch.symbol] = ch.volume
            assert ch.low <= ch.last <= ch.high
            if ch.fields & Changed.TRADE:
                assert ch.trades >= 1 and ch.last_size >= 1
    snap = model.snapshot("SPY")
    assert isinstance(snap, Snapshot)
    bid, ask, last, bid_size, ask_size, last_size, volume, close = snap
    assert close == 600.0 and bid < ask and volume > 0


def test_cadence_is_ib_like() -> None:
    """At dt=0.25 s (IB's aggregation), a liquid name changes in most snapshots and
    prints in many; volume over a simulated session is near the typical daily volume."""
    model = MarketModel(seed=9, symbols=["SPY", "DIA"])
    steps = int(6.5 * 3600 / 0.25)
    changed = {"SPY": 0, "DIA": 0}
    traded = {"SPY": 0, "DIA": 0}
    v0 = {s: model.snapshot(s).volume for s in changed}
    for _ in range(steps):
        for ch in model.step(0.25):
            changed[ch.symbol] += 1
            traded[ch.symbol] += bool(ch.fields & Changed.TRADE)
    assert changed["SPY"] / steps > 0.8
    assert 0.5 < traded["SPY"] / steps < 1.0
    assert changed["DIA"] / steps > 0.5
    for s in changed:
        day_volume = model.snapshot(s).volume - v0[s]
        assert 0.5 < day_volume / UNIVERSE[s].daily_volume < 2.0


def test_volatility_matches_the_universe() -> None:
    """Daily log returns of the true price have roughly the stock's annual vol / sqrt(252)."""
    model = MarketModel(seed=4, symbols=["SPY", "TSLA"])
    # coarse steps (a tenth of a session): quotes are coarse, but the walk is exact
    rets: dict[str, list[float]] = {"SPY": [], "TSLA": []}
    for _ in range(300):
        start = {s: model.state(s).mid for s in rets}
        for _ in range(10):
            model.step(6.5 * 3600 / 10)
        for s in rets:
            rets[s].append(math.log(model.state(s).mid / start[s]))
    for s, r in rets.items():
        expected = UNIVERSE[s].annual_vol / math.sqrt(252)
        assert 0.75 * expected < statistics.pstdev(r) < 1.25 * expected
