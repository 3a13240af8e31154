"""Fixtures of the desk.bus tests: a real Redis, with keys of their own per test.

Tests FAIL when Redis is unreachable (CI must run them) unless DESK_TEST_ALLOW_SKIP=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from bus_testlib import REDIS_URL, TcpProxy


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        msg = f"Redis at {REDIS_URL} is unreachable: {exc}"
        if os.environ.get("DESK_TEST_ALLOW_SKIP") == "1":
            pytest.skip(msg)
        pytest.fail(f"{msg}; start it or set DESK_TEST_REDIS_URL (DESK_TEST_ALLOW_SKIP=1 skips instead)", pytrace=False)
    return REDIS_URL


@pytest.fixture
def keys(redis_url: str) -> Iterator[dict[str, str]]:
    """``{"stream": ..., "prefix": ...}`` unique to the test; the stream is deleted after."""
    base = f"desk:test:{uuid.uuid4().hex[:12]}"
    names = {"stream": f"{base}:ticks", "prefix": f"{base}:ch:"}
    yield names
    client = redis.Redis.from_url(redis_url)
    client.delete(names["stream"])
    client.close()


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """``(proxy, url)``: the test Redis reached through a cuttable TCP proxy."""
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}"
    proxy.cut()
