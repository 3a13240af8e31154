"""Fixtures of the desk.store tests: real PostgreSQL (own schema per test), SQLite files
in tmp_path, and a TCP proxy that simulates a database outage.

PostgreSQL tests FAIL when the server is unreachable (CI must run them) unless
DESK_TEST_ALLOW_SKIP=1, in which case they are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from store_testlib import PG_URL, TcpProxy, pg_connect


def _unavailable(what: str) -> None:
    if os.environ.get("DESK_TEST_ALLOW_SKIP") == "1":
        pytest.skip(f"{what} (DESK_TEST_ALLOW_SKIP=1)")
    pytest.fail(f"{what}; start it or set DESK_TEST_PG_URL (DESK_TEST_ALLOW_SKIP=1 skips instead)", pytrace=False)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test PostgreSQL URL; fails (or skips, see module doc) if unreachable."""
    try:
        with pg_connect(PG_URL):
            pass
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL at {PG_URL} is unreachable: {str(exc).strip().splitlines()[0]}")
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped (with everything in it) afterwards."""
    name = "desk_t_" + uuid.uuid4().hex[:12]
    yield name
    with pg_connect(pg_url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A SQLite file in a folder that does not exist yet (the sink must create it)."""
    return f"sqlite:///{tmp_path / 'db' / 'desk.sqlite3'}"


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """``(proxy, url)``: the test database reached through a :class:`TcpProxy`."""
    from desk.store.urls import parse_database_url

    target = parse_database_url(pg_url)
    kw = target.connect_kwargs
    proxy = TcpProxy(kw.get("host", "127.0.0.1"), int(kw.get("port", 5432)))
    url = target.sqlalchemy_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield proxy, url
    proxy.close()
