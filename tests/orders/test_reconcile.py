"""Reconciliation after a reconnect or a restart (pure): what became of every open intent,
by orderRef and by permId; never an offer to resend what may have reached the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from desk.domain.models import Instrument
from desk.domain.orders import BrokerOrder, Fill
from desk.orders import reconcile
from desk.store import IntentState

T0 = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)


# --- reconcile (pure) -----------------------------------------------------------------


def _it(
    ref: str, state: str, *, qty: float = 100, age: float = 0.0, filled: float = 0.0, combo: bool = False, perm_id: int = 0
) -> IntentState:
    sec = "BAG" if combo else "STK"
    return IntentState(
        ref,
        "corr-" + ref,
        state,
        {"instrument": {"sec_type": sec}, "quantity": qty},
        T0 - timedelta(seconds=age),
        qty,
        "sim",
        "DU1",
        filled,
        perm_id=perm_id,
    )


def _fill(ref: str, shares: float, sec_type: str = "STK", n: int = 0) -> Fill:
    return Fill(f"e{ref}{n}", ref, T0, Instrument("SPY", sec_type, con_id=1), "BOT", shares, 100.0)


def test_reconcile_rules() -> None:
    intents = [
        _it("a", "sent"),
        _it("b", "working"),
        _it("c", "intent", age=10),
        _it("d", "intent", age=500),
        _it("e", "sent"),
        _it("f", "sent"),
        _it("g", "working", filled=30),
        _it("h", "intent", age=1),
        _it("i", "unknown"),
        _it("j", "sent", combo=True),
    ]
    orders = {
        "a": BrokerOrder("a", "Submitted", order_id=5, perm_id=99, filled=10, remaining=90),
        "b": BrokerOrder("b", "Cancelled", filled=0, remaining=100),
        "h": BrokerOrder("h", "PreSubmitted"),
        "zz": BrokerOrder("zz", "Submitted"),
    }
    fills = {
        "e": [_fill("e", 60), _fill("e", 40, n=1)],
        "f": [_fill("f", 50)],
        "j": [_fill("j", 1, "OPT")],
        "zz2": [_fill("zz2", 1)],
    }
    plan = reconcile(intents, orders.values(), [f for seq in fills.values() for f in seq], now=T0, resend_window=120)
    got = {d.client_order_id: (d.action, d.state) for d in plan.decisions}
    assert got == {
        "a": ("adopt", "working"),
        "b": ("close", "cancelled"),
        "c": ("resend", "abandoned"),
        "d": ("abandon", "abandoned"),
        "e": ("close", "filled"),
        "f": ("human", "unknown"),  # partly filled and gone
        "g": ("human", "unknown"),  # audit says 30 filled, gateway shows nothing
        "h": ("adopt", "working"),  # written, not marked sent, but the gateway has it
        "i": ("human", "unknown"),
        "j": ("human", "unknown"),  # combo: leg executions do not count as combo fills
    }
    assert [d.client_order_id for d in plan.decisions] == [i.client_order_id for i in intents]
    a = plan.decisions[0]
    assert a.order is orders["a"] and a.filled == 10
    assert plan.foreign == ("zz", "zz2")
    assert [d.client_order_id for d in plan.by_action("resend")] == ["c"]


states_st = st.sampled_from(["intent", "sent", "working", "unknown"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(states_st, st.floats(0, 1000), st.integers(0, 3), st.integers(0, 2)), max_size=12),
    st.sampled_from(["Submitted", "PreSubmitted", "Filled", "Cancelled", "ApiCancelled", "Inactive"]),
)
def test_reconcile_never_offers_to_resend_what_may_have_reached_the_gateway(rows, status: str) -> None:
    intents, orders, fills = [], {}, {}
    for n, (state, age, visibility, nfills) in enumerate(rows):
        ref = f"r{n}"
        intents.append(_it(ref, state, age=age))
        if visibility == 1:
            orders[ref] = BrokerOrder(ref, status)
        for k in range(nfills if visibility != 3 else 0):
            fills.setdefault(ref, []).append(_fill(ref, 30, n=k))
    plan = reconcile(intents, orders.values(), [f for seq in fills.values() for f in seq], now=T0)
    assert len(plan.decisions) == len(intents)
    for it, d in zip(intents, plan.decisions, strict=True):
        seen = it.client_order_id in orders or it.client_order_id in fills
        if d.action in ("resend", "abandon"):
            assert it.state == "intent" and not seen and d.state == "abandoned"
        if it.state != "intent" and not seen:
            assert (d.action, d.state) == ("human", "unknown")
        if it.client_order_id in orders:
            assert d.action in ("adopt", "close") and d.order is orders[it.client_order_id]
        assert d.action in ("adopt", "close", "resend", "abandon", "human")


def test_an_order_whose_orderref_was_lost_is_found_by_its_perm_id() -> None:
    """An order modified in TWS (orderRef cleared) or reported without it is matched by the
    permId the audit log recorded; its executions too."""
    intents = [_it("a", "working", perm_id=777), _it("b", "sent", perm_id=778)]
    orders = [BrokerOrder("", "Submitted", perm_id=777, filled=5, remaining=95)]
    fills = [Fill("x1", "", T0, Instrument("SPY", con_id=1), "BOT", 100, 100.0, perm_id=778)]
    plan = reconcile(intents, orders, fills, now=T0)
    got = {d.client_order_id: (d.action, d.state) for d in plan.decisions}
    assert got == {"a": ("adopt", "working"), "b": ("close", "filled")}
    assert plan.decisions[0].order is orders[0]
