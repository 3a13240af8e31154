"""Delayed market data (``reqMarketDataType`` 3 and 4) in the simulated gateway.

What TWS does for an account without live market data subscriptions, and what the
simulator does when its ``delayed_data`` switch is on (the default): after
``reqMarketDataType(3)`` (delayed) or ``(4)`` (delayed-frozen), every *new*
``reqMktData`` line is answered with the warning ``10167`` "Requested market data is not
subscribed. Displaying delayed market data.", a ``marketDataType`` of 3 (or 4), and the
delayed tick types instead of the live ones (TWS API "Available Tick Types"): bid 66,
ask 67, last 68, bid size 69, ask size 70, last size 71, high 72, low 73, volume 74,
close 75, open 76, last timestamp 88, halted 90, and option computations 80-83 for
10-13. Ticks without a delayed counterpart (RT volume, shortable, open interest, ...)
keep their type. Lines opened before the switch stay as they were.

The values themselves are the live ones relabelled, not held back 15 minutes: the
simulator keeps no quote history to delay them with (documented deviation).

With ``delayed_data=False`` the gateway behaves like an account with live subscriptions:
IB then returns live data whatever type was asked for (types 3/4 act as 1/2).
"""

from __future__ import annotations

from collections.abc import Iterable

from desk.sim.messages import Part

__all__ = [
    "DELAYED_TEXT",
    "DELAYED_TICK",
    "DISPLAYING_DELAYED",
    "is_delayed",
    "line_data_type",
    "to_delayed",
]

#: IB message code: "Requested market data is not subscribed. Displaying delayed market
#: data." (a warning for ib_async; the line streams delayed ticks).
DISPLAYING_DELAYED = 10167
DELAYED_TEXT = "Requested market data is not subscribed. Displaying delayed market data."

#: Live tick type -> delayed tick type.
DELAYED_TICK: dict[int, int] = {
    1: 66,
    2: 67,
    4: 68,
    0: 69,
    3: 70,
    5: 71,
    6: 72,
    7: 73,
    8: 74,
    9: 75,
    14: 76,
    45: 88,
    49: 90,
    10: 80,
    11: 81,
    12: 82,
    13: 83,
}
_DELAYED_BYTES = {str(k).encode(): str(v).encode() for k, v in DELAYED_TICK.items()}


def is_delayed(requested_type: int, delayed_data: bool) -> bool:
    """Whether a new line opened under ``reqMarketDataType(requested_type)`` is delayed."""
    return delayed_data and requested_type in (3, 4)


def line_data_type(delayed: bool, requested_type: int) -> int:
    """The marketDataType a line reports: delayed lines 3 (4 when frozen), live lines 1
    (2 when frozen); frozen follows the latest request (2 or 4)."""
    frozen = requested_type in (2, 4)
    if delayed:
        return 4 if frozen else 3
    return 2 if frozen else 1


def to_delayed(parts: Iterable[Part]) -> list[Part]:
    """The same tick parts with their tick types changed to the delayed ones."""
    out: list[Part] = []
    for head, tail, size in parts:
        cut = tail.find(b"\0")
        new = _DELAYED_BYTES.get(tail[:cut])
        if new is None:
            out.append((head, tail, size))
        else:
            t = new + tail[cut:]
            out.append((head, t, len(head) + len(t)))
    return out
