"""Options in the simulated gateway, through the real ib_async client (and the pure parts:
listing, strikes, conIds, vol surface)."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from datetime import date

import exchange_calendars as xc
import numpy as np
import pytest
from ib_async import IB, Contract, Option, Stock

from desk.domain.calendar import exchange_date
from desk.sim import SimGateway
from desk.sim.chain import (
    OPTION_CON_ID_MAX,
    OPTION_CON_ID_MIN,
    ChainListing,
    expiry_epoch,
    listed_expiries,
    occ_symbol,
    option_con_id,
    strike_grid,
)
from desk.sim.ports import SimQuote
from desk.sim.universe import UNIVERSE, lookup
from desk.sim.volsurface import VolSurface, dividend_yield

SPY_CON_ID = 756733


def collect_errors(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


@pytest.fixture
async def fast_gateway() -> AsyncIterator[SimGateway]:
    """A gateway whose market runs 40x faster than the wall clock (2 market seconds per
    50 ms timer tick), so the underlying moves visibly within a second."""
    gw = SimGateway(seed=7, tick_interval=0.05, speed=40.0)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _client(gw: SimGateway, client_id: int = 1) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id)
    return ib


def _monthly(gw: SimGateway) -> str:
    """The second monthly expiry listed today (far enough for smooth Greeks)."""
    today = exchange_date(gw.clock.now())
    monthlies = [d for d, kind in listed_expiries(today) if kind == "monthly"]
    return monthlies[1].strftime("%Y%m%d")


async def _atm_pair(ib: IB, gw: SimGateway, expiry: str) -> tuple[Contract, Contract]:
    """Qualified call and put at the listed strike nearest the current SPY mid."""
    mid = (gw.market.state("SPY").bid + gw.market.state("SPY").ask) / 2
    strikes = gw.options.source.listing.chain("SPY").expiry(expiry).strikes
    k = min(strikes, key=lambda s: abs(s - mid))
    call, put = Option("SPY", expiry, k, "C", "SMART"), Option("SPY", expiry, k, "P", "SMART")
    await ib.qualifyContractsAsync(call, put)
    assert call.conId and put.conId
    return call, put


# --- chains: reqSecDefOptParams ----------------------------------------------------------------


async def test_sec_def_opt_params_lists_expiries_and_strikes(gateway: SimGateway, ib: IB) -> None:
    chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", SPY_CON_ID)
    by_exchange = {c.exchange: c for c in chains}
    assert {"SMART", "CBOE", "ISE", "PHLX"} <= set(by_exchange)
    smart = by_exchange["SMART"]
    assert int(smart.underlyingConId) == SPY_CON_ID  # ib_async keeps it as text
    assert smart.tradingClass == "SPY" and smart.multiplier == "100"
    today = exchange_date(gateway.clock.now())
    exps = [date(int(e[:4]), int(e[4:6]), int(e[6:])) for e in smart.expirations]
    assert exps == sorted(exps) and exps[0] >= today
    assert len(exps) >= 10
    with warnings.catch_warnings():  # pandas deprecation noise from inside the library
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XNYS", start="2020-01-01", end=f"{today.year + 3}-12-31")
        assert all(cal.is_session(d.isoformat()) for d in exps)
    assert any(d.year > today.year for d in exps)  # LEAPS
    # strikes: ascending, $1 near the money, about +/- 30 % around the reference price
    ks = smart.strikes
    assert ks == sorted(ks) and 600.0 in ks and 601.0 in ks
    assert min(ks) <= 600 * 0.75 and max(ks) >= 600 * 1.25
    # the same lists on every exchange
    assert all(c.expirations == smart.expirations and c.strikes == ks for c in chains)


async def test_sec_def_opt_params_by_stock_and_unknown_underlying(ib: IB) -> None:
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    chains = await ib.reqSecDefOptParamsAsync("AAPL", "", "STK", aapl.conId)
    smart = next(c for c in chains if c.exchange == "SMART")
    steps = {round(b - a, 2) for a, b in zip(smart.strikes, smart.strikes[1:])}
    assert 2.5 in steps and 5.0 in steps  # $2.50 near the money, $5 farther out
    errors = collect_errors(ib)
    assert await ib.reqSecDefOptParamsAsync("ZZZZ", "", "STK", 1) == []
    assert [code for _, code, _ in errors] == [200]


# --- contract details ----------------------------------------------------------------------------


async def test_contract_details_for_one_expiry(gateway: SimGateway, ib: IB) -> None:
    expiry = _monthly(gateway)
    cds = await ib.reqContractDetailsAsync(Option("SPY", expiry, exchange="SMART"))
    listed = gateway.options.source.listing.chain("SPY").expiry(expiry)
    assert len(cds) == 2 * len(listed.strikes) >= 200
    pairs = {(cd.contract.strike, cd.contract.right) for cd in cds}
    assert pairs == {(k, r) for k in listed.strikes for r in ("C", "P")}
    con_ids = [cd.contract.conId for cd in cds]
    assert len(set(con_ids)) == len(con_ids)
    assert all(OPTION_CON_ID_MIN <= c < OPTION_CON_ID_MAX for c in con_ids)
    cd = next(cd for cd in cds if cd.contract.strike == 600 and cd.contract.right == "C")
    c = cd.contract
    assert (c.secType, c.symbol, c.lastTradeDateOrContractMonth, c.multiplier, c.currency, c.exchange, c.tradingClass) == (
        "OPT",
        "SPY",
        expiry,
        "100",
        "USD",
        "SMART",
        "SPY",
    )
    assert c.localSymbol == f"SPY   {expiry[2:]}C00600000"
    assert cd.underConId == SPY_CON_ID and cd.underSymbol == "SPY" and cd.underSecType == "STK"
    assert cd.contractMonth == expiry[:6] and cd.realExpirationDate == expiry
    assert cd.minTick == 0.01 and cd.longName == "SPDR S&P 500 ETF TRUST"
    assert "LMT" in cd.orderTypes.split(",") and "CBOE" in cd.validExchanges.split(",")
    assert cd.liquidSessions()


async def test_con_ids_are_stable_across_restarts_and_seeds(gateway: SimGateway, ib: IB) -> None:
    expiry = _monthly(gateway)
    first = await ib.reqContractDetailsAsync(Option("SPY", expiry, 600, exchange="SMART"))
    other = SimGateway(seed=12345, tick_interval=0.05)
    await other.start()
    try:
        ib2 = await _client(other, 2)
        second = await ib2.reqContractDetailsAsync(Option("SPY", expiry, 600, exchange="SMART"))
        ib2.disconnect()
    finally:
        await other.stop()
    assert sorted((cd.contract.right, cd.contract.conId) for cd in first) == sorted(
        (cd.contract.right, cd.contract.conId) for cd in second
    )
    # a listing built from scratch (what a restarted process builds) agrees
    fresh = ChainListing(exchange_date(gateway.clock.now()))
    assert {o.con_id for o in fresh.find("SPY", expiry, 600)} == {cd.contract.conId for cd in first}
    # the hash itself is pinned: a code change that moves every conId fails here
    assert option_con_id("SPY", "20261218", 600.0, "C") == 1323592465


async def test_contract_details_by_con_id_local_symbol_and_partial_terms(gateway: SimGateway, ib: IB) -> None:
    expiry = _monthly(gateway)
    (call,) = await ib.reqContractDetailsAsync(Option("SPY", expiry, 600, "C", "SMART"))
    (by_id,) = await ib.reqContractDetailsAsync(Contract(conId=call.contract.conId))
    assert by_id.contract == call.contract
    (by_occ,) = await ib.reqContractDetailsAsync(Contract(secType="OPT", localSymbol=call.contract.localSymbol, exchange="SMART"))
    assert by_occ.contract.conId == call.contract.conId
    calls = await ib.reqContractDetailsAsync(Option("SPY", expiry, right="C", exchange="SMART"))
    assert calls and {cd.contract.right for cd in calls} == {"C"}
    at_600 = await ib.reqContractDetailsAsync(Option("SPY", "", 600, "P", "SMART"))
    assert {cd.contract.lastTradeDateOrContractMonth for cd in at_600} >= {expiry}
    month = await ib.reqContractDetailsAsync(Option("SPY", expiry[:6], 600, "C", "SMART"))
    assert expiry in {cd.contract.lastTradeDateOrContractMonth for cd in month}
    assert all(cd.contract.lastTradeDateOrContractMonth.startswith(expiry[:6]) for cd in month)
    (cboe,) = await ib.reqContractDetailsAsync(Option("SPY", expiry, 600, "C", "CBOE"))
    assert cboe.contract.exchange == "CBOE"
    errors = collect_errors(ib)
    assert await ib.reqContractDetailsAsync(Option("SPY", expiry, 600.5, "C", "SMART")) == []
    assert await ib.reqContractDetailsAsync(Option("SPY", expiry, 600, "C", "SMART", multiplier="10")) == []
    assert await ib.reqContractDetailsAsync(Contract(conId=OPTION_CON_ID_MIN - 1)) == []
    assert [code for _, code, _ in errors] == [200, 200, 200]


# --- market data -----------------------------------------------------------------------------------


async def test_option_ticker_quotes_greeks_and_parity(gateway: SimGateway, ib: IB, wait_until) -> None:
    expiry = _monthly(gateway)
    call, put = await _atm_pair(ib, gateway, expiry)
    tc, tp = ib.reqMktData(call), ib.reqMktData(put)
    await wait_until(lambda: all(t.modelGreeks and t.bidGreeks and t.askGreeks for t in (tc, tp)), 10.0, "option greeks")
    for t in (tc, tp):
        assert 0 < t.bid < t.ask and t.bidSize > 0 and t.askSize > 0
        assert t.ask - t.bid <= 0.05 * t.ask  # a liquid ATM option
        mg = t.modelGreeks
        assert t.bid <= mg.optPrice <= t.ask
        assert t.bidGreeks.impliedVol < mg.impliedVol < t.askGreeks.impliedVol
        assert mg.gamma > 0 and mg.vega > 0 and mg.theta < 0
        assert 0.3 < mg.vega < 2.0  # dollars per vol point for a ~2-month ATM SPY option
        assert -0.5 < mg.theta < 0  # dollars per calendar day
        # IV is the surface's at this strike, time and underlying price
        T = (expiry_epoch(expiry) - gateway.clock.time()) / (365 * 86400)
        surface = gateway.options.source.surface.vol("SPY", t.contract.strike, T, mg.undPrice, gateway.options.rate)
        assert mg.impliedVol == pytest.approx(float(surface), rel=2e-3)
        assert mg.pvDividend == pytest.approx(mg.undPrice * (1 - math.exp(-0.012 * T)), rel=1e-2)
    assert 0.3 < tc.modelGreeks.delta < 0.7 and -0.7 < tp.modelGreeks.delta < -0.3
    assert tc.modelGreeks.delta - tp.modelGreeks.delta == pytest.approx(math.exp(-dividend_yield("SPY") * T), abs=1e-3)
    # put-call parity (European, continuous dividend yield) holds on mids within spreads
    S, K, r, q = tc.modelGreeks.undPrice, call.strike, gateway.options.rate, dividend_yield("SPY")
    parity = S * math.exp(-q * T) - K * math.exp(-r * T)
    half_spreads = (tc.ask - tc.bid + tp.ask - tp.bid) / 2
    assert abs((tc.midpoint() - tp.midpoint()) - parity) <= half_spreads + 0.02


async def test_greeks_follow_the_underlying(fast_gateway: SimGateway, wait_until) -> None:
    ib = await _client(fast_gateway)
    try:
        call, _put = await _atm_pair(ib, fast_gateway, _monthly(fast_gateway))
        t = ib.reqMktData(call)
        await wait_until(lambda: t.modelGreeks is not None, 10.0, "model greeks")
        first = t.modelGreeks
        await wait_until(lambda: abs(t.modelGreeks.undPrice - first.undPrice) > 0.25, 10.0, "SPY to move 25 cents")
        now = t.modelGreeks
        dS = now.undPrice - first.undPrice
        assert math.copysign(1, now.delta - first.delta) == math.copysign(1, dS)
        # the option's price moved by about delta x the underlying's move
        expected = 0.5 * (first.delta + now.delta) * dS
        assert now.optPrice - first.optPrice == pytest.approx(expected, rel=0.3, abs=0.02)
        assert (t.bid + t.ask) / 2 == pytest.approx(now.optPrice, abs=t.ask - t.bid)
    finally:
        ib.disconnect()


async def test_snapshot_ticker_has_model_greeks(gateway: SimGateway, ib: IB) -> None:
    call, _ = await _atm_pair(ib, gateway, _monthly(gateway))
    (t,) = await ib.reqTickersAsync(call)
    assert t.bid > 0 and t.ask > t.bid and t.modelGreeks is not None
    assert t.modelGreeks.impliedVol > 0 and t.close > 0


async def test_volume_and_open_interest(gateway: SimGateway, ib: IB, wait_until) -> None:
    call, put = await _atm_pair(ib, gateway, _monthly(gateway))
    tc, tp = ib.reqMktData(call, "100,101"), ib.reqMktData(put, "101")
    await wait_until(lambda: tc.callOpenInterest > 0 and tp.putOpenInterest > 0, 10.0, "OI")
    assert tc.volume > 0 and tc.callVolume == tc.volume
    assert math.isnan(tc.putOpenInterest) and math.isnan(tp.callOpenInterest)
    # open interest is as of the previous close: the same contract has the same OI in
    # another session of the seed, whatever the underlying did before it was asked for
    other = SimGateway(seed=7, tick_interval=1.0, speed=20.0)
    await other.start()
    ib2 = await _client(other, 2)
    try:
        for _ in range(10):
            other.step()  # 10 x 20 market seconds
        assert other.market.snapshot("SPY").bid != gateway.market.snapshot("SPY").bid
        t2 = ib2.reqMktData(call, "101")
        await wait_until(lambda: t2.callOpenInterest > 0, 10.0, "OI in the other session")
        assert t2.callOpenInterest == tc.callOpenInterest
    finally:
        ib2.disconnect()
        await other.stop()
    # the underlying: the whole chain's call / put OI and volume, and its 30-day IV
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    ts = ib.reqMktData(spy, "100,101,106")
    await wait_until(lambda: ts.putOpenInterest > 0 and ts.impliedVolatility > 0, 10.0, "stock")
    assert ts.callOpenInterest > 10 * tc.callOpenInterest and ts.callVolume > 0
    mid = (ts.bid + ts.ask) / 2
    atm30 = float(gateway.options.source.surface.atm_vol("SPY", 30 / 365, mid))
    assert ts.impliedVolatility == pytest.approx(atm30, rel=0.01)


async def test_delayed_market_data(gateway: SimGateway, ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    seen: dict[int, set[int]] = {}  # conId -> every tick type received

    def on_tickers(tickers) -> None:
        for t in tickers:
            seen.setdefault(t.contract.conId, set()).update(tk.tickType for tk in t.ticks)

    ib.pendingTickersEvent += on_tickers
    call, _ = await _atm_pair(ib, gateway, _monthly(gateway))
    spy, qqq = Stock("SPY", "SMART", "USD"), Stock("QQQ", "SMART", "USD")
    await ib.qualifyContractsAsync(spy, qqq)
    live = ib.reqMktData(spy)
    ib.reqMarketDataType(3)
    t_opt, t_stk = ib.reqMktData(call), ib.reqMktData(qqq)
    await wait_until(lambda: t_opt.modelGreeks is not None and t_stk.bid > 0, 10.0, "delayed")
    rids = {t.contract.conId: rid for rid, t in ib.wrapper.reqId2Ticker.items()}
    delayed_warnings = {rid for rid, code, _ in errors if code == 10167}
    assert delayed_warnings == {rids[call.conId], rids[qqq.conId]}
    assert all("Displaying delayed market data" in text for _, c, text in errors if c == 10167)
    assert t_opt.marketDataType == 3 and t_stk.marketDataType == 3 and live.marketDataType == 1
    # the stream goes on in delayed tick types only (66 bid, 67 ask, 69/70 sizes, ...)
    await wait_until(lambda: len(seen.get(qqq.conId, ())) >= 6 and len(seen.get(spy.conId, ())) >= 6, 10.0, "streamed ticks")
    assert {66, 67, 75} <= seen[qqq.conId] and not {0, 1, 2, 3, 4, 9} & seen[qqq.conId]
    assert {66, 67} <= seen[call.conId] and not {0, 1, 2, 3, 4, 9} & seen[call.conId]
    assert {1, 2} <= seen[spy.conId] and not {66, 67} & seen[spy.conId]  # opened live
    # delayed-frozen
    ib.reqMarketDataType(4)
    t4 = ib.reqMktData(Stock("IWM", "SMART", "USD", conId=9579970))
    await wait_until(lambda: t4.bid > 0, 10.0, "delayed-frozen")
    assert t4.marketDataType == 4


async def test_options_count_against_the_line_limit(gateway: SimGateway, ib: IB, wait_until) -> None:
    gateway.max_tickers = 3
    errors = collect_errors(ib)
    call, put = await _atm_pair(ib, gateway, _monthly(gateway))
    spy = Stock("SPY", "SMART", "USD")
    await ib.qualifyContractsAsync(spy)
    t1, t2 = ib.reqMktData(spy), ib.reqMktData(call)
    t3 = ib.reqMktData(put)
    other = Option("SPY", call.lastTradeDateOrContractMonth, call.strike + 1, "C", "SMART")
    await ib.qualifyContractsAsync(other)
    t4 = ib.reqMktData(other)
    await wait_until(lambda: any(c == 101 for _, c, _ in errors), 10.0, "error 101")
    assert [c for _, c, _ in errors] == [101]
    assert t3.bid > 0 and math.isnan(t4.bid)
    ib.cancelMktData(call)
    await asyncio.sleep(0.1)
    t5 = ib.reqMktData(other)
    await wait_until(lambda: t5.bid > 0, 10.0, "a line after a cancel")
    assert [c for _, c, _ in errors] == [101] and t1.bid > 0 and t2 is not t5


async def test_unknown_option_market_data_is_error_200(gateway: SimGateway, ib: IB, wait_until) -> None:
    errors = collect_errors(ib)
    bogus = Option("SPY", _monthly(gateway), 600.5, "C", "SMART", conId=OPTION_CON_ID_MAX + 7)
    t = ib.reqMktData(bogus)
    await wait_until(lambda: len(errors) == 1, 10.0, "an error")
    assert [c for _, c, _ in errors] == [200] and math.isnan(t.bid)


async def test_quote_for_and_contract_for(gateway: SimGateway, ib: IB, wait_until) -> None:
    call, _ = await _atm_pair(ib, gateway, _monthly(gateway))
    q = gateway.quote_for(call.conId)
    assert isinstance(q, SimQuote) and 0 < q.bid < q.ask and q.bid_size > 0
    defn = gateway.contract_for(call.conId)
    assert (defn.sec_type, defn.multiplier, defn.right, defn.strike, defn.expiry, defn.underlying_con_id) == (
        "OPT",
        100,
        "C",
        call.strike,
        call.lastTradeDateOrContractMonth,
        SPY_CON_ID,
    )
    stock_q = gateway.quote_for(SPY_CON_ID)
    st = gateway.market.state("SPY")
    assert stock_q == (st.bid, st.ask, st.bid_size, st.ask_size, st.last)
    assert gateway.contract_for(SPY_CON_ID) is lookup("SPY")
    assert gateway.quote_for(1) is None and gateway.contract_for(1) is None
    assert gateway.quote_for(OPTION_CON_ID_MIN - 5) is None
    # the quote the matching engine sees is the one the client sees
    t = ib.reqMktData(call)
    await wait_until(lambda: t.bid > 0, 10.0, "bid")
    q = gateway.quote_for(call.conId)
    assert (t.bid, t.ask) == (q.bid, q.ask)


async def test_whole_chains_quote_on_the_tick_grid_above_intrinsic(gateway: SimGateway) -> None:
    """Every contract of a monthly of SPY (pennies everywhere) and TSLA (penny program:
    $0.05 from $3): a two-sided or ask-only market on the price increment, never an ask
    below intrinsic value (American options), spreads tighter near the money."""
    expiry = _monthly(gateway)
    for symbol in ("SPY", "TSLA"):
        S = sum(gateway.quote_for(lookup(symbol).con_id)[:2]) / 2
        opts = gateway.options.source.listing.find(symbol, expiry)
        assert len(opts) > 100
        rel_spreads = {}
        for o in opts:
            q = gateway.quote_for(o.con_id)
            assert 0 <= q.bid < q.ask and (q.bid_size > 0) == (q.bid > 0) and q.ask_size > 0
            intrinsic = max(S - o.strike if o.is_call else o.strike - S, 0.0)
            assert q.ask >= intrinsic
            for px in (q.bid, q.ask):
                tick = o.tick_for(px)
                assert abs(px / tick - round(px / tick)) < 1e-6, (o.describe(), px, tick)
            rel_spreads[o.strike, o.right] = (q.ask - q.bid) / q.ask
        atm = min((k for k, _ in rel_spreads), key=lambda k: abs(k - S))
        far_call, far_put = max(k for k, _ in rel_spreads), min(k for k, _ in rel_spreads)
        assert rel_spreads[atm, "C"] < 0.02 and rel_spreads[atm, "P"] < 0.02
        assert rel_spreads[far_call, "C"] > 1.5 * rel_spreads[atm, "C"]
        assert rel_spreads[far_put, "P"] > 1.5 * rel_spreads[atm, "P"]


def test_desk_sim_max_lines(tmp_path) -> None:
    """``desk sim --max-lines 2``: the third line of a connection gets error 101."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", "sim", "--port", str(port), "--max-lines", "2", "--seed", "7"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "listening" in line, line

        async def run() -> list[int]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=3)
            errors = collect_errors(ib)
            contracts = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ")]
            await ib.qualifyContractsAsync(*contracts)
            opts = await ib.reqContractDetailsAsync(Option("SPY", "", 600, "C", "SMART"))
            for c in (*contracts, opts[0].contract):
                ib.reqMktData(c)
            deadline = time.monotonic() + 10
            while not errors and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            ib.disconnect()
            return [c for _, c, _ in errors]

        assert asyncio.run(run()) == [101]
    finally:
        proc.terminate()
        proc.wait(10)


# --- the pure parts: listing, strikes, surface ------------------------------------------------------


def test_expiries_move_off_holidays_to_the_previous_session() -> None:
    listed = dict(listed_expiries(date(2026, 11, 21)))
    assert date(2026, 12, 25) not in listed and listed[date(2026, 12, 24)] == "weekly"
    assert listed[date(2026, 12, 18)] == "monthly"  # third Friday
    assert listed[date(2028, 1, 21)] == "leaps"
    spring = dict(listed_expiries(date(2027, 3, 20)))
    assert date(2027, 3, 26) not in spring and date(2027, 3, 25) in spring  # Good Friday
    fridays = [d for d, kind in listed_expiries(date(2026, 11, 21)) if kind == "weekly"]
    assert 4 <= len(fridays) <= 6 and all((d - date(2026, 11, 21)).days <= 42 for d in fridays)


def test_strike_grid_steps_and_range() -> None:
    spy = strike_grid(UNIVERSE["SPY"], 0.25)
    steps = np.diff(spy)
    assert set(np.round(steps, 2)) <= {1.0, 2.0, 3.0, 4.0, 5.0}  # $1, then $5 (joined)
    assert np.count_nonzero(steps == 5.0) >= 10
    near = [k for k in spy if 570 <= k <= 630]
    assert np.all(np.diff(near) == 1.0)
    assert spy[0] <= 600 * 0.8 and spy[-1] >= 600 * 1.2  # 3 x vol x sqrt(T) = 22.5 %
    half_year = strike_grid(UNIVERSE["SPY"], 0.5)
    assert half_year[0] == 420 and half_year[-1] == 780  # capped at +/- 30 %
    weekly = strike_grid(UNIVERSE["SPY"], 7 / 365)
    assert weekly[0] == 510 and weekly[-1] == 690  # at least +/- 15 %
    xlf = strike_grid(UNIVERSE["XLF"], 0.25)
    assert 0.5 in set(np.round(np.diff(xlf), 2))
    leaps = strike_grid(UNIVERSE["SPY"], 1.5, "leaps")
    assert set(np.round(np.diff(leaps), 2)) == {5.0} and leaps[0] <= 300 + 5


def test_occ_symbol_and_con_id_range() -> None:
    assert occ_symbol("SPY", "20261218", "C", 600) == "SPY   261218C00600000"
    assert occ_symbol("XLF", "20270115", "P", 52.5) == "XLF   270115P00052500"
    listing = ChainListing(date(2026, 11, 21))
    ids = [cid for c in listing.chains.values() for e in c.expiries for cid in (*e.call_ids, *e.put_ids)]
    assert len(ids) == len(set(ids)) == len(listing) > 10_000
    assert min(ids) >= OPTION_CON_ID_MIN and max(ids) < OPTION_CON_ID_MAX
    assert max(s.con_id for s in UNIVERSE.values()) < OPTION_CON_ID_MIN


def test_vol_surface_smile_term_structure_and_spot_vol() -> None:
    surf = VolSurface.seeded(7)
    T = 30 / 365
    put_wing, atm, call_wing = surf.vol("SPY", [570, 600, 630], T, 600, 0.045)
    assert put_wing > atm > call_wing  # index put skew
    long_dated = surf.atm_vol("SPY", 5.0)
    assert long_dated == pytest.approx(surf.params["SPY"].atm_long, rel=0.01)
    assert surf.atm_vol("SPY", T, 570) > surf.atm_vol("SPY", T, 600)  # vol up as spot falls
    assert surf.vol("SPY", 600, T, 600, 0.045) == pytest.approx(surf.vol("SPY", 600, T, 600, 0.045))
    for p in surf.params.values():  # no butterfly arbitrage (Gatheral & Jacquier cor. 4.1)
        assert p.eta * (1 + abs(p.rho)) <= 2
    again = VolSurface.seeded(7)
    assert again.params == surf.params and VolSurface.seeded(8).params != surf.params
