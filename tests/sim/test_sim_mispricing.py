"""Simulated mispricings: injected on watched options at a configurable rate, seen by
the real ib_async client, labelled and logged, then quoted normally again."""

from __future__ import annotations

import asyncio
import logging

import pytest
from ib_async import IB, Option

from desk.sim import SimGateway
from desk.sim.mispricing import MispricingSource


async def _wait(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _watch(gw: SimGateway, n: int = 6):
    ib = IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=3, timeout=5)
    chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", 756733)
    expiry = sorted(chains[0].expirations)[3]
    details = await ib.reqContractDetailsAsync(Option("SPY", expiry, right="C", exchange="SMART"))
    contracts = sorted((d.contract for d in details), key=lambda c: c.strike)
    mid = len(contracts) // 2
    tickers = [ib.reqMktData(c, "", False, False) for c in contracts[mid - n // 2 : mid + n // 2]]
    return ib, tickers


async def test_an_injection_shifts_a_watched_option_for_its_duration(caplog) -> None:
    source = MispricingSource(rate_per_minute=0, seed=5, duration=1.0)
    gw = SimGateway("127.0.0.1", 0, seed=5, option_source=source)
    await gw.start()
    ib = None
    try:
        ib, tickers = await _watch(gw)
        await _wait(lambda: all(t.bid > 0 and t.ask > 0 for t in tickers), what="quotes")
        assert source.injections == []  # rate 0: nothing by itself
        with caplog.at_level(logging.INFO, logger="desk.sim"):
            source.inject()
            await _wait(lambda: bool(source.injections), what="the injection")
        inj = source.injections[0]
        assert "simulated mispricing" in caplog.text
        watched = {t.contract.conId: t for t in tickers}
        assert inj.con_id in watched and inj.right == "C" and inj.shift >= 0.2  # calls are raised
        assert round(inj.shift / 0.05, 6) == round(inj.shift / 0.05)  # on the $0.05 grid
        t = watched[inj.con_id]
        gw_quote = gw.quote_for(inj.con_id)
        await _wait(lambda: t.bid == gw_quote.bid and t.ask == gw_quote.ask, what="the client to see it")
        # the shifted bid is above the fair price: beyond the spread of the model quote
        assert gw_quote.bid > 0 and source.active and source.active[0] is inj
        await _wait(lambda: not source.active, what="the end of the injection")
        back = gw.quote_for(inj.con_id)
        assert back.bid < gw_quote.bid - inj.shift / 2  # quoted normally again
    finally:
        if ib is not None:
            ib.disconnect()
        await gw.stop()


async def test_the_rate_starts_injections_by_itself() -> None:
    source = MispricingSource(rate_per_minute=600, seed=9, duration=0.3)  # ~10 a second
    gw = SimGateway("127.0.0.1", 0, seed=9, option_source=source, tick_interval=0.05)
    await gw.start()
    ib = None
    try:
        ib, tickers = await _watch(gw, 8)
        await _wait(lambda: len(source.injections) >= 3, what="three injections")
        assert {i.con_id for i in source.injections} <= {t.contract.conId for t in tickers}  # watched ones only
        assert all(i.end - i.start == pytest.approx(0.3) for i in source.injections)
    finally:
        if ib is not None:
            ib.disconnect()
        await gw.stop()


def test_bad_parameters_are_refused() -> None:
    for kwargs, what in (
        ({"rate_per_minute": -1}, "rate"),
        ({"duration": 0}, "duration"),
        ({"rate_per_minute": float("nan")}, "rate"),
        ({"extra": -0.1}, "extra"),
    ):
        with pytest.raises(ValueError, match=what):
            MispricingSource(**kwargs)
