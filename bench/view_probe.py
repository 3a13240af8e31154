"""Run the real `desk` with two probes in the terminal view's process, for bench/ui_lag.py.

* event-loop lag: a task on the view's loop sleeps ``PERIOD`` seconds and records how late
  it wakes (what every keystroke and timer of the view waits behind);
* frame time: how long each of Textual's screen updates takes (layout, render of the
  changed regions, write to the terminal: ``Screen._on_timer_update``, timed around).

Samples are ``(time.monotonic(), seconds)`` pairs, written as JSON to the file named by
``BENCH_VIEW_STATS`` when the desk exits. Nothing here changes what the desk does;
its engine (a child process, ``desk --headless``) is not probed.

Usage (what the bench runs): BENCH_VIEW_STATS=out.json python bench/view_probe.py [desk args]
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import sys
import time

PERIOD = 0.005

samples: dict[str, list[tuple[float, float]]] = {"lag": [], "frame": []}


def _install() -> None:
    from textual.screen import Screen

    from desk.ui.app import DeskApp

    timed_update = Screen._on_timer_update

    def _on_timer_update(self: Screen) -> None:
        t0 = time.perf_counter()
        timed_update(self)
        samples["frame"].append((time.monotonic(), time.perf_counter() - t0))

    Screen._on_timer_update = _on_timer_update  # type: ignore[method-assign]

    async def _lag() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(PERIOD)
            samples["lag"].append((time.monotonic(), max(0.0, loop.time() - t0 - PERIOD)))

    mounted = DeskApp.on_mount

    async def on_mount(self: DeskApp) -> None:
        result = mounted(self)
        if asyncio.iscoroutine(result):
            await result
        self._bench_lag = asyncio.get_running_loop().create_task(_lag())

    DeskApp.on_mount = on_mount  # type: ignore[method-assign]


def _write() -> None:
    path = os.environ.get("BENCH_VIEW_STATS")
    if path:
        with open(path, "w") as f:
            json.dump(samples, f)


if __name__ == "__main__":
    atexit.register(_write)
    from desk.cli import main

    sys.argv[0] = "desk"
    # the view imports Textual after starting the engine; the probes need it now (the
    # order changes the start-up overlap only, not the steady state measured)
    _install()
    sys.exit(main())
