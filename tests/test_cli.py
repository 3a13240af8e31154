"""The command line as a user runs it: subprocesses of `python -m desk`."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

PG_URL = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

#: terminal control sequences (CSI, OSC, charset and keypad modes), stripped to read text
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    env["DESK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    env["DESK_SPOOL_DIR"] = str(tmp_path / "spool")
    env.update(extra)
    return env


def _desk(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desk", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_invalid_setting_stops_with_one_line(tmp_path: Path) -> None:
    result = _desk("--headless", "--duration", "1", env=_env(tmp_path, DESK_IB_PORT="abc"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("desk: invalid setting: DESK_IB_PORT"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("engine_api", ["1", "0"])
def test_desk_with_a_bad_database_url_is_one_line_and_leaves_no_engine(tmp_path: Path, engine_api: str) -> None:
    """One process: the URL is checked before anything starts. Engine process: the view
    does not parse it (no SQLAlchemy in the view); its engine refuses it and exits 2, and
    the view stops and prints the engine's line, without the password, once the terminal
    is restored. Either way no engine is left."""
    sock = tmp_path / "s" / "engine.sock"
    env = _env(
        tmp_path,
        DESK_DATABASE_URL="postgresql+psycopg://me:s3cret@db:notaport/x",
        DESK_ENGINE_SOCKET=str(sock),
        DESK_ENGINE_API=engine_api,
    )
    result = subprocess.run(
        [sys.executable, "-m", "desk"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    # with no terminal Textual paints on stderr; the line comes after its last sequence
    last = result.stderr[max((m.end() for m in ANSI.finditer(result.stderr)), default=0) :].strip()
    assert last.startswith("desk: invalid setting: DESK_DATABASE_URL: the port is not a number"), last
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    if engine_api == "0":
        assert result.stderr.strip() == "desk: invalid setting: DESK_DATABASE_URL: the port is not a number"
    assert not sock.exists()
    assert _processes_with_env(f"DESK_ENGINE_SOCKET={sock}") == []


def _processes_with_env(entry: str) -> list[int]:
    """Pids whose environment holds ``entry`` (NAME=value), from /proc."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if entry.encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_headless_duration_records_into_sqlite(tmp_path: Path) -> None:
    result = _desk("--headless", "--duration", "4", "--stats-interval", "1", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "desk collector: mode sim" in out
    stats = [line for line in out.splitlines() if "received" in line]
    assert len(stats) >= 4, out
    assert stats[-1].startswith("flushed;") and "queued 0" in stats[-1], out
    with sqlite3.connect(tmp_path / "ticks.sqlite3") as db:
        (rows,) = db.execute("select count(*) from ticks").fetchone()
        kinds = {k for (k,) in db.execute("select distinct kind from ticks")}
        symbols = {s for (s,) in db.execute("select distinct symbol from ticks")}
    written = int(stats[-1].split("written ")[1].split()[0].replace(",", ""))
    assert rows == written > 100
    assert kinds == {"Q", "T"}
    assert {"SPY", "QQQ", "AAPL"} <= symbols


def test_headless_exits_0_on_sigterm_after_flushing(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", "--headless", "--stats-interval", "1"],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    seen = []
    while True:  # until the collector says it has written rows (its stats line, every second)
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, f"no rows written: {seen}"
        seen.append(line)
        if "written " in line and int(line.split("written ")[1].split()[0].replace(",", "")) > 0:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    final = out.strip().splitlines()[-1]
    assert final.startswith("flushed;") and "queued 0" in final
    with sqlite3.connect(tmp_path / "ticks.sqlite3") as db:
        (rows,) = db.execute("select count(*) from ticks").fetchone()
    assert rows == int(final.split("written ")[1].split()[0].replace(",", "")) > 0


@pytest.mark.postgres
def test_headless_records_into_postgresql(tmp_path: Path) -> None:
    import psycopg

    dsn = PG_URL.replace("+psycopg", "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('public.ticks')").fetchone()[0]
        before = conn.execute("select count(*) from ticks").fetchone()[0] if exists else 0
    result = _desk("--headless", "--duration", "3", env=_env(tmp_path, DESK_DATABASE_URL=PG_URL), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    final = result.stdout.strip().splitlines()[-1]
    written = int(final.split("written ")[1].split()[0].replace(",", ""))
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = conn.execute("select count(*) from ticks").fetchone()[0]
    assert written > 100 and after - before == written


def test_doctor_reports_every_check(tmp_path: Path) -> None:
    result = _desk("doctor", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for name in ("settings", "database", "redis", "ib"):
        assert any(line.split()[1:2] == [name] for line in out.splitlines()), out
    assert "embedded simulator" in out and "4 of 4 checks passed" in out


def test_doctor_names_what_to_fix(tmp_path: Path) -> None:
    env = _env(tmp_path, DESK_MODE="paper", DESK_IB_PORT="1", DESK_REDIS_URL="redis://127.0.0.1:1/0")
    result = _desk("doctor", env=env, cwd=tmp_path)
    assert result.returncode == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert {line.split()[1] for line in fails} == {"redis", "ib"}, result.stdout
    assert "fix:" in result.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed within {timeout} s; got:\n{''.join(seen)}")


def test_collector_survives_a_standalone_simulator_restart(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, DESK_IB_PORT=str(port))
    sim_cmd = [sys.executable, "-m", "desk", "sim", "--port", str(port)]
    sim = subprocess.Popen(sim_cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    collector = None
    try:
        _wait_for_line(sim, "listening", 15)
        collector = subprocess.Popen(
            [sys.executable, "-m", "desk", "--headless", "--stats-interval", "0.5"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _wait_for_line(collector, "desk: connected", 15)
        sim.kill()
        sim.wait(10)
        _wait_for_line(collector, "desk: reconnecting", 10)
        time.sleep(2.0)  # the gateway stays away; the collector keeps retrying
        sim = subprocess.Popen(sim_cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        _wait_for_line(sim, "listening", 15)
        _wait_for_line(collector, "desk: connected", 15)
        with sqlite3.connect(tmp_path / "ticks.sqlite3") as db:
            (before,) = db.execute("select count(*) from ticks").fetchone()
        time.sleep(2.0)
        with sqlite3.connect(tmp_path / "ticks.sqlite3") as db:
            (after,) = db.execute("select count(*) from ticks").fetchone()
        assert after > before, "recording did not resume after the reconnect"
        collector.send_signal(signal.SIGINT)
        rest, _ = collector.communicate(timeout=30)
        assert collector.returncode == 0, rest
    finally:
        for p in (sim, collector):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)


def test_headless_replays_a_recorded_day(tmp_path: Path) -> None:
    """`desk --replay` streams the recorded GOOG day (imported on demand from the LEAN
    folder) through the embedded simulator; the recorded quotes are 2015's, not the model's."""
    result = _desk(
        "--headless",
        "--duration",
        "3",
        "--replay",
        "2015-12-24",
        "--symbols",
        "GOOG",
        "--speed",
        "60",
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "ticks.sqlite3") as db:
        quotes = db.execute("select bid, ask from ticks where symbol = 'GOOG' and kind = 'Q'").fetchall()
        symbols = {s for (s,) in db.execute("select distinct symbol from ticks")}
    assert symbols == {"GOOG"}
    assert quotes, result.stdout
    # GOOG traded between about 740 and 755 on 2015-12-24 (the synthetic GOOG is near 175)
    assert all(730 < b < 760 and 730 < a < 760 for b, a in quotes if b and a), quotes[:5]


def test_replay_needs_symbols(tmp_path: Path) -> None:
    result = _desk("--headless", "--duration", "1", "--replay", "2015-12-24", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "desk: invalid setting: DESK_SIM_REPLAY needs DESK_SIM_REPLAY_SYMBOLS (e.g. GOOG)"


def test_sim_refuses_a_negative_mispricing_rate(tmp_path: Path) -> None:
    result = _desk("sim", "--port", str(_free_port()), "--mispricing-rate", "-1", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "desk: --mispricing-rate: mispricing rate must be >= 0 per minute, got -1.0"
