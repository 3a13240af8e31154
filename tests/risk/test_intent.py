"""OrderIntent: validation with errors naming the field, JSON round trip, leg deltas."""

from __future__ import annotations

import json

import pytest
from risk_testlib import AAPL, SPY, combo, lmt, option

from desk.domain import Instrument
from desk.risk import Action, ComboLeg, OrderIntent, OrderType, RiskInputError, TimeInForce


def test_strings_become_enums_and_quantity_an_int() -> None:
    i = OrderIntent(SPY, "buy", 100.0, "stp lmt", limit_price=10, stop_price=9.5, tif="gtc")
    assert i.action is Action.BUY and i.order_type is OrderType.STP_LMT and i.tif is TimeInForce.GTC
    assert i.quantity == 100 and isinstance(i.quantity, int)
    assert i.limit_price == 10.0 and isinstance(i.limit_price, float)
    assert i.describe == "BUY 100 SPY STP LMT 9.5/10 GTC"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity": 0}, "quantity must be a positive whole number, got 0"),
        ({"quantity": -5}, "quantity must be a positive whole number"),
        ({"quantity": 1.5}, "quantity must be a positive whole number, got 1.5"),
        ({"quantity": float("nan")}, "quantity must be a positive whole number"),
        ({"quantity": True}, "quantity must be a positive whole number"),
        ({"action": "HOLD"}, "action must be one of BUY, SELL, got 'HOLD'"),
        ({"order_type": "MOC"}, "order_type must be one of LMT, MKT, STP, STP LMT"),
        ({"tif": "FOK"}, "tif must be one of DAY, GTC, IOC"),
        ({"limit_price": None}, "LMT order needs limit_price"),
        ({"limit_price": 0}, "limit_price must be > 0, got 0"),
        ({"limit_price": float("inf")}, "limit_price must be finite"),
        ({"limit_price": "10"}, "limit_price must be a number, got '10'"),
        ({"stop_price": 9.0}, "LMT order takes no stop_price"),
        ({"order_type": "MKT"}, "MKT order takes no limit_price"),
        ({"order_type": "STP", "limit_price": None}, "STP order needs stop_price"),
        ({"instrument": Instrument("SPY")}, "conId must be > 0"),
        ({"instrument": Instrument("ES", "FUT", con_id=5)}, "secType 'FUT' is not supported"),
        ({"instrument": "SPY"}, "instrument must be a desk.domain.Instrument, got str"),
        ({"legs": (ComboLeg(AAPL, "BUY"),)}, "legs are only for combos (secType BAG), not STK"),
        ({"outside_rth": "yes"}, "outside_rth must be true or false"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict, message: str) -> None:
    base = {"instrument": SPY, "action": "BUY", "quantity": 100, "order_type": "LMT", "limit_price": 500.0}
    base.update(kwargs)
    with pytest.raises(RiskInputError) as err:
        OrderIntent(**base)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_option_and_combo_validation() -> None:
    with pytest.raises(RiskInputError, match="option right must be 'C' or 'P'"):
        lmt(Instrument("SPY", "OPT", con_id=9, expiry="20240419", strike=500, right="X", multiplier=100), "BUY", 1, 1.0)
    with pytest.raises(RiskInputError, match="option expiry must be YYYYMMDD, got '2024-04-19'"):
        lmt(Instrument("SPY", "OPT", con_id=9, expiry="2024-04-19", strike=500, right="C", multiplier=100), "BUY", 1, 1.0)
    bag, legs = combo("SPY", [(option("C", 500), "BUY", 1)])
    with pytest.raises(RiskInputError, match="needs at least 2 legs, got 1"):
        OrderIntent(bag, "BUY", 1, "LMT", limit_price=1.0, legs=legs)
    c = option("C", 500)
    bag, legs = combo("SPY", [(c, "BUY", 1), (c, "SELL", 1)])
    with pytest.raises(RiskInputError, match=f"conId {c.con_id} appears in two legs"):
        OrderIntent(bag, "BUY", 1, "LMT", limit_price=1.0, legs=legs)
    with pytest.raises(RiskInputError, match="ratio must be a positive whole number, got 0"):
        ComboLeg(c, "BUY", 0)


def test_combo_net_price_may_be_a_credit() -> None:
    bag, legs = combo("SPY", [(option("P", 500), "SELL", 1), (option("P", 490), "BUY", 1)])
    i = OrderIntent(bag, "BUY", 2, "LMT", limit_price=-1.25, legs=legs)
    assert i.limit_price == -1.25
    assert [(ins.strike, d) for ins, d in i.leg_deltas()] == [(500.0, -2), (490.0, 2)]
    sold = OrderIntent(bag, "SELL", 2, "LMT", limit_price=-1.25, legs=legs)
    assert [d for _, d in sold.leg_deltas()] == [2, -2]


def test_payload_round_trips_through_json() -> None:
    bag, legs = combo("SPY", [(SPY, "BUY", 100), (option("C", 500), "SELL", 1), (option("P", 500), "BUY", 1)])
    intents = [
        OrderIntent(bag, "BUY", 3, "LMT", limit_price=499.5, legs=legs, tif="GTC", account="DU1"),
        OrderIntent(SPY, "SELL", 10, "STP", stop_price=480.0, outside_rth=True),
        OrderIntent(AAPL, "BUY", 1, "MKT"),
    ]
    for i in intents:
        back = OrderIntent.from_payload(json.loads(json.dumps(i.to_payload())))
        assert back == i
        assert back.signature() == i.signature()
    with pytest.raises(RiskInputError, match="payload is malformed"):
        OrderIntent.from_payload({"action": "BUY"})


def test_signature_ignores_tif_but_not_price() -> None:
    a = lmt(SPY, "BUY", 100, 500.0)
    assert a.signature() == lmt(SPY, "BUY", 100, 500.0, tif="GTC").signature()
    assert a.signature() != lmt(SPY, "BUY", 100, 500.01).signature()
    assert a.signature() != lmt(SPY, "SELL", 100, 500.0).signature()
