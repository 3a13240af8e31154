"""The control socket of ``desk sim``: fault commands (:mod:`desk.sim.faults`) from another
process, ``desk sim ctl --port PORT COMMAND``.

:class:`ControlServer` listens on a Unix socket (``desk sim`` opens one per port at
:func:`control_path`) and takes one command line per connection, answered with one line by
:meth:`desk.sim.faults.FaultInjector.execute` (the commands are
:data:`desk.sim.faults.COMMANDS`). :func:`send_control` is the client side;
:func:`ctl_command` the ``desk sim ctl`` command.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol

__all__ = ["CommandRunner", "ControlServer", "control_path", "ctl_command", "open_control", "send_control"]


class CommandRunner(Protocol):
    """What the control socket drives: :class:`desk.sim.faults.FaultInjector`."""

    async def execute(self, line: str) -> str:
        """Run one command line; return the one-line answer."""
        ...


def control_path(port: int) -> Path:
    """The control socket of ``desk sim --port PORT``: ``$XDG_RUNTIME_DIR/desk-sim-PORT.sock``
    (the temporary directory when XDG_RUNTIME_DIR is unset)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"desk-sim-{port}.sock"


class ControlServer:
    """A Unix-socket server taking one command line per connection and answering one
    line (``FaultInjector.execute``). Only the local user can connect (mode 0600)."""

    def __init__(self, faults: CommandRunner, path: str | Path) -> None:
        self.faults = faults
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> Path:
        """Listen; an existing stale socket file at the path is replaced. ``OSError`` if
        the folder is not writable."""
        if self.path.exists():
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        os.chmod(self.path, 0o600)
        return self.path

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            answer = await self.faults.execute(line.decode(errors="replace"))
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def send_control(path: str | Path, command: str, timeout: float = 10.0) -> str:
    """Send one command to a control socket and return the answer line (blocking).
    ``OSError`` (e.g. ``FileNotFoundError``, ``ConnectionRefusedError``) when no simulator
    listens there."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.strip().encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace").strip()


async def open_control(faults: CommandRunner, port: int) -> ControlServer | None:
    """Start the control socket of the gateway on ``port`` (its ``faults``) at
    :func:`control_path` and print how to use it; ``None`` (with a warning on stderr) when
    Unix sockets are unavailable or the folder is not writable."""
    import sys

    server = ControlServer(faults, control_path(port))
    try:
        path = await server.start()
    except (OSError, NotImplementedError, AttributeError) as exc:
        print(f"desk sim: no control socket ({exc}); faults need the Python API", file=sys.stderr)
        return None
    print(f"desk sim control: desk sim ctl --port {port} COMMAND (help lists them; socket {path})", flush=True)
    return server


def ctl_command(port: int, words: list[str]) -> int:
    """``desk sim ctl [--port P] COMMAND``: send one command to a running ``desk sim``,
    print the answer; exit code 0, 1 if no simulator listens, 2 if the command failed."""
    import sys

    path = control_path(port)
    try:
        answer = send_control(path, " ".join(words))
    except OSError as exc:
        print(
            f"desk: no simulator control socket at {path} ({exc.strerror or exc}); is `desk sim --port {port}` running?",
            file=sys.stderr,
        )
        return 1
    print(answer)
    return 2 if answer.startswith("error:") else 0
