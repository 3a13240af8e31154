"""Database URL parsing and its error messages."""

from __future__ import annotations

import pytest

from desk.store import StoreError, TickRecorder, parse_database_url


def test_sqlite_url_gives_path(tmp_path):
    target = parse_database_url(f"sqlite:///{tmp_path}/x/desk.sqlite3")
    assert target.dialect == "sqlite"
    assert target.path == tmp_path / "x" / "desk.sqlite3"
    assert "SQLite file" in target.where


def test_postgres_url_gives_psycopg_kwargs():
    target = parse_database_url("postgresql+psycopg://bob:s3cret@db.example:6543/ticks?sslmode=require")
    assert target.dialect == "postgresql"
    assert target.connect_kwargs == {
        "host": "db.example",
        "port": 6543,
        "user": "bob",
        "password": "s3cret",
        "dbname": "ticks",
        "sslmode": "require",
    }
    assert "s3cret" not in target.display
    assert target.where == "PostgreSQL at db.example:6543 (database ticks, user bob)"


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_plain_postgres_schemes_mean_psycopg(url):
    assert parse_database_url(url).sqlalchemy_url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not a url", "not a URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u@h/db", "driver 'asyncpg' is not supported"),
        ("postgresql+psycopg2://u@h/db", "driver 'psycopg2' is not supported"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
    ],
)
def test_invalid_urls_raise_clear_store_error(url, words):
    with pytest.raises(StoreError, match=words):
        parse_database_url(url)


def test_password_is_not_echoed_in_errors():
    with pytest.raises(StoreError) as info:
        parse_database_url("oracle://scott:tiger@h/db")
    assert "tiger" not in str(info.value)


def test_recorder_rejects_bad_url_and_parameters(tmp_path):
    with pytest.raises(StoreError, match="unsupported database"):
        TickRecorder("mongodb://h/db")
    with pytest.raises(StoreError, match="flush_rows"):
        TickRecorder(f"sqlite:///{tmp_path}/a.db", flush_rows=0)
    with pytest.raises(StoreError, match="flush_interval"):
        TickRecorder(f"sqlite:///{tmp_path}/a.db", flush_interval=0)
    with pytest.raises(StoreError, match="table name"):
        TickRecorder(f"sqlite:///{tmp_path}/a.db", table="ticks; drop table x")
    with pytest.raises(StoreError, match="only be given for PostgreSQL"):
        TickRecorder(f"sqlite:///{tmp_path}/a.db", schema="s")
