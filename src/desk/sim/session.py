"""One client connection to the simulated gateway: handshake, requests, replies.

A :class:`Session` is the asyncio protocol of one accepted socket. It decodes frames
(:mod:`desk.sim.codec`), negotiates the server version, accepts ``startApi`` (or refuses
a client id already in use with IB error 326 and closes), answers requests from the
universe, the account and the market model, and holds the connection's market data
subscriptions, which the :class:`~desk.sim.gateway.SimGateway` feeds on every market step.

Requests and answers (message ids as in ``docs/tws-protocol.md``):

=====================================  ===============================================
request                                answer
=====================================  ===============================================
startApi 71                            managedAccounts 15, nextValidId 9, farm notices
                                       (error 4 with reqId -1, codes 2104/2106/2158);
                                       client id in use (or held by desk.sim.faults):
                                       error 326, then close
reqIds 8 / reqCurrentTime 49           nextValidId 9 / currentTime 49 (clock, UTC epoch)
reqContractDetails 9                   contractData 10 + contractDataEnd 52; error 200
                                       (options: one per contract, desk.sim.options)
reqMatchingSymbols 81                  symbolSamples 79
reqMktData 1                           tickReqParams 81, marketDataType 58, initial
                                       ticks, then a stream (snapshot: tickSnapshotEnd
                                       57); errors 200, 322 (duplicate id), 101 (lines);
                                       after reqMarketDataType 3/4: warning 10167 and
                                       delayed tick types (desk.sim.delayed); options:
                                       desk.sim.options
cancelMktData 2                        nothing; error 300 if the id is unknown
reqMarketDataType 59                   marketDataType 58 on each live line it changes
placeOrder 3, cancelOrder 4,           orders, executions, positions, accounts and
reqGlobalCancel 58, reqOpenOrders 5/16, P&L: answered by the gateway's order engine
reqCompletedOrders 99, reqExecutions 7, (desk.sim.matching, which lists the answers)
reqPositions 61, reqAccountUpdates 6,
reqAccountUpdatesMulti 76,
reqAccountSummary 62, reqPnL 92,
reqPnLSingle 94 and their cancels
reqHistoricalData 20                   historicalData 17, keepUpToDate: then
                                       historicalDataUpdate 90 (desk.sim.history);
                                       errors 162, 200
reqHeadTimeStamp 87 / cancelHist. 25   headTimestamp 88 / nothing (stops updates)
reqSecDefOptParams 78                  securityDefinitionOptionParameter 75 per
                                       exchange, End 76 (desk.sim.options); error 200
=====================================  ===============================================

Error codes and texts follow IB's "TWS API Message Codes" list (see
:class:`desk.sim.messages.Code`). Malformed or unknown messages are logged and ignored:
like TWS, one bad request never takes the connection down. Everything runs on the
gateway's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from desk.sim import messages as m
from desk.sim.codec import FrameDecoder, ProtocolError, parse_version_range
from desk.sim.contracts import CONTRACT_FIELDS, ContractQuery, resolve
from desk.sim.delayed import DELAYED_TEXT, DISPLAYING_DELAYED, is_delayed, line_data_type, to_delayed
from desk.sim.messages import Code, In
from desk.sim.universe import UNIVERSE
from desk.sim.ports import Host, Subscription

__all__ = ["Session", "Subscription"]

log = logging.getLogger("desk.sim")

#: marketDataType the simulator reports for a requested type when the gateway gives no
#: delayed data (``delayed_data=False``): IB returns live data when it is available,
#: whatever delayed type was asked for. With delayed data see :mod:`desk.sim.delayed`.
_EFFECTIVE_DATA_TYPE = {1: 1, 2: 2, 3: 1, 4: 2}


def _parse_generic(text: str) -> frozenset[int]:
    ids = set()
    for part in text.split(","):
        part = part.strip()
        if part.isdigit():
            ids.add(int(part))
    return frozenset(ids)


class Session(asyncio.Protocol):
    """The server side of one TWS API connection."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self._decoder = FrameDecoder(expect_prefix=True)
        #: negotiated server version (0 until the handshake)
        self.version = 0
        #: the client's id once startApi was accepted, else ``None``
        self.client_id: int | None = None
        self.subscriptions: dict[int, Subscription] = {}
        self.data_type = 1  # requested marketDataType
        #: frames waiting to be written at the end of the current market step
        self.out: list[bytes] = []
        self.paused = False  # transport above its high-water mark: ticks are conflated
        self.dropped_ticks = 0  # tick frames not sent because the client fell behind
        self.closed = asyncio.get_running_loop().create_future()
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            In.START_API: self._start_api,
            In.REQ_IDS: self._req_ids,
            In.REQ_CURRENT_TIME: self._req_current_time,
            In.REQ_MANAGED_ACCTS: self._req_managed_accts,
            In.REQ_CONTRACT_DATA: self._req_contract_details,
            In.REQ_MATCHING_SYMBOLS: self._req_matching_symbols,
            In.REQ_MKT_DATA: self._req_mkt_data,
            In.CANCEL_MKT_DATA: self._cancel_mkt_data,
            In.REQ_MARKET_DATA_TYPE: self._req_market_data_type,
            In.REQ_SEC_DEF_OPT_PARAMS: self._req_sec_def_opt_params,
            In.REQ_HISTORICAL_DATA: self._req_historical_data,
            In.REQ_HEAD_TIMESTAMP: self._req_head_timestamp,
            In.CANCEL_HISTORICAL_DATA: self._cancel_historical_data,
            90: self._cancel_historical_data,  # cancelHeadTimeStamp: nothing pending
        }
        # orders, executions, positions, accounts and P&L (desk.sim.matching)
        self._handlers.update(gateway.orders.handlers(self))
        # requests that need no answer (cancels of things answered in one go, settings)
        self._silent = frozenset(
            {
                In.REQ_AUTO_OPEN_ORDERS,
                In.SET_SERVER_LOGLEVEL,
                In.CANCEL_POSITIONS,
                In.CANCEL_ACCOUNT_SUMMARY,
                In.CANCEL_ACCOUNT_UPDATES_MULTI,
                In.CANCEL_PNL,
                In.CANCEL_PNL_SINGLE,
                In.REQ_PNL_SINGLE,
                In.CANCEL_HISTORICAL_DATA,
                In.REQ_GLOBAL_CANCEL,
            }
        )
        self._warned: set[int] = set()

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        transport.set_write_buffer_limits(high=self.gateway.max_write_buffer)
        self.gateway.session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        log.info("client %s (clientId %s) disconnected%s", self.peer, self.client_id, f": {exc}" if exc else "")
        self.transport = None
        self.out.clear()
        self.gateway.session_closed(self)
        self.subscriptions.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self._decoder.feed(data)
        except ProtocolError as e:
            log.warning("client %s: protocol error, closing: %s", self.peer, e)
            self.close()
            return
        for fields in msgs:
            if self.transport is None:
                return
            if self.client_id is not None and not self.gateway.faults.allow(self):
                continue  # pacing fault on and over the limit (desk.sim.faults)
            try:
                self._dispatch(fields)
            except Exception:  # one bad request must not take the connection down
                log.exception("client %s: error handling %s", self.peer, fields[:4])

    # --- output --------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write a reply now (replies are never conflated)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def flush_ticks(self) -> None:
        """Write the tick frames gathered during a market step (dropped if the client is
        more than ``max_write_buffer`` bytes behind: IB conflates rather than queue)."""
        out = self.out
        if not out:
            return
        if self.transport is None or self.transport.is_closing():
            out.clear()
            return
        if self.paused:
            self.dropped_ticks += len(out) // 4
            out.clear()
            return
        data = b"".join(out)
        out.clear()
        self.transport.write(data)

    def close(self) -> None:
        """Close the connection after pending output is written."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close the connection at once, discarding pending output."""
        if self.transport is not None:
            self.transport.abort()

    # --- dispatch ------------------------------------------------------------------------

    def _dispatch(self, fields: list[str]) -> None:
        if not self.version:
            self._handshake(fields)
            return
        if not fields:
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s: bad message id %r", self.peer, fields[0])
            return
        if self.client_id is None and msg_id != In.START_API:
            log.warning("client %s: message %d before startApi ignored", self.peer, msg_id)
            return
        handler = self._handlers.get(msg_id)
        if handler is not None:
            handler(fields)
        elif msg_id not in self._silent and msg_id not in self._warned:
            self._warned.add(msg_id)
            log.warning("client %s: message %d not supported by the simulator, ignored", self.peer, msg_id)

    def _handshake(self, fields: list[str]) -> None:
        text = fields[0] if fields else ""
        try:
            lo, hi, options = parse_version_range(text)
        except ProtocolError as e:
            log.warning("client %s: %s, closing", self.peer, e)
            self.close()
            return
        version = min(hi, m.SERVER_VERSION_MAX)
        if version < lo or version < m.SERVER_VERSION_MIN:
            log.warning(
                "client %s: versions %d..%d not supported (%d..%d), closing",
                self.peer,
                lo,
                hi,
                m.SERVER_VERSION_MIN,
                m.SERVER_VERSION_MAX,
            )
            self.close()
            return
        self.version = version
        log.debug("client %s: server version %d (options %r)", self.peer, version, options)
        self.send(m.server_hello(version, self.gateway.clock.now()))

    # --- session -------------------------------------------------------------------------

    def _start_api(self, fields: list[str]) -> None:
        # 71, version 2, clientId, optionalCapabilities
        if self.client_id is not None:
            return
        client_id = int(fields[2])
        if not self.gateway.register_client(self, client_id):
            log.info("client %s: clientId %d already in use, refusing", self.peer, client_id)
            self.send(m.error(-1, Code.CLIENT_ID_IN_USE))
            self.close()
            return
        self.client_id = client_id
        log.info("client %s connected as clientId %d", self.peer, client_id)
        gw = self.gateway
        self.send(
            m.managed_accounts(gw.account_ids)
            + m.next_valid_id(gw.next_order_id(client_id))
            + gw.faults.farm_notices()  # OK, or broken while a farm fault is on
        )

    def _req_ids(self, fields: list[str]) -> None:
        self.send(m.next_valid_id(self.gateway.next_order_id(self.client_id or 0)))

    def _req_current_time(self, fields: list[str]) -> None:
        self.send(m.current_time(int(self.gateway.clock.time())))

    def _req_managed_accts(self, fields: list[str]) -> None:
        self.send(m.managed_accounts(self.gateway.account_ids))

    # --- contracts -----------------------------------------------------------------------

    def _req_contract_details(self, fields: list[str]) -> None:
        # 9, version 8, reqId, contract (12), includeExpired, secIdType, secId, issuerId
        req_id = int(fields[2])
        q = ContractQuery.from_fields(fields, 3)
        tail = fields[3 + CONTRACT_FIELDS :]
        if len(tail) >= 3:
            q = q.with_sec_id(tail[1], tail[2])
        found = resolve(q)
        if found is None:
            options = self.gateway.options.contract_details(req_id, q)
            if options is not None:  # secType OPT or an option conId (desk.sim.options)
                self.send(options)
                return
            log.info("client %s: no contract for %s", self.peer, q.describe())
            self.send(m.error(req_id, Code.NO_SECURITY_DEFINITION))
            return
        stock, exchange = found
        self.send(m.contract_details(req_id, stock, exchange, self.gateway.clock.now()) + m.contract_details_end(req_id))

    def _req_matching_symbols(self, fields: list[str]) -> None:
        # 81, reqId, pattern: symbols starting with the pattern, then names containing it
        req_id = int(fields[1])
        pattern = fields[2].strip().upper() if len(fields) > 2 else ""
        hits = [s for s in UNIVERSE.values() if pattern and s.symbol.startswith(pattern)]
        hits += [s for s in UNIVERSE.values() if pattern and s not in hits and pattern in s.long_name.upper()]
        self.send(m.symbol_samples(req_id, hits[:16]))

    def _req_sec_def_opt_params(self, fields: list[str]) -> None:
        # 78, reqId, underlyingSymbol, futFopExchange, underlyingSecType, underlyingConId
        f = fields + [""] * (6 - len(fields))
        self.send(
            self.gateway.options.sec_def_opt_params(
                int(f[1]), f[2].strip().upper(), f[3].strip(), f[4].strip().upper(), int(f[5] or 0)
            )
        )

    def _req_historical_data(self, fields: list[str]) -> None:
        # 20, reqId, contract, ...: bars from the gateway's history (desk.sim.history)
        self.gateway.history.handle_request(self, fields)

    def _req_head_timestamp(self, fields: list[str]) -> None:
        # 87, reqId, contract, includeExpired, useRTH, whatToShow, formatDate
        self.gateway.history.handle_head_timestamp(self, fields)

    def _cancel_historical_data(self, fields: list[str]) -> None:
        # 25, version 1, reqId: stops keepUpToDate updates
        self.gateway.history.handle_cancel(self, fields)

    # --- market data ---------------------------------------------------------------------

    def _req_mkt_data(self, fields: list[str]) -> None:
        # 1, version 11, reqId, contract (12), [BAG legs], deltaNeutral flag [+3],
        # genericTickList, snapshot, regulatorySnapshot, mktDataOptions
        req_id = int(fields[2])
        q = ContractQuery.from_fields(fields, 3)
        i = 3 + CONTRACT_FIELDS
        if q.sec_type == "BAG":
            i += 1 + 4 * int(fields[i] or 0)
        if fields[i] == "1":
            i += 3
        i += 1
        generic = _parse_generic(fields[i]) if i < len(fields) else frozenset()
        snapshot = i + 1 < len(fields) and fields[i + 1] == "1"
        regulatory = i + 2 < len(fields) and fields[i + 2] == "1"

        if req_id in self.subscriptions:
            self.send(m.error(req_id, Code.DUPLICATE_TICKER_ID))
            return
        found = resolve(q)
        if found is None:
            if self.gateway.options.request_market_data(self, req_id, q, generic, snapshot or regulatory):
                return  # an option (desk.sim.options)
            log.info("client %s: no contract for market data %s", self.peer, q.describe())
            self.send(m.error(req_id, Code.NO_SECURITY_DEFINITION))
            return
        stock = found[0]
        gw = self.gateway
        if stock.symbol not in gw.market:
            self.send(m.error(req_id, Code.NOT_SUBSCRIBED))
            return
        streaming = not (snapshot or regulatory)
        if streaming and len(self.subscriptions) >= gw.max_tickers:
            self.send(m.error(req_id, Code.MAX_TICKERS))
            return
        delayed = is_delayed(self.data_type, gw.delayed_data)
        out = [m.tick_req_params(req_id, stock.min_tick)]
        if delayed:
            out.append(m.error(req_id, DISPLAYING_DELAYED, DELAYED_TEXT))
        out.append(m.market_data_type(req_id, line_data_type(delayed, self.data_type)))
        st = gw.market.state(stock.symbol)
        ch = st.change(0)
        parts = gw.encoder.initial(stock, ch, st.open, st.close, gw.epoch_ms(), generic)
        parts += gw.options.underlying_parts(stock, generic)
        if delayed:
            parts = to_delayed(parts)
        m.render(parts, f"{req_id}\0".encode(), out)
        if not streaming:
            out.append(m.tick_snapshot_end(req_id))
            self.send(b"".join(out))
            return
        self.send(b"".join(out))
        sub = Subscription(self, req_id, stock, generic)
        sub.delayed = delayed
        self.subscriptions[req_id] = sub
        gw.subscribe(sub)

    def _cancel_mkt_data(self, fields: list[str]) -> None:
        # 2, version 2, reqId
        req_id = int(fields[2])
        sub = self.subscriptions.pop(req_id, None)
        if sub is None:
            self.send(m.error(req_id, Code.CANT_FIND_EID, None, req_id))
            return
        self.gateway.unsubscribe(sub)

    def _req_market_data_type(self, fields: list[str]) -> None:
        # 59, version 1, marketDataType; TWS reports the switch on each live line
        # (delayed lines stay delayed, live lines live; frozen follows the request)
        new = int(fields[2])
        if new not in _EFFECTIVE_DATA_TYPE:
            return
        old, self.data_type = self.data_type, new
        changed = [
            (r, line_data_type(sub.delayed, new))
            for r, sub in self.subscriptions.items()
            if line_data_type(sub.delayed, old) != line_data_type(sub.delayed, new)
        ]
        if changed:
            self.send(b"".join(m.market_data_type(r, t) for r, t in changed))
