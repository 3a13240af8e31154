"""Account streaming of the simulated gateway: positions, account values and summaries,
P&L, per client session.

One :class:`AccountFeed` lives on each :class:`~desk.sim.matching.OrderEngine` (as
``engine.feed``); the engine routes reqPositions 61, reqAccountUpdates 6,
reqAccountUpdatesMulti 76, reqAccountSummary 62, reqPnL 92, reqPnLSingle 94 and their
cancels here, marks the accounts and conIds that fills changed (:attr:`AccountFeed.dirty`)
and calls :meth:`AccountFeed.push_dirty` when it flushes a step's output, and
:meth:`AccountFeed.periodic` on every market step.

Timing
    reqPositions streams position (61) rows and reqAccountUpdates updatePortfolio (7)
    rows of the traded contracts with every fill; account values (6), account summary
    rows (63) and pnl / pnlSingle (94/95) follow ``coalesce_interval`` (50 ms) after a
    fill, once for a burst of fills. Periodically, account values and the portfolio go
    out every ``account_interval`` seconds (3 s; IB: 3 minutes) and P&L every
    ``pnl_interval`` (1 s, as IB) while subscribed. P&L goes out first and with every
    batch of account values, computed at the same marks (so NetLiq and the daily P&L a
    client holds are of one instant when the account values arrive). During an outage
    (1100) no account data goes out; after a 1101 the account subscriptions are gone
    (:meth:`AccountFeed.drop_account_subscriptions`).

Prices and values in the account's currency (USD); marks from
:meth:`desk.sim.instruments.Instruments.mark` (dollars per share).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from desk.sim import messages as m
from desk.sim.messages import In
from desk.sim.account import SimAccount, pnl_single, portfolio_value, position
from desk.sim.ports import Client, Host, InstrumentsPort

__all__ = ["AccountFeed"]


@dataclass(slots=True)
class _Subs:
    account_updates: str | None = None  # account id streaming updateAccountValue
    positions: bool = False
    summary: dict[int, str] = field(default_factory=dict)  # reqId -> tags
    pnl: dict[int, str] = field(default_factory=dict)  # reqId -> account
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)

    def any_pnl(self) -> bool:
        return bool(self.pnl or self.pnl_single)

    def any_account(self) -> bool:
        return bool(self.account_updates or self.summary)


class AccountFeed:
    """Account, position and P&L subscriptions of every session, and their pushes.

    ``send(session, data)`` queues a reply for the end of the step; ``flush()`` writes the
    queued replies (used by the coalesced push, which runs outside a step).
    ``pnl_interval`` / ``account_interval``: seconds between periodic reqPnL(Single)
    and account pushes; ``coalesce_interval``: seconds fills are coalesced before
    account values, summaries and P&L go out.
    """

    def __init__(
        self,
        gateway: Host,
        instruments: InstrumentsPort,
        send: Callable[[Client, bytes], None],
        flush: Callable[[], None],
        *,
        pnl_interval: float = 1.0,
        account_interval: float = 3.0,
    ) -> None:
        if pnl_interval <= 0 or account_interval <= 0:
            raise ValueError("pnl_interval and account_interval must be positive")
        self.gateway = gateway
        self.instruments = instruments
        self._send = send
        self._flush = flush
        self.pnl_interval = float(pnl_interval)
        self.account_interval = float(account_interval)
        #: seconds fills are coalesced before account values, summaries and P&L go out
        self.coalesce_interval = 0.05
        self._subs: dict[Client, _Subs] = {}
        #: account id -> conIds changed by fills since the last push
        self.dirty: dict[str, set[int]] = {}
        #: accounts and conIds whose values / P&L wait for the coalesced push
        self._due_accounts: set[str] = set()
        self._due_con_ids: set[int] = set()
        self._deferred: asyncio.TimerHandle | None = None
        now = time.monotonic()
        self._last_pnl = now
        self._last_account = now

    def handlers(self) -> dict[int, Callable[[Client, list[str]], None]]:
        """Message id -> handler for the account requests."""
        return {
            In.REQ_POSITIONS: self.req_positions,
            In.CANCEL_POSITIONS: self.cancel_positions,
            In.REQ_ACCOUNT_DATA: self.req_account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: self.req_account_updates_multi,
            In.REQ_ACCOUNT_SUMMARY: self.req_account_summary,
            In.CANCEL_ACCOUNT_SUMMARY: self.cancel_account_summary,
            In.REQ_PNL: self.req_pnl,
            In.CANCEL_PNL: self.cancel_pnl,
            In.REQ_PNL_SINGLE: self.req_pnl_single,
            In.CANCEL_PNL_SINGLE: self.cancel_pnl_single,
        }

    def session_closed(self, session: Client) -> None:
        self._subs.pop(session, None)

    @property
    def subscribed(self) -> bool:
        """Whether any session has an account subscription."""
        return bool(self._subs)

    def _subs_of(self, session: Client) -> _Subs:
        s = self._subs.get(session)
        if s is None:
            s = self._subs[session] = _Subs()
        return s

    def req_positions(self, session: Client, fields: list[str]) -> None:
        out = []
        for acc in self.gateway.accounts:
            for p in acc.positions.values():
                if p.quantity:
                    out.append(position(acc.account_id, p))
        out.append(m.position_end())
        self._subs_of(session).positions = True
        self._send(session, b"".join(out))

    def cancel_positions(self, session: Client, fields: list[str]) -> None:
        self._subs_of(session).positions = False

    def _account_frames(self, acc: SimAccount, con_ids: set[int] | None) -> list[bytes]:
        """updatePortfolio rows (all open positions, or ``con_ids``) and the account
        values, then updateAccountTime."""
        return self._portfolio_frames(acc, con_ids) + self._value_frames(acc)

    def _portfolio_frames(self, acc: SimAccount, con_ids: set[int] | None) -> list[bytes]:
        mark = self.instruments.mark
        out = []
        for con_id, p in acc.positions.items():
            if con_ids is None and not p.quantity:
                continue
            if con_ids is not None and con_id not in con_ids:
                continue
            out.append(portfolio_value(acc.account_id, p, p.price(mark)))
        return out

    def _value_frames(self, acc: SimAccount) -> list[bytes]:
        out = [m.account_value(k, v, c, acc.account_id) for k, v, c in acc.values(self.instruments.mark)]
        out.append(m.account_update_time(self.gateway.clock.now()))
        return out

    def req_account_updates(self, session: Client, fields: list[str]) -> None:
        # 6, version 2, subscribe, account
        subs = self._subs_of(session)
        if fields[2] != "1":
            subs.account_updates = None
            return
        acc = self.gateway.account(fields[3] if len(fields) > 3 else "")
        if acc is None:
            return
        subs.account_updates = acc.account_id
        out = self._account_frames(acc, None)
        out.append(m.account_download_end(acc.account_id))
        self._send(session, b"".join(out))

    def req_account_updates_multi(self, session: Client, fields: list[str]) -> None:
        # 76, version 1, reqId, account, modelCode, ledgerAndNLV
        req_id = int(fields[2])
        name = fields[3] if len(fields) > 3 else ""
        model = fields[4] if len(fields) > 4 else ""
        gw = self.gateway
        accounts = gw.accounts if name in ("", "All") else [a for a in gw.accounts if a.account_id == name]
        out = []
        for acc in accounts:
            for k, v, c in acc.values(self.instruments.mark):
                out.append(m.account_update_multi(req_id, acc.account_id, model, k, v, c))
        out.append(m.account_update_multi_end(req_id))
        self._send(session, b"".join(out))

    def _summary_frames(self, req_id: int, tags: str) -> bytes:
        out = []
        for acc in self.gateway.accounts:
            for tag, value, cur in acc.summary(tags, self.instruments.mark):
                out.append(m.account_summary(req_id, acc.account_id, tag, value, cur))
        out.append(m.account_summary_end(req_id))
        return b"".join(out)

    def req_account_summary(self, session: Client, fields: list[str]) -> None:
        # 62, version 1, reqId, group, tags
        req_id = int(fields[2])
        tags = fields[4] if len(fields) > 4 else ""
        self._subs_of(session).summary[req_id] = tags
        self._send(session, self._summary_frames(req_id, tags))

    def cancel_account_summary(self, session: Client, fields: list[str]) -> None:
        self._subs_of(session).summary.pop(int(fields[2]), None)

    def _pnl_frame(self, req_id: int, account_id: str) -> bytes:
        acc = self.gateway.account(account_id)
        if acc is None:
            return b""
        daily, unrealized, realized = acc.pnl(self.instruments.mark)
        return m.pnl(req_id, daily, unrealized, realized)

    def _pnl_single_frame(self, req_id: int, account_id: str, con_id: int) -> bytes:
        acc = self.gateway.account(account_id)
        if acc is None:
            return b""
        return pnl_single(req_id, *acc.pnl_single(con_id, self.instruments.mark))

    def req_pnl(self, session: Client, fields: list[str]) -> None:
        # 92, reqId, account, modelCode
        req_id = int(fields[1])
        account = fields[2] if len(fields) > 2 else ""
        acc = self.gateway.account(account)
        if acc is None:
            self._send(session, m.error(req_id, 321, (f"Error validating request:-'a0' : cause - account {account!r} unknown")))
            return
        self._subs_of(session).pnl[req_id] = acc.account_id
        self._send(session, self._pnl_frame(req_id, acc.account_id))

    def cancel_pnl(self, session: Client, fields: list[str]) -> None:
        self._subs_of(session).pnl.pop(int(fields[1]), None)

    def req_pnl_single(self, session: Client, fields: list[str]) -> None:
        # 94, reqId, account, modelCode, conId
        req_id = int(fields[1])
        account = fields[2] if len(fields) > 2 else ""
        con_id = int(fields[4]) if len(fields) > 4 and fields[4] else 0
        acc = self.gateway.account(account)
        if acc is None:
            self._send(session, m.error(req_id, 321, (f"Error validating request:-'a0' : cause - account {account!r} unknown")))
            return
        self._subs_of(session).pnl_single[req_id] = (acc.account_id, con_id)
        self._send(session, self._pnl_single_frame(req_id, acc.account_id, con_id))

    def cancel_pnl_single(self, session: Client, fields: list[str]) -> None:
        self._subs_of(session).pnl_single.pop(int(fields[1]), None)

    def periodic(self) -> None:
        if self.gateway.faults.outage:  # IB unreachable (1100): no account data until restored
            return
        now = time.monotonic()
        account_due = now - self._last_account >= self.account_interval
        if account_due or now - self._last_pnl >= self.pnl_interval:
            # P&L first, then the account values at the same marks: a client reading NetLiq
            # when it arrives has the P&L of the same instant
            self._last_pnl = now
            for session, subs in self._subs.items():
                if subs.any_pnl():
                    self._push_pnl(session, subs, None)
        if account_due:
            self._last_account = now
            for session, subs in self._subs.items():
                if subs.account_updates:
                    acc = self.gateway.account(subs.account_updates)
                    if acc is not None:
                        self._send(session, b"".join(self._account_frames(acc, None)))
                for req_id, tags in subs.summary.items():
                    self._send(session, self._summary_frames(req_id, tags))

    def drop_account_subscriptions(self) -> int:
        """What IB does on 1101 (connectivity restored, data lost): every client's account
        updates, positions, reqPnL and reqPnLSingle subscriptions are gone; clients must
        request them again. Returns how many subscriptions were dropped."""
        n = 0
        for subs in self._subs.values():
            n += len(subs.pnl) + len(subs.pnl_single) + bool(subs.account_updates) + subs.positions
            subs.pnl.clear()
            subs.pnl_single.clear()
            subs.account_updates = None
            subs.positions = False
        return n

    def _push_pnl(self, session: Client, subs: _Subs, con_ids: set[int] | None) -> None:
        out = [self._pnl_frame(r, a) for r, a in subs.pnl.items()]
        out += [self._pnl_single_frame(r, a, c) for r, (a, c) in subs.pnl_single.items() if con_ids is None or c in con_ids]
        if out:
            self._send(session, b"".join(out))

    def push_dirty(self) -> None:
        """After fills: position and portfolio rows of the conIds that traded at once;
        account values, summaries and P&L coalesced (:meth:`_push_deferred`)."""
        dirty, self.dirty = self.dirty, {}
        for session, subs in self._subs.items():
            out: list[bytes] = []
            for account_id, con_ids in dirty.items():
                acc = self.gateway.account(account_id)
                if acc is None:
                    continue
                if subs.positions:
                    out += [position(account_id, acc.positions[c]) for c in con_ids if c in acc.positions]
                if subs.account_updates == account_id:
                    out += self._portfolio_frames(acc, con_ids)
            if out:
                self._send(session, b"".join(out))
        for account_id, con_ids in dirty.items():
            self._due_accounts.add(account_id)
            self._due_con_ids |= con_ids
        if self._deferred is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # driven by hand outside a loop: push now
                self._push_deferred()
                return
            self._deferred = loop.call_later(self.coalesce_interval, self._deferred_push)

    def _deferred_push(self) -> None:
        self._deferred = None
        try:
            self._push_deferred()
        finally:
            self._flush()

    def _push_deferred(self) -> None:
        """Account values, account summaries and P&L of the accounts fills changed."""
        accounts, self._due_accounts = self._due_accounts, set()
        self._due_con_ids = set()  # every position's pnlSingle goes out (below)
        for session, subs in self._subs.items():
            if subs.any_pnl():  # first: the account values below are at the same marks; every
                self._push_pnl(session, subs, None)  # position, so the account = their sum
            out: list[bytes] = []
            if subs.account_updates in accounts:
                acc = self.gateway.account(subs.account_updates)
                if acc is not None:
                    out += self._value_frames(acc)
            if accounts:
                for req_id, tags in subs.summary.items():
                    out.append(self._summary_frames(req_id, tags))
            if out:
                self._send(session, b"".join(out))
