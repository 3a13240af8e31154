"""The option chain of a replay (:mod:`desk.sim.replay`): :class:`ReplayOptions`, the
gateway's :class:`~desk.sim.option_source.OptionSource` listing the recorded contracts and quoting
them from their recorded minute bars (see :mod:`desk.sim.replay` for the timing).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import SECONDS_PER_YEAR
from desk.sim.chain import OPTION_EXCHANGES, SimOption, expiry_epoch
from desk.sim.contracts import ContractQuery
from desk.sim.market import Changed
from desk.sim.option_source import OptionRows, SecDefParams
from desk.sim.replay_data import MINUTE, Cursor, ReplayData, quote_at

__all__ = ["ReplayOptions"]


def _norm_right(right: str) -> str:
    r = right.strip().upper()
    return {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}.get(r, "")


class ReplayOptions:
    """The :class:`~desk.sim.option_source.OptionSource` of a replay: the recorded contracts
    and their recorded quotes (see :mod:`desk.sim.replay` for the timing). Open interest is
    the day's recorded value (contracts); the option's previous close is not recorded
    (sent as NaN); the dividend yield is 0 (none of the replayed underlyings paid one)."""

    def __init__(self, data: ReplayData) -> None:
        self.data = data
        self._cursors: list[Cursor] = []
        self._next = np.zeros(0)  # per row: when its next bar completes (inf: none)

    # --- definitions -------------------------------------------------------------------

    def sec_def_params(self, symbol: str, con_id: int) -> list[SecDefParams] | None:
        stock = self.data.stocks.get(symbol.strip().upper()) if symbol else None
        if stock is None and con_id:
            stock = next((s for s in self.data.stocks.values() if s.con_id == con_id), None)
        if stock is None or (con_id and stock.con_id != con_id):
            return None
        chain = self.data.chains.get(stock.symbol, [])
        if not chain:
            return []
        exps = tuple(sorted({o.expiry for o in chain}))
        strikes = tuple(sorted({o.strike for o in chain}))
        return [SecDefParams(ex, stock.con_id, stock.symbol, "100", exps, strikes) for ex in OPTION_EXCHANGES]

    def find(self, q: ContractQuery) -> list[SimOption]:
        if q.multiplier not in ("", "0", "100") or q.currency not in ("", "USD"):
            return []
        if q.exchange and q.exchange not in OPTION_EXCHANGES:
            return []
        if q.con_id:
            opt = self.data.options.get(q.con_id)
            cands = [opt] if opt is not None else []
        elif q.symbol:
            cands = self.data.chains.get(q.symbol.upper(), [])
        elif q.local_symbol:
            cands = [o for c in self.data.chains.values() for o in c]
        else:
            return []
        right = _norm_right(q.right)
        local = q.local_symbol.replace(" ", "").upper()
        out = [
            o
            for o in cands
            if (not q.symbol or o.symbol == q.symbol.upper())
            and (not q.last_trade_date or o.expiry.startswith(q.last_trade_date))
            and (not q.strike or abs(o.strike - q.strike) < 1e-6)
            and (not right or o.right == right)
            and (not q.trading_class or o.trading_class == q.trading_class)
            and (not local or o.local_symbol.replace(" ", "") == local)
        ]
        out.sort(key=lambda o: (o.expiry, o.strike, o.right))
        return out

    def option(self, con_id: int) -> SimOption | None:
        return self.data.options.get(con_id)

    def dividend_yield(self, symbol: str) -> float:
        return 0.0

    # --- quotes --------------------------------------------------------------------------

    def open_rows(self, rows: OptionRows, new: slice, S: NDArray[np.float64], now: float, r: float) -> None:
        for i in range(new.start, new.stop):
            self._cursors.append(Cursor())
            rows.close[i] = math.nan
            rows.open[i] = math.nan
            rows.high[i] = math.nan
            rows.low[i] = math.nan
            rows.last[i] = math.nan
            rows.open_interest[i] = self.data.open_interest.get(int(rows.con_id[i]), 0)
            rows.model_iv[i] = math.nan
        self._next = np.concatenate([self._next, np.full(new.stop - new.start, -np.inf)])
        self._apply(rows, np.arange(new.start, new.stop), now)

    def step_rows(self, rows: OptionRows, S: NDArray[np.float64], now: float, dt: float, r: float) -> NDArray[np.integer]:
        bits = np.zeros(rows.n, dtype=np.int64)
        due = np.flatnonzero(self._next[: rows.n] <= now)
        if due.size:
            bits[due] = self._apply(rows, due, now)
        return bits

    def _apply(self, rows: OptionRows, idx: NDArray[np.integer], now: float) -> NDArray[np.int64]:
        out = np.zeros(len(idx), dtype=np.int64)
        series = self.data.series
        for j, i in enumerate(idx.tolist()):
            rec = series.get(int(rows.con_id[i]))
            if rec is None:
                self._next[i] = np.inf
                continue
            cur = self._cursors[i]
            f = 0
            k = rec.bid.known(now)
            if k > cur.bid:
                cur.bid = k
                price, size = quote_at(rec.bid, k - 1)
                if price != rows.bid[i]:
                    f |= Changed.BID
                elif size != rows.bid_size[i]:
                    f |= Changed.BID_SIZE
                rows.bid[i], rows.bid_size[i] = price, size
            k = rec.ask.known(now)
            if k > cur.ask:
                cur.ask = k
                price, size = quote_at(rec.ask, k - 1)
                if price != rows.ask[i]:
                    f |= Changed.ASK
                elif size != rows.ask_size[i]:
                    f |= Changed.ASK_SIZE
                rows.ask[i], rows.ask_size[i] = price, size
            tr = rec.trades
            k = tr.known(now)
            if k > cur.trades:
                for m in range(cur.trades, k):
                    px, v = float(tr.c[m]), int(tr.v[m])
                    rows.last[i], rows.last_size[i] = px, v
                    rows.volume[i] += v
                    if rows.open[i] != rows.open[i]:
                        rows.open[i] = float(tr.o[m])
                    if not rows.high[i] >= tr.h[m]:
                        rows.high[i] = float(tr.h[m])
                        f |= Changed.HIGH
                    if not rows.low[i] <= tr.l[m]:
                        rows.low[i] = float(tr.l[m])
                        f |= Changed.LOW
                cur.trades = k
                f |= Changed.TRADE
            # next bar end of any kind
            nxt = [float(s.t[c]) + MINUTE for s, c in ((rec.bid, cur.bid), (rec.ask, cur.ask), (tr, cur.trades)) if c < len(s)]
            self._next[i] = min(nxt) if nxt else np.inf
            out[j] = int(f)
        return out

    def underlying_stats(self, symbol: str, S: float, now: float, r: float) -> tuple[int, int, int, int, float] | None:
        chain = self.data.chains.get(symbol)
        if not chain:
            return None
        oi = self.data.open_interest
        call_oi = sum(oi.get(o.con_id, 0) for o in chain if o.right == "C")
        put_oi = sum(oi.get(o.con_id, 0) for o in chain if o.right == "P")
        vols = {"C": 0, "P": 0}
        for o in chain:
            rec = self.data.series.get(o.con_id)
            if rec is not None and len(rec.trades):
                vols[o.right] += int(rec.trades.v[: rec.trades.known(now)].sum())
        return call_oi, put_oi, vols["C"], vols["P"], self._atm_iv(chain, S, now, r)

    def _atm_iv(self, chain: list[SimOption], S: float, now: float, r: float) -> float:
        """Implied vol of the call nearest the money at the expiry nearest 30 days, from
        its recorded mid (NaN when it has no two-sided quote)."""
        from desk.pricing import implied_vol

        if not S == S or S <= 0:
            return math.nan
        target = now + 30 * 86400
        calls = [o for o in chain if o.right == "C" and expiry_epoch(o.expiry) > now]
        if not calls:
            return math.nan
        exp = min({o.expiry for o in calls}, key=lambda e: abs(expiry_epoch(e) - target))
        opt = min((o for o in calls if o.expiry == exp), key=lambda o: abs(o.strike - S))
        rec = self.data.series.get(opt.con_id)
        if rec is None:
            return math.nan
        kb, ka = rec.bid.known(now), rec.ask.known(now)
        if not kb or not ka:
            return math.nan
        bid, _ = quote_at(rec.bid, kb - 1)
        ask, _ = quote_at(rec.ask, ka - 1)
        if bid <= 0 or ask <= 0:
            return math.nan
        T = (expiry_epoch(opt.expiry) - now) / SECONDS_PER_YEAR
        res = implied_vol(
            np.array([True]), np.array([(bid + ask) / 2.0]), np.array([S]), np.array([opt.strike]), np.array([T]), r, 0.0
        )
        return float(res.iv[0])
