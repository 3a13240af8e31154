"""Translation of ib_async ticks into recorded rows, shared by the watchlist's and the
option chain's subscriptions (desk.broker.ib_worker, desk.broker.chain_lines).

IB tick types (TWS API "Available Tick Types"): 1/2 bid/ask price (each with its size),
0/3 bid/ask size, 4 last price; the delayed equivalents 66/67/69/70/68 are mapped onto
them. A quote row is written only when the top of book actually changes (IB often repeats
a size after its price); a trade row for every last-price tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from desk.domain import Instrument, TickRecord

_BID_PRICE, _ASK_PRICE, _LAST_PRICE = 1, 2, 4
_BID_SIZE, _ASK_SIZE = 0, 3
_DELAYED = {66: _BID_PRICE, 67: _ASK_PRICE, 68: _LAST_PRICE, 69: _BID_SIZE, 70: _ASK_SIZE}


def ib_number(value: float | None) -> float:
    """A price (dollars per share) or size from ib_async as desk stores it: ``nan`` for
    missing, IB's -1 "no quote" and ib_async's UNSET (float max)."""
    if value is None:
        return math.nan
    value = float(value)
    if value != value or value < 0 or value > 1e300:
        return math.nan
    return value


class Line:
    """One market-data subscription: instrument, ib_async contract, live ticker (``None``
    until requested or after a disconnect) and the last recorded top of book
    ``[bid, ask, bid_size, ask_size]`` (dollars per share; shares or contracts).
    ``requested_at`` / ``last_tick``: monotonic seconds of the last request and the last
    tick (the feed watchdog's input, :mod:`desk.broker.health`); ``retries``: re-requests
    since the last tick."""

    __slots__ = ("instrument", "contract", "ticker", "book", "requested_at", "last_tick", "retries")

    def __init__(self, instrument: Instrument, contract: Any) -> None:
        self.instrument = instrument
        self.contract = contract
        self.ticker: Any = None
        self.book = [math.nan, math.nan, math.nan, math.nan]
        self.requested_at = 0.0
        self.last_tick = 0.0
        self.retries = 0


def tick_records(line: Line, ticks: Iterable[Any], symbol: str, now: datetime) -> list[TickRecord]:
    """Rows for one batch of ib_async ``TickData`` of ``line``, updating ``line.book``.

    ``symbol`` names the rows (the stock symbol, or the option's local symbol); a tick
    without a time gets ``now`` (UTC). Quote rows carry the whole book after the change
    and nan price/size; trade rows the price and size and the book at that moment.
    """
    book = line.book
    con_id = line.instrument.con_id
    out: list[TickRecord] = []
    for tick in ticks:
        tt = _DELAYED.get(tick.tickType, tick.tickType)
        if tt == _LAST_PRICE:
            price = ib_number(tick.price)
            if price == price:
                out.append(
                    TickRecord(
                        tick.time or now, con_id, symbol, "T", book[0], book[1], book[2], book[3], price, ib_number(tick.size)
                    )
                )
            continue
        if tt == _BID_PRICE:
            new = [ib_number(tick.price), book[1], ib_number(tick.size), book[3]]
        elif tt == _ASK_PRICE:
            new = [book[0], ib_number(tick.price), book[2], ib_number(tick.size)]
        elif tt == _BID_SIZE:
            new = [book[0], book[1], ib_number(tick.size), book[3]]
        elif tt == _ASK_SIZE:
            new = [book[0], book[1], book[2], ib_number(tick.size)]
        else:
            continue
        if all(a == b or (a != a and b != b) for a, b in zip(new, book)):
            continue
        book[:] = new
        out.append(TickRecord(tick.time or now, con_id, symbol, "Q", new[0], new[1], new[2], new[3], math.nan, math.nan))
    return out
