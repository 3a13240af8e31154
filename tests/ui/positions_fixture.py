"""Fixed positions for the positions pane's snapshots and pilot tests: a conversion bought
as one combo (+100 SPY, -1 600 C, +1 600 P of 2026-12-18) and 50 AAPL held from before,
priced with the real desk.domain.portfolio / desk.pricing.positions functions at fixed marks and a fixed carry."""

from __future__ import annotations

from datetime import UTC, datetime

from desk.domain.portfolio import AccountFigures, PositionRow, group_positions, stock_greeks, sum_greeks
from desk.pricing.positions import option_greeks
from desk.domain import Instrument
from desk.domain.options import Carry
from desk.domain.orders import Fill
from desk.pricing import bsm_price, time_to_expiry

AT = datetime(2026, 3, 10, 13, 45, tzinfo=UTC)
SPY = Instrument("SPY", con_id=756733, primary_exchange="ARCA")
AAPL = Instrument("AAPL", con_id=265598, primary_exchange="NASDAQ")
CALL = Instrument("SPY", "OPT", con_id=900001, expiry="20261218", strike=600.0, right="C", multiplier=100)
PUT = Instrument("SPY", "OPT", con_id=900002, expiry="20261218", strike=600.0, right="P", multiplier=100)
BAG = Instrument("SPY", "BAG", multiplier=100)
REF = "desk-000000000000000000000004"
LABELS = {REF: "BUY 1 SPY combo(3) LMT 597.7 DAY"}
CARRY = Carry(0.04, 0.013)
SPOT = 600.00


def fills() -> list[Fill]:
    return [
        Fill("e1", REF, AT, BAG, "BOT", 1, 597.68, 14, 1004, 0.0),
        Fill("e2", REF, AT, SPY, "BOT", 100, 600.02, 14, 1004, 1.00),
        Fill("e3", REF, AT, CALL, "SLD", 1, 24.10, 14, 1004, 1.00),
        Fill("e4", REF, AT, PUT, "BOT", 1, 21.80, 14, 1004, 1.00),
    ]


def _row(ins: Instrument, qty: float, avg: float, price: float, prior_close: float | None = None) -> PositionRow:
    """IB's figures (desk.domain.pnl): opened today unless ``prior_close`` is given."""
    m = ins.multiplier
    unreal = round((price - avg) * qty * m, 2)
    daily = unreal if prior_close is None else round((price - prior_close) * qty * m, 2)
    return PositionRow(ins, qty, avg, price, round(qty * price * m, 2), unreal, 0.0, daily)


def rows() -> list[PositionRow]:
    """The positions as AccountManager.rows() gives them: IB's figures, desk's Greeks. The
    options are marked at BSM prices with an 18 % volatility and :data:`CARRY`."""
    T = float(time_to_expiry(CALL.expiry, AT))
    call_px, put_px = (round(float(bsm_price(right == "C", SPOT, 600.0, T, CARRY.rate, CARRY.q, 0.18)), 2)
                       for right in "CP")
    out = [stock_greeks(_row(AAPL, 50, 182.40, 190.00, prior_close=187.25), 190.00),
           stock_greeks(_row(SPY, 100, 600.03, SPOT), SPOT)]
    for r in (_row(CALL, -1, round(call_px - 0.06, 2), call_px), _row(PUT, 1, round(put_px + 0.06, 2), put_px)):
        out.append(option_greeks(r, S=SPOT, T=T, price=r.market_price, carry=CARRY))
    return out


def figures(positions: list[PositionRow]) -> AccountFigures:
    daily = round(sum(r.daily_pnl for r in positions), 2)
    unreal = round(sum(r.unrealized for r in positions), 2)
    return AccountFigures("DU1234567", 1_000_000.00 + daily, 3_700_000.00, 925_000.00, daily, unreal, 0.0, 925_000.00,
                          1_000_000.00 + daily)


def apply(pane) -> None:
    """Show the fixed positions in ``pane`` (a PositionsPane)."""
    positions = rows()
    pane.apply(positions, figures(positions), sum_greeks(positions), group_positions(positions, fills()), LABELS)
