"""Deterministic snapshots of the trading views on the real engine: a single-leg ticket, a
combo ticket, the blotter with working, filled, rejected and combo orders, the positions
pane with portfolio Greeks, one row per position and grouped by order.

Everything is the real desk (``snapshot_app.real_snapshot_app``): the engine and its
embedded simulator with the market standing at seed 7's opening quotes, every clock frozen
at 09:45 ET. The orders are placed through the engine's order service and filled (or
rejected) by the simulator, so the blotter and the positions are what a trader would see.
"""

from __future__ import annotations

from snapshot_app import real_snapshot_app, settle
from trading_stack import conversion, settled_orders, spy_of, wait_for

from desk.ui.screens.ticket import TicketScreen

SIZE = (120, 50)
WIDE = (200, 50)


def _ticket(combo: bool):
    async def run_before(pilot) -> None:
        await settle(pilot)
        app = pilot.app
        rt = app.desk.runtime
        if combo:
            intent = conversion(rt)
            app.open_ticket(intent.instrument, "BUY", 1, "Combo ticket", intent=intent)
        else:
            app.open_ticket(spy_of(rt), "BUY", 100)

        def answered() -> bool:
            screen = app.screen
            return (
                isinstance(screen, TicketScreen)
                and screen.report is not None
                and screen.what_if_asked > 0
                and (screen.margin is not None or screen.what_if_state == "none")
            )

        await wait_for(answered, pilot, "the ticket's checks and IB's what-if")
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_single_leg_ticket(snap_compare, tmp_path):
    """BUY 100 SPY at the ask: every check, IB's what-if, funds and cost."""
    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=SIZE, run_before=_ticket(combo=False))


def test_combo_ticket(snap_compare, tmp_path):
    """A conversion (BUY 100 SPY, SELL 1 ATM call, BUY 1 ATM put): every leg with its
    market, delta and position, the net bid / ask from the legs and IB's what-if."""
    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=SIZE, run_before=_ticket(combo=True))


def test_blotter_with_working_filled_rejected_and_combo_orders(snap_compare, tmp_path):
    async def run_before(pilot) -> None:
        await settled_orders(pilot)
        await pilot.press("3", "z")  # the blotter maximized: every order and leg in view
        await pilot.pause()

    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=WIDE, run_before=run_before)


async def test_blotter_rows_say_what_happened(tmp_path) -> None:
    app = real_snapshot_app(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
        refs = await settled_orders(pilot)
        rows = app.desk.runtime.orders.rows
        working, filled, rejected, combo = (rows[refs[n]] for n in ("working", "filled", "rejected", "combo"))
        assert working.status == "Submitted" and working.working and working.tif == "GTC"
        assert filled.filled == 50 and filled.avg_price <= filled.limit_price  # from the executions
        assert rejected.error.startswith("201: ") and "hard to borrow" in rejected.error and not rejected.working
        assert combo.is_combo and len(combo.legs) == 3 and combo.filled == 1
        assert combo.describe.startswith("BUY 1 SPY combo(3) LMT ") and combo.describe.endswith(" DAY")
        assert combo.avg_price <= combo.limit_price


def _positions(*keys: str):
    async def run_before(pilot) -> None:
        await settled_orders(pilot)
        await pilot.press("4", "z", *keys)
        await pilot.pause()

    return run_before


def test_positions_with_portfolio_greeks(snap_compare, tmp_path):
    """The conversion and 50 AAPL, the pane maximized: IB's P&L per position, one IV per
    contract, the account line and the portfolio Greeks with the stock's deltas (about 50
    shares of SPY: the conversion's 100 shares are offset by its options; AAPL's 50 are not)."""
    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=WIDE, run_before=_positions())


def test_positions_grouped_by_order(snap_compare, tmp_path):
    """g: the conversion bought as one combo is one group (its order, summed P&L and Greeks,
    its three legs beneath); the AAPL order is the other."""
    assert snap_compare(real_snapshot_app(tmp_path), terminal_size=WIDE, run_before=_positions("g"))
