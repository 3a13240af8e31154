"""IB messages per second the engine decodes and records, with zero loss (budget: >= 40k
messages/s on this 2-core machine; issue 11, design.md).

For each feed rate, the simulator runs in a process of its own (``desk sim --speed X``)
and the real engine (``desk --headless``, the default watchlist and chain) in another,
connected to it and recording to a tick store (SQLite in a temporary folder by default,
``--database-url`` for PostgreSQL). Over a window of ``--seconds`` after ``--warmup``:

* sent: tick messages/s the simulator queued for its clients (``desk sim ctl status``);
* decoded: IB messages/s ib_async read and decoded in the engine
  (``desk_ib_messages_received_total`` from the engine's ``/metrics``); decoded / sent is
  1.00 when the engine keeps up with the feed (sent counts tick frames only, decoded every
  message, so a ratio a little above 1 is normal);
* received / recorded: tick rows/s the broker handed to the recorder and the rows/s it
  committed (``desk_ticks_received_total`` / ``desk_ticks_recorded_total``);
* the engine's event-loop lag (``desk_event_loop_lag_seconds``, worst per second), p50 and
  max over the window's scrapes;
* loss at exit: rows received minus rows written, from the engine's last stats line after
  it stopped (its recorder flushes on the way out).

The baseline of the same run is the feed the simulator sends: the engine meets the budget
at a rate when decoded / sent stays at about 1, the loss is 0 and the sent rate is >= 40k.

Usage: python bench/engine_rate.py [--speeds 1,100,200,300] [--seconds 10] [--warmup 4]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ENGINE_COUNTS = re.compile(r"received ([\d,]+)\s+written ([\d,]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sim_sent(port: int) -> int | None:
    out = subprocess.run(
        [sys.executable, "-m", "desk", "sim", "ctl", "--port", str(port), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    m = re.search(r"tick messages sent (\d+)", out.stdout)
    return int(m.group(1)) if m else None


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def _wait_metrics(port: int, timeout: float = 60.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = _scrape(port)
            if m.get("desk_ib_connected") == 1 and m.get("desk_ticks_recorded_total", 0) > 0:
                return m
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the engine did not connect and record")


def run(speed: float, seconds: float, warmup: float, database_url: str | None) -> dict[str, object]:
    sim_port, metrics_port = _free_port(), _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="desk-rate-"))
    sim = subprocess.Popen(
        [sys.executable, "-m", "desk", "sim", "--port", str(sim_port), "--speed", str(speed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    env.update(
        DESK_MODE="sim",
        DESK_IB_PORT=str(sim_port),
        DESK_DATABASE_URL=database_url or f"sqlite:///{tmp / 'desk.sqlite3'}",
        DESK_ENGINE_SOCKET=str(tmp / "s" / "engine.sock"),
        DESK_KILL_SWITCH_FILE=str(tmp / "kill"),
        DESK_SPOOL_DIR=str(tmp / "spool"),
        DESK_WORKSPACE_FILE=str(tmp / "ws.json"),
        DESK_METRICS_PORT=str(metrics_port),
    )
    log = tmp / "engine.log"
    time.sleep(0.5)  # the simulator listening
    with log.open("w") as out:
        engine = subprocess.Popen(
            [sys.executable, "-m", "desk", "--headless"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        _wait_metrics(metrics_port)
        time.sleep(warmup)
        m0, sent0, t0 = _scrape(metrics_port), _sim_sent(sim_port), time.perf_counter()
        lags = []
        while time.perf_counter() - t0 < seconds:
            time.sleep(1.0)
            lags.append(_scrape(metrics_port)["desk_event_loop_lag_seconds"] * 1000)
        m1, sent1, elapsed = _scrape(metrics_port), _sim_sent(sim_port), time.perf_counter() - t0
        engine.send_signal(signal.SIGINT)
        engine.wait(timeout=120)
    finally:
        if engine.poll() is None:
            engine.kill()
        sim.terminate()
        sim.wait(timeout=10)

    def rate(name: str) -> float:
        return (m1[name] - m0[name]) / elapsed

    counts = ENGINE_COUNTS.findall(log.read_text())
    if counts:
        received, written = (int(c.replace(",", "")) for c in counts[-1])
        loss = f"{received - written:,} of {received:,}"
    else:
        loss = "n/a (no stats line)"
    sent = (sent1 - sent0) / elapsed if sent0 is not None and sent1 is not None else float("nan")
    return {
        "sent": sent,
        "decoded": rate("desk_ib_messages_received_total"),
        "received": rate("desk_ticks_received_total"),
        "recorded": rate("desk_ticks_recorded_total"),
        "lag": (statistics.median(lags), max(lags)) if lags else (float("nan"), float("nan")),
        "loss": loss,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speeds", default="1,100,200,300", help="simulator market speeds (1 = the default feed)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the measured window")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--database-url", default=None, help="tick store (default: SQLite in a temporary folder)")
    args = ap.parse_args()
    for speed in [float(s) for s in args.speeds.split(",")]:
        r = run(speed, args.seconds, args.warmup, args.database_url)
        ratio = r["decoded"] / r["sent"] if r["sent"] else float("nan")
        print(
            f"speed {speed:>5g}  sim sent {r['sent']:>8,.0f} msg/s  engine decoded {r['decoded']:>8,.0f} msg/s "
            f"(decoded / sent {ratio:4.2f})  ticks received {r['received']:>7,.0f}/s  recorded {r['recorded']:>7,.0f}/s  "
            f"loop lag p50 {r['lag'][0]:5.1f} max {r['lag'][1]:6.1f} ms  loss at exit {r['loss']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
