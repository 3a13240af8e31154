"""Options in the simulated gateway: chains, contract details, quotes, Greeks, streaming.

What the unmodified ib_async client gets, as from TWS (message ids in
``docs/tws-protocol.md``):

=====================================  ===============================================
request                                answer
=====================================  ===============================================
reqSecDefOptParams 78                  securityDefinitionOptionParameter 75 per
                                       exchange (SMART, CBOE, ... see
                                       :data:`~desk.sim.chain.OPTION_EXCHANGES`), End 76;
                                       error 200 for an unknown underlying
reqContractDetails 9, secType OPT,     one contractData 10 per matching contract, End
any subset of symbol, expiry           52; error 200 when nothing matches. Expiry
(YYYYMMDD or YYYYMM), strike, right,   ``YYYYMM`` selects a contract month; ``localSymbol``
tradingClass, exchange, multiplier,    is the OCC symbol
localSymbol, or conId alone
reqMktData 1 on one option             tickReqParams 81, marketDataType 58, then bid /
                                       ask / last / volume / high / low / close / open,
                                       tickOptionComputation 21 for bid (10), ask (11),
                                       last (12), model (13); generic tick 101 adds the
                                       contract's open interest as tick 27 (calls) or 28
                                       (puts), 100 its volume as 29 / 30. Then a stream.
                                       Errors 200 (unknown or ambiguous), 354
                                       (underlying not simulated), 101 (line limit)
reqMktData on a stock, generic 100 /   once at subscription: 29 / 30 call / put volume
101 / 104 / 106                        and 27 / 28 call / put open interest of its whole
                                       chain, 23 historical and 24 30-day ATM implied vol
=====================================  ===============================================

Streaming: on every market step, the options whose underlying mid moved or whose own
quote changed or traded are repriced together (numpy, one pass over all active
contracts), then each subscribed line gets tickPrice/tickSize for what changed, and
tickOptionComputation for model (13) and for bid (10) / ask (11) / last (12) when that
price or the underlying changed. IB's units, which are also :mod:`desk.pricing`'s:
impliedVol annual fraction, delta per $1 of the underlying, optPrice and pvDividend
dollars per share, gamma per $1, vega dollars per vol point (0.01 of IV), theta dollars
per calendar day, undPrice dollars per share (the underlying's mid). Where no IV exists
for a price (no bid, a bid below intrinsic value) IB's sentinels are sent: impliedVol
-1, delta / gamma / vega / theta -2 (ib_async turns IV and delta into ``None``; vega and
theta show as -2.0). A computation for a side without a bid is not sent. The model
tick (13) carries the source's model IV, the European Greeks at that IV and, as
optPrice, the model price (BSM floored at intrinsic value).

Tick types are IB's ("Available Tick Types"): option volume is tick 8 on the option's
own line (contracts), and 29 / 30 with generic tick 100; open interest (contracts, as of
the previous close, constant intraday) is tick 27 for a call and 28 for a put with
generic tick 101 (what ib_async exposes as ``callOpenInterest`` / ``putOpenInterest``;
tick 22, ``openInterest``, is not sent by TWS for US equity options). Delayed lines use
the delayed types (:mod:`desk.sim.delayed`). Option lines count against the line limit
like stock lines (``max_tickers``, error 101).

Where options come from is pluggable: the :class:`OptionEngine` asks an
:class:`~desk.sim.option_source.OptionSource` (:mod:`desk.sim.option_source`) for
definitions and quote moves; :class:`~desk.sim.synthetic_options.SyntheticOptions` is the
default source (:mod:`desk.sim.synthetic_options`), a replay plugs in recorded ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import (
    EXCHANGE_TZ_ID,
    exchange_date,
)
from desk.pricing import bsm_greeks
from desk.sim import messages as m
from desk.sim.chain import (
    INDEX_ETFS,
    OPTION_EXCHANGES,
    SimOption,
)
from desk.sim.codec import encode_fields
from desk.sim.contracts import ContractQuery
from desk.sim.delayed import (
    DELAYED_TEXT,
    DISPLAYING_DELAYED,
    is_delayed,
    line_data_type,
    to_delayed,
)
from desk.sim.market import Changed
from desk.sim.messages import Code, Out, Part, Tick, price_part, render, size_part, string_part
from desk.sim.universe import UNIVERSE, SimStock
from desk.sim.option_source import OptionRows, OptionSource, SecDefParams
from desk.sim.ports import Client, Host, OptionLine, SimQuote
from desk.sim.synthetic_options import SyntheticOptions

__all__ = [
    "DEFAULT_RATE",
    "OptionEngine",
    "OptionLine",
    "OptionRows",
    "OptionSource",
    "SecDefParams",
    "SimQuote",
    "SyntheticOptions",
]

log = logging.getLogger("desk.sim")

#: Default risk-free rate of option pricing: 4.5 %, continuously compounded (a gateway
#: parameter, ``SimGateway(rate=...)``).
DEFAULT_RATE = 0.045

# Tick types of options that messages.Tick does not name.
TICK_BID_OPTION = 10
TICK_ASK_OPTION = 11
TICK_LAST_OPTION = 12
TICK_MODEL_OPTION = 13
TICK_HIST_VOL = 23
TICK_IMPLIED_VOL = 24
TICK_CALL_OI = 27
TICK_PUT_OI = 28
TICK_CALL_VOLUME = 29
TICK_PUT_VOLUME = 30

#: Message id of securityDefinitionOptionParameter (messages.Out has only the End).
SEC_DEF_OPT_PARAMS = 75
#: Message id of tickOptionComputation.
TICK_OPTION_COMPUTATION = 21

#: Order types IB lists for US equity options (contractDetails ``orderTypes``).
OPTION_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,OPENCLOSE,"
    "PEGMIDVOL,PEGMKTVOL,PEGPRMVOL,PEGSRFVOL,POSTONLY,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,"
    "SCALE,SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,VOLAT,WHATIF"
)
_VALID_EXCHANGES = ",".join(OPTION_EXCHANGES)
#: Market rule ids reported in contract details (placeholders: one per valid exchange;
#: reqMarketRule is not simulated). 110 penny program, 32 others.
_RULES = {True: ",".join(["110"] * len(OPTION_EXCHANGES)), False: ",".join(["32"] * len(OPTION_EXCHANGES))}

_H_OPTION = b"21\x00"
_NAN = float("nan")


# --- the engine -----------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return repr(float(x))


def _px(x: float) -> str:
    return f"{x:.2f}"


# tickOptionComputation tails (tick type, tickAttrib 0, then the 8 values); 10
# significant digits, IB's sentinels where no IV exists
_COMP = "\0".join(["%d", "0"] + ["%.10g"] * 8) + "\0"
_COMP_NA = "\0".join(["%d", "0", "-1", "-2", "%.10g", "%.10g", "-2", "-2", "-2", "%.10g"]) + "\0"
_LEN_H_OPTION = len(_H_OPTION)


def _computation_part(tick_type: int, v: Sequence[float]) -> Part:
    """tickOptionComputation (21): ``21,reqId,tickType,tickAttrib,impliedVol,delta,
    optPrice,pvDividend,gamma,vega,theta,undPrice`` (no version field from server
    version 156; tickAttrib 0) from ``v`` = (IV, delta, optPrice, pvDividend, gamma,
    vega, theta, undPrice). A NaN IV sends IB's sentinels: IV -1, Greeks -2."""
    iv = v[0]
    if iv != iv:
        t = (_COMP_NA % (tick_type, v[2], v[3], v[7])).encode()
    else:
        t = (_COMP % (tick_type, iv, v[1], v[2], v[3], v[4], v[5], v[6], v[7])).encode()
    return (_H_OPTION, t, _LEN_H_OPTION + len(t))


#: Sides of :meth:`OptionEngine._analytics` rows.
_BID_SIDE, _ASK_SIDE, _LAST_SIDE, _MODEL_SIDE = range(4)
_F_BID, _F_ASK = int(Changed.BID), int(Changed.ASK)
_F_BID_SIZE, _F_ASK_SIZE = int(Changed.BID_SIZE), int(Changed.ASK_SIZE)
_F_TRADE, _F_HIGH, _F_LOW = int(Changed.TRADE), int(Changed.HIGH), int(Changed.LOW)


class OptionEngine:
    """The gateway's options: requests, active rows, repricing, streaming (see the module
    docstring). One per :class:`~desk.sim.gateway.SimGateway`, driven on its loop.

    ``rate``: risk-free rate (annual, continuously compounded) of every computation;
    ``source``: the :class:`OptionSource` (default :class:`SyntheticOptions` for the
    gateway's seed, listing as of the clock's exchange date, built on first use).
    """

    def __init__(self, gateway: Host, rate: float = DEFAULT_RATE, source: OptionSource | None = None) -> None:
        if not math.isfinite(rate):
            raise ValueError(f"rate must be a finite annual fraction, got {rate!r}")
        self.gateway = gateway
        self.rate = float(rate)
        self._source = source
        self.rows = OptionRows()
        self._row_of: dict[int, int] = {}
        self._lines: list[list[OptionLine]] = []
        self._unds: list[str] = []
        self._und_index: dict[str, int] = {}
        #: tickOptionComputation / tick messages sent on option lines since start
        self.ticks_sent = 0

    @property
    def source(self) -> OptionSource:
        """The option source (the synthetic one is created on first use: building the
        listing loads the exchange calendar, :mod:`desk.domain.calendar`, ~0.7 s once per process)."""
        if self._source is None:
            gw = self.gateway
            self._source = SyntheticOptions(gw.seed, exchange_date(gw.clock.now()))
        return self._source

    # --- lookups -------------------------------------------------------------------------

    def option(self, con_id: int) -> SimOption | None:
        """The option with this conId, or ``None``."""
        if con_id < 1:
            return None
        return self.source.option(con_id)

    def find(self, q: ContractQuery) -> list[SimOption] | None:
        """Options matching a request's contract; ``None`` when the query is not about
        options (secType other than OPT and no option conId)."""
        if q.sec_type not in ("OPT", ""):
            return None
        if q.sec_type == "" and not (q.con_id and self.option(q.con_id)):
            return None
        return self.source.find(q)

    def quote(self, con_id: int) -> SimQuote | None:
        """Current quote of an option (activating it: it is then stepped with the market),
        or ``None`` if the conId is not an option or its underlying is not simulated."""
        row = self._row_of.get(con_id)
        if row is None:
            opt = self.option(con_id)
            if opt is None or opt.symbol not in self.gateway.market:
                return None
            row = self._activate(opt)
        r = self.rows
        last = float(r.last[row])
        return SimQuote(float(r.bid[row]), float(r.ask[row]), int(r.bid_size[row]), int(r.ask_size[row]), last)

    # --- requests ------------------------------------------------------------------------

    def contract_details(self, req_id: int, q: ContractQuery) -> bytes | None:
        """contractData frames + End for every option matching ``q``; ``None`` when the
        query is not about options; error 200 when it is but nothing matches."""
        hits = self.find(q)
        if hits is None:
            return None
        if not hits:
            return m.error(req_id, Code.NO_SECURITY_DEFINITION)
        exchange = q.exchange or "SMART"
        now = self.gateway.clock.now()
        hours: dict[str, tuple[str, str]] = {}
        out = []
        for opt in hits:
            h = hours.get(opt.symbol)
            if h is None:
                h = hours[opt.symbol] = option_hours(now, opt.symbol in INDEX_ETFS)
            out.append(option_contract_details(req_id, opt, exchange, h))
        out.append(m.contract_details_end(req_id))
        return b"".join(out)

    def sec_def_opt_params(self, req_id: int, symbol: str, fut_fop_exchange: str, sec_type: str, con_id: int) -> bytes:
        """securityDefinitionOptionParameter frames + End (or error 200)."""
        if fut_fop_exchange or sec_type not in ("", "STK"):
            return m.sec_def_opt_params_end(req_id)  # no futures options simulated
        params = self.source.sec_def_params(symbol, con_id)
        if params is None:
            return m.error(req_id, Code.NO_SECURITY_DEFINITION)
        out = [sec_def_opt_params(req_id, p) for p in params]
        out.append(m.sec_def_opt_params_end(req_id))
        return b"".join(out)

    def request_market_data(
        self, session: Client, req_id: int, q: ContractQuery, generic: frozenset[int], snapshot: bool
    ) -> bool:
        """Answer a reqMktData if it is about an option; ``False`` if it is not (the
        session then tries stocks). Sends errors 200 / 354 / 101 itself."""
        hits = self.find(q)
        if hits is None:
            return False
        gw = self.gateway
        if len(hits) != 1:
            text = None if not hits else (f"The contract description specified for {hits[0].symbol} is ambiguous.")
            session.send(m.error(req_id, Code.NO_SECURITY_DEFINITION, text))
            return True
        opt = hits[0]
        if opt.symbol not in gw.market:
            session.send(m.error(req_id, Code.NOT_SUBSCRIBED))
            return True
        if not snapshot and len(session.subscriptions) >= gw.max_tickers:
            session.send(m.error(req_id, Code.MAX_TICKERS))
            return True
        row = self._row_of.get(opt.con_id)
        if row is None:
            row = self._activate(opt)
        delayed = is_delayed(session.data_type, gw.delayed_data)
        out = [m.tick_req_params(req_id, opt.min_tick, "c70003", 3)]
        if delayed:
            out.append(m.error(req_id, DISPLAYING_DELAYED, DELAYED_TEXT))
        out.append(m.market_data_type(req_id, line_data_type(delayed, session.data_type)))
        parts = self._initial_parts(row, generic, gw.epoch_ms())
        if delayed:
            parts = to_delayed(parts)
        rid = f"{req_id}\0".encode()
        render(parts, rid, out)
        self.ticks_sent += len(parts)
        if snapshot:
            out.append(m.tick_snapshot_end(req_id))
            session.send(b"".join(out))
            return True
        session.send(b"".join(out))
        line = OptionLine(session, req_id, row, opt, delayed, generic)
        session.subscriptions[req_id] = line  # type: ignore[assignment]
        self._lines[row].append(line)
        self.rows.nsubs[row] += 1
        return True

    def unsubscribe(self, line: OptionLine) -> None:
        """Stop streaming ``line`` (cancelMktData or the session closed)."""
        lines = self._lines[line.row]
        if line in lines:
            lines.remove(line)
            self.rows.nsubs[line.row] -= 1

    def resubscribe(self, line: OptionLine, refresh: bool = False) -> None:
        """Stream ``line`` again after :mod:`desk.sim.faults` held it (an outage), first
        with its current quote and Greeks when ``refresh``."""
        lines = self._lines[line.row]
        if line not in lines:
            lines.append(line)
            self.rows.nsubs[line.row] += 1
        if refresh:
            generic = frozenset(g for g, on in ((100, line.volume_ticks), (101, line.oi_ticks)) if on)
            parts = self._initial_parts(line.row, generic, self.gateway.epoch_ms())
            if line.delayed:
                parts = to_delayed(parts)
            out: list[bytes] = []
            render(parts, line.rid, out)
            self.ticks_sent += len(parts)
            line.session.send(b"".join(out))

    def underlying_parts(self, stock: SimStock, generic: frozenset[int]) -> list[Part]:
        """Initial option-related generic ticks of a stock line: 100 -> 29 / 30 (call /
        put volume of the chain, contracts), 101 -> 27 / 28 (call / put open interest),
        104 -> 23 (historical volatility), 106 -> 24 (30-day ATM implied volatility)."""
        if not generic & {100, 101, 104, 106}:
            return []
        snap = self.gateway.market.snapshot(stock.symbol)
        S = (snap.bid + snap.ask) * 0.5
        stats = self.source.underlying_stats(stock.symbol, S, self.gateway.clock.time(), self.rate)
        parts: list[Part] = []
        if stats is not None:
            call_oi, put_oi, call_vol, put_vol, iv30 = stats
            if 100 in generic:
                parts += [size_part(TICK_CALL_VOLUME, str(call_vol)), size_part(TICK_PUT_VOLUME, str(put_vol))]
            if 101 in generic:
                parts += [size_part(TICK_CALL_OI, str(call_oi)), size_part(TICK_PUT_OI, str(put_oi))]
            if 106 in generic:
                parts.append(m.generic_part(TICK_IMPLIED_VOL, _fmt(iv30)))
        if 104 in generic:
            parts.append(m.generic_part(TICK_HIST_VOL, _fmt(stock.annual_vol)))
        return parts

    # --- stepping ------------------------------------------------------------------------

    def step(self, dt: float, epoch_ms: int) -> int:
        """Move every active option ``dt`` market seconds on and queue the ticks of the
        subscribed ones in their sessions' output. Returns the number of frames queued."""
        rows = self.rows
        if rows.n == 0:
            return 0
        now = self.gateway.clock.time()
        S = self._und_mids()[rows.und]
        flags = self.source.step_rows(rows, S, now, dt, self.rate)
        moved = (S != rows.und_price) & np.isfinite(S)
        rows.und_price = np.where(np.isfinite(S), S, rows.und_price)
        dirty = np.flatnonzero(((flags != 0) | moved) & (rows.nsubs > 0))
        if dirty.size == 0:
            return 0
        an = self._analytics(dirty, now)
        flag_l = flags[dirty].tolist()
        moved_l = moved[dirty].tolist()
        frames = 0
        lines_of = self._lines
        for j, i in enumerate(dirty.tolist()):
            parts = self._update_parts(i, j, flag_l[j], moved_l[j], an, epoch_ms)
            if not parts:
                continue
            delayed_parts: list[Part] | None = None
            extra: list[Part] | None = None
            for line in lines_of[i]:
                p = parts
                if line.volume_ticks and flag_l[j] & _F_TRADE:
                    if extra is None:
                        vol = str(int(rows.volume[i]))
                        extra = [size_part(TICK_CALL_VOLUME if rows.is_call[i] else TICK_PUT_VOLUME, vol)]
                    p = parts + extra
                if line.delayed:
                    if delayed_parts is None or p is not parts:
                        delayed_parts = to_delayed(p)
                    p = delayed_parts
                render(p, line.rid, line.session.out)
                frames += len(p)
        self.ticks_sent += frames
        return frames

    # --- internals -------------------------------------------------------------------------

    def _und_mids(self) -> NDArray[np.float64]:
        """Mid of each underlying (dollars per share; NaN if not in the market)."""
        market = self.gateway.market
        out = np.empty(len(self._unds))
        for k, sym in enumerate(self._unds):
            if sym in market:
                snap = market.snapshot(sym)
                out[k] = (snap.bid + snap.ask) * 0.5
            else:
                out[k] = np.nan
        return out

    def _activate(self, opt: SimOption) -> int:
        return self._activate_many([opt])[0]

    def _activate_many(self, opts: Iterable[SimOption]) -> list[int]:
        new = [o for o in opts if o.con_id not in self._row_of]
        if new:
            for o in new:
                if o.symbol not in self._und_index:
                    self._und_index[o.symbol] = len(self._unds)
                    self._unds.append(o.symbol)
                    bind = getattr(self.source, "bind", None)
                    if bind is not None:
                        bind(self._unds)
            src = self.source
            sl = self.rows.append(new, [self._und_index[o.symbol] for o in new], [src.dividend_yield(o.symbol) for o in new])
            S = self._und_mids()[self.rows.und]
            self.rows.und_price[sl] = S[sl]
            src.open_rows(self.rows, sl, S, self.gateway.clock.time(), self.rate)
            for k, o in enumerate(new):
                self._row_of[o.con_id] = sl.start + k
                self._lines.append([])
        return [self._row_of[o.con_id] for o in opts]

    def _analytics(self, idx: NDArray[np.integer], now: float) -> list[list[list[float]]]:
        """Per side (bid, ask, last, model) one list per row of ``idx``: (IV, delta,
        optPrice, pvDividend, gamma, vega, theta, undPrice); IV NaN where none."""
        from desk.pricing import implied_vol

        r = self.rows
        rate = self.rate
        S = r.und_price[idx]
        K = r.strike[idx]
        T = r.years(now, idx)
        q = r.q[idx]
        call = r.is_call[idx]
        bid, ask, last = r.bid[idx], r.ask[idx], r.last[idx]
        n = idx.size
        iv_m = r.model_iv[idx].copy()
        missing = ~np.isfinite(iv_m)
        if missing.any():  # a source without a model IV: imply it from the mid
            mid = np.where(bid > 0, 0.5 * (bid + ask), ask)
            iv_m[missing] = implied_vol(call[missing], mid[missing], S[missing], K[missing], T[missing], rate, q[missing]).iv
        ok_m = np.isfinite(iv_m)
        gm = bsm_greeks(call, S, K, T, rate, q, np.where(ok_m, iv_m, 0.2))
        intrinsic = np.maximum(np.where(call, S - K, K - S), 0.0)  # American floor
        model_price = np.where(ok_m, np.maximum(gm.price, intrinsic), np.where(bid > 0, 0.5 * (bid + ask), ask))
        # IV and Greeks at bid, ask and last in one vectorized pass
        P = np.concatenate([bid, ask, last])
        call3, S3, K3, T3, q3 = (np.tile(a, 3) for a in (call, S, K, T, q))
        P_ok = np.isfinite(P) & (P > 0)
        iv3 = np.full(3 * n, np.nan)
        if P_ok.any():
            iv3[P_ok] = implied_vol(call3[P_ok], P[P_ok], S3[P_ok], K3[P_ok], T3[P_ok], rate, q3[P_ok]).iv
        ok3 = np.isfinite(iv3)
        g3 = bsm_greeks(call3, S3, K3, T3, rate, q3, np.where(ok3, iv3, 0.2))
        pv3 = S3 * (1.0 - np.exp(-q3 * T3))
        # one (IV, delta, optPrice, pvDividend, gamma, vega, theta, undPrice) row per
        # option and side: bid, ask, last (price = the quote), then the model
        side_rows = np.column_stack([iv3, g3.delta, P, pv3, g3.gamma, g3.vega, g3.theta, S3])
        model_rows = np.column_stack(
            [np.where(ok_m, iv_m, np.nan), gm.delta, model_price, pv3[:n], gm.gamma, gm.vega, gm.theta, S]
        )
        return [side_rows[:n].tolist(), side_rows[n : 2 * n].tolist(), side_rows[2 * n :].tolist(), model_rows.tolist()]

    def _update_parts(self, i: int, j: int, flags: int, moved: bool, an: list[list[list[float]]], epoch_ms: int) -> list[Part]:
        r = self.rows
        parts: list[Part] = []
        bid, ask = float(r.bid[i]), float(r.ask[i])
        if flags & _F_BID:
            parts.append(price_part(1, _px(bid) if bid > 0 else "-1.00", str(int(r.bid_size[i])), 1))
        elif flags & _F_BID_SIZE:
            parts.append(size_part(0, str(int(r.bid_size[i]))))
        if flags & _F_ASK:
            parts.append(price_part(2, _px(ask), str(int(r.ask_size[i])), 1))
        elif flags & _F_ASK_SIZE:
            parts.append(size_part(3, str(int(r.ask_size[i]))))
        traded = flags & _F_TRADE
        if traded:
            parts.append(price_part(4, _px(float(r.last[i])), str(int(r.last_size[i]))))
            parts.append(size_part(8, str(int(r.volume[i]))))
            parts.append(string_part(45, str(epoch_ms // 1000)))
            if flags & _F_HIGH:
                parts.append(price_part(6, _px(float(r.high[i]))))
            if flags & _F_LOW:
                parts.append(price_part(7, _px(float(r.low[i]))))
        if bid > 0 and (moved or flags & _F_BID):
            parts.append(_computation_part(TICK_BID_OPTION, an[_BID_SIDE][j]))
        if moved or flags & _F_ASK:
            parts.append(_computation_part(TICK_ASK_OPTION, an[_ASK_SIDE][j]))
        if (moved or traded) and r.last[i] == r.last[i]:
            parts.append(_computation_part(TICK_LAST_OPTION, an[_LAST_SIDE][j]))
        if moved or flags & (_F_BID | _F_ASK):
            parts.append(_computation_part(TICK_MODEL_OPTION, an[_MODEL_SIDE][j]))
        return parts

    def _initial_parts(self, i: int, generic: frozenset[int], epoch_ms: int) -> list[Part]:
        r = self.rows
        an = self._analytics(np.array([i]), self.gateway.clock.time())
        bid, ask, last = float(r.bid[i]), float(r.ask[i]), float(r.last[i])
        parts = [
            price_part(Tick.BID, _px(bid) if bid > 0 else "-1.00", str(int(r.bid_size[i])), 1),
            price_part(Tick.ASK, _px(ask), str(int(r.ask_size[i])), 1),
        ]
        if last == last:
            parts.append(price_part(Tick.LAST, _px(last), str(int(r.last_size[i]))))
        parts += [
            size_part(Tick.VOLUME, str(int(r.volume[i]))),
            price_part(Tick.HIGH, _px(float(r.high[i]))),
            price_part(Tick.LOW, _px(float(r.low[i]))),
            price_part(Tick.CLOSE, _px(float(r.close[i]))),
            price_part(Tick.OPEN, _px(float(r.open[i]))),
            string_part(Tick.LAST_TIMESTAMP, str(epoch_ms // 1000)),
        ]
        if 100 in generic:
            parts.append(size_part(TICK_CALL_VOLUME if r.is_call[i] else TICK_PUT_VOLUME, str(int(r.volume[i]))))
        if 101 in generic:
            parts.append(size_part(TICK_CALL_OI if r.is_call[i] else TICK_PUT_OI, str(int(r.open_interest[i]))))
        if bid > 0:
            parts.append(_computation_part(TICK_BID_OPTION, an[_BID_SIDE][0]))
        parts.append(_computation_part(TICK_ASK_OPTION, an[_ASK_SIDE][0]))
        if last == last:
            parts.append(_computation_part(TICK_LAST_OPTION, an[_LAST_SIDE][0]))
        parts.append(_computation_part(TICK_MODEL_OPTION, an[_MODEL_SIDE][0]))
        return parts


# --- messages -------------------------------------------------------------------------------


def option_hours(now, extended_close: bool) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` of US equity options for 7 days from ``now``'s
    exchange date, exchange time: the regular session of the desk's exchange calendar
    (09:30-16:00, 13:00 on half days; 15 minutes longer for the index ETFs),
    ``CLOSED`` on weekends and exchange holidays (:func:`desk.sim.messages.hours_text`)."""
    from datetime import timedelta

    extra = timedelta(minutes=15 if extended_close else 0)
    text = m.hours_text(now, lambda s: (s.open, s.close + extra))
    return text, text


def option_contract_details(req_id: int, opt: SimOption, exchange: str, hours: tuple[str, str]) -> bytes:
    """contractDetails (10) of an option, server version >= 164 layout (the stock one of
    :func:`desk.sim.messages.contract_details` with the option's fields)."""
    und = UNIVERSE.get(opt.symbol)
    long_name = und.long_name if und else opt.symbol
    return encode_fields(
        (
            Out.CONTRACT_DATA,
            req_id,
            opt.symbol,
            "OPT",
            opt.expiry,
            f"{opt.strike:g}",
            opt.right,
            exchange,
            opt.currency,
            opt.local_symbol,
            opt.trading_class,
            opt.trading_class,
            opt.con_id,
            repr(opt.min_tick),
            str(opt.multiplier),
            OPTION_ORDER_TYPES,
            _VALID_EXCHANGES,
            1,  # priceMagnifier
            opt.underlying_con_id,
            long_name,
            "",  # primaryExchange: options have none
            opt.contract_month,
            und.industry if und else "",
            und.category if und else "",
            und.subcategory if und else "",
            EXCHANGE_TZ_ID,
            hours[0],
            hours[1],
            "",
            "",  # evRule, evMultiplier
            0,  # no secIds
            2,  # aggGroup
            opt.symbol,
            "STK",  # underSymbol, underSecType
            _RULES[opt.penny],
            opt.expiry,  # realExpirationDate
            "",  # stockType
            "1",
            "1",
            "1",  # minSize, sizeIncrement, suggestedSizeIncrement (contracts)
        )
    )


def sec_def_opt_params(req_id: int, p: SecDefParams) -> bytes:
    """securityDefinitionOptionParameter (75): ``75,reqId,exchange,underlyingConId,
    tradingClass,multiplier,nExpirations,expirations...,nStrikes,strikes...``."""
    fields: list[object] = [
        SEC_DEF_OPT_PARAMS,
        req_id,
        p.exchange,
        p.underlying_con_id,
        p.trading_class,
        p.multiplier,
        len(p.expirations),
    ]
    fields += p.expirations
    fields.append(len(p.strikes))
    fields += [repr(float(k)) for k in p.strikes]
    return encode_fields(fields)
