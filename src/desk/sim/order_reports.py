"""Reports of the simulated gateway's orders: reqExecutions with IB's ExecutionFilter.

:func:`execution_report` selects the day's executions a reqExecutions (7) asks for —
filtered by clientId, account, time, symbol, secType, exchange and side as TWS filters
them — and lays out execDetails (11) and, for single-leg fills, commissionReport (59).
The filter time is exchange time (New York) unless it carries a zone or the
``yyyymmdd-hh:mm:ss`` UTC form.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from desk.domain.calendar import NEW_YORK
from desk.sim.order_wire import commission_report, exec_details
from desk.sim.orders import Execution

__all__ = ["execution_report"]

log = logging.getLogger("desk.sim.orders")


def execution_report(fields: list[str], executions: Iterable[Execution]) -> tuple[int, list[bytes]]:
    """``(reqId, frames)`` answering the reqExecutions message ``fields`` from
    ``executions`` (in order); the caller appends execDetailsEnd."""
    # 7, version 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side
    req_id = int(fields[2])
    f = (fields[3:] + [""] * 7)[:7]
    client_id = int(f[0]) if f[0].lstrip("-").isdigit() else 0
    acct, since_text, symbol, sec_type, exchange, side = (f[1], f[2], f[3].upper(), f[4].upper(), f[5].upper(), f[6].upper())
    since = parse_filter_time(since_text)
    out = []
    for ex in executions:
        o = ex.order
        c = ex.contract
        if client_id and o.client_id != client_id:
            continue
        if acct and o.account != acct:
            continue
        if since is not None and ex.time < since:
            continue
        sym = c.symbol if c is not None else o.request.contract.symbol.upper()
        st = c.sec_type if c is not None else "BAG"
        if symbol and sym != symbol:
            continue
        if sec_type and st != sec_type:
            continue
        if exchange and ex.exchange != exchange:
            continue
        if side and ex.side != side and not (side in ("BUY", "SELL") and ex.side == ("BOT" if side == "BUY" else "SLD")):
            continue
        out.append(exec_details(req_id, ex))
        if c is not None:
            out.append(commission_report(ex))
    return req_id, out


def parse_filter_time(text: str) -> datetime | None:
    """ExecutionFilter time: ``yyyymmdd hh:mm:ss`` (exchange time) or with a zone name,
    or ``yyyymmdd-hh:mm:ss`` (UTC); ``None`` if empty or unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        if "-" in text[:9]:
            return datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        parts = text.split()
        t = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
        tz = ZoneInfo(parts[2]) if len(parts) > 2 else NEW_YORK
        return t.replace(tzinfo=tz)
    except (ValueError, KeyError):
        log.warning("execution filter time %r not understood, ignored", text)
        return None
