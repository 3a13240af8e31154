"""The engine in its own process, started by ``desk`` for its terminal view.

``desk`` runs the view in the terminal's process and the engine (broker, recorder, order
path, analytics) in a child process, ``python -m desk --headless --for-view PID`` (it stops when the view PID is gone), serving
the engine API on the user's socket; the view attaches to it like any other
(:class:`desk.engine.view.RemoteDesk`). So no load on the engine (a busy feed, a chain
being repriced, a slow database) can delay a keystroke.

:class:`EngineProcess` starts the child, says whether it is still alive and why it ended
(the last lines of its log), and stops it: SIGTERM (the engine flushes its recorder and
exits 0), then SIGKILL after ``timeout`` seconds. The child writes its log to
``engine.log`` beside the socket (the socket's directory is the user's only; the previous
run's log is kept as ``engine.log.1``). It runs in
a session of its own, so a Ctrl-C meant for the terminal never reaches it half-way
through a flush. Stdlib only: the view process imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path

__all__ = ["EngineProcess"]


class EngineProcess:
    """A child engine serving its API on ``socket`` (see the module doc)."""

    def __init__(self, socket: Path, *, log: Path | None = None, args: Sequence[str] = ()) -> None:
        self.socket = Path(socket)
        self.log = log or self.socket.parent / "engine.log"
        #: command-line flags for the child (``desk --replay DAY --symbols GOOG``: the
        #: engine replays; the view's own settings never reach the child otherwise)
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def start(self) -> None:
        """Start the child (returns at once; the socket answers once it is up).
        ``OSError`` naming the path when the log cannot be written."""
        parent = self.socket.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o700)
        env = dict(os.environ, DESK_ENGINE_SOCKET=str(self.socket), DESK_ENGINE_API="1")
        if self.log.exists():  # the previous run's log stays, as engine.log.1
            os.replace(self.log, self.log.with_name(self.log.name + ".1"))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "desk",
                    "--headless",
                    "--for-view",
                    str(os.getpid()),
                    "--stats-interval",
                    "60",
                    *self.args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The child's exit code, ``None`` while it runs (or before it is started)."""
        return self.proc.poll() if self.proc is not None else None

    def last_line(self) -> str:
        """The last non-blank line of the child's log ("" when there is none)."""
        with contextlib.suppress(OSError):
            with open(self.log, "rb") as f:
                lines = deque((line.decode("utf-8", "replace").strip() for line in f if line.strip()), maxlen=1)
            return lines[0] if lines else ""
        return ""

    def problem(self) -> str:
        """Why the engine ended, in one line: its exit code and the last line of its log."""
        code = self.returncode
        last = self.last_line()
        what = f"the engine exited with code {code}" if code is not None else "the engine is not running"
        return f"{what}: {last} (log: {self.log})" if last else f"{what} (log: {self.log})"

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s (the engine flushes), then SIGKILL. Returns
        the exit code (``None`` if it was never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait)
        return proc.returncode
