"""Plain typed models shared by every layer of desk.

Nothing here imports ib_async, SQLAlchemy or Textual: these are the shapes the broker
translates IB objects into, the recorder writes, and the UI renders.

Conventions used throughout desk:

* prices are dollars per share (per unit of the underlying for options: an option quoted
  at 1.25 with multiplier 100 costs $125 per contract);
* sizes are in shares (stocks) or contracts (options), as IB reports them;
* times are timezone-aware ``datetime`` objects in UTC unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import NamedTuple


class ConnectionState(str, Enum):
    """State of the broker's connection to TWS / IB Gateway / the simulator."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable contract, as qualified by the gateway.

    ``con_id`` is IB's conId (0 until qualified). ``sec_type`` is IB's secType
    (``STK`` for stocks and ETFs, ``OPT`` for options). For options ``expiry`` is
    ``YYYYMMDD``, ``strike`` is dollars per share and ``right`` is ``C`` or ``P``.
    ``multiplier`` is shares per contract (1 for stocks, 100 for US equity options).
    ``min_tick`` is the price increment in dollars.
    """

    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    con_id: int = 0
    primary_exchange: str = ""
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: int = 1
    local_symbol: str = ""
    min_tick: float = 0.01
    long_name: str = ""

    @property
    def key(self) -> str:
        """Human key used by the UI: ``SPY`` or ``GOOG 20160115 750 C``."""
        if self.sec_type == "OPT":
            return f"{self.symbol} {self.expiry} {self.strike:g} {self.right}"
        return self.symbol


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(slots=True)
class Quote:
    """Latest top of book and trade state of one instrument.

    Prices are dollars per share; sizes in shares or contracts; ``volume`` is the
    day's cumulative volume as reported by the gateway (shares for stocks; IB reports
    US stock volume in lots of 100 below API v157, desk always stores shares).
    ``close`` is the previous session's close. Missing values are ``nan``.
    ``time`` is the UTC time of the last update, ``None`` before the first one.
    """

    instrument: Instrument
    bid: float = math.nan
    ask: float = math.nan
    last: float = math.nan
    bid_size: float = math.nan
    ask_size: float = math.nan
    last_size: float = math.nan
    volume: float = math.nan
    close: float = math.nan
    time: datetime | None = None
    #: +1 if the last trade price rose versus the previous one, -1 if it fell, 0 otherwise.
    last_direction: int = 0
    #: number of updates applied, for cheap change detection by the UI
    seq: int = 0

    @property
    def mid(self) -> float:
        """(bid + ask) / 2 in dollars per share; ``nan`` unless both sides are positive."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2.0
        return math.nan

    @property
    def change(self) -> float:
        """last - previous close, dollars per share (``nan`` if either is missing)."""
        return self.last - self.close

    @property
    def change_pct(self) -> float:
        """Change versus previous close in percent (``nan`` if unavailable)."""
        if self.close and self.close > 0:
            return (self.last - self.close) / self.close * 100.0
        return math.nan


class TickKind(str, Enum):
    """Kind of a recorded tick row."""

    QUOTE = "Q"
    TRADE = "T"


class TickRecord(NamedTuple):
    """One recorded tick: a row of the tick table.

    ``time`` is the UTC receive time (tz-aware). A QUOTE row carries the full top of
    book after the change (bid, ask, bid_size, ask_size); ``price``/``size`` are nan.
    A TRADE row carries the trade ``price`` and ``size`` and the book at that moment
    if known (else nan). Prices are dollars per share, sizes shares or contracts.
    """

    time: datetime
    con_id: int
    symbol: str
    kind: str  # TickKind value: "Q" or "T"
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    price: float
    size: float


@dataclass(slots=True)
class RecorderStats:
    """Counters of the tick recorder, all since start-up.

    ``received``: rows handed to the recorder; ``written``: rows committed to the
    database; ``queued``: rows waiting in memory; ``spooled``: rows currently in the
    on-disk spool waiting for the database to come back; ``errors``: failed flush
    attempts.
    """

    received: int = 0
    written: int = 0
    queued: int = 0
    spooled: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass(slots=True)
class StatusEvent:
    """A message for the user from a non-UI layer (gateway errors, warnings, info).

    ``level`` is ``info``, ``warning`` or ``error``; ``code`` is IB's error code when
    the event came from the gateway (0 otherwise).
    """

    level: str
    text: str
    code: int = 0
    time: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)
