"""Time from `desk` start to the first painted quote (budget < 3 s, design.md).

Runs the real desk in a pseudo-terminal, exactly as a user starts it (`python -m desk`,
embedded simulator, SQLite in a temporary folder), reads what it paints, and stops at the
first watchlist row that shows a price. Prints, per run and as medians:

* interpreter baseline: `python -c pass` to exit, same interpreter (the floor);
* first frame: the first screen the app paints (status bar visible);
* first quote: the first row with a bid price on screen (what the budget is about).

Three shapes of the desk in the same run: the engine in the view's process
(``DESK_ENGINE_API=0``, the baseline), the default (the engine in a process of its own,
started with the view), and a view attaching to an engine that is already running
(``desk --attach``: a warm engine, as when the collector runs all day).

Usage: python bench/startup.py [--runs 5] [--symbol SPY]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07]*\x07")


def baseline() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def one_run(symbol: str, timeout: float = 20.0, one_process: bool = False, attach: str | None = None) -> tuple[float, float]:
    """Return (seconds to first frame, seconds to first quote) of one desk start
    (``one_process``: the engine in the view's process, ``DESK_ENGINE_API=0``; ``attach``:
    ``desk --attach`` on the engine serving that socket)."""
    tmp = tempfile.mkdtemp(prefix="desk-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        TERM="xterm-256color",
        COLUMNS="140",
        LINES="40",
        DESK_DATABASE_URL=f"sqlite:///{tmp}/ticks.sqlite3",
        DESK_SPOOL_DIR=f"{tmp}/spool",
        DESK_ENGINE_SOCKET=f"{tmp}/s/engine.sock",  # its own engine, never one already running
    )
    if one_process:
        env["DESK_ENGINE_API"] = "0"
    price_row = re.compile(rb"\b" + symbol.encode() + rb"\s+\S*?\s*\d{1,5}\.\d{2}")
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child: the desk, as a user would start it
        argv = [sys.executable, "-m", "desk"] + (["--attach", attach] if attach else [])
        os.execvpe(sys.executable, argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    screen = b""
    first_frame = first_quote = float("nan")
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += ANSI.sub(b"", chunk)
            now = time.perf_counter() - t0
            if first_frame != first_frame and (b"SIM" in screen or b"sim" in screen):
                first_frame = now
            if price_row.search(screen):
                first_quote = now
                break
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                select.select([fd], [], [], 0.05)
                os.read(fd, 65536)
            except OSError:
                pass
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return first_frame, first_quote


def start_engine() -> tuple[subprocess.Popen, str]:
    """A headless engine on the embedded simulator in a temporary folder, once its socket
    answers and it has had two seconds to quote; returns (process, socket path)."""
    tmp = tempfile.mkdtemp(prefix="desk-bench-engine-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    sock = f"{tmp}/s/engine.sock"
    env.update(DESK_DATABASE_URL=f"sqlite:///{tmp}/ticks.sqlite3", DESK_SPOOL_DIR=f"{tmp}/spool", DESK_ENGINE_SOCKET=sock)
    proc = subprocess.Popen(
        [sys.executable, "-m", "desk", "--headless"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not os.path.exists(sock):
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("the headless engine did not start")
        time.sleep(0.05)
    time.sleep(2.0)
    return proc, sock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--symbol", default="SPY")
    args = ap.parse_args()
    base = [baseline() for _ in range(args.runs)]
    b = statistics.median(base)
    engine = None
    shapes = (
        ("one process (DESK_ENGINE_API=0)", True, False),
        ("engine in its own process", False, False),
        ("desk --attach to a running engine", False, True),
    )
    try:
        for shape, one_process, warm in shapes:
            attach = None
            if warm:  # started only now: its own load must not slow the other shapes
                engine, attach = start_engine()
            frames, quotes = [], []
            for i in range(args.runs):
                frame, quote = one_run(args.symbol, one_process=one_process, attach=attach)
                frames.append(frame)
                quotes.append(quote)
                print(f"{shape} run {i + 1}: first frame {frame:.3f} s, first quote {quote:.3f} s", flush=True)
            f, q = statistics.median(frames), statistics.median(quotes)
            print(
                f"{shape}, median of {args.runs}: interpreter baseline {b:.3f} s | first frame {f:.3f} s | "
                f"first quote {q:.3f} s | first quote / baseline = {q / b:.1f}x; design.md's 3 s: "
                f"{'met' if q < 3.0 else 'MISSED'}; issue 11's 1 s: {'met' if q < 1.0 else 'MISSED'}\n",
                flush=True,
            )
    finally:
        if engine is not None:
            engine.terminate()
            engine.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
