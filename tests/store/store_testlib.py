"""Helpers of the desk.store tests (imported by conftest.py and the test modules).

Kept out of conftest.py so test modules can import them by a unique module name.
"""

from __future__ import annotations

import math
import os
import random
import socket
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import psycopg

from desk.domain.models import TickRecord

PG_URL = os.environ.get("DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_connect(url: str = PG_URL, **kwargs: object) -> psycopg.Connection:
    """A plain psycopg connection to the test database (autocommit)."""
    from desk.store.urls import parse_database_url

    target = parse_database_url(url)
    return psycopg.connect(autocommit=True, connect_timeout=3, **{**target.connect_kwargs, **kwargs})


def make_ticks(n: int, *, seed: int = 1, start: datetime | None = None, con_base: int = 1000) -> list[TickRecord]:
    """``n`` synthetic ticks with strictly increasing times (µs steps), several symbols,
    quotes (price/size nan) and trades, some absent sides, a few infinities."""
    rng = random.Random(seed)
    t = start or datetime(2024, 3, 8, 14, 30, tzinfo=timezone.utc)
    symbols = ["SPY", "QQQ", "AAPL", "BRK B", "Ünï", "GOOG  240119C00140000"]
    out = []
    for i in range(n):
        t += timedelta(microseconds=rng.randint(1, 5000))
        s = rng.randrange(len(symbols))
        mid = 100.0 + rng.random() * 50
        if rng.random() < 0.8:
            bid, ask = mid - 0.01, mid + 0.01
            bid_size, ask_size = float(rng.randint(1, 900)), float(rng.randint(1, 900))
            if i % 97 == 0:
                bid, bid_size = math.nan, math.nan
            row = TickRecord(t, con_base + s, symbols[s], "Q", bid, ask, bid_size, ask_size, math.nan, math.nan)
        else:
            price = mid if i % 211 else math.inf
            row = TickRecord(t, con_base + s, symbols[s], "T", math.nan, math.nan, math.nan, math.nan, price, float(rng.randint(1, 500)))
        out.append(row)
    return out


def same_value(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def assert_same_rows(expected: Sequence[TickRecord], actual: Sequence[TickRecord]) -> None:
    """Same multiset of rows, value for value (nan == nan), times tz-aware UTC."""
    assert len(actual) == len(expected)
    key = lambda r: (r.time, r.con_id, r.kind)  # noqa: E731
    for exp, got in zip(sorted(expected, key=key), sorted(actual, key=key), strict=True):
        assert got.time.utcoffset() == timedelta(0), got.time
        assert got.time == exp.time
        for field, e, g in zip(TickRecord._fields, exp, got, strict=True):
            assert same_value(e, g), (field, exp, got)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and
    refuses new ones (a database outage as the client sees it), ``restore()`` ends it;
    ``freeze()`` / ``thaw()`` stall and resume the traffic (a hung server)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def freeze(self) -> None:
        """Stop forwarding bytes, keeping connections open: a hung server."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

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

    def close(self) -> None:
        self.cut()

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

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


