"""The wire encoders of the simulated gateway's order messages.

``open_order``, ``order_status``, ``exec_details``, ``commission_report``,
``completed_order`` build the server's messages 5, 3, 11, 59 and 101 in the layouts
ib_async 2.1's ``decoder.py`` reads at server version 178 (from the records of
:mod:`desk.sim.orders`).

Units: prices in dollars per share; quantities in shares (stocks) or contracts
(options); a combo's quantity counts combo units; commissions and margins in dollars.
"""

from __future__ import annotations

from datetime import datetime

from desk.domain.calendar import EXCHANGE_TZ_ID, NEW_YORK
from desk.sim.codec import encode_fields
from desk.sim.orders import Execution, SimOrder, WhatIfState, fmt_num

__all__ = [
    "commission_report",
    "completed_order",
    "exec_details",
    "exec_time",
    "open_order",
    "order_status",
]

# server -> client message ids used here
_OPEN_ORDER = 5
_ORDER_STATUS = 3
_EXECUTION_DATA = 11
_COMMISSION_REPORT = 59
_COMPLETED_ORDER = 101


def _money(x: float) -> str:
    return f"{x:.2f}"


def exec_time(now: datetime) -> str:
    """Execution time as IB sends it: ``yyyymmdd hh:mm:ss US/Eastern`` (exchange time;
    ib_async parses the zone name)."""
    return f"{now.astimezone(NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


def _order_contract(order: SimOrder) -> list[object]:
    if order.contract is not None:
        return order.contract.wire11("SMART")
    q = order.request.contract
    return [q.con_id, q.symbol, "BAG", "", "0", "", "", q.exchange or "SMART", q.currency or "USD", "", ""]


def _combo_fields(order: SimOrder) -> tuple[str, list[object]]:
    """(comboLegsDescrip, [nLegs, legs..., nOrderComboLegs, prices..., nParams, ...])."""
    req = order.request
    if not order.is_combo:
        return "", [0, 0, 0]
    descrip = ",".join(f"{leg.con_id}|{leg.ratio if leg.action == 'BUY' else -leg.ratio}" for leg in req.legs)
    out: list[object] = [len(req.legs)]
    for leg in req.legs:
        out += [
            leg.con_id,
            leg.ratio,
            leg.action,
            leg.exchange,
            leg.open_close,
            leg.short_sale_slot,
            leg.designated_location,
            leg.exempt_code,
        ]
    out.append(len(req.leg_prices))
    out += [fmt_num(p) for p in req.leg_prices]
    out.append(len(req.combo_params))
    for tag, value in req.combo_params:
        out += [tag, value]
    return descrip, out


def open_order(order: SimOrder, status: str | None = None, what_if: WhatIfState | None = None) -> bytes:
    """openOrder (5) for ``order`` with orderState ``status`` (default: the order's);
    with ``what_if`` the what-if answer (whatIf=1 and the margin fields)."""
    req = order.request
    descrip, combo = _combo_fields(order)
    st = status or order.status
    if what_if is not None:
        w = what_if
        margins = [
            _money(w.init_before),
            _money(w.maint_before),
            _money(w.ewl_before),
            _money(w.init_after - w.init_before),
            _money(w.maint_after - w.maint_before),
            _money(w.ewl_after - w.ewl_before),
            _money(w.init_after),
            _money(w.maint_after),
            _money(w.ewl_after),
        ]
        comm = [fmt_num(w.commission), fmt_num(w.commission), fmt_num(w.commission), "USD", w.warning]
    else:
        margins = [""] * 9
        comm = ["", "", "", "", ""]
    fields: list[object] = [
        _OPEN_ORDER,
        order.order_id,
        *_order_contract(order),
        req.action,
        fmt_num(req.quantity),
        req.order_type,
        fmt_num(req.lmt_price),
        fmt_num(req.aux_price),
        order.tif,
        req.oca_group,
        order.account,
        req.open_close,
        req.origin,
        req.order_ref,
        order.client_id,
        order.perm_id,
        int(req.outside_rth),
        int(req.hidden),
        "0",  # discretionaryAmt
        req.good_after_time,
        "",  # goodAfterTime, sharesAllocation
        "",
        "",
        "",  # faGroup, faMethod, faPercentage
        # modelCode .. deltaNeutralAuxPrice
        "",
        req.good_till_date,
        "",
        "",
        "",
        0,
        "",
        -1,
        0,
        "",
        "",
        "",
        "",
        "",
        req.display_size or "",
        0,
        0,
        int(req.all_or_none),
        fmt_num(req.min_qty),
        0,
        0,
        0,
        "",
        req.parent_id,
        req.trigger_method,
        "",
        "",
        "",
        "",
        # continuousUpdate .. comboLegsDescrip
        0,
        "",
        "",
        "",
        "",
        "",
        descrip,
        *combo,
        "",
        "",
        "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0,
        "",
        "",
        0,
        0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, dnc
        "",  # algoStrategy
        0,
        int(what_if is not None),
        st,
        *margins,
        *comm,
        0,
        0,  # randomizeSize, randomizePrice
        0,  # conditions
        # adjustedOrderType .. usePriceMgmtAlgo (16)
        "None",
        "",
        "",
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        "",
        "",
        0,
        0,
        0,
        0,
        "",
        "",
        0,  # duration, postToAts, autoCancelParent
        "",
        "",
        "",
        "",
        "",  # minTradeQty .. midOffsetAtHalf
    ]
    return encode_fields(fields)


def order_status(order: SimOrder, status: str | None = None) -> bytes:
    """orderStatus (3): orderId, status, filled, remaining, avgFillPrice, permId,
    parentId, lastFillPrice, clientId, whyHeld, mktCapPrice."""
    return encode_fields(
        (
            _ORDER_STATUS,
            order.order_id,
            status or order.status,
            fmt_num(order.filled),
            fmt_num(order.remaining),
            fmt_num(order.avg_fill_price),
            order.perm_id,
            order.request.parent_id,
            fmt_num(order.last_fill_price),
            order.client_id,
            "",
            "0",
        )
    )


def exec_details(req_id: int, ex: Execution) -> bytes:
    """execDetails (11), layout of server version 178 (pendingPriceRevision last)."""
    o = ex.order
    if ex.contract is not None:
        contract = ex.contract.wire11(ex.exchange)
    else:
        q = o.request.contract
        contract = [q.con_id, q.symbol, "BAG", "", "0", "", "", ex.exchange, q.currency or "USD", "", ""]
    return encode_fields(
        (
            _EXECUTION_DATA,
            req_id,
            o.order_id,
            *contract,
            ex.exec_id,
            exec_time(ex.time),
            o.account,
            ex.exchange,
            ex.side,
            fmt_num(ex.shares),
            fmt_num(ex.price),
            o.perm_id,
            o.client_id,
            0,
            fmt_num(ex.cum_qty),
            fmt_num(ex.avg_price),
            o.order_ref,
            "",
            "",
            "",
            ex.liquidity,
            0,
        )
    )


def commission_report(ex: Execution) -> bytes:
    """commissionReport (59): execId, commission, currency, realizedPNL (unset for an
    opening execution, as IB sends it), yield, yieldRedemptionDate."""
    realized = "1.7976931348623157E308" if ex.realized_pnl is None else _money(ex.realized_pnl)
    return encode_fields(
        (_COMMISSION_REPORT, 1, ex.exec_id, fmt_num(round(ex.commission, 4)), "USD", realized, "1.7976931348623157E308", "")
    )


def completed_order(order: SimOrder) -> bytes:
    """completedOrder (101) for a filled or cancelled order (no orderId in this message:
    ib_async keys completed orders by permId)."""
    req = order.request
    descrip, combo = _combo_fields(order)
    done = exec_time(order.done_at) if order.done_at else ""
    fields: list[object] = [
        _COMPLETED_ORDER,
        *_order_contract(order),
        req.action,
        fmt_num(req.quantity),
        req.order_type,
        fmt_num(req.lmt_price),
        fmt_num(req.aux_price),
        order.tif,
        req.oca_group,
        order.account,
        req.open_close,
        req.origin,
        req.order_ref,
        order.perm_id,
        int(req.outside_rth),
        int(req.hidden),
        "0",
        req.good_after_time,
        "",
        "",
        "",
        # modelCode .. deltaNeutralAuxPrice (23)
        "",
        req.good_till_date,
        "",
        "",
        "",
        0,
        "",
        -1,
        "",
        "",
        "",
        "",
        "",
        req.display_size or "",
        0,
        int(req.all_or_none),
        fmt_num(req.min_qty),
        0,
        req.trigger_method,
        "",
        "",
        "",
        "",
        0,
        "",
        "",
        "",
        descrip,  # continuousUpdate .. comboLegsDescrip
        *combo,
        "",
        "",
        "",
        "",  # scaleInit, scaleSubs, scalePriceIncrement, hedgeType
        "",
        "",
        0,
        0,  # clearingAccount, clearingIntent, notHeld, dnc flag
        "",  # algoStrategy
        0,
        order.status,
        0,
        0,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        "",
        "",
        "",
        0,
        0,  # trailStopPrice, lmtPriceOffset, cashQty, dontUseAuto.., isOms..
        "",
        fmt_num(order.filled),
        0,
        0,
        "",
        0,
        0,
        0,  # autoCancelDate .. parentPermId
        done,
        order.completed_status,
        "",
        "",
        "",
        "",
        "",  # minTradeQty .. midOffsetAtHalf
    ]
    return encode_fields(fields)
