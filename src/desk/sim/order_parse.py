"""The placeOrder (3) parser of the simulated gateway.

:func:`parse_place_order` walks a placeOrder message by position exactly as ib_async's
``client.placeOrder`` writes it at server versions 176-178 (no version field;
conditional blocks for BAG legs, delta-neutral, scale, hedge, algo, PEG BENCH,
conditions) and returns an :class:`~desk.sim.orders.OrderRequest`.

Units: prices in dollars per share; quantities in shares (stocks) or contracts
(options); a combo's quantity counts combo units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from desk.sim.contracts import CONTRACT_FIELDS, ContractQuery
from desk.sim.orders import UNSET_DOUBLE, ComboLeg, OrderRequest

__all__ = ["parse_place_order"]


class _Reader:
    """Sequential reader of a message's fields with clear errors when it is short."""

    __slots__ = ("fields", "i")

    def __init__(self, fields: Sequence[str], start: int) -> None:
        self.fields = fields
        self.i = start

    def take(self, what: str) -> str:
        if self.i >= len(self.fields):
            raise ValueError(f"placeOrder ends at field {self.i}, expected {what}")
        v = self.fields[self.i]
        self.i += 1
        return v

    def skip(self, n: int, what: str) -> None:
        if self.i + n > len(self.fields):
            raise ValueError(f"placeOrder ends at field {len(self.fields)}, expected {what}")
        self.i += n

    def more(self) -> bool:
        return self.i < len(self.fields)


def _f(text: str, what: str) -> float | None:
    if text == "":
        return None
    if text == "Infinite":
        return math.inf
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{what} is not a number: {text!r}") from None
    return None if v >= UNSET_DOUBLE else v


def _i(text: str, what: str, default: int = 0) -> int:
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{what} is not an integer: {text!r}") from None
        if v != int(v):
            raise ValueError(f"{what} is not an integer: {text!r}") from None
        return int(v)


def _b(text: str) -> bool:
    return text not in ("", "0", "false", "False")


def parse_place_order(fields: Sequence[str], version: int = 178) -> OrderRequest:
    """Parse a placeOrder (3) message (``fields[0] == "3"``) sent at server ``version``.

    Follows ``ib_async/client.py`` ``placeOrder`` field by field. Raises ``ValueError``
    naming the field if the message is too short or a number does not parse.
    """
    r = _Reader(fields, 1)
    order_id = _i(r.take("orderId"), "orderId")
    if r.i + CONTRACT_FIELDS > len(fields):
        raise ValueError("placeOrder ends inside the contract")
    contract = ContractQuery.from_fields(list(fields), r.i)
    r.skip(CONTRACT_FIELDS, "contract")
    sec_id_type, sec_id = r.take("secIdType"), r.take("secId")
    if sec_id_type or sec_id:
        contract = contract.with_sec_id(sec_id_type, sec_id)
    action = r.take("action").strip().upper()
    qty_text = r.take("totalQuantity")
    quantity = _f(qty_text, "totalQuantity")
    order_type = r.take("orderType").strip().upper()
    lmt = _f(r.take("lmtPrice"), "lmtPrice")
    aux = _f(r.take("auxPrice"), "auxPrice")
    tif = r.take("tif").strip().upper()
    oca_group = r.take("ocaGroup")
    account = r.take("account").strip()
    open_close = r.take("openClose")
    origin = _i(r.take("origin"), "origin")
    order_ref = r.take("orderRef")
    transmit = r.take("transmit") != "0"  # empty means the default, True
    parent_id = _i(r.take("parentId"), "parentId")
    r.skip(2, "blockOrder, sweepToFill")
    display_size = _i(r.take("displaySize"), "displaySize")
    trigger_method = _i(r.take("triggerMethod"), "triggerMethod")
    outside_rth = _b(r.take("outsideRth"))
    hidden = _b(r.take("hidden"))
    unsupported: list[str] = []

    legs: list[ComboLeg] = []
    leg_prices: list[float | None] = []
    params: list[tuple[str, str]] = []
    if contract.sec_type == "BAG":
        n = _i(r.take("comboLegs count"), "comboLegs count")
        for k in range(n):
            what = f"combo leg {k + 1}"
            legs.append(
                ComboLeg(
                    con_id=_i(r.take(what), f"{what} conId"),
                    ratio=_i(r.take(what), f"{what} ratio"),
                    action=r.take(what).strip().upper(),
                    exchange=r.take(what),
                    open_close=_i(r.take(what), f"{what} openClose"),
                    short_sale_slot=_i(r.take(what), f"{what} shortSaleSlot"),
                    designated_location=r.take(what),
                    exempt_code=_i(r.take(what), f"{what} exemptCode", -1),
                )
            )
        n = _i(r.take("orderComboLegs count"), "orderComboLegs count")
        for _ in range(n):
            leg_prices.append(_f(r.take("orderComboLeg price"), "orderComboLeg price"))
        n = _i(r.take("smartComboRoutingParams count"), "smartComboRoutingParams count")
        for _ in range(n):
            params.append((r.take("param tag"), r.take("param value")))

    r.skip(1, "sharesAllocation")
    r.skip(1, "discretionaryAmt")
    good_after = r.take("goodAfterTime")
    good_till = r.take("goodTillDate")
    r.skip(3, "faGroup, faMethod, faPercentage")
    if version < 177:
        r.skip(1, "faProfile")
    # modelCode .. deltaNeutralAuxPrice (24 fields)
    block = [r.take("order fields") for _ in range(24)]
    oca_type = _i(block[4], "ocaType")
    all_or_none = _b(block[7])
    min_qty_text = block[8]
    min_qty = _i(min_qty_text, "minQty") if min_qty_text else None
    if block[22]:  # deltaNeutralOrderType
        r.skip(8, "delta-neutral fields")
        unsupported.append("delta-neutral orders")
    # continuousUpdate .. scalePriceIncrement
    block = [r.take("scale fields") for _ in range(7)]
    trail_stop = _f(block[2], "trailStopPrice")
    trailing_pct = _f(block[3], "trailingPercent")
    inc = _f(block[6], "scalePriceIncrement")
    if inc is not None and 0 < inc < UNSET_DOUBLE:
        r.skip(7, "scale fields")
        unsupported.append("scale orders")
    r.skip(3, "scaleTable, activeStartTime, activeStopTime")
    hedge_type = r.take("hedgeType")
    if hedge_type:
        r.skip(1, "hedgeParam")
        unsupported.append("hedge orders")
    r.skip(4, "optOutSmartRouting, clearingAccount, clearingIntent, notHeld")
    if _b(r.take("deltaNeutralContract flag")):
        r.skip(3, "deltaNeutralContract")
    algo = r.take("algoStrategy")
    if algo:
        n = _i(r.take("algoParams count"), "algoParams count")
        r.skip(2 * n, "algoParams")
        unsupported.append(f"algo {algo!r}")
    r.skip(1, "algoId")
    what_if = _b(r.take("whatIf"))
    lmt_offset: float | None = None
    # the rest (misc options, solicited, randomize, conditions, cashQty, ...) is read
    # only as far as needed to spot features the simulator does not execute
    if r.more():
        r.skip(4, "orderMiscOptions, solicited, randomizeSize, randomizePrice")
        if order_type in ("PEG BENCH", "PEGBENCH"):
            r.skip(5, "pegged-to-benchmark fields")
        n_cond = _i(r.take("conditions count"), "conditions count")
        if n_cond:
            unsupported.append("order conditions")
        elif r.more():  # adjustedOrderType, triggerPrice, lmtPriceOffset, ...
            r.skip(2, "adjustedOrderType, triggerPrice")
            lmt_offset = _f(r.take("lmtPriceOffset"), "lmtPriceOffset")
    if quantity is None:
        raise ValueError("totalQuantity is empty")
    if good_after:
        unsupported.append("goodAfterTime")
    return OrderRequest(
        order_id=order_id,
        contract=contract,
        action=action,
        quantity=quantity,
        order_type=order_type,
        lmt_price=lmt,
        aux_price=aux,
        tif=tif,
        oca_group=oca_group,
        oca_type=oca_type,
        trailing_percent=trailing_pct,
        trail_stop_price=trail_stop,
        lmt_price_offset=lmt_offset,
        account=account,
        open_close=open_close,
        origin=origin,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        display_size=display_size,
        trigger_method=trigger_method,
        outside_rth=outside_rth,
        hidden=hidden,
        legs=tuple(legs),
        leg_prices=tuple(leg_prices),
        combo_params=tuple(params),
        good_after_time=good_after,
        good_till_date=good_till,
        all_or_none=all_or_none,
        min_qty=min_qty,
        what_if=what_if,
        unsupported=tuple(unsupported),
    )
