"""Helpers of the desk.bus tests (a unique module name, importable from the test modules)."""

from __future__ import annotations

import math
import os
import random
import socket
import threading
from datetime import datetime, timedelta, timezone

from desk.domain.models import TickRecord

REDIS_URL = os.environ.get("DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def make_ticks(n: int, *, seed: int = 3) -> list[TickRecord]:
    """``n`` ticks with increasing times, quotes (price/size nan) and trades."""
    rng = random.Random(seed)
    t = datetime(2024, 3, 8, 14, 30, tzinfo=timezone.utc)
    symbols = ["SPY", "QQQ", "AAPL", "BRK B"]
    out = []
    for i in range(n):
        t += timedelta(microseconds=rng.randint(1, 3000))
        s = i % len(symbols)
        mid = round(100 + rng.random() * 10, 4)
        if i % 3:
            out.append(TickRecord(t, 10 + s, symbols[s], "Q", mid - 0.01, mid + 0.01, 100.0, 200.0, math.nan, math.nan))
        else:
            out.append(TickRecord(t, 10 + s, symbols[s], "T", mid - 0.01, math.nan, 3.0, math.nan, mid, 7.0))
    return out


def same_tick(a: TickRecord, b: TickRecord) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and math.isnan(x):
            if not (isinstance(y, float) and math.isnan(y)):
                return False
        elif x != y:
            return False
    return b.time.utcoffset() == timedelta(0)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses
    new ones (Redis gone, as the client sees it), ``restore()`` ends the outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(16)
        self.port = lst.getsockname()[1]
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def cut(self) -> None:
        lst, self._listener = self._listener, None
        if lst is not None:
            try:
                lst.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lst.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
