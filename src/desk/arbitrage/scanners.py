"""Vectorized no-arbitrage scanners over one option chain snapshot.

Every scanner works on whole ``(n_expiries, n_strikes)`` arrays at once (numpy, no Python
loop over strikes) and prices each combo at **executable** prices: a leg bought pays the
ask, a leg sold receives the bid, and only sides with a positive price and a positive
displayed size count. Notation below: per share, ``S`` the stock, ``C(K)``/``P(K)`` a call /
put at strike ``K``, ``a``/``b`` ask/bid, ``T`` ACT/365 years to expiry, ``r`` the carry rate,
``d = exp(-r T)``, ``D`` the present value of the dividends going ex on or before expiry
(:func:`desk.arbitrage.chain.dividend_pv`), ``beta`` the borrow rate, ``s`` the spread
of the financing rate the chain implies for that expiry over ``r`` (``Carry.excess_rate``,
0 unless set: :func:`desk.arbitrage.chain.excess_rate`), ``d_s = exp(-(r + s) T)``.

For every combo ``net`` is its executable price per share (positive: a debit), ``bound`` the
no-arbitrage value of the position per share (a lower bound of what it is worth), and
``edge = bound - net`` per share; an opportunity is ``edge > 0``.

Conversion / reversal (put-call parity with dividends, ``c + D + K e^{-rT} = p + S``: Hull,
*Options, Futures, and Other Derivatives*, 10th ed., ch. 11, put-call parity and the effect
of dividends; McDonald, *Derivatives Markets*, 3rd ed., ch. 9 for conversions and reversals
and ch. 5 for the lease (borrow) rate):

* conversion: BUY ``multiplier`` shares, SELL 1 call, BUY 1 put; ``net = Sa - Cb + Pa``;
  ``bound = K d_s + D`` (K received at expiry, discounted at the rate the conversion
  lends at, dividends received on the way: the market's rate above ``r`` is none of the
  chain's mispricing).
  Capital: the debit.
* reversal: SELL shares short, BUY 1 call, SELL 1 put; ``net = -Sb + Ca - Pb``;
  ``bound = -(K d + D + Sb (1 - exp(-beta T)))`` (K paid at expiry, dividends owed to the
  lender, the borrow fee on the short sale). Capital: ``K`` (the payment due at expiry).

Box spread (Ronn & Ronn, "The box spread arbitrage conditions", *Review of Financial
Studies* 2(1), 1989; Hull ch. 12, box spreads), strikes ``K1 < K2``, one expiry:

* long box: BUY C(K1), SELL C(K2), SELL P(K1), BUY P(K2); pays ``K2 - K1`` at expiry;
  ``net = C1a - C2b - P1b + P2a``, ``bound = (K2 - K1) d``. Capital: the debit.
* short box: the reverse; ``net = -C1b + C2a + P1a - P2b``, ``bound = -(K2 - K1) d``.
  Capital: ``K2 - K1`` (owed at expiry).

Strike bounds (Merton, "Theory of rational option pricing", *Bell Journal of Economics*
4(1), 1973: prices monotone and convex in the strike; Carr & Madan, "A note on sufficient
conditions for no arbitrage", *Finance Research Letters* 2(3), 2005: vertical, butterfly
and calendar spreads), ``K1 < K2 < K3``, one expiry:

* vertical, monotonicity: calls fall with strike: BUY C(K1), SELL C(K2),
  ``net = C1a - C2b``, ``bound = 0``; puts rise with strike: BUY P(K2), SELL P(K1),
  ``net = P2a - P1b``, ``bound = 0``. Capital: the premium of the leg bought.
* vertical, slope: a call spread is worth at most the discounted strike difference:
  SELL C(K1), BUY C(K2), ``net = -C1b + C2a``, ``bound = -(K2 - K1) d``; puts: SELL P(K2),
  BUY P(K1), ``net = -P2b + P1a``, same bound. Capital: ``K2 - K1`` (the most it can lose).
* butterfly, convexity: with ``w1 = K3 - K2``, ``w3 = K2 - K1`` and ``g = gcd(w1, w3)``:
  BUY ``w1/g`` at K1, SELL ``(w1 + w3)/g`` at K2, BUY ``w3/g`` at K3 (1:2:1 for equal
  spacing) of one right; ``bound = 0``. Checked on adjacent listed strikes of each
  expiry (wider butterflies are not scanned). Capital: the premium of the wings.

Calendar (Carr & Madan 2005; Merton 1973: an American option is worth at least one with
less time to run), one strike,
expiries ``T1 < T2``: SELL the near, BUY the far, ``net = far_a - near_b``, ``bound = 0``.
American options: holds for calls and puts whatever the carry (a short near leg
exercised early is covered by exercising the long far leg). European options: checked for
calls only, only when ``r >= 0`` and no dividend goes ex between the two expiries (a
European put, or a call across a dividend, can be worth less for longer). Capital: the
far leg's premium.

Every bound above is the European one (discounted strikes), as the edge is measured
against it. For American options (``style="american"``, US equity options) some of them
only hold in a weaker form, because a short leg can be exercised at any time (Hull ch. 11,
American options: ``S - D - K <= C - P <= S - K e^{-rT}``): the bound that holds whatever the
exercise is lower by a gap ``A`` per share:

* conversion: ``A = D`` (a call assigned before an ex-date takes the dividends away; an
  edge beyond ``A`` is there even if no dividend is paid);
* reversal: ``A = max(K (1 - d) - D - Sb (1 - exp(-beta T)), 0)`` (a put assigned today
  makes the strike payable now);
* short box: ``A = K2 (1 - d) + D`` (the short put K2 assigned today: K2 paid now, the
  stock received covers the short call K1, which pays K1 at expiry at the latest; a short
  call assigned before an ex-date leaves a short stock owing the dividends);
* vertical slope: ``A = (K2 - K1)(1 - d)`` (on assignment the long leg is exercised at
  once: the spread is owed now, not at expiry);
* long box, monotonicity, butterflies and calendars: ``A = 0``, the bounds hold for
  American options as they are (Merton 1973; the long legs cover any early assignment).

An opportunity whose edge is no larger than ``A`` is flagged ``AMERICAN_PREMIUM``: the
apparent mispricing can be the early-exercise premium of the American short leg.
Each opportunity also carries the risk flags of its short American legs
(:class:`desk.domain.opportunity.RiskFlag`):

* short call: in the money (``S > K``, S the stock's mid) and a dividend going ex before
  expiry larger than the put's time value at that strike (``P_mid - max(K - S, 0)``, 0 if
  unquoted): the holder exercises the day before the ex-date (Hull ch. 15, American calls
  on dividend-paying stocks);
* short put: in the money and ``r K T`` larger than the call's time value at that strike
  (``C_mid - max(S - K, 0)``): the holder gains the interest on the strike by exercising
  (Hull ch. 11, early exercise of puts).

Pairs without looping over them: for each anchor strike (or near expiry) the partner with
the best edge comes from running maxima / minima along the row (``numpy.maximum.accumulate``),
O(n_k) per expiry instead of O(n_k^2); of the anchors that pick the same partner only the
best is reported (they would all compete for that quote's displayed size). A debit combo
that comes out as a credit (conversion, long box) counts the premium of its legs bought
as capital.

Costs (:class:`desk.arbitrage.chain.Costs`): one order per leg for ``max_size`` combos, so
``costs_combo = sum(leg order costs at max_size) / max_size``. ``max_size`` is the
smallest ``displayed size // ratio`` over the legs (stock sizes in shares, a conversion
needs ``multiplier`` shares per combo).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from desk.arbitrage.chain import ChainSnapshot, Carry, Costs, dividends_between
from desk.arbitrage.grid import (
    AMERICAN,
    EDGE_TOLERANCE,
    EUROPEAN,
    STYLES,
    _best_after,
    _best_before,
    _Context,
    _emit,
    _fill,
    _Found,
    _LegSpec,
    _one_per_partner,
    _ones,
    _select,
)
from desk.domain.opportunity import LegAction, Opportunity, OpportunityKind

__all__ = [
    "ALL_SCANNERS",
    "AMERICAN",
    "EDGE_TOLERANCE",
    "EUROPEAN",
    "ROW_SCANNERS",
    "STYLES",
    "scan_boxes",
    "scan_butterflies",
    "scan_calendars",
    "scan_chain",
    "scan_parity",
    "scan_verticals",
]


# --------------------------------------------------------------------------- scanners


def _parity(ctx: _Context) -> list[_Found]:
    K, d, dpv, m = ctx.K[None, :], ctx.disc[:, None], ctx.dpv[:, None], ctx.m
    stock_ratio = int(round(m))
    out = []
    # conversion: buy stock, sell call, buy put
    net = ctx.Sa - ctx.cb + ctx.pa
    bound = K * ctx.disc_conv[:, None] + dpv
    size = np.minimum(np.minimum(ctx.cbs, ctx.pas), math.floor(ctx.Sas / m))
    r, c = np.nonzero(_select(bound - net, size, m))
    if len(r):
        n = len(r)
        out.append(
            _Found(
                OpportunityKind.CONVERSION,
                "conversion",
                r,
                [
                    _LegSpec("STK", "", LegAction.BUY, r, c, _ones(n) * stock_ratio, np.full(n, ctx.Sa), np.full(n, ctx.Sas)),
                    _LegSpec("OPT", "C", LegAction.SELL, r, c, _ones(n), ctx.cb[r, c], ctx.cbs[r, c]),
                    _LegSpec("OPT", "P", LegAction.BUY, r, c, _ones(n), ctx.pa[r, c], ctx.pas[r, c]),
                ],
                net[r, c],
                bound[r, c],
                size[r, c],
                np.where(net[r, c] > 0, net[r, c], ctx.Sa + ctx.pa[r, c]),
                ctx.call_risk[r, c] | ctx.div_bits[r],
                ctx.dpv[r],
            )
        )
    # reversal: sell stock short, buy call, sell put
    borrow = ctx.Sb * (1.0 - np.exp(-ctx.carry.borrow_rate * np.maximum(ctx.T, 0.0)))[:, None]
    net = -ctx.Sb + ctx.ca - ctx.pb
    bound = -(K * d + dpv + borrow)
    size = np.minimum(np.minimum(ctx.cas, ctx.pbs), math.floor(ctx.Sbs / m))
    r, c = np.nonzero(_select(bound - net, size, m))
    if len(r):
        n = len(r)
        out.append(
            _Found(
                OpportunityKind.REVERSAL,
                "reversal",
                r,
                [
                    _LegSpec("STK", "", LegAction.SELL, r, c, _ones(n) * stock_ratio, np.full(n, ctx.Sb), np.full(n, ctx.Sbs)),
                    _LegSpec("OPT", "C", LegAction.BUY, r, c, _ones(n), ctx.ca[r, c], ctx.cas[r, c]),
                    _LegSpec("OPT", "P", LegAction.SELL, r, c, _ones(n), ctx.pb[r, c], ctx.pbs[r, c]),
                ],
                net[r, c],
                bound[r, c],
                size[r, c],
                ctx.K[c],
                ctx.put_risk[r, c] | ctx.div_bits[r],
                np.maximum(ctx.K[c] * (1.0 - ctx.disc[r]) - ctx.dpv[r] - borrow[r, 0], 0.0),
            )
        )
    return out


def _box(ctx: _Context) -> list[_Found]:
    K, d, m = ctx.K[None, :], ctx.disc[:, None], ctx.m
    out = []
    buy_syn = ctx.ca - ctx.pb  # buy call, sell put at K
    sell_syn = ctx.cb - ctx.pa  # sell call, buy put at K
    buy_syn_size = np.minimum(ctx.cas, ctx.pbs)
    sell_syn_size = np.minimum(ctx.cbs, ctx.pas)
    rows = np.arange(len(ctx.rows))[:, None]
    # long box: buy synthetic at K1 (i), sell at K2 (j > i); edge = (sell_j + K_j d) - (buy_i + K_i d)
    best, j = _best_after(_fill(sell_syn + K * d, True), True)
    edge = best - (buy_syn + K * d)
    jj = np.maximum(j, 0)
    size = np.minimum(buy_syn_size, sell_syn_size[rows, jj])
    r, i = np.nonzero(_select(edge, size, m))
    if len(r):
        r, i, j = _one_per_partner(r, i, jj[r, i], edge[r, i])
        n = len(r)
        width = ctx.K[j] - ctx.K[i]
        net = buy_syn[r, i] - sell_syn[r, j]
        out.append(
            _Found(
                OpportunityKind.BOX,
                "long box",
                r,
                [
                    _LegSpec("OPT", "C", LegAction.BUY, r, i, _ones(n), ctx.ca[r, i], ctx.cas[r, i]),
                    _LegSpec("OPT", "C", LegAction.SELL, r, j, _ones(n), ctx.cb[r, j], ctx.cbs[r, j]),
                    _LegSpec("OPT", "P", LegAction.SELL, r, i, _ones(n), ctx.pb[r, i], ctx.pbs[r, i]),
                    _LegSpec("OPT", "P", LegAction.BUY, r, j, _ones(n), ctx.pa[r, j], ctx.pas[r, j]),
                ],
                net,
                width * ctx.disc[r],
                size[r, i],
                np.where(net > 0, net, ctx.ca[r, i] + ctx.pa[r, j]),
                ctx.call_risk[r, j] | ctx.put_risk[r, i],
            )
        )
    # short box: sell synthetic at K1 (i), buy at K2 (j > i); edge = (sell_i + K_i d) - (buy_j + K_j d)
    best, j = _best_after(_fill(buy_syn + K * d, False), False)
    edge = (sell_syn + K * d) - best
    jj = np.maximum(j, 0)
    size = np.minimum(sell_syn_size, buy_syn_size[rows, jj])
    r, i = np.nonzero(_select(edge, size, m))
    if len(r):
        r, i, j = _one_per_partner(r, i, jj[r, i], edge[r, i])
        n = len(r)
        width = ctx.K[j] - ctx.K[i]
        out.append(
            _Found(
                OpportunityKind.BOX,
                "short box",
                r,
                [
                    _LegSpec("OPT", "C", LegAction.SELL, r, i, _ones(n), ctx.cb[r, i], ctx.cbs[r, i]),
                    _LegSpec("OPT", "C", LegAction.BUY, r, j, _ones(n), ctx.ca[r, j], ctx.cas[r, j]),
                    _LegSpec("OPT", "P", LegAction.BUY, r, i, _ones(n), ctx.pa[r, i], ctx.pas[r, i]),
                    _LegSpec("OPT", "P", LegAction.SELL, r, j, _ones(n), ctx.pb[r, j], ctx.pbs[r, j]),
                ],
                buy_syn[r, j] - sell_syn[r, i],
                -width * ctx.disc[r],
                size[r, i],
                width,
                ctx.call_risk[r, i] | ctx.put_risk[r, j],
                ctx.K[j] * (1.0 - ctx.disc[r]) + ctx.dpv[r],
            )
        )
    return out


def _vertical(ctx: _Context) -> list[_Found]:
    K, d, m = ctx.K[None, :], ctx.disc[:, None], ctx.m
    rows = np.arange(len(ctx.rows))[:, None]
    out = []

    def emit(rule, right, r, buy_col, sell_col, buy_p, buy_s, sell_p, sell_s, net, bound, size, capital, risk, gap=None):
        n = len(r)
        out.append(
            _Found(
                OpportunityKind.VERTICAL,
                rule,
                r,
                [
                    _LegSpec("OPT", right, LegAction.BUY, r, buy_col, _ones(n), buy_p[r, buy_col], buy_s[r, buy_col]),
                    _LegSpec("OPT", right, LegAction.SELL, r, sell_col, _ones(n), sell_p[r, sell_col], sell_s[r, sell_col]),
                ],
                net,
                bound,
                size,
                capital,
                risk[r, sell_col],
                gap,
            )
        )

    # calls fall with strike: buy C(K1=i) at ask, sell C(K2=j>i) at bid; edge = Cb_j - Ca_i
    best, j = _best_after(_fill(ctx.cb, True), True)
    jj = np.maximum(j, 0)
    edge = best - ctx.ca
    size = np.minimum(ctx.cas, ctx.cbs[rows, jj])
    r, i = np.nonzero(_select(edge, size, m))
    if len(r):
        r, i, j = _one_per_partner(r, i, jj[r, i], edge[r, i])
        net = ctx.ca[r, i] - ctx.cb[r, j]
        emit(
            "call monotonic",
            "C",
            r,
            i,
            j,
            ctx.ca,
            ctx.cas,
            ctx.cb,
            ctx.cbs,
            net,
            np.zeros(len(r)),
            size[r, i],
            ctx.ca[r, i],
            ctx.call_risk,
        )
    # call spread <= (K2-K1) d: sell C(K1=i) at bid, buy C(K2=j>i) at ask; edge = (Cb_i + K_i d) - (Ca_j + K_j d)
    best, j = _best_after(_fill(ctx.ca + K * d, False), False)
    jj = np.maximum(j, 0)
    edge = (ctx.cb + K * d) - best
    size = np.minimum(ctx.cbs, ctx.cas[rows, jj])
    r, i = np.nonzero(_select(edge, size, m))
    if len(r):
        r, i, j = _one_per_partner(r, i, jj[r, i], edge[r, i])
        width = ctx.K[j] - ctx.K[i]
        net = ctx.ca[r, j] - ctx.cb[r, i]
        emit(
            "call slope",
            "C",
            r,
            j,
            i,
            ctx.ca,
            ctx.cas,
            ctx.cb,
            ctx.cbs,
            net,
            -width * ctx.disc[r],
            size[r, i],
            width,
            ctx.call_risk,
            width * (1.0 - ctx.disc[r]),
        )
    # puts rise with strike: buy P(K2=j) at ask, sell P(K1=i<j) at bid; edge = Pb_i - Pa_j
    best, i = _best_before(_fill(ctx.pb, True), True)
    ii = np.maximum(i, 0)
    edge = best - ctx.pa
    size = np.minimum(ctx.pas, ctx.pbs[rows, ii])
    r, j = np.nonzero(_select(edge, size, m))
    if len(r):
        r, j, i = _one_per_partner(r, j, ii[r, j], edge[r, j])
        net = ctx.pa[r, j] - ctx.pb[r, i]
        emit(
            "put monotonic",
            "P",
            r,
            j,
            i,
            ctx.pa,
            ctx.pas,
            ctx.pb,
            ctx.pbs,
            net,
            np.zeros(len(r)),
            size[r, j],
            ctx.pa[r, j],
            ctx.put_risk,
        )
    # put spread <= (K2-K1) d: sell P(K2=j) at bid, buy P(K1=i<j) at ask; edge = (Pb_j - K_j d) - (Pa_i - K_i d)
    best, i = _best_before(_fill(ctx.pa - K * d, False), False)
    ii = np.maximum(i, 0)
    edge = (ctx.pb - K * d) - best
    size = np.minimum(ctx.pbs, ctx.pas[rows, ii])
    r, j = np.nonzero(_select(edge, size, m))
    if len(r):
        r, j, i = _one_per_partner(r, j, ii[r, j], edge[r, j])
        width = ctx.K[j] - ctx.K[i]
        net = ctx.pa[r, i] - ctx.pb[r, j]
        emit(
            "put slope",
            "P",
            r,
            i,
            j,
            ctx.pa,
            ctx.pas,
            ctx.pb,
            ctx.pbs,
            net,
            -width * ctx.disc[r],
            size[r, j],
            width,
            ctx.put_risk,
            width * (1.0 - ctx.disc[r]),
        )
    return out


def _next_listed(listed: np.ndarray) -> np.ndarray:
    """For each cell, the index of the next listed strike to the right (n_k if none)."""
    n = listed.shape[-1]
    idx = np.where(listed, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[..., ::-1], axis=-1)[..., ::-1]
    out = np.full(listed.shape, n, dtype=np.int64)
    out[..., :-1] = nxt[..., 1:]
    return out


def _butterfly(ctx: _Context) -> list[_Found]:
    m = ctx.m
    snap = ctx.snap
    n_k = len(ctx.K)
    rows = np.arange(len(ctx.rows))[:, None]
    # strikes in tenths of a cent, so that ratios are exact integers
    kmil = np.round(ctx.K * 1000.0).astype(np.int64)
    out = []
    for right, bid, bid_s, ask, ask_s, raw_bid, raw_ask, risk in (
        ("C", ctx.cb, ctx.cbs, ctx.ca, ctx.cas, snap.call_bid, snap.call_ask, ctx.call_risk),
        ("P", ctx.pb, ctx.pbs, ctx.pa, ctx.pas, snap.put_bid, snap.put_ask, ctx.put_risk),
    ):
        listed = np.isfinite(raw_bid[ctx.rows]) | np.isfinite(raw_ask[ctx.rows])
        nxt = _next_listed(listed)
        j = np.minimum(nxt, n_k - 1)
        l_raw = nxt[rows, j]
        ok = listed & (nxt < n_k) & (l_raw < n_k)
        lc = np.minimum(l_raw, n_k - 1)
        w1 = kmil[lc] - kmil[j]  # K3 - K2
        w3 = kmil[j] - kmil[None, :]  # K2 - K1
        g = np.maximum(np.gcd(w1, w3), 1)
        r1, r3 = w1 // g, w3 // g
        r2 = r1 + r3
        edge = r2 * bid[rows, j] - r1 * ask - r3 * ask[rows, lc]
        size = np.minimum(
            np.minimum(np.floor(ask_s / np.maximum(r1, 1)), np.floor(bid_s[rows, j] / np.maximum(r2, 1))),
            np.floor(ask_s[rows, lc] / np.maximum(r3, 1)),
        )
        r, i = np.nonzero(ok & _select(edge, size, m))
        if not len(r):
            continue
        jj, ll = j[r, i], lc[r, i]
        a1, a3 = ask[r, i], ask[r, ll]
        q1, q2, q3 = r1[r, i], r2[r, i], r3[r, i]
        out.append(
            _Found(
                OpportunityKind.BUTTERFLY,
                f"{'call' if right == 'C' else 'put'} convexity",
                r,
                [
                    _LegSpec("OPT", right, LegAction.BUY, r, i, q1, a1, ask_s[r, i]),
                    _LegSpec("OPT", right, LegAction.SELL, r, jj, q2, bid[r, jj], bid_s[r, jj]),
                    _LegSpec("OPT", right, LegAction.BUY, r, ll, q3, a3, ask_s[r, ll]),
                ],
                -edge[r, i],
                np.zeros(len(r)),
                size[r, i],
                q1 * a1 + q3 * a3,
                risk[r, jj],
            )
        )
    return out


def _calendar(ctx: _Context) -> list[_Found]:
    """Calendar bound on the context's strike columns (all its expiries)."""
    m = ctx.m
    cols = np.arange(len(ctx.K))
    n_r = len(ctx.rows)
    if n_r < 2 or not len(cols):
        return []
    expiries = [ctx.snap.expiries[g] for g in ctx.rows]
    rights = [("C", ctx.cb, ctx.cbs, ctx.ca, ctx.cas, ctx.call_risk)]
    if ctx.style == AMERICAN:
        rights.append(("P", ctx.pb, ctx.pbs, ctx.pa, ctx.pas, ctx.put_risk))
    elif ctx.carry.rate < 0:
        return []
    # far expiries allowed for each near one: all later ones, or (European) up to the
    # first dividend ex-date between them
    last = np.full(n_r, n_r - 1)
    if ctx.style == EUROPEAN:
        for e1 in range(n_r - 1):
            e2 = e1
            while e2 + 1 < n_r and not dividends_between(ctx.carry, expiries[e1], expiries[e2 + 1]):
                e2 += 1
            last[e1] = e2
    col_idx = np.arange(len(cols))
    out = []
    for right, bid, bid_s, ask, ask_s, risk in rights:
        far_ask = _fill(ask, False)
        if np.all(last == n_r - 1):
            best_t, f_t = _best_after(far_ask.T, False)  # along expiries
            best, f = best_t.T, f_t.T
        else:
            best = np.full(far_ask.shape, np.inf)
            f = np.full(far_ask.shape, -1, dtype=np.int64)
            for e1 in range(n_r - 1):
                if last[e1] > e1:
                    block = far_ask[e1 + 1 : last[e1] + 1]
                    arg = np.argmin(block, axis=0)
                    best[e1] = block[arg, col_idx]
                    f[e1] = arg + e1 + 1
        ff = np.maximum(f, 0)
        edge = bid - best
        size = np.minimum(bid_s, ask_s[ff, col_idx[None, :]])
        r, c = np.nonzero(_select(edge, size, m))
        if not len(r):
            continue
        c, r, f = _one_per_partner(c, r, ff[r, c], edge[r, c])
        n = len(r)
        k = cols[c]
        far_a = ask[f, c]
        out.append(
            _Found(
                OpportunityKind.CALENDAR,
                f"{'call' if right == 'C' else 'put'} calendar",
                r,
                [
                    _LegSpec("OPT", right, LegAction.SELL, r, k, _ones(n), bid[r, c], bid_s[r, c]),
                    _LegSpec("OPT", right, LegAction.BUY, f, k, _ones(n), far_a, ask_s[f, c]),
                ],
                far_a - bid[r, c],
                np.zeros(n),
                np.minimum(bid_s[r, c], ask_s[f, c]),
                far_a,
                risk[r, k],
            )
        )
    return out


#: Scanner names accepted by :func:`scan_chain` and :class:`desk.arbitrage.ChainScanner`.
ROW_SCANNERS = {"parity": _parity, "box": _box, "vertical": _vertical, "butterfly": _butterfly}
ALL_SCANNERS = (*ROW_SCANNERS, "calendar")


def _check_kinds(kinds: Sequence[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return ALL_SCANNERS
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in ALL_SCANNERS]
    if bad:
        raise ValueError(f"unknown scanner(s) {bad}; choose from {ALL_SCANNERS}")
    return kinds


def _run(
    snap: ChainSnapshot,
    carry: Carry,
    costs: Costs,
    kinds: Sequence[str],
    *,
    style: str,
    net_of_costs: bool,
    min_edge: float,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> dict[str, list[Opportunity]]:
    if not math.isfinite(min_edge):
        raise ValueError(f"min_edge must be a finite number of dollars per combo, got {min_edge!r}")
    results: dict[str, list[Opportunity]] = {}
    row_kinds = [k for k in kinds if k in ROW_SCANNERS]
    ctx = None
    if row_kinds and (rows is None or len(rows)):
        ctx = _Context(snap, carry, costs, style, rows)
        for name in row_kinds:
            results[name] = _emit(ctx, ROW_SCANNERS[name](ctx), net_of_costs=net_of_costs, min_edge=min_edge)
    if "calendar" in kinds and (cols is None or len(cols)):
        if ctx is None or rows is not None or cols is not None:
            ctx = _Context(snap, carry, costs, style, None, cols)
        results["calendar"] = _emit(ctx, _calendar(ctx), net_of_costs=net_of_costs, min_edge=min_edge)
    return results


def scan_chain(
    snapshot: ChainSnapshot,
    carry: Carry | None = None,
    costs: Costs | None = None,
    *,
    kinds: Sequence[str] | None = None,
    style: str = AMERICAN,
    net_of_costs: bool = True,
    min_edge: float = 0.0,
) -> list[Opportunity]:
    """Run the scanners ``kinds`` (default all: ``parity`` (conversions and reversals),
    ``box``, ``vertical``, ``butterfly``, ``calendar``) over ``snapshot``.

    ``carry`` defaults to zero rate, no dividends, no borrow fee; ``costs`` to IBKR fixed
    commissions (:class:`Costs`). ``style`` is ``american`` (US equity options: risk flags
    on short legs, calendars on both rights) or ``european``. With ``net_of_costs`` (the
    default) only opportunities whose edge after costs exceeds ``min_edge`` dollars per
    combo are returned; without it every opportunity with a positive edge before costs
    (its after-costs figures are still filled in). Sorted by ``edge_total``, largest first.

    Raises ``ValueError`` for an unknown scanner or style.
    """
    results = _run(
        snapshot,
        carry or Carry(),
        costs or Costs(),
        _check_kinds(kinds),
        style=style,
        net_of_costs=net_of_costs,
        min_edge=min_edge,
    )
    out = [opp for opps in results.values() for opp in opps]
    out.sort(key=lambda o: o.edge_total, reverse=True)
    return out


def scan_parity(
    snapshot: ChainSnapshot, carry: Carry | None = None, costs: Costs | None = None, **kw: object
) -> list[Opportunity]:
    """Conversions and reversals (see the module docstring); options as :func:`scan_chain`."""
    return scan_chain(snapshot, carry, costs, kinds=("parity",), **kw)


def scan_boxes(
    snapshot: ChainSnapshot, carry: Carry | None = None, costs: Costs | None = None, **kw: object
) -> list[Opportunity]:
    """Long and short box spreads, best partner strike per lower strike; as :func:`scan_chain`."""
    return scan_chain(snapshot, carry, costs, kinds=("box",), **kw)


def scan_verticals(
    snapshot: ChainSnapshot, carry: Carry | None = None, costs: Costs | None = None, **kw: object
) -> list[Opportunity]:
    """Monotonicity and slope bounds of call and put spreads; as :func:`scan_chain`."""
    return scan_chain(snapshot, carry, costs, kinds=("vertical",), **kw)


def scan_butterflies(
    snapshot: ChainSnapshot, carry: Carry | None = None, costs: Costs | None = None, **kw: object
) -> list[Opportunity]:
    """Convexity in strike on adjacent listed strikes; as :func:`scan_chain`."""
    return scan_chain(snapshot, carry, costs, kinds=("butterfly",), **kw)


def scan_calendars(
    snapshot: ChainSnapshot, carry: Carry | None = None, costs: Costs | None = None, **kw: object
) -> list[Opportunity]:
    """Calendar bound at each strike, best far expiry per near expiry; as :func:`scan_chain`."""
    return scan_chain(snapshot, carry, costs, kinds=("calendar",), **kw)
