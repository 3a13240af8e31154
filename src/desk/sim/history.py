"""Historical bars of the simulated gateway: reqHistoricalData (20), keepUpToDate
updates (historicalDataUpdate 90), cancelHistoricalData (25) and reqHeadTimeStamp (87).

:class:`HistoryService` answers the requests of every session. The parts:

* :mod:`desk.sim.history_rules`: the request rules (bar sizes, whatToShow, durations,
  end times, errors 162 and 200) and their parsing;
* :mod:`desk.sim.history_bars`: :class:`Bars` (numpy), their aggregation on the
  exchange clock and :class:`HistorySource`, where bars come from;
* :mod:`desk.sim.history_model`: :class:`ModelHistory` (default), the seeded market
  model: a synthetic, deterministic past before the gateway started, the model's own
  path since;
* a replay source (:mod:`desk.sim.replay`): the recorded bars of the replayed day, and
  recorded daily bars before it.

Bars on the wire: daily bars carry ``YYYYMMDD`` (exchange date); intraday
``yyyymmdd hh:mm:ss US/Eastern`` (``formatDate`` 1) or epoch seconds (``formatDate`` 2);
TRADES bars carry volume (shares or contracts), WAP (dollars per share) and the number
of trades; the quote kinds send -1 for all three, as IB does.

keepUpToDate: after each market step the last (in-progress) bar of every live request is
recomputed and sent as historicalDataUpdate 90 when it changed; a new bar starts when
the clock crosses the bar boundary. cancelHistoricalData stops it.

All times are UTC epoch seconds internally; prices dollars per share.

The names of the three modules above are re-exported here (the import path of the
replay and the bench).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.domain.calendar import EXCHANGE_TZ_ID, NEW_YORK, exchange_date
from desk.sim import messages as m
from desk.sim.codec import encode_fields
from desk.sim.contracts import CONTRACT_FIELDS, ContractQuery
from desk.sim.history_bars import (
    Bars,
    HistoryKey,
    HistorySource,
    aggregate,
    bid_ask_bars,
    bucket_labels,
    daily_from_minutes,
    exchange_midnight,
    rth_mask,
)
from desk.sim.history_model import MAX_SYNTHETIC_DAYS, ModelHistory
from desk.sim.history_rules import (
    BAR_SECONDS,
    HMDS,
    MAX_MINUTES,
    WHAT_TO_SHOW,
    HistoryError,
    duration_start,
    parse_duration,
    parse_end,
)
from desk.sim.messages import Code
from desk.sim.ports import Client, Host

__all__ = [
    "BAR_SECONDS",
    "MAX_SYNTHETIC_DAYS",
    "WHAT_TO_SHOW",
    "Bars",
    "HistoryError",
    "HistoryKey",
    "HistoryService",
    "HistorySource",
    "ModelHistory",
    "aggregate",
    "bid_ask_bars",
    "bucket_labels",
    "daily_from_minutes",
    "exchange_midnight",
    "parse_duration",
    "parse_end",
    "rth_mask",
]

log = logging.getLogger("desk.sim")


@dataclass
class _Request:
    session: Client
    req_id: int
    key: HistoryKey
    what: str
    bar_seconds: int
    use_rth: bool
    format_date: int
    last_sent: tuple = field(default_factory=tuple)  # wire fields of the last bar sent
    last_time: int = 0  # its start, UTC epoch seconds


def _fmt(x: float, decimals: int) -> str:
    if x != x:
        return "-1"
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class HistoryService:
    """Answers the historical requests of every session of one gateway.

    ``HistoryService(gateway)`` serves the gateway's market model through
    :class:`ModelHistory`, or the market's own ``history_source()`` when it has one (the
    replay's :class:`~desk.sim.replay.ReplayHistory`); or pass ``source``.
    The gateway calls :meth:`on_step` after every market step.
    """

    def __init__(self, gateway: Host, source: HistorySource | None = None) -> None:
        self.gateway = gateway
        if source is None:  # a market with its own history (the replay) provides it
            make = getattr(gateway.market, "history_source", None)
            source = make() if make is not None else ModelHistory(gateway.market, gateway.clock, gateway.seed)
        self.source: HistorySource = source
        self._live: dict[tuple[int, int], _Request] = {}
        #: historical requests answered (bars sent) since start
        self.requests = 0

    # --- requests -----------------------------------------------------------------------

    def handle_request(self, session: Client, fields: list[str]) -> None:
        """reqHistoricalData (20): answer with historicalData 17, or error 162/200."""
        req_id = int(fields[1])
        try:
            self._answer(session, req_id, fields)
        except HistoryError as e:
            session.send(m.error(req_id, e.code, e.text))

    def handle_cancel(self, session: Client, fields: list[str]) -> None:
        """cancelHistoricalData (25, version 1, reqId): stop keepUpToDate updates."""
        req_id = int(fields[2]) if len(fields) > 2 else int(fields[-1])
        self._live.pop((id(session), req_id), None)

    def silence_updates(self) -> int:
        """Stop every keepUpToDate request without telling its client (the HMDS farm blip
        of :mod:`desk.sim.faults`); returns how many. A new request is updated again."""
        n = len(self._live)
        self._live.clear()
        return n

    def handle_head_timestamp(self, session: Client, fields: list[str]) -> None:
        """reqHeadTimeStamp (87): headTimestamp 88 with the earliest bar time."""
        req_id = int(fields[1])
        q = ContractQuery.from_fields(fields, 2)
        key = self.source.resolve(q)
        if key is None:
            session.send(m.error(req_id, Code.NO_SECURITY_DEFINITION))
            return
        t = self.source.head_time(key.key)
        if t is None:
            session.send(m.error(req_id, Code.HISTORICAL_DATA_ERROR, f"{HMDS}HMDS query returned no data"))
            return
        text = f"{datetime.fromtimestamp(t, NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"
        session.send(encode_fields((88, req_id, text)))

    def _answer(self, session: Client, req_id: int, fields: list[str]) -> None:
        q = ContractQuery.from_fields(fields, 2)
        i = 2 + CONTRACT_FIELDS
        tail = fields[i:]
        if len(tail) < 7:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}malformed request ({len(fields)} fields)")
        end_text, bar_text, duration_text = tail[1], tail[2].strip(), tail[3]
        use_rth = tail[4].strip() == "1"
        what = tail[5].strip().upper()
        format_date = int(tail[6] or 1) if tail[6].strip().isdigit() else 1
        j = 7
        if q.sec_type == "BAG" and len(tail) > j:
            j += 1 + 4 * int(tail[j] or 0)
        keep = len(tail) > j and tail[j].strip() == "1"

        bar_seconds = BAR_SECONDS.get(bar_text)
        if bar_seconds is None:
            raise HistoryError(
                Code.HISTORICAL_DATA_ERROR, f"{HMDS}Invalid bar size {bar_text!r}: the simulator serves {', '.join(BAR_SECONDS)}"
            )
        if what not in WHAT_TO_SHOW:
            raise HistoryError(
                Code.HISTORICAL_DATA_ERROR, f"{HMDS}whatToShow {what!r} is not served (use {', '.join(WHAT_TO_SHOW)})"
            )
        n, unit = parse_duration(duration_text)
        if keep and end_text.strip():
            raise HistoryError(
                Code.HISTORICAL_DATA_ERROR,
                f"{HMDS}End date not supported with live updates (keepUpToDate needs an empty endDateTime)",
            )
        key = self.source.resolve(q)
        if key is None:
            raise HistoryError(Code.NO_SECURITY_DEFINITION, m.TEXT[Code.NO_SECURITY_DEFINITION])
        now = float(self.gateway.clock.time())
        end = parse_end(end_text, now)
        start = duration_start(end, n, unit)
        # "now" includes the bar in progress (it starts at or before now)
        bar_end = end if end_text.strip() else end + 1e-3
        bars = self.bars(key.key, what, bar_seconds, start, bar_end, use_rth)
        if not len(bars):
            raise HistoryError(
                Code.HISTORICAL_DATA_ERROR, f"{HMDS}HMDS query returned no data: {q.describe()} {what} {bar_text} {duration_text}"
            )
        daily = bar_seconds >= 86400
        out = [17, req_id, _label(int(start), daily, format_date, True), _label(int(end), daily, format_date, True), len(bars)]
        for row in zip(*bars):
            out += _bar_fields(row, key.decimals, daily, format_date)
        session.send(encode_fields(out))
        self.requests += 1
        if keep:
            req = _Request(session, req_id, key, what, bar_seconds, use_rth, format_date)
            req.last_sent = tuple(out[-8:])
            req.last_time = int(bars.time[-1])
            self._live[(id(session), req_id)] = req

    def bars(self, key: Any, what: str, bar_seconds: int, start: float, end: float, use_rth: bool) -> Bars:
        """Bars of ``bar_seconds`` for ``start <= time < end`` (UTC epoch seconds)."""
        if bar_seconds >= 86400:
            first, last = exchange_date(start), exchange_date(end - 1e-6)
            if (last - first).days > 366 * 30:
                raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}too many daily bars requested")
            b = self.source.daily_bars(key, what, first, last)
            # a daily bar is in range if its session overlaps [start, end)
            keep = (b.time + 86400 > start) & (b.time < end)
            return b.take(keep)
        lo = int(start // 60 * 60)
        hi = int(math.ceil(end / 60) * 60) if end % 60 else int(end)
        if (hi - lo) // 60 > MAX_MINUTES * 7 // 2:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}too many bars: narrow the duration or use a larger bar size")
        if what == "BID_ASK":
            mins = bid_ask_bars(self.source.minute_bars(key, "BID", lo, hi), self.source.minute_bars(key, "ASK", lo, hi))
        else:
            mins = self.source.minute_bars(key, what, lo, hi)
        if use_rth and len(mins):
            mins = mins.take(rth_mask(mins.time))
        if len(mins) > MAX_MINUTES:
            raise HistoryError(Code.HISTORICAL_DATA_ERROR, f"{HMDS}too many bars: narrow the duration or use a larger bar size")
        if bar_seconds == 60 or not len(mins):
            return mins
        return aggregate(mins, bucket_labels(mins.time, bar_seconds), quote_mean=(what == "BID_ASK"))

    # --- keepUpToDate -------------------------------------------------------------------

    def on_step(self) -> None:
        """After a market step: let the source sample the market, then send changed
        last bars of keepUpToDate requests (historicalDataUpdate 90)."""
        now = float(self.gateway.clock.time())
        try:
            self.source.sample(now)
        except Exception:  # a broken source must not stop the market
            log.exception("history source failed to sample")
        if not self._live:
            return
        dead = []
        for k, req in self._live.items():
            if req.session.transport is None:
                dead.append(k)
                continue
            try:
                self._update(req, now)
            except HistoryError:
                pass
            except Exception:
                log.exception("historical update of request %d failed", req.req_id)
        for k in dead:
            del self._live[k]

    def _update(self, req: _Request, now: float) -> None:
        """Send the last bar again if it changed, then every bar completed or started
        since (a replay at speed can complete several per step)."""
        daily = req.bar_seconds >= 86400
        start = float(exchange_midnight(exchange_date(req.last_time))) if daily else float(req.last_time)
        bars = self.bars(req.key.key, req.what, req.bar_seconds, start, now + 1e-3, req.use_rth)
        out = []
        for row in zip(*bars):
            t = int(row[0])
            if t < req.last_time:
                continue
            fields = tuple(_bar_fields(row, req.key.decimals, daily, req.format_date))
            if t == req.last_time and fields == req.last_sent:
                continue
            req.last_time, req.last_sent = t, fields
            date_, o, h, lw, c, vol, wap, cnt = fields
            out.append(encode_fields((90, req.req_id, cnt, date_, o, c, h, lw, wap, vol)))
        if out:
            req.session.send(b"".join(out))

    @property
    def live_requests(self) -> int:
        """keepUpToDate requests being updated."""
        return len(self._live)


def _label(t: int, daily: bool, format_date: int, header: bool = False) -> str:
    if daily and not header:
        return datetime.fromtimestamp(t, NEW_YORK).strftime("%Y%m%d")
    if format_date == 2 and not header:
        return str(t)
    return f"{datetime.fromtimestamp(t, NEW_YORK):%Y%m%d %H:%M:%S} {EXCHANGE_TZ_ID}"


def _bar_fields(row: tuple, decimals: int, daily: bool, format_date: int) -> list[str]:
    t, o, h, lw, c, vol, wap, cnt = row
    dec = max(decimals, 2) + 2
    if vol != vol:  # quote bars: IB sends -1 for volume, WAP and count
        return [_label(int(t), daily, format_date), _fmt(o, dec), _fmt(h, dec), _fmt(lw, dec), _fmt(c, dec), "-1", "-1", "-1"]
    return [
        _label(int(t), daily, format_date),
        _fmt(o, dec),
        _fmt(h, dec),
        _fmt(lw, dec),
        _fmt(c, dec),
        str(int(round(vol))),
        _fmt(wap, dec + 2),
        str(int(cnt)),
    ]
