"""Keystroke-to-paint of the real desk under load (budget: median < 50 ms, p90 < 100 ms at
the default feed and at a fast one; design.md).

For each feed rate, the simulator runs in a process of its own (`desk sim --speed X`),
and the real `desk` runs in a pseudo-terminal as a user starts it, connected to it, in
two shapes measured in the same run:

* baseline: the engine in the view's process (`DESK_ENGINE_API=0`, the desk before the
  engine had a process of its own: one event loop for ib_async, the recorder's hand-off,
  the chain's IV and Greeks, the arbitrage scan and the widgets);
* desk: the terminal view here and the engine in its own process (`desk`'s default).

Per run, over the measured window (after ``--warmup``, through the key presses):

* the feed: tick messages/s the simulator sent (``desk sim ctl status``, start and end of
  the window), IB messages/s the engine decoded (``desk_ib_messages_received_total`` from
  its ``/metrics``), rows/s it recorded, and the loss (ticks
  received minus rows written, from the engine's last log line; the one-process desk
  prints none, so n/a);
* the view's event-loop lag and frame time, p50 / p99, over ``--quiet`` seconds of the
  feed alone and then over the key presses (``bench/view_probe.py`` runs the desk with a
  5 ms timer on the view's loop and a stopwatch around Textual's screen updates);
* keystroke-to-paint, ``--presses`` times each: send ``?`` (help screen) or ``b`` (order
  ticket) through the pty and time until the bytes that draw it arrive (its title text),
  then Escape and a pause; p50 / p90 / max per key and the ratio baseline / desk.

Usage: python bench/ui_lag.py [--speeds 1,50,200] [--presses 15] [--warmup 4]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07]*\x07")
KEYS = {"help": (b"?", "PgUp PgDn scroll"), "ticket": (b"b", "Order ticket:")}
PROBE = Path(__file__).with_name("view_probe.py")
ENGINE_COUNTS = re.compile(r"received ([\d,]+)\s+written ([\d,]+)")


def _sim_sent(port: int) -> int | None:
    """Tick messages the simulator on ``port`` has sent so far (``desk sim ctl status``)."""
    out = subprocess.run(
        [sys.executable, "-m", "desk", "sim", "ctl", "--port", str(port), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    m = re.search(r"tick messages sent (\d+)", out.stdout)
    return int(m.group(1)) if m else None


def _decoded(metrics_port: int) -> float | None:
    """IB messages the engine has decoded so far (``desk_ib_messages_received_total``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(r"^desk_ib_messages_received_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def _pcts(values: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of ``values`` in seconds."""
    if not values:
        return float("nan"), float("nan")
    values = sorted(values)
    return values[len(values) // 2] * 1000, values[min(len(values) - 1, int(len(values) * 0.99))] * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Screen:
    """Reads a pty continuously; remembers the stripped text with arrival times."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.chunks: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.alive = True
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while self.alive:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:
                return
            now = time.perf_counter()
            with self.lock:
                self.chunks.append((now, ANSI.sub(b"", data).decode("utf-8", "replace")))

    def since(self, t: float) -> str:
        with self.lock:
            return "".join(text for at, text in self.chunks if at >= t)

    def first_after(self, t: float, marker: str, timeout: float) -> float | None:
        """Arrival time of the chunk completing ``marker`` in the text received after ``t``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                text = ""
                for at, chunk in self.chunks:
                    if at < t:
                        continue
                    text += chunk
                    if marker in text:
                        return at
            time.sleep(0.002)
        return None


def run(shape: str, speed: float, presses: int, warmup: float, quiet: float) -> dict[str, object]:
    port, metrics_port = _free_port(), _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="desk-uilag-"))
    sim = subprocess.Popen(
        [sys.executable, "-m", "desk", "sim", "--port", str(port), "--speed", str(speed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        DESK_MODE="sim",
        DESK_IB_PORT=str(port),
        DESK_DATABASE_URL=f"sqlite:///{tmp / 'desk.sqlite3'}",
        DESK_ENGINE_SOCKET=str(tmp / "s" / "engine.sock"),
        DESK_KILL_SWITCH_FILE=str(tmp / "kill"),
        DESK_SPOOL_DIR=str(tmp / "spool"),
        DESK_WORKSPACE_FILE=str(tmp / "ws.json"),
        TERM="xterm-256color",
        BENCH_VIEW_STATS=str(tmp / "view.json"),
        DESK_METRICS_PORT=str(metrics_port),
    )
    if shape == "baseline":
        env["DESK_ENGINE_API"] = "0"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    time.sleep(0.5)  # the simulator listening
    desk = subprocess.Popen(
        [sys.executable, str(PROBE)], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    screen = Screen(master)
    out: dict[str, object] = {"shape": shape, "speed": speed}
    try:
        if screen.first_after(0.0, "ticks/s", 60) is None:
            raise RuntimeError("the desk did not come up")
        time.sleep(warmup)
        started, sent0, decoded0 = time.perf_counter(), _sim_sent(port), _decoded(metrics_port)
        window0 = time.monotonic()
        time.sleep(quiet)  # the feed alone: what the view's loop and frames cost with no key pressed
        quiet1 = time.monotonic()
        for name, (key, marker) in KEYS.items():
            lags = []
            for _ in range(presses):
                t0 = time.perf_counter()
                os.write(master, key)
                at = screen.first_after(t0, marker, 5.0)
                if at is not None:
                    lags.append((at - t0) * 1000)
                os.write(master, b"\x1b")
                time.sleep(0.4)
            out[name] = lags
        sent1, decoded1, elapsed = _sim_sent(port), _decoded(metrics_port), time.perf_counter() - started
        window1 = time.monotonic()
        with sqlite3.connect(tmp / "desk.sqlite3") as con:
            rows0 = con.execute("select count(*) from ticks").fetchone()[0]
        os.write(master, b"q")
        desk.wait(timeout=60)
        out["sent_s"] = (sent1 - sent0) / elapsed if sent0 is not None and sent1 is not None else float("nan")
        out["decoded_s"] = (decoded1 - decoded0) / elapsed if decoded0 is not None and decoded1 is not None else float("nan")
        # what the engine decoded and recorded: the rows in the tick store (rows0 at the
        # window's end, so the final flush does not count), the engine's own counts at exit
        with sqlite3.connect(tmp / "desk.sqlite3") as con:
            rows = con.execute("select count(*) from ticks").fetchone()[0]
        out["rows_s"] = rows0 / (elapsed + warmup)
        log = tmp / "s" / "engine.log"
        counts = ENGINE_COUNTS.findall(log.read_text()) if log.exists() else []
        if counts:
            received, written = (int(c.replace(",", "")) for c in counts[-1])
            out["loss"] = f"{received - written:,} of {received:,}"
        else:
            out["loss"] = "n/a"
        out["rows"] = rows
        stats = json.loads((tmp / "view.json").read_text())
        for name in ("lag", "frame"):
            out[name] = _pcts([v for t, v in stats[name] if window0 <= t <= quiet1])
            out[name + "_keys"] = _pcts([v for t, v in stats[name] if quiet1 < t <= window1])
    finally:
        screen.alive = False
        if desk.poll() is None:
            desk.kill()
        sim.terminate()
        sim.wait(timeout=10)
        os.close(master)
    return out


def _fmt(lags: list[float]) -> str:
    if not lags:
        return "no paint"
    q = statistics.quantiles(lags, n=10, method="inclusive") if len(lags) >= 2 else [lags[0]] * 9
    return f"p50 {statistics.median(lags):6.1f}  p90 {q[8]:6.1f}  max {max(lags):6.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speeds", default="1,50,200", help="simulator market speeds (1 = the default feed)")
    ap.add_argument("--presses", type=int, default=15)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--quiet", type=float, default=5.0, help="seconds of feed only (no key) measured first")
    args = ap.parse_args()
    for speed in [float(s) for s in args.speeds.split(",")]:
        results = {shape: run(shape, speed, args.presses, args.warmup, args.quiet) for shape in ("baseline", "desk")}
        for shape, r in results.items():
            print(
                f"speed {speed:>5g}  {shape:8}  sim sent {r['sent_s']:>7,.0f} msg/s  engine decoded {r['decoded_s']:>7,.0f} msg/s  recorded {r['rows_s']:>7,.0f} rows/s  "
                f"engine loss {r['loss']}",
                flush=True,
            )
            for label, suffix in (("feed only", ""), ("with keys", "_keys")):
                lag, frame = r["lag" + suffix], r["frame" + suffix]
                print(
                    f"speed {speed:>5g}  {shape:8}  {label}: view loop lag p50 {lag[0]:5.1f} p99 {lag[1]:6.1f} ms  "
                    f"frame p50 {frame[0]:5.1f} p99 {frame[1]:6.1f} ms",
                    flush=True,
                )
            print(f"speed {speed:>5g}  {shape:8}  " + "  ".join(f"{k}: {_fmt(r[k])}" for k in KEYS), flush=True)
        for k in KEYS:
            b, d = results["baseline"][k], results["desk"][k]
            if b and d:
                print(
                    f"speed {speed:>5g}  {k}: baseline / desk median = {statistics.median(b) / statistics.median(d):.2f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
