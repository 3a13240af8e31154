"""Portfolio Greeks: stock deltas count (1 per share), options are priced with the option
chain's carry so one contract has one IV, and positions group by the order that opened
them. End to end: a conversion bought as one combo through the desk's order service, on
the real Runtime (embedded simulator, ib_async), is about delta-neutral, its options show
the chain's IV and it is one group with its three legs."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from desk.pricing.chain_analytics import price_window
from desk.broker.chain_window import ChainDefinition

from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain.portfolio import UNGROUPED, PositionRow, group_positions, stock_greeks, sum_greeks
from desk.pricing.positions import option_greeks
from desk.domain import ConnectionState, FrozenClock, Instrument, QuoteStore
from desk.domain.options import Carry, WindowSpec
from desk.domain.orders import Fill
from desk.pricing import bsm_price, time_to_expiry

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
XYZ = Instrument("XYZ", con_id=1, primary_exchange="NYSE")
EXPIRY = "20260417"
STRIKES = (90.0, 95.0, 100.0, 105.0, 110.0)


def _option(strike: float, right: str) -> Instrument:
    return Instrument(
        "XYZ",
        "OPT",
        con_id=int(strike * 10) + (1 if right == "C" else 2),
        expiry=EXPIRY,
        strike=strike,
        right=right,
        multiplier=100,
    )


def _chain(q: float = 0.03, r: float = 0.04, spot: float = 100.0) -> ChainManager:
    """An offline chain of XYZ whose quotes are BSM prices with dividend yield ``q`` and a
    smile, a cent wide."""
    quotes = QuoteStore()
    quotes.ensure(XYZ)
    quotes.update(XYZ.con_id, bid=spot - 0.01, ask=spot + 0.01)
    manager = ChainManager(
        None, pricer=price_window, quotes=quotes, budget=LineBudget(100), spec=WindowSpec(count=5), rate=r, clock=FrozenClock(NOW)
    )
    instruments = [_option(k, right) for k in STRIKES for right in "CP"]
    manager.install(ChainDefinition(XYZ, "SMART", "XYZ", 100, (EXPIRY,), STRIKES), EXPIRY, instruments)
    T = float(time_to_expiry(EXPIRY, NOW))
    for ins in instruments:
        vol = 0.25 + 0.4 * (ins.strike / spot - 1.0) ** 2
        price = float(bsm_price(ins.right == "C", spot, ins.strike, T, r, q, vol))
        manager.store.update(ins.con_id, bid=round(price - 0.005, 4), ask=round(price + 0.005, 4), time=NOW)
    assert manager.flush().computed
    return manager


def _row(ins: Instrument, quantity: float, price: float = math.nan) -> PositionRow:
    return PositionRow(ins, quantity, price, price, quantity * price * ins.multiplier, 0.0, 0.0, 0.0)


def test_a_position_priced_with_the_chain_carry_has_the_chain_iv() -> None:
    chain = _chain(q=0.03)
    assert chain.q == pytest.approx(0.03, abs=2e-3)  # the carry the chain implies from parity
    carry = chain.carry("XYZ", EXPIRY)
    assert carry == Carry(chain.rate, chain.q)
    for ins in (_option(100.0, "C"), _option(95.0, "P"), _option(110.0, "C")):
        quote = chain.store.get(ins.con_id)
        ours = chain.live_greeks(ins.con_id)
        assert ours is not None and ours.iv == quote.ours.iv
        # the positions pane's own computation, from the same mid, spot, T and carry
        row = option_greeks(_row(ins, 2, quote.mid), S=ours.und_price, T=chain.T, price=quote.mid, carry=carry)
        assert row.iv == pytest.approx(ours.iv, abs=1e-12)
        assert row.delta == pytest.approx(ours.delta * 200, abs=1e-9)
        # what the desk did before (no dividend yield): the same contract had a second IV
        no_q = option_greeks(_row(ins, 2, quote.mid), S=ours.und_price, T=chain.T, price=quote.mid, carry=Carry(chain.rate, 0.0))
        assert abs(no_q.iv - ours.iv) > 1e-3
        # and the chain's own figures are used as they are when it has the contract
        live = option_greeks(_row(ins, 2, quote.mid), S=math.nan, T=chain.T, price=math.nan, carry=carry, chain=ours)
        assert live.iv == ours.iv
    # another expiry of the same underlying borrows the nearest computed carry; another
    # underlying gets the rate alone
    assert chain.carry("XYZ", "20260515") == carry
    assert chain.carry("ABC", EXPIRY) == Carry(chain.rate, 0.0)


def test_a_conversion_is_about_delta_neutral_with_its_stock() -> None:
    chain = _chain(q=0.03)
    call, put = _option(100.0, "C"), _option(100.0, "P")
    S = chain.spot
    rows = [stock_greeks(_row(XYZ, 100, S), S)]
    for ins, qty in ((call, -1), (put, 1)):
        quote = chain.store.get(ins.con_id)
        rows.append(option_greeks(_row(ins, qty, quote.mid), S=S, T=chain.T, price=quote.mid, carry=chain.carry("XYZ", EXPIRY)))
    g = sum_greeks(rows)
    assert g.stock_shares == 100 and g.options == g.priced == 2
    # 100 - 100 (delta_call - delta_put): a fraction of a share (European: 100 (1 - e^{-qT});
    # the chain prices these American, as US equity options are)
    assert abs(g.delta) < 0.5
    from desk.pricing import contract_greeks

    c, p = (
        contract_greeks(
            ins.right == "C", 100.0, chain.store.get(ins.con_id).mid, S, chain.T, chain.carry("XYZ", EXPIRY), exercise="american"
        )
        for ins in (call, put)
    )
    assert g.delta == pytest.approx(100 - 100 * c.delta + 100 * p.delta, abs=1e-6)
    # gamma and vega of the pair nearly cancel (not exactly: the American put's early exercise)
    assert abs(g.gamma) < 0.25 * 100 * c.gamma and abs(g.vega) < 0.25 * 100 * c.vega
    # the options alone are -100 shares: without the stock the sum was off by 100
    assert sum_greeks(rows[1:]).delta == pytest.approx(g.delta - 100)


def _fill(ref: str, ins: Instrument, side: str, shares: float, price: float, n: int) -> Fill:
    return Fill(f"e{n}", ref, NOW, ins, side, shares, price, n, 1000 + n, 1.0)


def test_positions_group_by_the_order_that_opened_them() -> None:
    call, put = _option(100.0, "C"), _option(100.0, "P")
    bag = Instrument("XYZ", "BAG", multiplier=100)
    fills = [
        _fill("old", XYZ, "BOT", 30, 99.0, 1),  # an earlier stock order
        _fill("conv", bag, "BOT", 1, 97.5, 2),  # the combo's own execution: skipped
        _fill("conv", XYZ, "BOT", 100, 100.0, 3),
        _fill("conv", call, "SLD", 1, 4.0, 4),
        _fill("conv", put, "BOT", 1, 1.5, 5),
        _fill("sold", XYZ, "SLD", 10, 101.0, 6),  # closes 10 of the oldest lot
    ]
    rows = [
        dataclasses.replace(
            _row(XYZ, 140, 101.0),
            unrealized=140.0,
            daily_pnl=70.0,
            delta=140.0,
            dollar_delta=14140.0,
            gamma=0.0,
            theta=0.0,
            vega=0.0,
        ),
        dataclasses.replace(
            _row(call, -1, 4.2),
            unrealized=-20.0,
            daily_pnl=-20.0,
            delta=-55.0,
            gamma=-3.0,
            theta=2.0,
            vega=-12.0,
            dollar_delta=-5555.0,
        ),
        dataclasses.replace(
            _row(put, 1, 1.4),
            unrealized=-10.0,
            daily_pnl=-10.0,
            delta=-43.0,
            gamma=3.0,
            theta=-1.5,
            vega=11.5,
            dollar_delta=-4343.0,
        ),
    ]
    groups = group_positions(rows, fills)
    # 20 of the old order left, 100 of the conversion, and 20 shares no fill explains
    assert [g.order_ref for g in groups] == ["conv", "old", UNGROUPED]
    conv = groups[0]
    assert conv.combo and [(leg.instrument.con_id, leg.quantity) for leg in conv.legs] == [
        (XYZ.con_id, 100),
        (call.con_id, -1),
        (put.con_id, 1),
    ]
    assert conv.greeks.delta == pytest.approx(100 - 55 - 43) and conv.greeks.stock_shares == 100
    assert conv.unrealized == pytest.approx(100.0 - 20.0 - 10.0)  # the stock pro rata: 100/140 of 140
    assert conv.daily_pnl == pytest.approx(50.0 - 30.0)
    assert groups[1].legs[0].quantity == 20 and groups[2].legs[0].quantity == 20
    # nothing is lost: the groups add up to the positions
    assert sum(g.unrealized for g in groups) == pytest.approx(sum(r.unrealized for r in rows))
    assert sum(g.greeks.delta for g in groups) == pytest.approx(sum_greeks(rows).delta)


# --- end to end -----------------------------------------------------------------------------


async def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_conversion_bought_as_one_combo_through_the_desk(tmp_path) -> None:
    from desk.risk import ComboLeg, OrderIntent
    from desk.engine.runtime import Runtime
    from desk.settings import Mode, Settings

    settings = Settings(
        mode=Mode.SIM,
        record=False,
        database_url=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        watchlist=["SPY"],
        kill_switch_file=tmp_path / "kill",
        live_override_file=tmp_path / "o",
        spool_dir=tmp_path / "spool",
        _env_file=None,
    )
    rt = Runtime(settings)
    await rt.start()
    try:
        await wait_for(lambda: rt.broker.state is ConnectionState.CONNECTED and rt.orders.ready, "connected")
        spy = rt.broker.watchlist[0]
        await rt.chains.set_underlying(spy)
        chains = rt.chains

        def computed() -> bool:
            chains.flush()  # the UI's timer does this
            return chains.compute_count > 0 and math.isfinite(chains.q)

        await wait_for(computed, "the chain's Greeks")
        atm = chains.atm_strike
        call, put = chains.contracts.calls[atm], chains.contracts.puts[atm]
        await wait_for(
            lambda: all((q := rt.quote_for(i)) is not None and q.bid > 0 and q.ask > 0 for i in (spy, call, put)),
            "the legs' quotes",
        )
        legs = (ComboLeg(spy, "BUY", 100), ComboLeg(call, "SELL", 1), ComboLeg(put, "BUY", 1))
        bag = dataclasses.replace(spy, sec_type="BAG", con_id=0, multiplier=100)
        book = rt.orders.preview(OrderIntent(bag, "BUY", 1, "MKT", legs=legs))
        result = await rt.orders.place(OrderIntent(bag, "BUY", 1, "LMT", limit_price=round(book.ask + 0.50, 2), legs=legs))
        assert result.sent, result.reasons
        ref = result.client_order_id

        def priced() -> list[PositionRow] | None:
            chains.flush()
            rows = [r for r in rt.account.rows() if r.quantity]
            if (
                len(rows) == 3
                and all(math.isfinite(r.delta) for r in rows)
                and all(chains.live_greeks(r.instrument.con_id) is not None for r in rows if r.is_option)
            ):
                return rows
            return None

        await wait_for(lambda: priced() is not None, "three priced positions")
        rows = priced()
        g = rt.account.greeks(rows)
        assert g.stock_shares == 100 and g.priced == g.options == 2
        assert abs(g.delta) < 2.0, g  # near delta-neutral: 100 shares against -1 call +1 put
        for r in rows:
            if r.is_option:  # one contract, one IV: the chain's
                assert r.iv == chains.live_greeks(r.instrument.con_id).iv
        carry = chains.carry("SPY", call.expiry)
        assert carry.q == chains.q and carry.rate == chains.rate
        # one group: the combo's orderRef, its three legs beneath, P&L and Greeks summed
        await wait_for(lambda: len(rt.orders.ledger.fills(ref)) >= 4, "the combo's executions")
        [group] = rt.account.groups(rt.orders.ledger.fills(), rows)
        assert group.order_ref == ref and group.combo and len(group.legs) == 3
        assert group.greeks.delta == pytest.approx(g.delta)
        assert group.unrealized == pytest.approx(sum(r.unrealized for r in rows), abs=0.01)

        def daily() -> float:  # each leg's daily P&L comes with its own reqPnLSingle answer
            [grp] = rt.account.groups(rt.orders.ledger.fills(), [r for r in rt.account.rows() if r.quantity])
            return grp.daily_pnl

        await wait_for(lambda: np.isfinite(daily()), "the combo's daily P&L (every leg's pnlSingle)")
    finally:
        await rt.stop()
