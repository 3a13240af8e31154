"""Message ids, tick types, error codes and builders of the server's messages.

Layouts are those of server version 176-178 as ib_async 2.1's ``decoder.py`` reads them
(see also ``docs/tws-protocol.md``). Every builder returns one complete frame (length
prefix included) ready for ``transport.write``.

The hot path (streaming ticks) does not use these per-message builders: see
:class:`TickEncoder`, which formats one market change once and then only splices each
subscriber's request id in.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import IntEnum

from desk.domain.calendar import EXCHANGE_TZ_ID, NEW_YORK, Session, exchange_date, nyse_calendar
from desk.sim.codec import encode_fields
from desk.sim.market import Changed, MarketChange
from desk.sim.universe import SimStock

_pack_len = struct.Struct(">I").pack

#: Highest server version the simulator speaks (ib_async 2.1 asks for 157..178).
SERVER_VERSION_MAX = 178
#: Lowest: message layouts below assume >= 176 (contractDetails without version field
#: from 164, error's advancedOrderRejectJson from 166, reqContractDetails issuerId 176).
SERVER_VERSION_MIN = 176


class In(IntEnum):
    """Client -> server message ids (TWS API ``OUT`` ids of the official client)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    SET_SERVER_LOGLEVEL = 14
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_MATCHING_SYMBOLS = 81
    REQ_HEAD_TIMESTAMP = 87
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Server -> client message ids (the ids ib_async's decoder dispatches on)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ERR_MSG = 4
    ACCT_VALUE = 6
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCTS = 15
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    SEC_DEF_OPT_PARAMS_END = 76
    SYMBOL_SAMPLES = 79
    TICK_REQ_PARAMS = 81
    PNL = 94
    COMPLETED_ORDERS_END = 102


class Tick(IntEnum):
    """IB tick types (TWS API "Available Tick Types")."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    LAST_TIMESTAMP = 45  # tickString, epoch seconds (UTC)
    SHORTABLE = 46  # tickGeneric; > 2.5 means shares are available to borrow
    RT_VOLUME = 48  # tickString "price;size;ms;volume;vwap;single", generic tick 233
    HALTED = 49  # tickGeneric; 0 not halted
    RT_TRADE_VOLUME = 77  # as RT_VOLUME, trades only, generic tick 375
    SHORTABLE_SHARES = 89  # tickSize, generic tick 236


class Code(IntEnum):
    """IB error / message codes the simulator sends, with IB's meaning (source: TWS API
    "Message Codes", interactivebrokers.github.io/tws-api/message_codes.html).

    ib_async treats 2100-2199 as warnings; the others end the matching request (or
    cancel the matching order) on the client side.
    """

    MAX_TICKERS = 101
    HISTORICAL_DATA_ERROR = 162
    NO_SECURITY_DEFINITION = 200
    ORDER_REJECTED = 201
    CANT_FIND_EID = 300
    DUPLICATE_TICKER_ID = 322
    CLIENT_ID_IN_USE = 326
    NOT_SUBSCRIBED = 354
    MKT_DATA_FARM_BROKEN = 2103
    MKT_DATA_FARM_OK = 2104
    HMDS_FARM_BROKEN = 2105
    HMDS_FARM_OK = 2106
    SEC_DEF_FARM_BROKEN = 2157
    SEC_DEF_FARM_OK = 2158
    ORDER_TO_CANCEL_NOT_FOUND = 10147


#: Message texts, worded as IB words them.
TEXT: dict[int, str] = {
    Code.MAX_TICKERS: "Max number of tickers has been reached",
    Code.HISTORICAL_DATA_ERROR: "Historical Market Data Service error message:{}",
    Code.NO_SECURITY_DEFINITION: "No security definition has been found for the request",
    Code.ORDER_REJECTED: "Order rejected - reason:{}",
    Code.CANT_FIND_EID: "Can't find EId with tickerId:{}",
    Code.DUPLICATE_TICKER_ID: "Duplicate ticker id",
    Code.CLIENT_ID_IN_USE: ("Unable to connect as the client id is already in use. Retry with a unique client id."),
    Code.NOT_SUBSCRIBED: "Requested market data is not subscribed.",
    Code.MKT_DATA_FARM_BROKEN: "Market data farm connection is broken:usfarm",
    Code.MKT_DATA_FARM_OK: "Market data farm connection is OK:usfarm",
    Code.HMDS_FARM_BROKEN: "HMDS data farm connection is broken:ushmds",
    Code.HMDS_FARM_OK: "HMDS data farm connection is OK:ushmds",
    Code.SEC_DEF_FARM_BROKEN: "Sec-def data farm connection is broken:secdefnj",
    Code.SEC_DEF_FARM_OK: "Sec-def data farm connection is OK:secdefnj",
    Code.ORDER_TO_CANCEL_NOT_FOUND: "OrderId {} that needs to be cancelled is not found.",
}

#: Exchanges a US stock routes to through SMART (contractDetails ``validExchanges``).
VALID_EXCHANGES = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,"
    "EDGX,FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)
_N_EXCHANGES = VALID_EXCHANGES.count(",") + 1
#: IB market rule 26: US stocks, 0.01 increment (one id per valid exchange).
MARKET_RULE_IDS = ",".join(["26"] * _N_EXCHANGES)
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,"
    "CONDORDER,DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,"
    "IBKRATS,ICE,IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,"
    "OPGREROUT,PEGBENCH,PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,"
    "RPI,RTH,SCALE,SCALEODD,SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,"
    "TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)


# --- handshake and session -------------------------------------------------------------


def server_hello(version: int, now: datetime) -> bytes:
    """The handshake answer: exactly two fields, version and connection time.

    The time is ``now`` (UTC) as ``yyyymmdd hh:mm:ss UTC``; ib_async ignores it but needs
    the message to have exactly two fields.
    """
    return encode_fields((version, now.strftime("%Y%m%d %H:%M:%S") + " UTC"))


def error(req_id: int, code: int, text: str | None = None, *args: object) -> bytes:
    """errorMsg (4): ``4,2,reqId,code,text,advancedOrderRejectJson``. ``text`` defaults to
    IB's wording for ``code`` formatted with ``args``; ``req_id`` -1 for session-wide."""
    if text is None:
        text = TEXT.get(code, "").format(*args)
    return encode_fields((Out.ERR_MSG, 2, req_id, int(code), text, ""))


def managed_accounts(accounts: Iterable[str]) -> bytes:
    return encode_fields((Out.MANAGED_ACCTS, 1, ",".join(accounts)))


def next_valid_id(order_id: int) -> bytes:
    return encode_fields((Out.NEXT_VALID_ID, 1, order_id))


def current_time(epoch_seconds: int) -> bytes:
    """currentTime (49): epoch seconds, UTC."""
    return encode_fields((Out.CURRENT_TIME, 1, int(epoch_seconds)))


# --- sync "end" messages and account data ----------------------------------------------


def position_end() -> bytes:
    return encode_fields((Out.POSITION_END, 1))


def open_order_end() -> bytes:
    return encode_fields((Out.OPEN_ORDER_END, 1))


def completed_orders_end() -> bytes:
    return encode_fields((Out.COMPLETED_ORDERS_END,))


def exec_details_end(req_id: int) -> bytes:
    return encode_fields((Out.EXECUTION_DATA_END, 1, req_id))


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return encode_fields((Out.ACCT_VALUE, 2, key, value, currency, account))


def account_update_time(now: datetime) -> bytes:
    """updateAccountTime (8): ``HH:MM`` in exchange time (US/Eastern), as TWS shows it."""
    return encode_fields((Out.ACCT_UPDATE_TIME, 1, now.astimezone(NEW_YORK).strftime("%H:%M")))


def account_download_end(account: str) -> bytes:
    return encode_fields((Out.ACCT_DOWNLOAD_END, 1, account))


def account_update_multi(req_id: int, account: str, model: str, key: str, value: str, currency: str) -> bytes:
    return encode_fields((Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model, key, value, currency))


def account_update_multi_end(req_id: int) -> bytes:
    return encode_fields((Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id))


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    return encode_fields((Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency))


def account_summary_end(req_id: int) -> bytes:
    return encode_fields((Out.ACCOUNT_SUMMARY_END, 1, req_id))


def sec_def_opt_params_end(req_id: int) -> bytes:
    return encode_fields((Out.SEC_DEF_OPT_PARAMS_END, req_id))


def pnl(req_id: int, daily: float, unrealized: float, realized: float) -> bytes:
    """pnl (94): daily, unrealized and realized P&L of an account, dollars."""
    return encode_fields((Out.PNL, req_id, f"{daily:.2f}", f"{unrealized:.2f}", f"{realized:.2f}"))


def symbol_samples(req_id: int, stocks: Iterable[SimStock]) -> bytes:
    """symbolSamples (79) for reqMatchingSymbols, layout of server version >= 176:
    per match conId, symbol, secType, primaryExchange, currency, derivative sec types
    (none simulated yet), description (long name), issuerId."""
    fields: list[object] = [Out.SYMBOL_SAMPLES, req_id]
    rows = list(stocks)
    fields.append(len(rows))
    for s in rows:
        fields += [s.con_id, s.symbol, s.sec_type, s.primary_exchange, s.currency, 0, s.long_name, ""]
    return encode_fields(fields)


# --- contract details ------------------------------------------------------------------


def trading_class(stock: SimStock) -> str:
    """IB's trading class / market name: ``NMS`` for NASDAQ listings, else the symbol."""
    return "NMS" if stock.primary_exchange == "NASDAQ" else stock.symbol


def hours_text(now: datetime, span: Callable[[Session], tuple[datetime, datetime]], days: int = 7) -> str:
    """IB's hours text (``20261127:0930-20261127:1300;20261128:CLOSED;...``), exchange
    time, for ``days`` calendar days from ``now``'s exchange date: ``span(session)`` ->
    (start, end) on each session of the desk's exchange calendar
    (:func:`desk.domain.calendar.nyse_calendar`), ``CLOSED`` on weekends and holidays."""
    day0 = exchange_date(now)
    by_day = {s.day: s for s in nyse_calendar().sessions(day0, day0 + timedelta(days=days - 1))}
    out = []
    for i in range(days):
        d = day0 + timedelta(days=i)
        s = by_day.get(d)
        if s is None:
            out.append(f"{d:%Y%m%d}:CLOSED")
        else:
            lo, hi = (t.astimezone(NEW_YORK) for t in span(s))
            out.append(f"{lo:%Y%m%d:%H%M}-{hi:%Y%m%d:%H%M}")
    return ";".join(out)


def session_hours(now: datetime, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` of a US stock in IB's format, exchange time, for
    ``days`` calendar days from ``now``'s exchange date: trading hours are IB's extended
    hours (04:00 to 4 hours after the close), liquid hours the regular session (09:30 to
    16:00, 13:00 on half days); ``CLOSED`` on weekends and exchange holidays."""
    return (hours_text(now, lambda s: (s.pre_open, s.post_close), days), hours_text(now, lambda s: (s.open, s.close), days))


def contract_details(req_id: int, stock: SimStock, exchange: str, now: datetime) -> bytes:
    """contractDetails (10) for a stock, layout of server version >= 164 (no version
    field, no mdSizeMultiplier; minSize/sizeIncrement/suggestedSizeIncrement at the end).
    ``exchange`` is the exchange the request asked for (``SMART`` by default)."""
    tc = trading_class(stock)
    trading, liquid = session_hours(now)
    return encode_fields(
        (
            Out.CONTRACT_DATA,
            req_id,
            stock.symbol,
            stock.sec_type,
            "",  # lastTradeDate
            "0",  # strike
            "",  # right
            exchange,
            stock.currency,
            stock.symbol,
            tc,
            tc,
            stock.con_id,
            repr(stock.min_tick),
            "",  # multiplier
            ORDER_TYPES,
            VALID_EXCHANGES,
            1,  # priceMagnifier
            0,  # underConId
            stock.long_name,
            stock.primary_exchange,
            "",  # contractMonth
            stock.industry,
            stock.category,
            stock.subcategory,
            EXCHANGE_TZ_ID,
            trading,
            liquid,
            "",  # evRule
            "",  # evMultiplier
            1,
            "ISIN",
            stock.isin,  # secIdList
            1,  # aggGroup
            "",
            "",  # underSymbol, underSecType
            MARKET_RULE_IDS,
            "",  # realExpirationDate
            stock.stock_type,
            "1",
            "1",
            "100",  # minSize, sizeIncrement, suggestedSizeIncrement (shares)
        )
    )


def contract_details_end(req_id: int) -> bytes:
    return encode_fields((Out.CONTRACT_DATA_END, 1, req_id))


# --- market data -----------------------------------------------------------------------


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str = "9c0001", snapshot_permissions: int = 3) -> bytes:
    """tickReqParams (81): sent first for every market data request."""
    return encode_fields((Out.TICK_REQ_PARAMS, req_id, repr(min_tick), bbo_exchange, snapshot_permissions))


def market_data_type(req_id: int, data_type: int) -> bytes:
    """marketDataType (58): 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
    return encode_fields((Out.MARKET_DATA_TYPE, 1, req_id, data_type))


def tick_snapshot_end(req_id: int) -> bytes:
    return encode_fields((Out.TICK_SNAPSHOT_END, 1, req_id))


# Heads of the four tick messages: message id and version 6, NUL-terminated.
_H_PRICE = b"1\x006\x00"
_H_SIZE = b"2\x006\x00"
_H_GENERIC = b"45\x006\x00"
_H_STRING = b"46\x006\x00"

#: One message minus its request id: (head, tail, len(head) + len(tail)).
Part = tuple[bytes, bytes, int]


def _part(head: bytes, tail: str) -> Part:
    t = tail.encode()
    return (head, t, len(head) + len(t))


def price_part(tick_type: int, price: str, size: str = "0", attrib: int = 0) -> Part:
    """tickPrice (1): ``1,6,reqId,tickType,price,size,attribMask`` (exactly 7 fields)."""
    return _part(_H_PRICE, f"{tick_type}\0{price}\0{size}\0{attrib}\0")


def size_part(tick_type: int, size: str) -> Part:
    """tickSize (2): ``2,6,reqId,tickType,size`` (size in shares, Decimal text)."""
    return _part(_H_SIZE, f"{tick_type}\0{size}\0")


def string_part(tick_type: int, value: str) -> Part:
    """tickString (46): ``46,6,reqId,tickType,value``."""
    return _part(_H_STRING, f"{tick_type}\0{value}\0")


def generic_part(tick_type: int, value: str) -> Part:
    """tickGeneric (45): ``45,6,reqId,tickType,value``."""
    return _part(_H_GENERIC, f"{tick_type}\0{value}\0")


def render(parts: Iterable[Part], rid: bytes, out: list[bytes]) -> None:
    """Append the frames of ``parts`` for request id ``rid`` (``b"123\\0"``) to ``out``."""
    n = len(rid)
    for head, tail, size in parts:
        out.append(_pack_len(size + n))
        out.append(head)
        out.append(rid)
        out.append(tail)


class TickEncoder:
    """Formats market changes as tick-message parts, once per change for all subscribers.

    ``encode(change, epoch_ms)`` returns ``(parts, rt_parts)``: the parts every
    subscriber of the symbol gets, and the RT volume parts (tick 48, generic tick 233;
    tick 77 for 375) sent only to subscribers that asked for them. ``epoch_ms`` is the
    change's time (UTC, milliseconds since the epoch) used for the last-trade timestamp
    (tick 45, seconds) and RT volume (milliseconds).

    What a real gateway sends for a stock, and so does this: a price change of bid/ask as
    tickPrice carrying the new size (attribute mask 1, canAutoExecute); a size-only change as tickSize; a trade as tickPrice
    LAST with the last size, then tickSize VOLUME and tickString LAST_TIMESTAMP; new
    session high/low as tickPrice HIGH/LOW. Sizes and volume are shares.
    """

    __slots__ = ("_fmt",)

    def __init__(self) -> None:
        self._fmt: dict[str, str] = {}

    def price_format(self, stock: SimStock) -> str:
        fmt = self._fmt.get(stock.symbol)
        if fmt is None:
            fmt = self._fmt[stock.symbol] = f"{{:.{stock.decimals}f}}"
        return fmt

    def encode(self, stock: SimStock, ch: MarketChange, epoch_ms: int) -> tuple[list[Part], list[Part], list[Part]]:
        """Return ``(parts, rt_volume_parts, rt_trade_volume_parts)`` for one change."""
        fmt = self.price_format(stock).format
        f = ch.fields
        parts: list[Part] = []
        rt: list[Part] = []
        rtt: list[Part] = []
        if f & Changed.BID:
            parts.append(price_part(Tick.BID, fmt(ch.bid), str(ch.bid_size), 1))
        elif f & Changed.BID_SIZE:
            parts.append(size_part(Tick.BID_SIZE, str(ch.bid_size)))
        if f & Changed.ASK:
            parts.append(price_part(Tick.ASK, fmt(ch.ask), str(ch.ask_size), 1))
        elif f & Changed.ASK_SIZE:
            parts.append(size_part(Tick.ASK_SIZE, str(ch.ask_size)))
        if f & Changed.TRADE:
            last = fmt(ch.last)
            parts.append(price_part(Tick.LAST, last, str(ch.last_size)))
            parts.append(size_part(Tick.VOLUME, str(ch.volume)))
            parts.append(string_part(Tick.LAST_TIMESTAMP, str(epoch_ms // 1000)))
            rt_text = f"{last};{ch.last_size};{epoch_ms};{ch.volume};{ch.vwap};{'true' if ch.trades == 1 else 'false'}"
            rt.append(string_part(Tick.RT_VOLUME, rt_text))
            rtt.append(string_part(Tick.RT_TRADE_VOLUME, rt_text))
        if f & Changed.HIGH:
            parts.append(price_part(Tick.HIGH, fmt(ch.high)))
        if f & Changed.LOW:
            parts.append(price_part(Tick.LOW, fmt(ch.low)))
        return parts, rt, rtt

    def initial(
        self, stock: SimStock, ch: MarketChange, open_: float, close: float, epoch_ms: int, generic: frozenset[int]
    ) -> list[Part]:
        """The first ticks of a subscription or snapshot, in a real gateway's order:
        bid, ask, last (with sizes), volume, high, low, close, open, last timestamp,
        halted; plus the generic ticks asked for (233, 375, 236)."""
        fmt = self.price_format(stock).format
        parts = [
            price_part(Tick.BID, fmt(ch.bid), str(ch.bid_size), 1),
            price_part(Tick.ASK, fmt(ch.ask), str(ch.ask_size), 1),
            price_part(Tick.LAST, fmt(ch.last), str(ch.last_size)),
            size_part(Tick.VOLUME, str(ch.volume)),
            price_part(Tick.HIGH, fmt(ch.high)),
            price_part(Tick.LOW, fmt(ch.low)),
            price_part(Tick.CLOSE, fmt(close)),
            price_part(Tick.OPEN, fmt(open_)),
            string_part(Tick.LAST_TIMESTAMP, str(epoch_ms // 1000)),
            generic_part(Tick.HALTED, "0"),
        ]
        if 236 in generic:  # hard to borrow: 1.0 and no shares (IB: <= 1.5 not shortable)
            htb = not stock.easy_to_borrow
            parts.append(generic_part(Tick.SHORTABLE, "1.0" if htb else "3.0"))
            parts.append(size_part(Tick.SHORTABLE_SHARES, "0" if htb else str(max(100_000, ch.volume // 10))))
        if 233 in generic or 375 in generic:
            text = f"{fmt(ch.last)};{ch.last_size};{epoch_ms};{ch.volume};{ch.vwap};true"
            if 233 in generic:
                parts.append(string_part(Tick.RT_VOLUME, text))
            if 375 in generic:
                parts.append(string_part(Tick.RT_TRADE_VOLUME, text))
        return parts
