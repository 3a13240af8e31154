"""The event log (Ctrl+L) on the real stack: a data loss at the gateway (1101) is said in
the status bar and kept in the log with its time, after newer messages replaced it."""

from __future__ import annotations

from screen_text import screen_text
from trading_stack import trading_desk, wait_for

from desk.ui.screens.events import EventLogScreen


async def test_the_event_log_keeps_what_the_status_bar_said(tmp_path) -> None:
    async with trading_desk(tmp_path) as (app, pilot, rt):
        before = rt.broker.resubscribes
        rt.sim.call(lambda gw: gw.faults.connectivity_lost())
        rt.sim.call(lambda gw: gw.faults.connectivity_restored(data_lost=True))
        await wait_for(lambda: rt.broker.resubscribes > before, pilot, "the lines requested again")
        await wait_for(lambda: any("1101" in e.text for e in app.events.events), pilot, "the 1101 in the log")
        app._report("something newer")  # the status bar moves on
        await pilot.press("ctrl+l")
        await wait_for(lambda: isinstance(app.screen, EventLogScreen), pilot, "the event log")
        await pilot.pause()
        text = screen_text(app)
        assert "requesting every line again" in text and "something newer" in text and "Event log" in text
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, EventLogScreen), pilot, "closed")
