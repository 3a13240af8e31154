"""The gate: the mode / orders-enabled / override-file / typed-confirmation matrix, and
the trading states (active, reduce-only, halted), which survive a restart."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from risk_testlib import OPEN, SPY, combo, lmt, option

from desk.domain import FrozenClock
from desk.orders import KillSwitch, OrderGate, TradingState
from desk.risk import OrderIntent


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("DESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def make_gate(folder: Path, mode: str, enabled: bool, override: bool, *, kill: KillSwitch | None = None) -> OrderGate:
    if override:
        (folder / "override").write_text("I mean it\n")
    return OrderGate(mode, enabled, folder / "override", kill or KillSwitch(folder / "kill"))


ORDER = lmt(SPY, "BUY", 10, 500.0)
CONFIRMATIONS = [None, "", "SPY", " spy ", "SPX", "QQQ"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["sim", "paper", "live"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(CONFIRMATIONS),
    st.sampled_from(list(TradingState)),
    st.booleans(),
)
def test_gate_matrix(
    mode: str, enabled: bool, override: bool, confirmation: str | None, state: TradingState, reduces: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gate = make_gate(Path(tmp), mode, enabled, override)
        if state is TradingState.HALTED:
            gate.kill_switch.halt("test")
        elif state is TradingState.REDUCE_ONLY:
            gate.kill_switch.reduce_only("test")
        decision = gate.check(ORDER, confirmation, reduces=reduces)
        confirmed = (confirmation or "").strip().upper() == "SPY"
        state_ok = state is TradingState.ACTIVE or (state is TradingState.REDUCE_ONLY and reduces)
        expected = state_ok and (mode == "sim" or (enabled and (mode == "paper" or (override and confirmed))))
        assert decision.allowed == expected, decision
        assert decision.mode == mode
        status = gate.status()
        halted = state is TradingState.HALTED
        assert status.can_send == (not halted and (mode == "sim" or (enabled and (mode == "paper" or override))))
        assert status.needs_confirmation == (mode == "live")


def test_reduce_only_lets_only_reducing_orders_through_and_survives_a_restart(tmp_path: Path) -> None:
    ks = KillSwitch(tmp_path / "kill", clock=FrozenClock(OPEN))
    gate = make_gate(tmp_path, "sim", False, False, kill=ks)
    state = ks.reduce_only("end of day")
    assert state.state is TradingState.REDUCE_ONLY and state.persisted and not state.engaged and state.restricted
    refused = gate.check(ORDER, reduces=False)
    assert not refused.allowed and refused.reason == "reduce-only (end of day): this order would open or add to a position"
    assert gate.check(ORDER, reduces=True).allowed
    assert gate.status().summary.startswith("SIM: REDUCE-ONLY")
    again = KillSwitch(tmp_path / "kill")
    assert again.state().state is TradingState.REDUCE_ONLY and again.state().reason == "end of day"
    # halting is stricter than reduce-only, whichever process set which
    again.halt("panic")
    assert ks.state().engaged
    ks.reset()
    assert KillSwitch(tmp_path / "kill").state().state is TradingState.ACTIVE


def test_refusals_say_why(tmp_path: Path) -> None:
    paper = make_gate(tmp_path, "paper", False, False)
    assert paper.check(ORDER).reason == "paper mode: orders are disabled (set DESK_ORDERS_ENABLED=true)"
    live = make_gate(tmp_path, "live", True, False)
    assert live.check(ORDER, "SPY").reason == f"live mode: override file {tmp_path / 'override'} is missing"
    (tmp_path / "override").write_text("")
    assert live.check(ORDER).reason == "live mode: type SPY to confirm this order"
    assert live.check(ORDER, "spx").reason == "live mode: confirmation 'SPX' does not match SPY"
    ok = live.check(ORDER, "spy")
    assert ok.allowed and ok.reason == "live mode, orders enabled, override file present, confirmed"
    (tmp_path / "override").unlink()  # removing the file stops live trading at once
    assert not live.check(ORDER, "SPY").allowed
    assert live.status().summary.startswith("LIVE: orders off - live mode: override file")


def test_live_confirmation_for_options_and_combos_is_the_underlying(tmp_path: Path) -> None:
    gate = make_gate(tmp_path, "live", True, True)
    call = lmt(option("C", 500), "BUY", 1, 2.0)
    assert gate.check(call, "SPY").allowed
    assert not gate.check(call, call.instrument.key).allowed
    bag, legs = combo("SPY", [(option("C", 500), "BUY", 1), (option("C", 510), "SELL", 1)])
    assert gate.check(OrderIntent(bag, "BUY", 1, "LMT", limit_price=3.0, legs=legs), "spy").allowed


def test_kill_switch_blocks_every_mode_and_survives_a_restart(tmp_path: Path) -> None:
    clock = FrozenClock(OPEN)
    ks = KillSwitch(tmp_path / "state" / "kill", clock=clock)
    gate = make_gate(tmp_path, "sim", False, False, kill=ks)
    assert gate.check(ORDER).allowed and not ks.engaged
    state = ks.engage("fat finger")
    assert state.engaged and state.persisted and state.since == OPEN
    decision = gate.check(ORDER)
    assert not decision.allowed and decision.reason == "kill switch engaged (fat finger): reset it to send orders"
    assert json.loads((tmp_path / "state" / "kill").read_text())["reason"] == "fat finger"
    # a new process: a fresh KillSwitch on the same file is engaged, with its reason and time
    again = KillSwitch(tmp_path / "state" / "kill")
    assert again.engaged and again.state().reason == "fat finger" and again.state().since == OPEN
    restarted = make_gate(tmp_path, "sim", False, False, kill=again)
    assert not restarted.check(ORDER).allowed
    assert restarted.status().summary == "SIM: KILL SWITCH ENGAGED"
    assert again.reset() == again.state() and not again.engaged
    assert restarted.check(ORDER).allowed
    # the other instance still has its own memory flag until it is reset too
    assert ks.engaged
    ks.reset()
    assert not ks.engaged and not (tmp_path / "state" / "kill").exists()


def test_kill_switch_fails_safe(tmp_path: Path) -> None:
    path = tmp_path / "kill"
    path.write_text("garbage")
    assert KillSwitch(path).state().engaged  # unreadable state counts as engaged
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ks = KillSwitch(blocker / "kill")  # its folder cannot be created
    state = ks.engage("panic")
    assert state.engaged and not state.persisted and "cannot write" in state.error
    assert ks.engaged  # blocked in memory even though the file could not be written
