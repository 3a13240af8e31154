"""The engine API, version 1: the typed messages between the engine and its views.

A view (the terminal desk, ``desk order``, a user's script) talks to an engine over a
local stream socket (a Unix socket, or a loopback TCP port with a token) (:mod:`desk.engine.server`, :mod:`desk.engine.client`). Every message
is one of the :class:`msgspec.Struct` types below, serialised with msgpack and framed by
a 4-byte big-endian length (:func:`encode_frame`, :class:`FrameReader`). Structs are
tagged by class name in the field ``t`` (:class:`Message`; the requests are
:mod:`desk.engine.api_requests`, re-exported here), so a reader decodes straight to the right type
and an unknown or malformed message is one clear error.

Conversation: the view's first message is :class:`Hello` with :data:`API_VERSION`; the
engine answers :class:`Welcome` (or :class:`Failed` with ``code="version"``, or
``code="auth"`` for a TCP view without the engine's token, and closes).
Then every request carries an ``id`` chosen by the view, and its answer (a reply struct
or :class:`Failed`) carries the same ``id``. Streams (:class:`WatchQuotes`) answer with a
full :class:`QuoteRows` snapshot, then deltas of the rows that changed, at the rate the
view asked for (4-20 Hz). A view may send requests while earlier ones are still running.

Units: prices dollars per share (a combo's net per unit), sizes shares or contracts,
times UTC epoch seconds (float), money dollars. NaN means "no value" (msgpack carries
floats exactly, NaN included).

The views' streams and the order ticket's requests carry desk's own plain values
(:class:`~desk.domain.Instrument`, :class:`~desk.domain.orders.OrderRow`,
:mod:`desk.domain.portfolio` rows, option quotes, opportunities, the ticket's
:class:`~desk.domain.intent.OrderIntent` and the risk engine's
:class:`~desk.risk.RiskReport`), which msgspec encodes and validates as it does these
structs (numpy vectors of a payoff as lists of floats); this module imports nothing else
of desk (no IB, SQL, pricing or Textual).

Why msgspec: it validates into typed structs while decoding (one pass, no dicts), it is
a well-kept library, and on this machine it encodes and decodes these messages several
times faster than json + dataclasses (``bench/engine_api.py`` measures it).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

import numpy as np

from desk.domain.chain import ChainRow
from desk.domain.intent import MarginImpact
from desk.domain.models import Instrument, RecorderStats
from desk.domain.opportunity import Tracked
from desk.domain.options import OptionQuote
from desk.domain.orders import OrderRow as DeskOrderRow
from desk.domain.portfolio import AccountFigures, PortfolioGreeks, PositionGroup, PositionRow
from desk.risk.engine import RiskReport
from desk.engine.api_requests import (
    Message,
    ContractTerms,
    LegTerms,
    OrderTerms,
    Hello,
    Preview,
    Place,
    ListOrders,
    Cancel,
    WatchQuotes,
    KillSwitch,
    KillAction,
    WatchDesk,
    AddSymbol,
    RemoveSymbol,
    Modify,
    CancelAll,
    WatchChain,
    ChainSelect,
    ChainExpiry,
    ChainWindow,
    WatchOpportunities,
    PreviewIntent,
    WhatIfIntent,
    PlaceIntent,
    Request,
)

__all__ = [
    "API_VERSION",
    "MAX_FRAME",
    "ApiError",
    "Message",
    "FrameReader",
    "encode_frame",
    "decode_request",
    "decode_reply",
    "ContractTerms",
    "LegTerms",
    "OrderTerms",
    "Hello",
    "Preview",
    "Place",
    "ListOrders",
    "Cancel",
    "WatchQuotes",
    "KillSwitch",
    "Welcome",
    "Failed",
    "CheckRow",
    "LegQuote",
    "WhatIf",
    "PreviewReport",
    "PlaceReport",
    "OrderRow",
    "OrderList",
    "CancelReport",
    "QuoteRow",
    "QuoteRows",
    "KillSwitchReport",
    "Request",
    "Reply",
    "KillAction",
    "WatchDesk",
    "AddSymbol",
    "RemoveSymbol",
    "Modify",
    "CancelAll",
    "SymbolReport",
    "CancelAllReport",
    "Notice",
    "TradingStatus",
    "Positions",
    "DeskState",
    "WatchChain",
    "ChainSelect",
    "ChainExpiry",
    "ChainWindow",
    "ChainState",
    "ChainReport",
    "WatchOpportunities",
    "OpportunityState",
    "PreviewIntent",
    "WhatIfIntent",
    "PlaceIntent",
    "IntentPreview",
    "WhatIfReport",
]

#: Version of this interface. A change that an older peer cannot read raises it.
API_VERSION = 1
#: Largest frame either side accepts, bytes (a full watchlist snapshot is a few KiB).
MAX_FRAME = 8 * 1024 * 1024
#: Slowest and fastest delta rates a view may ask for, Hz.
MIN_RATE_HZ, MAX_RATE_HZ = 4.0, 20.0

_LEN = struct.Struct(">I")


class ApiError(Exception):
    """A frame or message that breaks the protocol; ``str()`` is one line."""


# --- replies and streams (engine -> view) ------------------------------------------------


class Welcome(Message):
    """The engine's answer to :class:`Hello`: its version, process id, trading mode
    (sim / paper / live), the gateway's ``host:port`` and the watchlist's symbols."""

    version: int
    pid: int
    mode: str
    endpoint: str
    watchlist: list[str] = []


class Failed(Message):
    """A request that could not be answered. ``code``: ``version`` (the Hello's version is
    not spoken; the engine closes), ``auth`` (a TCP view without the engine's token; the
    engine closes), ``bad_input`` (malformed message or order terms),
    ``refused`` (a gate or check refused, the gateway rejected), ``failed`` (the gateway
    or the database could not be reached), ``unsupported`` (unknown request).
    ``error`` is one line."""

    id: int
    code: str
    error: str


class CheckRow(msgspec.Struct, frozen=True):
    """One pre-trade check: ``value`` and ``limit`` in the check's unit (NaN: none)."""

    name: str
    passed: bool
    value: float
    limit: float
    text: str


class LegQuote(msgspec.Struct, frozen=True):
    """A combo leg in a preview: ``instrument`` is its key, bid / ask dollars per share."""

    action: str
    ratio: int
    instrument: str
    bid: float
    ask: float


class WhatIf(msgspec.Struct, frozen=True):
    """IB's what-if margin of an order, dollars (NaN where IB gave none)."""

    init_margin_before: float
    init_margin_change: float
    init_margin_after: float
    maint_margin_before: float
    maint_margin_change: float
    maint_margin_after: float
    equity_with_loan_before: float
    equity_with_loan_change: float
    equity_with_loan_after: float
    commission: float
    min_commission: float
    max_commission: float


class PreviewReport(Message):
    """The answer to :class:`Preview`: the order, its checks, the gate's decision, the
    market (price, bid, ask dollars per share), notional and commission (dollars), IB's
    what-if (``None`` if IB gave none) and the available funds before and after."""

    id: int
    order: str
    is_combo: bool
    checks: list[CheckRow]
    gate_allowed: bool
    gate_reason: str
    price: float
    bid: float
    ask: float
    legs: list[LegQuote]
    notional: float
    commission: float
    whatif: WhatIf | None
    funds_before: float
    cost: float
    cost_basis: str
    funds_after: float
    blocked: bool


class PlaceReport(Message):
    """The answer to :class:`Place`: ``status`` of the order path (``sent``, ``blocked``,
    ``rejected``...), its orderRef, the gateway's status once known and its error text,
    the reasons of a refusal."""

    id: int
    status: str
    sent: bool
    order_ref: str
    gateway_status: str
    error: str
    reasons: list[str]
    order: str


class OrderRow(msgspec.Struct, frozen=True):
    """One order of the day: quantities in shares / contracts / combo units, ``avg_price``
    dollars per share (NaN before a fill)."""

    order_ref: str
    order_id: int
    perm_id: int
    order: str
    status: str
    quantity: float
    filled: float
    remaining: float
    avg_price: float
    error: str
    working: bool
    legs: list[str]


class OrderList(Message):
    """The answer to :class:`ListOrders`, by orderId."""

    id: int
    rows: list[OrderRow]


class CancelReport(Message):
    """The answer to :class:`Cancel`: the order's status after the wait; ``done`` when it
    is no longer working."""

    id: int
    order_ref: str
    status: str
    done: bool


class QuoteRow(msgspec.Struct, frozen=True, array_like=True):
    """One watchlist row: conId, symbol, bid / ask / last dollars per share, sizes
    (shares), the day's volume (shares), the previous close, UTC time of the last update
    (NaN before the first), and the update count ``seq``."""

    con_id: int
    symbol: str
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    volume: float
    close: float
    time: float
    seq: int


class QuoteRows(Message):
    """Quotes of the watchlist: ``full`` is the whole list in order (a snapshot, also
    after the watchlist changed), else only the rows that changed since the last one."""

    id: int
    full: bool
    rows: list[QuoteRow]


class KillSwitchReport(Message):
    """The kill switch after a :class:`KillSwitch`: ``state`` active / reduce_only /
    halted, ``since`` UTC epoch seconds (NaN when active), ``reason``, and whether the
    state file was written (``error`` says why not)."""

    id: int
    state: str
    since: float
    reason: str
    persisted: bool
    error: str


class SymbolReport(Message):
    """The answer to :class:`AddSymbol` / :class:`RemoveSymbol`: ``done`` False when the
    symbol was already there (add) or not there (remove); ``instrument`` as qualified."""

    id: int
    symbol: str
    done: bool
    instrument: Instrument | None = None


class CancelAllReport(Message):
    """The answer to :class:`CancelAll`: how many working orders were asked to cancel."""

    id: int
    count: int


class Notice(msgspec.Struct, frozen=True):
    """One message for the user: ``time`` UTC epoch seconds, ``level`` info / warning /
    error, ``text`` one line. ``state``: a connection state (``connected``,
    ``reconnecting``...) when the notice is a change of the gateway connection, else empty."""

    time: float
    level: str
    text: str
    state: str = ""


class TradingStatus(msgspec.Struct, frozen=True):
    """What orders may do now: ``state`` active / reduce_only / halted and its
    ``reason``; ``orders_off`` why the order path is down (the audit log), empty when up;
    ``live`` True when an order needs its symbol typed to confirm; ``gate_line`` the
    ticket's one-line summary and ``gate_ok`` whether an order can pass it."""

    state: str = "active"
    reason: str = ""
    orders_off: str = ""
    live: bool = False
    gate_line: str = ""
    gate_ok: bool = True

    @property
    def engaged(self) -> bool:
        """The kill switch is engaged (``halted``)."""
        return self.state == "halted"

    @property
    def restricted(self) -> bool:
        """New orders are restricted (``reduce_only`` or ``halted``)."""
        return self.state != "active"


class Positions(msgspec.Struct):
    """The positions pane: rows, account figures and portfolio Greeks (units as in
    :mod:`desk.domain.portfolio`), the rows grouped by the order that opened them, and the
    orders' one-line descriptions by orderRef."""

    rows: list[PositionRow]
    figures: AccountFigures
    greeks: PortfolioGreeks
    groups: list[PositionGroup]
    labels: dict[str, str]


class DeskState(Message):
    """The terminal view's state. ``full``: everything (the first message, and after the
    view re-attached); otherwise only what changed since the last one: ``watchlist`` and
    ``stale`` (conIds whose lines are silent) are ``None`` when unchanged, ``quotes`` and
    ``orders`` hold the changed rows, ``trading`` and ``positions`` are ``None`` when
    unchanged, ``notices`` are the messages since the last state. ``connection`` is the
    gateway connection state, ``endpoint`` its ``host:port``, ``mode`` sim / paper / live,
    ``ticks_seen`` the engine's tick count, ``restart`` the gateway's daily restart line."""

    id: int
    full: bool
    connection: str
    endpoint: str
    mode: str
    ticks_seen: int = 0
    restart: str = ""
    watchlist: list[Instrument] | None = None
    stale: list[int] | None = None
    quotes: list[QuoteRow] = []
    orders: list[DeskOrderRow] = []
    trading: TradingStatus | None = None
    positions: Positions | None = None
    recorder: RecorderStats | None = None
    notices: list[Notice] = []


class ChainReport(Message):
    """The answer to a chain request: the chain's underlying symbol, expiry and window
    after it (``spec``, e.g. ``20 strikes``)."""

    id: int
    symbol: str
    expiry: str
    spec: str


class ChainState(Message):
    """The option chain. ``full``: everything (the first message); otherwise ``rows`` is
    ``None`` unless the layout changed (another underlying, expiry or window; then every
    quote of the window comes too), and ``quotes`` are the contracts that changed, with
    desk's IV and Greeks (``ours``) and IB's (``model``), units of
    :class:`~desk.domain.options.OptionQuote`. ``computed``: desk's Greeks were recomputed
    since the last state. ``spot`` / ``forward`` dollars per share, ``days`` calendar days
    to the expiry's close, ``spec`` the window (``20 strikes``); ``message`` the chain's
    news (loading, no listed options...) with its ``message_level``."""

    id: int
    full: bool
    underlying: Instrument | None
    expiry: str
    expiries: list[str]
    atm_strike: float
    spot: float
    forward: float
    days: float
    loading: bool
    message: str
    message_level: str
    message_seq: int
    layout_seq: int
    spec: str
    computed: bool = False
    rows: list[ChainRow] | None = None
    quotes: list[OptionQuote] = []


class OpportunityState(Message):
    """The listed opportunities (live ones by total edge, then gone ones; units of
    :class:`~desk.domain.opportunity.Opportunity`), the whole list each time (it is short).
    ``enabled``: the engine runs a scanner; ``seq`` changes with the list; ``simulated``:
    found on the simulator."""

    id: int
    enabled: bool
    seq: int
    simulated: bool
    tracked: list[Tracked] = []


class IntentPreview(Message):
    """The answer to :class:`PreviewIntent`: the engine's :class:`~desk.risk.RiskReport`,
    or ``error`` (one line) when the order cannot be evaluated (invalid terms)."""

    id: int
    report: RiskReport | None = None
    error: str = ""


class WhatIfReport(Message):
    """The answer to :class:`WhatIfIntent`: IB's what-if (``None``: IB gave none)."""

    id: int
    margin: MarginImpact | None = None


Reply = (
    Welcome
    | Failed
    | PreviewReport
    | PlaceReport
    | OrderList
    | CancelReport
    | QuoteRows
    | KillSwitchReport
    | SymbolReport
    | CancelAllReport
    | DeskState
    | ChainState
    | ChainReport
    | OpportunityState
    | IntentPreview
    | WhatIfReport
)


# --- framing -----------------------------------------------------------------------------


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # the payoff chart's prices and P&L: float64 vectors
        return obj.astype(np.float64).tolist()
    if isinstance(obj, np.floating | np.integer):
        return obj.item()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is np.ndarray:
        return np.asarray(obj, dtype=np.float64)
    raise NotImplementedError(f"cannot decode {kind}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_requests = msgspec.msgpack.Decoder(Request, dec_hook=_dec_hook)
_replies = msgspec.msgpack.Decoder(Reply, dec_hook=_dec_hook)


def encode_frame(msg: msgspec.Struct) -> bytes:
    """One frame: 4-byte big-endian length, then the msgpack of ``msg``."""
    body = _encoder.encode(msg)
    return _LEN.pack(len(body)) + body


def _decode(decoder: msgspec.msgpack.Decoder[Any], body: bytes) -> msgspec.Struct:
    try:
        msg: msgspec.Struct = decoder.decode(body)
        return msg
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ApiError(f"malformed message: {exc}") from None


def decode_request(body: bytes) -> msgspec.Struct:
    """A request from a frame's body; :class:`ApiError` naming what is wrong."""
    return _decode(_requests, body)


def decode_reply(body: bytes) -> msgspec.Struct:
    """A reply or stream message from a frame's body; :class:`ApiError` if malformed."""
    return _decode(_replies, body)


class FrameReader:
    """Splits a byte stream into frame bodies (see :func:`encode_frame`)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the complete frame bodies. :class:`ApiError` when a
        frame announces more than ``max_frame`` bytes (the stream cannot be trusted)."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > self.max_frame:
                raise ApiError(f"frame of {n} bytes exceeds the limit of {self.max_frame}")
            if len(buf) - pos - 4 < n:
                break
            out.append(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out
