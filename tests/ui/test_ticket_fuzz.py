"""Fuzzing the order ticket.

* Property tests (hypothesis) of :class:`TicketModel`: any key sequence leaves a
  consistent form (never raises; ``intent()`` succeeds exactly when ``errors()`` is empty,
  and the intent carries what the fields show).
* Thousands of random keys typed into the real desk (Runtime, embedded simulator,
  ib_async): the app never crashes, and every order that reached the gateway passed every
  gate and every check (its audit intent row says so and it is the only way out).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from trading_stack import trading_desk, wait_for

from textual import events

from desk.domain import Instrument
from desk.risk import RiskInputError
from desk.ui.screens.ticket import TicketScreen
from desk.ui.widgets.ticket import TicketModel

#: (key, character) pairs a trader can type into the ticket
KEYS = [
    ("tab", None),
    ("shift+tab", None),
    ("up", None),
    ("down", None),
    ("backspace", None),
    ("space", " "),
    ("enter", None),
    ("B", "B"),
    ("A", "A"),
    ("M", "M"),
    ("t", "t"),
    ("o", "o"),
    ("r", "r"),
    ("minus", "-"),
    ("full_stop", "."),
    ("x", "x"),
    ("S", "S"),
    ("P", "P"),
    ("Y", "Y"),
    *[(str(d), str(d)) for d in range(10)],
]
STOCK = Instrument("SPY", con_id=756733, min_tick=0.01)
OPTION = Instrument("SPY", "OPT", con_id=9, expiry="20260320", strike=600, right="P", multiplier=100, min_tick=0.05)


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.sampled_from(KEYS), max_size=60),
    instrument=st.sampled_from([STOCK, OPTION]),
    live=st.booleans(),
    book=st.sampled_from([(598.61, 598.62), (1.20, 1.35), (float("nan"), float("nan")), (0.0, 0.05)]),
)
def test_any_key_sequence_leaves_a_consistent_ticket(keys, instrument, live, book) -> None:
    m = TicketModel(instrument, "BUY", live=live, quote=lambda: book)
    for key, char in keys:
        command = m.key(key, char)
        assert command in (None, "submit")
        assert m.field in m.fields
        errors = m.errors()
        try:
            intent = m.intent()
        except RiskInputError as exc:
            assert errors and str(exc) == next(iter(errors.values()))
            continue
        assert not errors
        assert intent.quantity == int(m.text["quantity"]) > 0
        assert intent.order_type.value == m.order_type and intent.tif.value == m.tif
        assert intent.action.value == m.action and intent.outside_rth == m.outside_rth
        for price in (intent.limit_price, intent.stop_price):
            if price is not None:
                assert price > 0 and abs(price / m.tick - round(price / m.tick)) < 1e-6


async def test_thousands_of_random_keys_never_crash_and_send_only_what_passes(tmp_path) -> None:
    rng = random.Random(20260310)
    presses = 0
    async with trading_desk(tmp_path) as (app, pilot, rt):
        while presses < 3000:
            if not isinstance(app.screen, TicketScreen):
                await pilot.press(rng.choice(["b", "s"]))
                await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the ticket")
            burst = [rng.choice(KEYS) for _ in range(rng.randint(1, 40))]
            if rng.random() < 0.05:
                burst.append(("escape", None))
            # posted the way the terminal driver posts them (pilot.press waits for an idle
            # CPU after every key, which the running simulator never gives): a fast typist
            for key, char in burst:
                app.post_message(events.Key(key, char))
            await pilot.pause(0.02)
            presses += len(burst)
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        assert app.is_running and app.return_code is None
        # and then a trader's two deliberate orders: one that passes, one that is refused
        # (so both paths are exercised whatever the random keys did)
        while isinstance(app.screen, TicketScreen):
            await pilot.press("escape")
            await pilot.pause(0.05)
        for keys in (("b", "enter"), ("b", *"5000", "enter")):
            await pilot.press(keys[0])
            await wait_for(lambda: isinstance(app.screen, TicketScreen), pilot, "the ticket")
            await pilot.press(*keys[1:])
            await pilot.pause(0.3)
            while isinstance(app.screen, TicketScreen):
                await pilot.press("escape")
                await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        await rt.audit.drain()
        rows = rt.audit.log.all_events(limit=100_000)
        sent = {r.client_order_id for r in rows if r.event == "sent"}
        intents = {r.client_order_id: r for r in rows if r.event == "intent"}
        # something was sent and something was refused: both paths were exercised
        assert sent and any(r.event == "blocked" for r in rows)
        for ref in sent:
            risk = intents[ref].payload["risk"]
            assert risk["blocked"] is False and all(c["passed"] for c in risk["checks"]), risk
        # every order the gateway knows is one of those, once
        orders = await rt.orders.gateway.orders()
        ours = {o.order_ref for o in orders if o.order_ref.startswith("desk-")}
        assert ours <= sent and len(ours) == len(sent)
