"""``desk order`` as a user runs it: subprocesses of `python -m desk order ...` against a
standalone `desk sim --state FILE`, through the same order service, gates and checks as
the desk. Also the crash test: kill -9 the simulator with working orders, restart it,
reconcile: nothing lost, nothing sent twice, no order id reused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desk.order_command import OrderArgsError, parse_terms


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    env.update(
        {
            "DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.sqlite3'}",
            "DESK_SPOOL_DIR": str(tmp_path / "spool"),
            "DESK_IB_PORT": str(port),
            "DESK_KILL_SWITCH_FILE": str(tmp_path / "kill"),
            "DESK_ENGINE_SOCKET": str(tmp_path / "engine.sock"),
        }
    )
    env.update(extra)
    return env


def _order(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desk", "order", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


class Sim:
    """A standalone `desk sim --port P --state FILE` subprocess."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.cmd = [sys.executable, "-m", "desk", "sim", "--port", str(port), "--state", str(tmp_path / "sim-state.json")]
        self.env = _env(tmp_path, port)
        self.cwd = tmp_path
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening" in line:
                return
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError("desk sim did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no clean exit, no state written at exit
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def sim(tmp_path: Path):
    s = Sim(tmp_path, _free_port())
    s.start()
    yield s
    s.stop()


# --- parsing (pure) --------------------------------------------------------------------


def test_order_terms_parse_like_a_trader_writes_them() -> None:
    opt = parse_terms("BUY 2 SPY 20261218 600 C LMT 2.10 GTC".split())
    assert (
        opt.action,
        opt.quantity,
        opt.contract.symbol,
        opt.contract.expiry,
        opt.contract.strike,
        opt.contract.right,
        opt.order_type,
        opt.limit_price,
        opt.tif,
    ) == ("BUY", 2, "SPY", "20261218", 600.0, "C", "LMT", 2.10, "GTC")
    mkt = parse_terms("sell 100 aapl mkt".split())
    assert (mkt.action, mkt.contract.symbol, mkt.order_type, mkt.limit_price, mkt.tif) == ("SELL", "AAPL", "MKT", None, "DAY")
    stop = parse_terms("SELL 10 SPY STP LMT 590 589.5".split())
    assert (stop.order_type, stop.stop_price, stop.limit_price) == ("STP LMT", 590.0, 589.5)
    conv = parse_terms("BUY 1 SPY LMT 599.50".split(), ["BUY 100 STK", "SELL 1 20261218 600 C", "BUY 1 20261218 600 P"])
    assert [(leg.action, leg.ratio, leg.contract.expiry, leg.contract.right) for leg in conv.legs] == [
        ("BUY", 100, "", ""),
        ("SELL", 1, "20261218", "C"),
        ("BUY", 1, "20261218", "P"),
    ]


@pytest.mark.parametrize(
    ("terms", "legs", "why"),
    [
        ("BUY 2 SPY", [], "write ACTION QUANTITY SYMBOL"),
        ("HOLD 2 SPY LMT 1", [], "action must be BUY or SELL"),
        ("BUY -2 SPY LMT 1", [], "quantity must be a whole number > 0"),
        ("BUY 2 SPY 20261218 600 LMT 2", [], "option right must be C or P"),
        ("BUY 2 SPY LMT", [], "LMT order needs a limit price"),
        ("BUY 2 SPY LMT abc", [], "limit price must be a number"),
        ("BUY 2 SPY LMT 2 FOK", [], "TIF must be DAY, GTC or IOC"),
        ("BUY 1 SPY LMT 1", ["BUY 100 STK"], "at least two --leg"),
        ("BUY 1 SPY LMT 1", ["BUY x STK", "SELL 1 STK"], "ratio must be a whole number"),
    ],
)
def test_bad_terms_say_what_is_wrong(terms: str, legs: list[str], why: str) -> None:
    with pytest.raises(OrderArgsError, match=why):
        parse_terms(terms.split(), legs)


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _order("preview", "BUY", "2", "SPY", "LMT", env=_env(tmp_path, _free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "desk order: LMT order needs a limit price"


# --- against a running simulator --------------------------------------------------------


def test_preview_prints_every_check_and_exits_by_the_verdict(tmp_path: Path, sim: Sim) -> None:
    ok = _order("preview", "BUY", "10", "SPY", "MKT", "--json", env=sim.env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert {c["name"] for c in data["checks"]} >= {"max_quantity", "max_notional", "price_collar", "buying_power"}
    assert all(set(c) == {"name", "passed", "value", "limit", "text"} for c in data["checks"])
    assert all(c["passed"] for c in data["checks"]) and data["gate"]["allowed"]
    assert data["notional"] > 0 and data["commission"] >= 1.0
    assert data["whatif"] is not None and data["whatif"]["init_margin_change"] > 0  # IB's what-if answered
    big = _order("preview", "BUY", "5000", "SPY", "MKT", "--json", env=sim.env, cwd=tmp_path)
    assert big.returncode == 3
    failed = {c["name"] for c in json.loads(big.stdout)["checks"] if not c["passed"]}
    assert {"max_quantity", "max_notional"} <= failed
    text = _order("preview", "SELL", "100", "AAPL", "MKT", env=sim.env, cwd=tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "PASS  max_quantity" in text.stdout and "what-if" in text.stdout and "all checks pass" in text.stdout
    unknown = _order("preview", "BUY", "1", "ZZZQ", "MKT", env=sim.env, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown contract" in unknown.stderr and "Traceback" not in unknown.stderr


def test_a_combo_previews_with_its_legs(tmp_path: Path, sim: Sim) -> None:
    # the simulator lists SPY options; pick a listed expiry and strike through a preview of the chain
    from ib_async import IB, Option

    ib = IB()
    ib.connect("127.0.0.1", int(sim.env["DESK_IB_PORT"]), clientId=55, timeout=10)
    try:
        details = ib.reqContractDetails(Option("SPY", "", 0, "C", "SMART"))
    finally:
        ib.disconnect()
    expiry = sorted({d.contract.lastTradeDateOrContractMonth for d in details})[2]
    strike = sorted(
        {d.contract.strike for d in details if d.contract.lastTradeDateOrContractMonth == expiry}, key=lambda k: abs(k - 600)
    )[0]
    legs = ["--leg", "BUY 100 STK", "--leg", f"SELL 1 {expiry} {strike:g} C", "--leg", f"BUY 1 {expiry} {strike:g} P"]
    result = _order("preview", "BUY", "1", "SPY", "LMT", f"{strike:g}", *legs, "--json", env=sim.env, cwd=tmp_path)
    data = json.loads(result.stdout)
    assert data["order"].startswith("BUY 1 SPY combo[BUY 100 SPY, SELL 1 SPY") and "LMT" in data["order"]
    # a conversion's net bid / ask from its legs, near the strike (S - C + P = K, give or take carry)
    assert abs(data["bid"] - strike) < 0.05 * strike and data["bid"] <= data["ask"]
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["max_notional"]["passed"] and checks["max_notional"]["value"] > 100 * strike  # gross over the legs
    assert checks["max_position"]["passed"]


def test_place_list_cancel_and_a_crash_of_the_simulator(tmp_path: Path, sim: Sim) -> None:
    # two resting orders far below the market, one marketable order that fills
    refs = []
    for qty, price in (("3", "100.01"), ("4", "100.02")):
        placed = _order("place", "BUY", qty, "SPY", "LMT", price, "--json", env=sim.env, cwd=tmp_path)
        assert placed.returncode == 0, placed.stdout + placed.stderr
        data = json.loads(placed.stdout)
        assert data["status"] == "sent" and data["gateway_status"] == "Submitted"
        refs.append(data["order_ref"])
    filled = json.loads(_order("place", "BUY", "5", "SPY", "MKT", "--json", env=sim.env, cwd=tmp_path).stdout)
    assert filled["gateway_status"] == "Filled"
    before = {r["order_ref"]: r for r in json.loads(_order("list", "--json", env=sim.env, cwd=tmp_path).stdout)}
    assert {before[r]["status"] for r in refs} == {"Submitted"} and before[filled["order_ref"]]["status"] == "Filled"
    ids = {r["order_id"] for r in before.values()}

    sim.kill9()  # kill -9 with working orders: only the journal remembers
    sim.start()
    after = {r["order_ref"]: r for r in json.loads(_order("list", "--json", env=sim.env, cwd=tmp_path).stdout)}
    # nothing lost: the same orders, same ids and permIds, the working ones still working
    for ref in [*refs, filled["order_ref"]]:
        assert after[ref]["status"] == before[ref]["status"] and after[ref]["perm_id"] == before[ref]["perm_id"]
        assert after[ref]["order_id"] == before[ref]["order_id"]
    assert sorted(after) == sorted(before)  # nothing sent twice by the reconnect
    # a new order after the restart gets an id no earlier order had
    new = json.loads(_order("place", "BUY", "6", "SPY", "LMT", "100.03", "--json", env=sim.env, cwd=tmp_path).stdout)
    listed = {r["order_ref"]: r for r in json.loads(_order("list", "--json", env=sim.env, cwd=tmp_path).stdout)}
    assert listed[new["order_ref"]]["order_id"] not in ids
    # cancelling an old order by its orderRef cancels that order and no other
    cancel = _order("cancel", refs[0], env=sim.env, cwd=tmp_path)
    assert cancel.returncode == 0 and "Cancelled" in cancel.stdout, cancel.stdout + cancel.stderr
    final = {r["order_ref"]: r for r in json.loads(_order("list", "--json", env=sim.env, cwd=tmp_path).stdout)}
    assert final[refs[0]]["status"] == "Cancelled"
    assert final[refs[1]]["status"] == "Submitted" and final[new["order_ref"]]["status"] == "Submitted"
    again = _order("cancel", refs[0], env=sim.env, cwd=tmp_path)
    assert again.returncode == 3 and "Cancelled" in again.stderr


def test_a_gate_refusal_exits_3(tmp_path: Path, sim: Sim) -> None:
    (tmp_path / "kill").write_text('{"state": "halted", "reason": "test"}')
    refused = _order("place", "BUY", "1", "SPY", "MKT", env=sim.env, cwd=tmp_path)
    assert refused.returncode == 3 and "kill switch engaged (test)" in refused.stdout
