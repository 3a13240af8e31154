"""Deterministic snapshots of the trading views: a single-leg ticket, a combo ticket, the
blotter with working, filled, rejected and combo orders, the positions pane with portfolio
Greeks, one row per position and grouped by order.

The desk comes from the factory over the seeded market (see ``snapshot_app``); the
ticket's backend serves fixed quotes and runs the real risk engine on them, and the
blotter's rows come from the real order book fed with gateway reports, so only the market
is pinned.
"""

from __future__ import annotations

import math

from ui_testlib import FROZEN_AT
from snapshot_app import make_snapshot_app

from desk.domain import FrozenClock, Instrument, Quote
from desk.domain.orders import BrokerOrder, Fill, OrderError
from desk.orders.book import OrderBook
from desk.orders.ledger import FillLedger
from desk.risk import ComboLeg, MarginImpact, MarketContext, OrderIntent, RiskLimits, evaluate
from desk.ui.screens.ticket import TicketScreen

SIZE = (120, 50)
SPY = Instrument("SPY", con_id=756733, primary_exchange="ARCA")
CALL = Instrument("SPY", "OPT", con_id=900001, expiry="20261218", strike=600.0, right="C", multiplier=100)
PUT = Instrument("SPY", "OPT", con_id=900002, expiry="20261218", strike=600.0, right="P", multiplier=100)
BAG = Instrument("SPY", "BAG", multiplier=100)
QUOTES = {SPY.con_id: (599.98, 600.02), CALL.con_id: (24.10, 24.30), PUT.con_id: (21.60, 21.80)}
DELTAS = {SPY.con_id: 1.0, CALL.con_id: 0.53, PUT.con_id: -0.47}


class FixedBackend:
    """The ticket's backend over fixed quotes, the real :func:`desk.risk.evaluate`, a fixed
    account ($1,000,000 of AvailableFunds) and, for the stock, a fixed IB what-if."""

    live = False

    def quote(self, instrument: Instrument) -> tuple[float, float, float]:
        bid, ask = QUOTES.get(instrument.con_id, (math.nan, math.nan))
        return bid, ask, (bid + ask) / 2

    def delta(self, instrument: Instrument) -> float:
        return DELTAS.get(instrument.con_id, math.nan)

    def preview(self, intent: OrderIntent, margin):
        quotes = [Quote(ins, bid=b, ask=a, time=FROZEN_AT) for ins, (b, a) in
                  ((SPY, QUOTES[SPY.con_id]), (CALL, QUOTES[CALL.con_id]), (PUT, QUOTES[PUT.con_id]))]
        ctx = MarketContext(FROZEN_AT, quotes=quotes, daily_pnl=0.0, buying_power=4_000_000.0,
                            available_funds=1_000_000.0, margin=margin, underlying_price=600.0)
        return evaluate(intent, ctx, RiskLimits(enforce_market_hours=False))

    async def what_if(self, intent: OrderIntent):
        if intent.is_combo:
            return None  # the screen then says there is no margin preview from IB
        return MarginImpact(init_margin_before=0.0, init_margin_change=30_000.0, init_margin_after=30_000.0,
                            maint_margin_before=0.0, maint_margin_change=15_000.0, maint_margin_after=15_000.0,
                            equity_with_loan_before=1_000_000.0, equity_with_loan_change=-1.0,
                            equity_with_loan_after=999_999.0)

    async def submit(self, intent, confirmation, margin=None):  # never pressed in a snapshot
        raise RuntimeError("snapshot")

    def on_update(self, fn) -> None:  # previews answer at once here
        pass

    def gate_summary(self) -> tuple[str, bool]:
        return "SIM: orders on", True


async def _settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def _ticket(instrument: Instrument, action: str, intent: OrderIntent | None = None):
    async def run_before(pilot) -> None:
        await _settle(pilot)
        screen = TicketScreen(instrument, action, FixedBackend(), quantity=intent.quantity if intent else 100,
                              title="Combo ticket" if intent else "Order ticket", intent=intent)
        await pilot.app.push_screen(screen)
        await pilot.pause(0.5)  # the what-if answers after its debounce
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_single_leg_ticket(snap_compare):
    """BUY 100 SPY at the ask: every check, IB's what-if, funds and cost."""
    assert snap_compare(make_snapshot_app(), terminal_size=SIZE, run_before=_ticket(SPY, "BUY"))


def test_combo_ticket(snap_compare):
    """A conversion (BUY 100 SPY, SELL 1 600 C, BUY 1 600 P): every leg with its market,
    delta and position, the net bid / ask from the legs, no margin preview from IB."""
    legs = (ComboLeg(SPY, "BUY", 100), ComboLeg(CALL, "SELL", 1), ComboLeg(PUT, "BUY", 1))
    intent = OrderIntent(BAG, "BUY", 1, "LMT", limit_price=597.70, legs=legs)
    assert snap_compare(make_snapshot_app(), terminal_size=SIZE, run_before=_ticket(BAG, "BUY", intent))


def blotter_rows():
    """Working, filled, rejected and combo rows from the real order book."""
    clock = FrozenClock(FROZEN_AT)
    ledger = FillLedger()
    book = OrderBook(ledger, clock=clock)
    working = OrderIntent(SPY, "BUY", 100, "LMT", limit_price=595.50, tif="GTC")
    book.sent("desk-000000000000000000000001", working, 11)
    book.update(BrokerOrder("desk-000000000000000000000001", "Submitted", 11, 1001, remaining=100))
    filled = OrderIntent(CALL, "SELL", 2, "LMT", limit_price=24.10)
    book.sent("desk-000000000000000000000002", filled, 12)
    ledger.add(Fill("e1", "desk-000000000000000000000002", FROZEN_AT, CALL, "SLD", 2, 24.15, 12, 1002, 1.30))
    book.fills_changed("desk-000000000000000000000002")
    gme = Instrument("GME", con_id=36285627)
    rejected = OrderIntent(gme, "SELL", 10, "LMT", limit_price=25.0)
    book.sent("desk-000000000000000000000003", rejected, 13)
    book.error("desk-000000000000000000000003", OrderError(13, 201, "Order rejected - reason: GME is hard to borrow"))
    conversion = OrderIntent(BAG, "BUY", 1, "LMT", limit_price=597.70,
                             legs=(ComboLeg(SPY, "BUY", 100), ComboLeg(CALL, "SELL", 1), ComboLeg(PUT, "BUY", 1)))
    book.sent("desk-000000000000000000000004", conversion, 14)
    book.update(BrokerOrder("desk-000000000000000000000004", "Filled", 14, 1004, filled=1, remaining=0,
                            avg_fill_price=597.68))
    return list(book.rows.values())


def test_blotter_with_working_filled_rejected_and_combo_orders(snap_compare):
    async def run_before(pilot) -> None:
        await _settle(pilot)
        app = pilot.app
        app.blotter.apply(blotter_rows())
        app.blotter.focus()
        await pilot.pause()

    assert snap_compare(make_snapshot_app(), terminal_size=(200, 50), run_before=run_before)


def test_blotter_rows_say_what_happened() -> None:
    rows = {r.order_ref[-1]: r for r in blotter_rows()}
    assert rows["1"].status == "Submitted" and rows["1"].working
    assert rows["2"].status == "Filled" and rows["2"].filled == 2 and rows["2"].avg_price == 24.15  # from the ledger
    assert rows["3"].status == "Rejected" and rows["3"].error.startswith("201: ") and not rows["3"].working
    combo = rows["4"]
    assert combo.status == "Filled" and combo.is_combo and len(combo.legs) == 3
    assert combo.describe == "BUY 1 SPY combo(3) LMT 597.7 DAY"


def _positions(*keys: str):
    async def run_before(pilot) -> None:
        import positions_fixture

        await _settle(pilot)
        positions_fixture.apply(pilot.app.positions)
        await pilot.press("4", "z", *keys)
        await pilot.pause()

    return run_before


def test_positions_with_portfolio_greeks(snap_compare):
    """A conversion and 50 AAPL, the pane maximized: IB's P&L per position, one IV per
    contract (18 % both: priced with the chain's carry), the account line and the portfolio
    Greeks with the stock's deltas (about 51 shares: the conversion's 100 shares are offset
    by its options, AAPL's 50 are not)."""
    assert snap_compare(make_snapshot_app(), terminal_size=(200, 50), run_before=_positions())


def test_positions_grouped_by_order(snap_compare):
    """g: the conversion bought as one combo is one group (its order, summed P&L and Greeks,
    its three legs beneath); AAPL held from before is the last group."""
    assert snap_compare(make_snapshot_app(), terminal_size=(200, 50), run_before=_positions("g"))
