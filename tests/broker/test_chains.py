"""Option chains: window and budget rules, translation, our Greeks on the real GOOG chain,
and the ChainManager against the simulated gateway through the real ib_async client."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, time

import numpy as np
import pytest
from ib_async import OptionChain, OptionComputation

from desk.pricing.chain_analytics import price_window
from desk.broker import Broker, BrokerError
from desk.broker.chain_window import ChainDefinition, choose_definition, default_expiry, should_recentre, window_strikes
from desk.broker.chains import CHAIN_OWNER, ChainError, ChainManager, greeks_from_computation
from desk.pricing.chain_analytics import compute_greeks, years_to_expiry
from desk.broker.lines import LineBudget
from desk.domain import FrozenClock, Instrument, QuoteStore, TickRecord
from desk.domain.options import OptionChainStore, OptionGreeks, WindowSpec
from desk.domain.calendar import exchange_date
from desk.pricing import IVReason
from desk.sim import SimGateway
from goog_chain import EXPIRIES, GOOG, goog_chain_at

STRIKES = [float(k) for k in range(90, 111)]  # 90..110, $1 apart


async def _wait(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------- pure rules


def test_window_spec_parses_counts_and_percents_and_rejects_the_rest() -> None:
    assert WindowSpec.parse("20") == WindowSpec(count=20)
    assert WindowSpec.parse(" 10% ") == WindowSpec(count=0, pct=10.0)
    assert WindowSpec.parse("±7.5%") == WindowSpec(count=0, pct=7.5)
    assert WindowSpec.parse("+/-3%").text == "3%"
    assert str(WindowSpec.parse("12")) == "12 strikes"
    for bad, why in (
        ("abc", "not a strike window"),
        ("1", "outside 2..200"),
        ("201", "outside"),
        ("0%", "outside"),
        ("150%", "outside"),
        ("-5", "not a strike window"),
    ):
        with pytest.raises(ValueError, match=why):
            WindowSpec.parse(bad)
    assert WindowSpec(count=20).wider() == WindowSpec(count=22)
    assert WindowSpec(count=2).narrower() == WindowSpec(count=2)
    assert WindowSpec(count=0, pct=2.0).narrower() == WindowSpec(count=0, pct=1.5)
    assert WindowSpec(count=0, pct=5.0).wider() == WindowSpec(count=0, pct=6.0)


def test_count_window_centres_on_the_nearest_strike_and_shifts_in_at_the_ends() -> None:
    w = window_strikes(STRIKES, 100.2, WindowSpec(count=6))
    assert w == [97.0, 98.0, 99.0, 100.0, 101.0, 102.0]  # 3 below the ATM strike 100, 2 above
    assert window_strikes(STRIKES, 91.0, WindowSpec(count=6)) == STRIKES[:6]
    assert window_strikes(STRIKES, 500.0, WindowSpec(count=6)) == STRIKES[-6:]
    assert window_strikes(STRIKES, 100.0, WindowSpec(count=100)) == STRIKES
    assert window_strikes(STRIKES, math.nan, WindowSpec(count=4)) == [98.0, 99.0, 100.0, 101.0]  # middle
    assert window_strikes([], 100.0, WindowSpec(count=4)) == []


def test_percent_window_takes_the_strikes_within_the_range() -> None:
    assert window_strikes(STRIKES, 100.0, WindowSpec(count=0, pct=3.0)) == [97.0, 98.0, 99.0, 100.0, 101.0, 102.0, 103.0]
    # a range narrower than the strike step still shows the nearest strike
    assert window_strikes([90.0, 100.0, 110.0], 104.0, WindowSpec(count=0, pct=1.0)) == [100.0]


def test_recentring_has_hysteresis() -> None:
    assert should_recentre(STRIKES, None, 100.0)
    assert not should_recentre(STRIKES, 100.0, 100.49)
    assert not should_recentre(STRIKES, 100.0, 100.6)  # past the midpoint, within the quarter-step band
    assert should_recentre(STRIKES, 100.0, 100.76)
    assert should_recentre(STRIKES, 100.0, 98.2)
    assert not should_recentre(STRIKES, 100.0, math.nan)


def test_definition_prefers_smart_and_the_class_named_like_the_underlying() -> None:
    spx = Instrument("SPX", sec_type="IND", con_id=416904)
    chains = [
        OptionChain("CBOE", 416904, "SPX", "100", ["20261218", "20270115"], [5000.0, 5100.0]),
        OptionChain("SMART", 416904, "SPXW", "100", ["20261120", "20261127", "20261204"], [5000.0, 5050.0]),
        OptionChain("SMART", 416904, "SPX", "100", ["20270115", "20261218"], [5100.0, 5000.0, 0.0]),
    ]
    d = choose_definition(spx, chains)
    assert (d.exchange, d.trading_class, d.multiplier) == ("SMART", "SPX", 100)
    assert d.expiries == ("20261218", "20270115") and d.strikes == (5000.0, 5100.0)
    assert choose_definition(spx, []) is None
    assert choose_definition(spx, [OptionChain("SMART", 1, "SPX", "100", [], [])]) is None


def test_default_expiry_is_the_first_after_today() -> None:
    assert default_expiry(EXPIRIES, datetime(2015, 12, 24).date()) == "20151231"
    assert default_expiry(EXPIRIES, datetime(2015, 12, 23).date()) == "20151224"
    assert default_expiry(EXPIRIES, datetime(2019, 1, 1).date()) == "20180119"
    assert default_expiry((), datetime(2019, 1, 1).date()) is None


def test_ib_greeks_sentinels_become_nan() -> None:
    comp = OptionComputation(0, 0.2314, -0.4, 3.2, 0.0, 0.011, -2.0, -2.0, 101.5)
    g = greeks_from_computation(comp)
    assert (g.iv, g.delta, g.gamma, g.price, g.und_price) == (0.2314, -0.4, 0.011, 3.2, 101.5)
    assert math.isnan(g.vega) and math.isnan(g.theta)  # ib_async leaks -2 through for these two
    g = greeks_from_computation(OptionComputation(0, None, None, 1.7976931348623157e308, None, None, 0.05, -0.03, None))
    assert math.isnan(g.iv) and math.isnan(g.delta) and math.isnan(g.price) and math.isnan(g.und_price)
    assert (g.vega, g.theta) == (0.05, -0.03)
    assert greeks_from_computation(None) is None


def test_line_budget_counts_per_owner_and_reclaims_for_the_watchlist() -> None:
    budget = LineBudget(5)
    assert budget.acquire("watchlist", 1) and budget.acquire("watchlist", 1)  # idempotent
    for con_id in (10, 11, 12, 13):
        assert budget.acquire(CHAIN_OWNER, con_id)
    assert budget.used == 5 and budget.free == 0
    assert not budget.acquire(CHAIN_OWNER, 14)
    assert budget.describe() == "market data lines: 5 of 5 in use (watchlist 1, chain 4)"
    freed: list[int] = []

    def reclaim(n: int) -> int:
        freed.append(n)
        budget.release(CHAIN_OWNER, 13)
        return 1

    budget.set_reclaimer(CHAIN_OWNER, reclaim)
    assert not budget.acquire("watchlist", 2)  # no reclaim asked
    assert budget.acquire("watchlist", 2, reclaim=True) and freed == [1]
    assert budget.used_by("watchlist") == 2 and budget.used_by(CHAIN_OWNER) == 3
    assert not budget.release("watchlist", 99) and budget.release("watchlist", 2)
    assert budget.release_all(CHAIN_OWNER) == 3 and budget.used == 1
    with pytest.raises(ValueError, match="positive integer"):
        LineBudget(0)


def test_chain_store_marks_only_real_changes_of_our_greeks() -> None:
    store = OptionChainStore()
    ins = Instrument("X", sec_type="OPT", con_id=7, expiry="20260116", strike=100.0, right="C")
    store.ensure(ins)
    assert store.drain_dirty() == {7}
    g = OptionGreeks(0.2, 0.5, 0.01, 0.1, -0.05, 2.0, 100.0)
    assert store.set_ours(7, g) and store.drain_dirty() == {7}
    assert not store.set_ours(7, OptionGreeks(*g)) and store.drain_dirty() == set()
    assert store.update(8, bid=1.0) is None  # a released line's late tick is ignored
    q = store.update(7, bid=1.0, ask=1.2)
    assert q.mid == pytest.approx(1.1) and store.drain_dirty() == {7}
    with pytest.raises(ValueError, match="unknown Greeks source"):
        q.greeks("model")


# ---------------------------------------------------------------------------------- our Greeks on real data


def _goog_arrays(chain, lo: float, hi: float):
    items = sorted(
        (s for s in chain.contracts.values() if lo <= s.instrument.strike <= hi),
        key=lambda s: (s.instrument.strike, s.instrument.right),
    )
    return (
        items,
        np.array([s.instrument.right == "C" for s in items]),
        np.array([s.instrument.strike for s in items]),
        np.array([s.bid for s in items]),
        np.array([s.ask for s in items]),
    )


def test_our_ivs_on_the_real_goog_chain_are_sane_and_show_a_smile() -> None:
    chain = goog_chain_at(time(10, 30), ("20160115",))
    items, is_call, strikes, bids, asks = _goog_arrays(chain, 600, 900)
    T = years_to_expiry("20160115", chain.at)
    assert T * 365 == pytest.approx(22.23, abs=0.01)  # to 16:00 ET on 2016-01-15
    result = compute_greeks(is_call, strikes, bids, asks, spot=chain.und_mid, T=T, r=0.04)
    # the parity forward sits within a dollar of the spot (GOOG paid no dividend; rates were low)
    assert abs(result.forward - chain.und_mid) < 1.0
    iv = {(s.instrument.strike, s.instrument.right): g.iv for s, g in zip(items, result.greeks)}
    ok = [g.iv for g, r in zip(result.greeks, result.reasons) if r == IVReason.OK]
    assert len(ok) > 40
    assert all(0.10 < v < 0.60 for v in ok), sorted(ok)
    # near the money the call and the put of one strike agree (the forward is right)
    for k in (740.0, 750.0, 760.0):
        assert abs(iv[(k, "C")] - iv[(k, "P")]) < 0.01, k
    # the skew: out-of-the-money puts are richer than the at-the-money options
    assert iv[(680.0, "P")] > iv[(750.0, "P")] + 0.03
    assert 0.15 < iv[(750.0, "C")] < 0.25
    for s, g, r in zip(items, result.greeks, result.reasons):
        if r == IVReason.OK:
            assert (0 < g.delta < 1) if s.instrument.right == "C" else (-1 < g.delta < 0)
            assert g.gamma > 0 and g.vega > 0 and g.theta < 0
        else:
            assert math.isnan(g.iv) and math.isnan(g.delta)
    # one-sided quotes have no mid: the reason says which side is missing
    no_bid = [(s.instrument.strike, r) for s, r in zip(items, result.reasons) if not s.bid > 0 and s.ask > 0]
    assert no_bid and all(r in (IVReason.NO_BID, IVReason.NO_PRICE) for _, r in no_bid)


def test_expired_and_unpriced_chains_give_nan_with_reasons() -> None:
    chain = goog_chain_at(time(10, 30), ("20160115",))
    _, is_call, strikes, bids, asks = _goog_arrays(chain, 740, 760)
    result = compute_greeks(is_call, strikes, bids, asks, spot=chain.und_mid, T=0.0, r=0.04)
    assert all(math.isnan(g.iv) for g in result.greeks)
    assert set(result.reasons) == {IVReason.EXPIRED}
    # no spot: the parity forward alone prices the chain
    without = compute_greeks(is_call, strikes, bids, asks, spot=math.nan, T=0.06, r=0.04)
    assert abs(without.forward - chain.und_mid) < 1.0
    assert without.spot == pytest.approx(without.forward * math.exp(-0.04 * 0.06)) and without.q == pytest.approx(0.0)
    assert sum(r == IVReason.OK for r in without.reasons) >= 4
    nothing = compute_greeks(is_call, strikes, bids * np.nan, asks * np.nan, spot=math.nan, T=0.06, r=0.04)
    assert set(nothing.reasons) == {IVReason.NO_PRICE}


# ---------------------------------------------------------------------------------- offline manager


def _offline_goog(spec: WindowSpec = WindowSpec(count=10), lines: int = 100) -> tuple[ChainManager, QuoteStore]:  # noqa: B008 (frozen value)
    chain = goog_chain_at(time(10, 30), ("20160115", "20160122"))
    quotes = QuoteStore()
    quotes.ensure(GOOG)
    quotes.update(GOOG.con_id, bid=chain.und_bid, ask=chain.und_ask)
    manager = ChainManager(
        None, pricer=price_window, quotes=quotes, budget=LineBudget(lines), spec=spec, clock=FrozenClock(chain.at)
    )
    from desk.broker.chain_window import ChainDefinition

    definition = ChainDefinition(GOOG, "SMART", "GOOG", 100, EXPIRIES, chain.strikes)
    manager.install(definition, "20160115", chain.instruments("20160115"))
    manager.add_expiry("20160122", chain.instruments("20160122"))
    return manager, quotes


def _fill(manager: ChainManager) -> None:
    chain = goog_chain_at(time(10, 30), ("20160115", "20160122"))
    for con_id in manager.subscribed:
        s = chain.contracts[con_id]
        manager.store.update(
            con_id,
            bid=s.bid,
            ask=s.ask,
            bid_size=s.bid_size,
            ask_size=s.ask_size,
            volume=s.volume,
            open_interest=s.open_interest,
            time=chain.at,
        )


def test_offline_manager_centres_the_window_and_recentres_when_the_underlying_moves() -> None:
    manager, quotes = _offline_goog()
    strikes = [r.strike for r in manager.rows]
    assert len(strikes) == 10 and manager.atm_strike == 747.5  # strikes every $2.50 here
    assert strikes.index(747.5) == 5  # count // 2 strikes below the ATM one
    assert manager.budget.used_by(CHAIN_OWNER) == 20 and len(manager.subscribed) == 20
    _fill(manager)
    flush = manager.flush()
    assert flush.computed and len(flush.con_ids) == 20
    assert abs(manager.forward - 748.36) < 1.0 and manager.days_to_expiry() == pytest.approx(22.23, abs=0.01)
    atm_call = manager.quote(manager.rows[5].call)
    assert 0.15 < atm_call.ours.iv < 0.25 and atm_call.iv_reason == IVReason.OK
    # a small move inside the hysteresis band keeps the window
    seq = manager.layout_seq
    quotes.update(GOOG.con_id, bid=748.9, ask=749.1)  # 749: past the 747.5/750 midpoint by less than 1/4 step
    assert not manager.flush().layout and manager.layout_seq == seq and manager.atm_strike == 750.0
    # a real move re-centres: new strikes subscribed, the old far ones released
    quotes.update(GOOG.con_id, bid=771.9, ask=772.1)
    flush = manager.flush()
    assert flush.layout and manager.layout_seq > seq
    moved = [r.strike for r in manager.rows]
    assert manager.atm_strike == 772.5 and moved.index(772.5) == 5
    assert manager.budget.used_by(CHAIN_OWNER) == 20
    assert {i.strike for i in (manager.store.get(c).instrument for c in manager.subscribed)} == set(moved)


def test_the_chain_prices_with_the_pricer_it_is_given_and_alone_computes_nothing() -> None:
    """The broker translates; our Greeks come from the pricer the engine injects."""
    priced, _ = _offline_goog()
    _fill(priced)
    assert priced.flush().computed
    ours = [priced.store.get(c).ours for c in priced.subscribed]
    assert sum(1 for g in ours if g is not None and math.isfinite(g.iv)) >= len(ours) // 2

    calls: list[tuple[str, int]] = []

    def counting(expiry, now, is_call, strikes, bids, asks, *, spot, r, exercise):
        calls.append((expiry, len(strikes)))
        return price_window(expiry, now, is_call, strikes, bids, asks, spot=spot, r=r, exercise=exercise)

    manager, _ = _offline_goog()
    manager.pricer = counting
    _fill(manager)
    assert manager.flush().computed
    assert calls == [("20160115", 2 * len(manager.rows))]
    assert {c: manager.store.get(c).ours for c in manager.subscribed} == {c: priced.store.get(c).ours for c in priced.subscribed}

    bare, _ = _offline_goog()
    bare.pricer = None
    _fill(bare)
    flushed = bare.flush()
    assert not flushed.computed and flushed.con_ids  # the quotes still flow
    assert all(bare.store.get(c).ours is None for c in bare.subscribed)
    assert math.isnan(bare.forward)


def test_offline_manager_switches_expiry_and_window() -> None:
    manager, _ = _offline_goog()
    asyncio.run(manager.step_expiry(1))
    assert manager.expiry == "20160122" and all(r.call.expiry == "20160122" for r in manager.rows if r.call)
    assert manager.budget.used_by(CHAIN_OWNER) == 2 * len(manager.rows)
    with pytest.raises(ChainError, match="contracts not installed"):
        asyncio.run(manager.step_expiry(1))  # 20160129: nothing installed offline
    assert manager.expiry == "20160122"
    with pytest.raises(ChainError, match="no expiry 20991231"):
        asyncio.run(manager.set_expiry("20991231"))
    manager.set_window(WindowSpec(count=0, pct=2.0))
    strikes = [r.strike for r in manager.rows]
    assert strikes and min(strikes) >= 748.36 * 0.98 and max(strikes) <= 748.36 * 1.02
    manager.widen()
    assert manager.spec == WindowSpec(count=0, pct=3.0) and len(manager.rows) > len(strikes)


def test_a_window_larger_than_the_budget_is_trimmed_from_the_far_strikes_with_a_message() -> None:
    manager, _ = _offline_goog(spec=WindowSpec(count=20), lines=13)
    strikes = [r.strike for r in manager.rows]
    assert len(strikes) == 6 and manager.trimmed == 14  # 12 lines: 6 strikes x (call + put)
    assert 750.0 in strikes and manager.budget.used == 12
    assert manager.message_level == "warning"
    assert "6 of 20 strikes shown" in manager.message and "market data lines: 12 of 13 in use" in manager.message
    assert "DESK_MARKET_DATA_LINES" in manager.message
    none, _ = _offline_goog(spec=WindowSpec(count=20), lines=1)
    assert none.rows == [] and none.message_level == "error" and "no market data line free" in none.message


# ---------------------------------------------------------------------------------- against the simulator


@pytest.fixture
async def gateway():
    gw = SimGateway("127.0.0.1", 0, seed=11)
    await gw.start()
    yield gw
    await gw.stop()


def _sim_lines(gw: SimGateway) -> int:
    return sum(len(s.subscriptions) for s in gw.sessions)


async def _broker(gw: SimGateway, symbols, lines: int = 100, sinks=()) -> Broker:
    b = Broker("127.0.0.1", gw.port, 7, symbols=symbols, lines=LineBudget(lines), sinks=sinks, backoff=(0.1, 0.2))
    await b.start()
    assert await b.wait_connected(5), b.state
    return b


async def test_chain_loads_subscribes_the_window_and_computes_greeks(gateway: SimGateway) -> None:
    rows: list[TickRecord] = []
    broker = await _broker(gateway, ["SPY", "AAPL"], sinks=[rows.append])
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=10))
    try:
        spy = broker.watchlist[0]
        await manager.set_underlying(spy)
        d = manager.definition
        assert d.exchange == "SMART" and d.trading_class == "SPY" and d.multiplier == 100
        assert list(d.expiries) == sorted(d.expiries) and manager.expiry in d.expiries
        # the first expiry after today's date in New York (not UTC: after 20:00 New York time they differ)
        assert manager.expiry > exchange_date(manager.clock.now()).strftime("%Y%m%d")
        assert len(manager.rows) == 10 and all(r.call and r.put for r in manager.rows)
        assert all(r.call.con_id >= 1_000_000_000 and r.call.expiry == manager.expiry for r in manager.rows)
        assert broker.lines.describe() == "market data lines: 22 of 100 in use (watchlist 2, chain 20)"
        await _wait(lambda: _sim_lines(gateway) == 22, what="22 lines at the gateway")

        def quoted() -> bool:
            manager.flush()
            return all(
                (q := manager.quote(i)) is not None
                and q.bid > 0
                and q.model is not None
                and q.ours is not None
                and q.ours.iv == q.ours.iv
                for r in manager.rows
                for i in (r.call, r.put)
            )

        await _wait(quoted, timeout=8, what="quotes, IB Greeks and ours on every contract")
        spot = manager.spot
        assert spot > 0 and abs(manager.forward - spot) < 0.02 * spot
        atm = manager.rows[5]
        for ins in (atm.call, atm.put):
            q = manager.quote(ins)
            assert abs(q.ours.iv - q.model.iv) < 0.01, (ins.key, q.ours, q.model)  # within a vol point of IB's model
            assert abs(q.ours.delta - q.model.delta) < 0.03
            assert q.open_interest > 0 and q.volume >= 0
        # option ticks reach the tick sinks, keyed by the option's conId and OCC symbol
        option_ids = {i.con_id: i.local_symbol for r in manager.rows for i in (r.call, r.put)}
        await _wait(lambda: any(r.con_id in option_ids for r in rows), what="option tick rows")
        rec = next(r for r in rows if r.con_id in option_ids)
        assert rec.symbol == option_ids[rec.con_id] and rec.symbol.startswith("SPY ")
    finally:
        manager.close()
        await broker.stop()


async def test_expiry_and_underlying_changes_release_the_old_lines(gateway: SimGateway) -> None:
    broker = await _broker(gateway, ["SPY", "AAPL"])
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=6))
    try:
        await manager.set_underlying(broker.watchlist[0])
        first = manager.subscribed
        expiry = manager.expiry
        assert await manager.step_expiry(1) > expiry
        assert not (manager.subscribed & first) and len(manager.subscribed) == 12
        assert all(manager.store.get(c) is not None for c in manager.subscribed)
        assert all(manager.store.get(c) is None for c in first)
        await _wait(lambda: _sim_lines(gateway) == 14, what="old expiry cancelled at the gateway")
        assert await manager.step_expiry(-5) == manager.expiries[0]  # clamped
        await manager.set_underlying(broker.watchlist[1])
        assert manager.underlying.symbol == "AAPL" and {r.call.symbol for r in manager.rows} == {"AAPL"}
        assert broker.lines.used_by(CHAIN_OWNER) == 12
        await _wait(lambda: _sim_lines(gateway) == 14, what="SPY lines cancelled at the gateway")
        with pytest.raises(ChainError, match="an option has no option chain"):
            await manager.set_underlying(manager.rows[0].call)
    finally:
        manager.close()
        await broker.stop()


async def test_budget_is_shared_and_the_watchlist_takes_lines_back(gateway: SimGateway) -> None:
    broker = await _broker(gateway, ["SPY", "AAPL"], lines=12)
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=10))
    try:
        await manager.set_underlying(broker.watchlist[0])
        assert len(manager.rows) == 5 and broker.lines.used == 12  # 2 + 5 strikes x 2
        assert "5 of 10 strikes shown" in manager.message
        await _wait(lambda: _sim_lines(gateway) == 12, what="12 lines at the gateway")
        # the watchlist has priority: adding a symbol narrows the chain instead of failing
        await broker.add_symbol("MSFT")
        assert len(manager.rows) == 4 and broker.lines.used == 11
        assert "narrowed to 4 strikes" in manager.message
        assert [i.symbol for i in broker.watchlist] == ["SPY", "AAPL", "MSFT"]
        await _wait(lambda: broker.quotes.get(broker.watchlist[2].con_id).bid > 0, what="MSFT quotes")
        assert _sim_lines(gateway) <= 12  # never over the limit: no error 101
    finally:
        manager.close()
        await broker.stop()


async def test_watchlist_alone_over_the_budget_gets_a_clear_error(gateway: SimGateway) -> None:
    broker = await _broker(gateway, ["SPY", "AAPL"], lines=2)
    try:
        with pytest.raises(BrokerError, match=r"MSFT: no market data line free \(market data lines: 2 of 2"):
            await broker.add_symbol("MSFT")
        assert [i.symbol for i in broker.watchlist] == ["SPY", "AAPL"]
    finally:
        await broker.stop()


async def test_chain_lines_come_back_after_a_reconnect(gateway: SimGateway) -> None:
    broker = await _broker(gateway, ["SPY"])
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=4))
    try:
        await manager.set_underlying(broker.watchlist[0])
        await _wait(lambda: manager.store.ticks_seen > 20, what="option ticks")
        await gateway.drop_clients()
        await _wait(lambda: broker.connects == 2 and broker.state.value == "connected", timeout=8, what="reconnect")
        await _wait(lambda: _sim_lines(gateway) == 9, what="watchlist + chain lines again")
        seen = manager.store.ticks_seen
        await _wait(lambda: manager.store.ticks_seen > seen + 20, what="option ticks after the reconnect")
        assert broker.lines.used == 9 and len(manager.subscribed) == 8
    finally:
        manager.close()
        await broker.stop()


async def test_chain_waits_for_the_gateway_and_loads_on_connect(gateway: SimGateway) -> None:
    broker = Broker("127.0.0.1", gateway.port, 8, symbols=["SPY"], backoff=(0.1,))
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=4))
    spy = Instrument("SPY", con_id=756733)
    try:
        await manager.set_underlying(spy)  # not connected yet
        assert manager.definition is None and "loads when the gateway is connected" in manager.message
        await broker.start()
        await _wait(lambda: len(manager.rows) == 4, timeout=8, what="the chain after connecting")
        assert manager.underlying.symbol == "SPY"
    finally:
        manager.close()
        await broker.stop()


async def test_unknown_underlying_says_no_options_listed(gateway: SimGateway) -> None:
    broker = await _broker(gateway, ["SPY"])
    manager = ChainManager(broker, pricer=price_window)
    try:
        with pytest.raises(ChainError, match="ZZZZ: no options listed"):
            await manager.set_underlying(Instrument("ZZZZ", con_id=42))
        assert manager.rows == [] and manager.message_level == "warning"
    finally:
        manager.close()
        await broker.stop()


def test_server_clock_follows_the_gateway_clock() -> None:
    from desk.broker.chains import ServerClock

    base = FrozenClock(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    clock = ServerClock(base)

    async def server_time():
        return datetime(2015, 12, 24, 15, 30, tzinfo=UTC)

    asyncio.run(clock.sync(server_time))
    assert clock.now() == datetime(2015, 12, 24, 15, 30, tzinfo=UTC)
    base.advance(60)
    assert clock.now() == datetime(2015, 12, 24, 15, 31, tzinfo=UTC)


# ---------------------------------------------------------------------------------- the replayed GOOG day


async def test_replayed_goog_chain_has_a_smile_and_sane_ivs() -> None:
    """`desk sim --replay 2015-12-24 --symbols GOOG` as the gateway: 12 expiries, the
    gateway's (recorded) clock, and our IVs sane where the recorded quotes are."""
    from desk.sim.replay_market import ReplayMarket
    from goog_chain import goog_replay_data

    market = ReplayMarket(goog_replay_data(time(10, 30)))
    gw = SimGateway(
        market=market, clock=market.clock, option_source=market.options, tick_interval=3600.0, speed=15.0 / 3600.0
    )  # stepped by the test: 15 s a step
    await gw.start()
    broker = await _broker(gw, ["GOOG"])
    manager = ChainManager(broker, pricer=price_window, spec=WindowSpec(count=40))
    try:
        goog = broker.watchlist[0]
        assert goog.con_id == GOOG.con_id
        await manager.set_underlying(goog)
        # the chain is priced at the gateway's time, 10:30 ET on the replayed day
        assert abs((manager.clock.now() - datetime(2015, 12, 24, 15, 30, tzinfo=UTC)).total_seconds()) < 2
        assert manager.expiries == EXPIRIES and len(manager.definition.strikes) > 100
        assert manager.expiry == "20151231"  # the first expiry after the replayed day
        await manager.set_expiry("20160115")
        assert len(manager.rows) == 40 and broker.lines.used == 81
        for _ in range(4):
            gw.step()
            await asyncio.sleep(0.05)

        def priced() -> bool:
            manager.flush()
            n = sum(
                1
                for r in manager.rows
                for i in (r.call, r.put)
                if (q := manager.quote(i)) is not None and q.ours is not None and q.ours.iv == q.ours.iv
            )
            return n >= 50

        await _wait(priced, timeout=8, what="our IVs on the replayed chain")
        assert 740 < manager.spot < 755 and abs(manager.forward - manager.spot) < 1.5
        assert manager.days_to_expiry() == pytest.approx(22.23, abs=0.02)
        ivs: dict[tuple[float, str], float] = {}
        for r in manager.rows:
            for ins in (r.call, r.put):
                q = manager.quote(ins)
                if q.ours is not None and q.ours.iv == q.ours.iv:
                    assert q.bid > 0 and q.ask >= q.bid  # an IV only where there is a two-sided quote
                    assert 0.10 < q.ours.iv < 0.60, (ins.key, q.ours.iv)
                    ivs[(r.strike, ins.right)] = q.ours.iv
                    # the gateway's model IVs use its own rate and no dividend (no parity
                    # forward): near the money, where the forward matters least, they agree
                    near = abs(r.strike - manager.atm_strike) <= 5
                    if near and q.model is not None and q.model.iv == q.model.iv:
                        assert abs(q.model.iv - q.ours.iv) < 0.02, (ins.key, q.model.iv, q.ours.iv)
        atm = manager.atm_strike
        assert abs(ivs[(atm, "C")] - ivs[(atm, "P")]) < 0.01
        # the smile: out-of-the-money puts below the money are richer than the ATM options
        low = min(k for k, right in ivs if right == "P")
        assert low < atm - 30 and ivs[(low, "P")] > ivs[(atm, "P")] + 0.02
    finally:
        manager.close()
        await broker.stop()
        await gw.stop()


# ---------------------------------------------------------------------------------- exercise style


def test_the_chain_prices_us_equity_options_american_and_index_options_european() -> None:
    chain = goog_chain_at(time(10, 30), ("20160115",))
    items, is_call, strikes, bids, asks = _goog_arrays(chain, 600, 1000)
    T = years_to_expiry("20160115", chain.at)
    # one deep in-the-money put quoted a dollar under exercise value: impossible for an American put
    deep = next(i for i, s in enumerate(items) if s.instrument.right == "P" and s.instrument.strike == 900.0)
    bids, asks = bids.copy(), asks.copy()
    bids[deep], asks[deep] = 900.0 - chain.und_mid - 1.1, 900.0 - chain.und_mid - 0.9
    euro = compute_greeks(is_call, strikes, bids, asks, spot=chain.und_mid, T=T, r=0.04)
    amer = compute_greeks(is_call, strikes, bids, asks, spot=chain.und_mid, T=T, r=0.04, exercise="american")
    assert amer.reasons[deep] == IVReason.BELOW_INTRINSIC and math.isnan(amer.greeks[deep].iv)
    # deep in-the-money puts: the American IV is below the European one; calls are unchanged
    itm_puts = [
        i
        for i, s in enumerate(items)
        if s.instrument.right == "P"
        and s.instrument.strike > chain.und_mid + 50
        and amer.reasons[i] == IVReason.OK
        and euro.reasons[i] == IVReason.OK
    ]
    assert itm_puts and all(amer.greeks[i].iv < euro.greeks[i].iv for i in itm_puts)
    calls = [
        i
        for i, s in enumerate(items)
        if s.instrument.right == "C" and amer.reasons[i] == IVReason.OK and s.instrument.strike > chain.und_mid
    ]
    # out-of-the-money calls move only by the premium of the parity-implied yield (r = 4% here)
    assert calls and max(abs(amer.greeks[i].iv - euro.greeks[i].iv) for i in calls) < 1e-3
    # the manager picks the style from the underlying
    manager = ChainManager(None, pricer=price_window, quotes=QuoteStore(), budget=LineBudget(100), sync_clock=False)
    assert manager.exercise == "american"
    spx = Instrument("SPX", sec_type="IND", exchange="CBOE", con_id=416904)
    manager.install(ChainDefinition(spx, "SMART", "SPXW", 100, ("20160115",), (2000.0,)), "20160115", [])
    assert manager.exercise == "european"
    manager.install(ChainDefinition(GOOG, "SMART", "GOOG", 100, ("20160115",), (750.0,)), "20160115", [])
    assert manager.exercise == "american"
