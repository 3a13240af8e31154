"""Opportunities as records: a stable text key and JSON-ready payloads.

Shared by the store (table ``opportunities``), the Redis publisher (stream
``desk:opportunities``) and the opportunities pane, so the three agree on the key and
the field names. Units as in :mod:`desk.domain.opportunity`: prices dollars per share,
``*_edge`` and ``net_price_combo`` dollars per combo (or in total where named so), times
ISO 8601 UTC.
"""

from __future__ import annotations

import json
import math
from datetime import UTC
from typing import Any

from desk.domain.opportunity import Opportunity

__all__ = ["STATES", "legs_payload", "opportunity_key", "opportunity_payload", "payload_json"]

#: Lifecycle of an opportunity in a payload: first seen, still there, gone.
STATES = ("new", "live", "gone")


def opportunity_key(opp: Opportunity) -> str:
    """Stable text identity across scans and restarts: symbol, kind, rule and legs (not
    prices), e.g. ``SPY|conversion|C>P|SELL 1 C 500 20260320 #123;BUY 1 P 500 20260320
    #124;BUY 100 STK #756733``. Two opportunities share a key exactly when
    ``Opportunity.key`` (plus the symbol) is the same."""
    legs = ";".join(f"{leg.describe()} #{leg.con_id}" for leg in opp.legs)
    return f"{opp.symbol}|{opp.kind.value}|{opp.rule}|{legs}"


def legs_payload(opp: Opportunity) -> list[dict[str, Any]]:
    """The legs as JSON-ready dicts: conId, secType, right, strike ($/share), expiry
    (``YYYYMMDD``), action (BUY/SELL), ratio (contracts or shares per combo), price
    ($/share, the executable side used) and size (displayed, NaN -> None)."""
    return [
        {
            "conId": leg.con_id,
            "secType": leg.sec_type,
            "right": leg.right,
            "strike": leg.strike,
            "expiry": leg.expiry,
            "action": leg.action.value,
            "ratio": leg.ratio,
            "price": _num(leg.price),
            "size": _num(leg.size),
        }
        for leg in opp.legs
    ]


def opportunity_payload(opp: Opportunity, *, state: str = "live", simulated: bool = False) -> dict[str, Any]:
    """One opportunity as a JSON-ready dict (the Redis message; the store's columns).

    ``state`` is one of :data:`STATES`; ``simulated`` marks opportunities seen on the
    simulator (sim mode), which are not real. ``risks`` are the
    :class:`~desk.domain.opportunity.RiskFlag` values and ``riskless`` is
    :attr:`Opportunity.riskless` (the pane's default view; the others are "at risk").
    Raises ``ValueError`` for another state.
    """
    if state not in STATES:
        raise ValueError(f"opportunity state must be one of {STATES}, got {state!r}")
    return {
        "key": opportunity_key(opp),
        "state": state,
        "kind": opp.kind.value,
        "rule": opp.rule,
        "underlying": opp.symbol,
        "expiry": opp.expiry,
        "legs": legs_payload(opp),
        "net_price": _num(opp.net_price),
        "net_price_combo": _num(opp.net_price_combo),
        "edge_combo": _num(opp.edge_combo),
        "edge_combo_net": _num(opp.edge_combo_net),
        "edge_total": _num(opp.edge_total),
        "best_edge_total": _num(opp.best_edge_total),
        "max_size": opp.max_size,
        "annualized_return": _num(opp.annualized_return),
        "risks": sorted(r.value for r in opp.risks),
        "riskless": opp.riskless,
        "first_seen": opp.first_seen.astimezone(UTC).isoformat(),
        "last_seen": opp.last_seen.astimezone(UTC).isoformat(),
        "simulated": bool(simulated),
    }


def payload_json(payload: dict[str, Any]) -> str:
    """Compact JSON of a payload (NaN already mapped to ``null``)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
