"""Building blocks of the scanners (:mod:`desk.arbitrage.scanners`): the arrays of one
snapshot (executable sides, carry, early-exercise flags of short legs), the candidates
the scanners find (:class:`_Found`), the pairing helpers, and the conversion of
candidates into :class:`~desk.domain.opportunity.Opportunity` objects net of costs
(:func:`_emit`). Units and formulas are those of :mod:`desk.arbitrage.scanners`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from desk.arbitrage.chain import ChainSnapshot, Carry, Costs, dividend_pv, excess_rate
from desk.domain.opportunity import LegAction, Leg, Opportunity, OpportunityKind, RiskFlag

AMERICAN = "american"
EUROPEAN = "european"
STYLES = (AMERICAN, EUROPEAN)

#: Edges below this many dollars per combo are float noise, not opportunities.
EDGE_TOLERANCE = 1e-6

_RISK_CALL = 1
_RISK_PUT = 2
_RISK_DIV = 4
_RISK_PREMIUM = 8
_RISK_BITS = (
    (_RISK_CALL, RiskFlag.EARLY_EXERCISE_CALL),
    (_RISK_PUT, RiskFlag.EARLY_EXERCISE_PUT),
    (_RISK_DIV, RiskFlag.DIVIDEND),
    (_RISK_PREMIUM, RiskFlag.AMERICAN_PREMIUM),
)
_RISK_SETS = tuple(frozenset(flag for bit, flag in _RISK_BITS if mask & bit) for mask in range(16))


def _exec_side(price: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Executable price (NaN unless price > 0 and size > 0) and size (0 if not executable)."""
    ok = (price > 0) & (size > 0)  # NaN compares False
    return np.where(ok, price, np.nan), np.where(ok, np.floor(size), 0.0)


def _mid(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """(bid + ask) / 2 where both are quoted (ask > 0), else NaN."""
    return np.where((bid >= 0) & (ask > 0), (bid + ask) / 2.0, np.nan)


class _Context:
    """Arrays shared by the scanners for one snapshot and a subset of its expiries."""

    def __init__(
        self,
        snap: ChainSnapshot,
        carry: Carry,
        costs: Costs,
        style: str,
        rows: np.ndarray | None = None,
        cols: np.ndarray | None = None,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        self.snap, self.carry, self.costs, self.style = snap, carry, costs, style
        n_e, n_k = snap.shape
        self.rows = np.arange(n_e) if rows is None else np.asarray(rows, dtype=np.int64)
        self.cols = np.arange(n_k) if cols is None else np.asarray(cols, dtype=np.int64)
        rows = self.rows
        self.m = float(snap.multiplier)
        self.K = snap.strikes[self.cols]
        all_cols = cols is None
        self.T = snap.years_to_expiry[rows]
        self.days = snap.days_to_expiry[rows]
        self.live = self.T > 0
        self.disc = np.exp(-carry.rate * np.maximum(self.T, 0.0))
        dpv, dmax = dividend_pv(carry, snap)
        self.dpv, self.dmax = dpv[rows], dmax[rows]
        #: discount factor of conversions, at the rate plus the chain's excess (d_s)
        self.disc_conv = np.exp(-(carry.rate + excess_rate(carry, snap)[rows]) * np.maximum(self.T, 0.0))
        live = self.live[:, None]

        def grid(name: str) -> np.ndarray:
            arr = getattr(snap, name)[rows]
            return arr if all_cols else arr[:, self.cols]

        self.cb, self.cbs = _exec_side(np.where(live, grid("call_bid"), np.nan), grid("call_bid_size"))
        self.ca, self.cas = _exec_side(np.where(live, grid("call_ask"), np.nan), grid("call_ask_size"))
        self.pb, self.pbs = _exec_side(np.where(live, grid("put_bid"), np.nan), grid("put_bid_size"))
        self.pa, self.pas = _exec_side(np.where(live, grid("put_ask"), np.nan), grid("put_ask_size"))
        s_bid, s_bs = _exec_side(np.float64(snap.under_bid), np.float64(snap.under_bid_size))
        s_ask, s_as = _exec_side(np.float64(snap.under_ask), np.float64(snap.under_ask_size))
        self.Sb, self.Sbs, self.Sa, self.Sas = float(s_bid), float(s_bs), float(s_ask), float(s_as)
        if snap.under_bid > 0 and snap.under_ask > 0:
            self.S_ref = (snap.under_bid + snap.under_ask) / 2.0
        else:
            self.S_ref = snap.under_ask if snap.under_ask > 0 else snap.under_bid  # may be NaN
        self.div_bits = np.where(self.dpv > 0, _RISK_DIV, 0)
        # Early-exercise flags of a short leg at each cell (American style only).
        if style == AMERICAN and math.isfinite(self.S_ref):
            S, K = self.S_ref, self.K[None, :]
            put_tv = np.nan_to_num(_mid(grid("put_bid"), grid("put_ask")) - np.maximum(K - S, 0.0), nan=0.0)
            call_tv = np.nan_to_num(_mid(grid("call_bid"), grid("call_ask")) - np.maximum(S - K, 0.0), nan=0.0)
            call_risk = (S > K) & (self.dmax[:, None] > np.maximum(put_tv, 0.0))
            put_risk = (K > S) & (carry.rate * K * self.T[:, None] > np.maximum(call_tv, 0.0))
            self.call_risk = np.where(call_risk, _RISK_CALL, 0)
            self.put_risk = np.where(put_risk, _RISK_PUT, 0)
        else:
            self.call_risk = np.zeros((len(rows), len(self.cols)), dtype=np.int64)
            self.put_risk = np.zeros((len(rows), len(self.cols)), dtype=np.int64)


@dataclass(slots=True)
class _LegSpec:
    sec_type: str
    right: str
    action: LegAction
    rows: np.ndarray  # local row index (into the context's rows)
    cols: np.ndarray  # strike index
    ratio: np.ndarray  # int per candidate
    price: np.ndarray  # executable price per share
    size: np.ndarray  # displayed size on that side


@dataclass(slots=True)
class _Found:
    kind: OpportunityKind
    rule: str
    rows: np.ndarray  # local row of the (near) expiry
    legs: list[_LegSpec]
    net: np.ndarray
    bound: np.ndarray
    size: np.ndarray
    capital: np.ndarray  # per share
    risk: np.ndarray
    #: per share: European bound minus the bound that holds whatever the exercise of
    #: American short legs (None: the bound holds for American options as it is)
    gap: np.ndarray | None = None


def _select(edge: np.ndarray, size: np.ndarray, m: float) -> np.ndarray:
    return (edge * m > EDGE_TOLERANCE) & (size >= 1)


def _best_after(v: np.ndarray, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Along the last axis: for each i the best (largest or smallest) ``v[..., j]`` over
    ``j > i`` and its index ``j`` (value ±inf, index -1 when there is none). ``v`` holds
    ±inf, not NaN, where missing."""
    n = v.shape[-1]
    rev = v[..., ::-1]
    acc = (np.maximum if largest else np.minimum).accumulate(rev, axis=-1)
    pos = np.maximum.accumulate(np.where(rev == acc, np.arange(n), -1), axis=-1)
    best = acc[..., ::-1]
    idx = (n - 1 - pos)[..., ::-1]
    out = np.full(v.shape, -np.inf if largest else np.inf)
    out_idx = np.full(v.shape, -1, dtype=np.int64)
    out[..., :-1] = best[..., 1:]
    out_idx[..., :-1] = idx[..., 1:]
    return out, out_idx


def _best_before(v: np.ndarray, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """Along the last axis: for each j the best ``v[..., i]`` over ``i < j`` and its index."""
    n = v.shape[-1]
    acc = (np.maximum if largest else np.minimum).accumulate(v, axis=-1)
    pos = np.maximum.accumulate(np.where(v == acc, np.arange(n), -1), axis=-1)
    out = np.full(v.shape, -np.inf if largest else np.inf)
    out_idx = np.full(v.shape, -1, dtype=np.int64)
    out[..., 1:] = acc[..., :-1]
    out_idx[..., 1:] = pos[..., :-1]
    return out, out_idx


def _one_per_partner(
    r: np.ndarray, anchor: np.ndarray, partner: np.ndarray, ev: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of candidates ``(group r, anchor, partner)`` with edges ``ev`` keep, for each
    ``(r, partner)``, the one with the largest edge: a mispriced quote pairs with every
    anchor, and all those combos compete for its displayed size, so only the best is
    reported."""
    if len(r) < 2:
        return r, anchor, partner
    order = np.lexsort((-ev, partner, r))
    rs, ps = r[order], partner[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (rs[1:] != rs[:-1]) | (ps[1:] != ps[:-1])
    keep = np.sort(order[first])
    return r[keep], anchor[keep], partner[keep]


def _fill(v: np.ndarray, largest: bool) -> np.ndarray:
    """NaN -> the value that never wins (-inf when looking for the largest)."""
    return np.where(np.isnan(v), -np.inf if largest else np.inf, v)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.int64)


# --------------------------------------------------------------------------- output


def _emit(ctx: _Context, found: list[_Found], *, net_of_costs: bool, min_edge: float) -> list[Opportunity]:
    snap, m, costs = ctx.snap, ctx.m, ctx.costs
    exp_str = snap.expiry_strings
    now = snap.now
    result: list[Opportunity] = []
    for f in found:
        size = f.size
        total_cost = np.zeros(len(size))
        for leg in f.legs:
            qty = leg.ratio * size
            if leg.sec_type == "STK":
                total_cost += costs.stock_order(qty, leg.price)
            else:
                total_cost += costs.option_order(qty, leg.price)
        costs_combo = total_cost / size
        edge = f.bound - f.net
        risk = f.risk
        if f.gap is not None and ctx.style == AMERICAN:
            risk = risk | np.where(edge <= f.gap + 1e-12, _RISK_PREMIUM, 0)
        edge_combo = edge * m
        net_combo = edge_combo - costs_combo
        keep = net_combo > max(min_edge, EDGE_TOLERANCE) if net_of_costs else np.ones(len(size), dtype=bool)
        idx = np.nonzero(keep)[0]
        if not len(idx):
            continue
        T = ctx.T[f.rows]
        capital_combo = f.capital * m
        with np.errstate(divide="ignore", invalid="ignore"):
            annual = np.where((capital_combo > 0) & (T > 0), net_combo / capital_combo / T, np.nan)
        legs_cols = []
        for leg in f.legs:
            g_rows = ctx.rows[leg.rows]
            g_cols = ctx.cols[leg.cols]
            if leg.sec_type == "STK":
                con = np.full(len(g_rows), snap.under_con_id)
            else:
                con = (snap.call_con_id if leg.right == "C" else snap.put_con_id)[g_rows, g_cols]
            legs_cols.append(
                (
                    leg,
                    con.tolist(),
                    snap.strikes[g_cols].tolist(),
                    g_rows.tolist(),
                    np.asarray(leg.ratio).tolist(),
                    leg.price.tolist(),
                    leg.size.tolist(),
                )
            )
        g_rows = ctx.rows[f.rows].tolist()
        days = ctx.days[f.rows].tolist()
        Tl = T.tolist()
        cols = (
            f.net.tolist(),
            (f.net * m).tolist(),
            f.bound.tolist(),
            edge.tolist(),
            edge_combo.tolist(),
            costs_combo.tolist(),
            net_combo.tolist(),
            size.tolist(),
            capital_combo.tolist(),
            annual.tolist(),
            risk.tolist(),
        )
        net_l, netc_l, bound_l, edge_l, edgec_l, cost_l, netcomb_l, size_l, cap_l, ann_l, risk_l = cols
        for n in idx.tolist():
            legs = []
            for leg, con, strikes, lrows, ratios, prices, sizes in legs_cols:
                if leg.sec_type == "STK":
                    legs.append(Leg(int(con[n]), "STK", "", 0.0, "", leg.action, int(ratios[n]), prices[n], sizes[n]))
                else:
                    legs.append(
                        Leg(
                            int(con[n]),
                            "OPT",
                            leg.right,
                            strikes[n],
                            exp_str[lrows[n]],
                            leg.action,
                            int(ratios[n]),
                            prices[n],
                            sizes[n],
                        )
                    )
            max_size = int(size_l[n])
            total = netcomb_l[n] * max_size
            result.append(
                Opportunity(
                    kind=f.kind,
                    rule=f.rule,
                    symbol=snap.symbol,
                    legs=tuple(legs),
                    multiplier=m,
                    net_price=net_l[n],
                    net_price_combo=netc_l[n],
                    bound=bound_l[n],
                    edge=edge_l[n],
                    edge_combo=edgec_l[n],
                    costs_combo=cost_l[n],
                    edge_combo_net=netcomb_l[n],
                    edge_total=total,
                    max_size=max_size,
                    expiry=exp_str[g_rows[n]],
                    days_to_expiry=int(days[n]),
                    years_to_expiry=Tl[n],
                    capital_combo=cap_l[n],
                    annualized_return=ann_l[n],
                    risks=_RISK_SETS[risk_l[n]],
                    first_seen=now,
                    last_seen=now,
                    best_edge_total=total,
                )
            )
    return result
