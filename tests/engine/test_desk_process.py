"""``desk`` as a user starts it: the terminal view in a pseudo-terminal and the engine in
a process of its own (``desk --headless --for-view``), the view attached over the engine
API. Quitting the view stops the engine, which flushes its recorder."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")


def _spawn(env: dict[str, str], *args: str, cols: int = 120, rows: int = 40) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    return proc, master


def _read_until(master: int, seen: bytearray, predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(_ANSI.sub(b"", bytes(seen)).decode("utf-8", "replace")):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {what}; the screen had: {_ANSI.sub(b'', bytes(seen))[-800:]!r}"
        ready, _, _ = select.select([master], [], [], min(left, 0.5))
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break


def _engines_on(socket: Path) -> list[int]:
    """pids of the ``desk --headless --for-view`` processes serving ``socket``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--for-view" in cmd and f"DESK_ENGINE_SOCKET={socket}".encode() in env:
            found.append(int(d.name))
    return found


def test_desk_runs_its_engine_in_another_process_and_stops_it_on_quit(tmp_path: Path) -> None:
    socket = tmp_path / "s" / "engine.sock"
    db = tmp_path / "desk.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        DESK_ENGINE_SOCKET=str(socket),
        DESK_DATABASE_URL=f"sqlite:///{db}",
        DESK_WATCHLIST="SPY,AAPL",
        DESK_KILL_SWITCH_FILE=str(tmp_path / "kill"),
        DESK_SPOOL_DIR=str(tmp_path / "spool"),
        DESK_WORKSPACE_FILE=str(tmp_path / "workspace.json"),
        TERM="xterm-256color",
        COLUMNS="120",
        LINES="40",
    )
    proc, master = _spawn(env)
    seen = bytearray()
    try:
        _read_until(
            master,
            seen,
            lambda text: "connected" in text and "ticks/s" in text and "AAPL" in text,
            "the view, attached, with the watchlist",
        )
        engines = _engines_on(socket)
        assert len(engines) == 1, "one engine process serving the view"
        engine_pid = engines[0]
        assert engine_pid != proc.pid  # the engine is not the view's process
        assert socket.exists()
        os.write(master, b"q")
        # keep reading the terminal (a full pty would block the view's last frames)
        _read_until(master, seen, lambda text: proc.poll() is not None, "the desk to quit")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    log = (socket.parent / "engine.log").read_text()
    assert "flushed;" in log, log  # the engine stopped cleanly: its recorder flushed
    assert not socket.exists()  # and removed its socket
    assert _engines_on(socket) == []
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from ticks").fetchone()[0] > 0


def test_the_engine_stops_and_flushes_when_its_view_is_killed(tmp_path: Path) -> None:
    socket = tmp_path / "s" / "engine.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        DESK_ENGINE_SOCKET=str(socket),
        DESK_DATABASE_URL=f"sqlite:///{tmp_path / 'desk.sqlite3'}",
        DESK_WATCHLIST="SPY",
        DESK_KILL_SWITCH_FILE=str(tmp_path / "kill"),
        DESK_SPOOL_DIR=str(tmp_path / "spool"),
        DESK_WORKSPACE_FILE=str(tmp_path / "workspace.json"),
        TERM="xterm-256color",
    )
    proc, master = _spawn(env)
    seen = bytearray()
    try:
        _read_until(master, seen, lambda text: "connected" in text and "ticks/s" in text, "the view, attached")
        assert len(_engines_on(socket)) == 1
        proc.kill()  # no chance to stop its engine
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _engines_on(socket):
            assert time.monotonic() < deadline, f"the orphaned engine kept running: {(socket.parent / 'engine.log').read_text()}"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    log = (socket.parent / "engine.log").read_text()
    assert "the view that started this engine is gone" in log and "flushed;" in log, log


def test_desk_replay_runs_the_replay_in_its_engine(tmp_path: Path) -> None:
    """`desk --replay DAY --symbols GOOG`: the command line's flags reach the engine
    process, which replays the recorded day (2015's GOOG near 750, where the synthetic
    GOOG is near 175); the view shows it and the tick store holds only GOOG."""
    socket = tmp_path / "s" / "engine.sock"
    db = tmp_path / "desk.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        DESK_ENGINE_SOCKET=str(socket),
        DESK_DATABASE_URL=f"sqlite:///{db}",
        DESK_KILL_SWITCH_FILE=str(tmp_path / "kill"),
        DESK_SPOOL_DIR=str(tmp_path / "spool"),
        DESK_WORKSPACE_FILE=str(tmp_path / "workspace.json"),
        TERM="xterm-256color",
    )
    proc, master = _spawn(env, "--replay", "2015-12-24", "--symbols", "GOOG", "--speed", "60")
    seen = bytearray()
    row = re.compile(r"GOOG\s+(\d+\.\d\d)\s+(\d+\.\d\d)")
    try:
        _read_until(master, seen, lambda text: row.search(text) is not None, "the replayed GOOG row", timeout=120)
        bid, ask = (float(x) for x in row.search(_ANSI.sub(b"", bytes(seen)).decode("utf-8", "replace")).groups())
        assert 730 < bid < 760 and 730 < ask < 760, (bid, ask)
        engine = _engines_on(socket)
        assert len(engine) == 1
        cmd = Path(f"/proc/{engine[0]}/cmdline").read_bytes().split(b"\0")
        assert cmd[cmd.index(b"--replay") + 1] == b"2015-12-24" and b"GOOG" in cmd
        os.write(master, b"q")
        _read_until(master, seen, lambda text: proc.poll() is not None, "the desk to quit")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    with sqlite3.connect(db) as con:
        symbols = {s for (s,) in con.execute("select distinct symbol from ticks")}
        quotes = con.execute("select bid, ask from ticks where kind = 'Q' and bid > 0 and ask > 0").fetchall()
    assert symbols == {"GOOG"} and quotes
    assert all(730 < b < 760 and 730 < a < 760 for b, a in quotes), quotes[:5]
