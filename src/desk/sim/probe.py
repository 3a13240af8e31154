"""A bare TWS API client for tests and benchmarks of the simulated gateway (no ib_async).

It speaks just enough of the socket protocol (handshake, startApi, reqMktData) to measure
what the gateway itself produces, independent of any client library's decoding cost.
"""

from __future__ import annotations

import socket
import struct
import time

from desk.sim.codec import encode_fields
from desk.sim.universe import UNIVERSE

__all__ = ["count_frames", "raw_subscribe_all"]


def raw_subscribe_all(port: int) -> socket.socket:
    """Connect a bare TWS API client (no ib_async), start the API as clientId 900 and
    subscribe every universe symbol; return the socket."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"v157..178"
    sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)
    out = [encode_fields((71, 2, 900, ""))]
    for i, s in enumerate(UNIVERSE.values(), start=1):
        out.append(
            encode_fields((1, 11, i, s.con_id, s.symbol, "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 0, "", 0, 0, ""))
        )
    sock.sendall(b"".join(out))
    return sock


def count_frames(sock: socket.socket, seconds: float) -> int:
    """Frames received on ``sock`` during ``seconds``."""
    sock.settimeout(0.2)
    buf = bytearray()
    frames = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            data = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not data:
            break
        buf += data
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = struct.unpack_from(">I", buf, pos)
            if len(buf) - pos - 4 < n:
                break
            pos += 4 + n
            frames += 1
        del buf[:pos]
    return frames
