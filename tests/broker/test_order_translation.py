"""The broker's pure order translations: domain intent -> ib_async Contract / Order, ib_async
Trade / Fill -> domain BrokerOrder / Fill, gateway errors -> OrderError."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ib_async import ComboLeg as IbComboLeg
from ib_async import CommissionReport, Contract, Execution, Order, OrderStatus, Trade
from ib_async import Fill as IbFill

from desk.broker.orders import broker_order, contract_for, fill_from_ib, ib_order, order_error
from desk.domain import Instrument
from desk.risk import ComboLeg, OrderIntent

SPY = Instrument("SPY", con_id=756733)
CALL = Instrument("SPY", "OPT", con_id=11, expiry="20261218", strike=600.0, right="C", multiplier=100)
PUT = Instrument("SPY", "OPT", con_id=12, expiry="20261218", strike=600.0, right="P", multiplier=100)
BAG = Instrument("SPY", "BAG", multiplier=100)
CONVERSION = OrderIntent(
    BAG, "BUY", 2, "LMT", limit_price=599.5, legs=(ComboLeg(SPY, "BUY", 100), ComboLeg(CALL, "SELL", 1), ComboLeg(PUT, "BUY", 1))
)


def test_a_combo_is_a_smart_routed_guaranteed_bag() -> None:
    contract = contract_for(CONVERSION.instrument, CONVERSION.legs)
    assert contract.secType == "BAG" and contract.exchange == "SMART"
    assert [(leg.conId, leg.ratio, leg.action, leg.exchange) for leg in contract.comboLegs] == [
        (756733, 100, "BUY", "SMART"),
        (11, 1, "SELL", "SMART"),
        (12, 1, "BUY", "SMART"),
    ]
    order = ib_order(CONVERSION, "desk-x")
    assert [(t.tag, t.value) for t in order.smartComboRoutingParams] == [("NonGuaranteed", "0")]
    assert (order.action, order.totalQuantity, order.orderType, order.lmtPrice, order.orderRef) == (
        "BUY",
        2.0,
        "LMT",
        599.5,
        "desk-x",
    )
    single = ib_order(OrderIntent(CALL, "SELL", 1, "STP LMT", limit_price=2.0, stop_price=2.1), "desk-y")
    assert single.smartComboRoutingParams == [] and (single.lmtPrice, single.auxPrice) == (2.0, 2.1)


def test_a_trade_becomes_a_broker_order_with_its_legs() -> None:
    c = Contract(
        secType="BAG",
        symbol="SPY",
        comboLegs=[IbComboLeg(conId=756733, ratio=100, action="BUY"), IbComboLeg(conId=11, ratio=1, action="SELL")],
    )
    o = Order(
        orderId=7,
        clientId=1,
        permId=99,
        action="BUY",
        totalQuantity=2,
        orderType="LMT",
        lmtPrice=599.5,
        tif="GTC",
        orderRef="desk-x",
    )
    s = OrderStatus(orderId=7, status="Submitted", filled=1, remaining=1, avgFillPrice=599.4, permId=99)
    bo = broker_order(Trade(contract=c, order=o, orderStatus=s))
    assert (bo.order_ref, bo.status, bo.order_id, bo.perm_id, bo.filled, bo.remaining) == ("desk-x", "Submitted", 7, 99, 1, 1)
    assert bo.instrument.sec_type == "BAG" and bo.limit_price == 599.5 and math.isnan(bo.stop_price)
    assert [(leg.instrument.con_id, leg.action, leg.ratio) for leg in bo.legs] == [(756733, "BUY", 100), (11, "SELL", 1)]
    assert bo.avg_fill_price == 599.4 and bo.tif == "GTC"


def test_a_fill_and_its_commission_report() -> None:
    t = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    ex = Execution(
        execId="0001.01", time=t, acctNumber="DU1", side="SLD", shares=2, price=24.15, permId=99, orderId=7, orderRef="desk-x"
    )
    fill = fill_from_ib(
        IbFill(
            Contract(secType="OPT", symbol="SPY", conId=11, multiplier="100"),
            ex,
            CommissionReport(execId="0001.01", commission=1.30),
            t,
        )
    )
    assert (fill.exec_id, fill.order_ref, fill.side, fill.shares, fill.price, fill.commission) == (
        "0001.01",
        "desk-x",
        "SLD",
        2.0,
        24.15,
        1.30,
    )
    assert fill.instrument.multiplier == 100 and fill.time == t
    pending = fill_from_ib(IbFill(Contract(secType="STK", symbol="SPY", conId=1), ex, CommissionReport(), t))
    assert math.isnan(pending.commission)  # until IB's report arrives


def test_gateway_errors_tell_rejections_from_notices() -> None:
    assert order_error(7, 201, "Order rejected - reason: no").rejection
    assert not order_error(7, 202, "Order Canceled - reason:").rejection  # the cancel we asked for
    assert not order_error(7, 399, "Order Message: warning").rejection
