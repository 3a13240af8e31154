"""Parsing of database URLs (SQLAlchemy style) into connection targets.

Accepted forms (the same strings ``DESK_DATABASE_URL`` takes):

* ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3``
  (``sqlite+pysqlite://`` too). In-memory SQLite is refused: the recorder writes from
  its own thread and connection, which would see a different, empty database.
* ``postgresql+psycopg://user:password@host:5432/dbname?sslmode=require``;
  ``postgresql://`` and ``postgres://`` are read as ``postgresql+psycopg://``.
  Query parameters are passed to libpq unchanged (``sslmode``, ``application_name`` ...).

Anything else raises :class:`~desk.store.errors.StoreError` naming the problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desk.domain.secrets import redact_url

from desk.store.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_EXAMPLES = "expected sqlite:///path/to/desk.sqlite3 or postgresql+psycopg://user@host:5432/dbname"


@dataclass(frozen=True)
class DatabaseTarget:
    """Where a database URL points.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``. ``sqlalchemy_url`` is the URL with an
    explicit driver (``sqlite+pysqlite`` / ``postgresql+psycopg``) for
    :func:`sqlalchemy.create_engine`. For PostgreSQL ``connect_kwargs`` are the keyword
    arguments of :func:`psycopg.connect` (host, port, user, password, dbname, libpq
    options); for SQLite ``path`` is the database file. ``display`` is safe to print
    (no password).
    """

    dialect: str
    sqlalchemy_url: URL
    display: str
    path: Path | None = None
    connect_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """Short human description: ``PostgreSQL at 127.0.0.1:5432 (database test, user postgres)``
        or ``SQLite file /home/me/.local/share/desk/desk.sqlite3``."""
        if self.dialect == "sqlite":
            return f"SQLite file {self.path}"
        kw = self.connect_kwargs
        host = kw.get("host") or "local socket"
        port = kw.get("port") or 5432
        extra = []
        if kw.get("dbname"):
            extra.append(f"database {kw['dbname']}")
        if kw.get("user"):
            extra.append(f"user {kw['user']}")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"PostgreSQL at {host}:{port}{tail}"


def parse_database_url(url: str | URL) -> DatabaseTarget:
    """Parse ``url`` into a :class:`DatabaseTarget`.

    Raises :class:`StoreError` for an empty or malformed URL, an unsupported database or
    driver (only SQLite via the stdlib and PostgreSQL via psycopg 3 are supported), or an
    in-memory SQLite URL. SQLAlchemy (its URL parser) is imported by the first call, not
    with this module: the order path imports it, and the engine loads SQLAlchemy after its
    first quote.
    """
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, str):
        text = url.strip()
        if not text:
            raise StoreError(f"database URL is empty; {_EXAMPLES}")
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            parsed = make_url(text)
        except ArgumentError:
            raise StoreError(f"database URL {redact_url(text)!r} is not a URL; {_EXAMPLES}") from None
    elif isinstance(url, URL):
        parsed = url
    else:
        raise StoreError(f"database URL must be a string, got {type(url).__name__}")

    backend, _, driver = parsed.drivername.partition("+")
    display = parsed.render_as_string(hide_password=True)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StoreError(f"database URL {display!r}: SQLite driver {driver!r} is not supported; use sqlite:///path")
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise StoreError(
                f"database URL {display!r}: in-memory SQLite is not supported, give a file: sqlite:///path/to/desk.sqlite3"
            )
        path = Path(database).expanduser()
        return DatabaseTarget(
            dialect="sqlite",
            sqlalchemy_url=parsed.set(drivername="sqlite+pysqlite", database=str(path)),
            display=display,
            path=path,
        )
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise StoreError(
                f"database URL {display!r}: PostgreSQL driver {driver!r} is not supported; "
                "use postgresql+psycopg://user@host:5432/dbname"
            )
        kwargs: dict[str, Any] = {}
        if parsed.host:
            kwargs["host"] = parsed.host
        if parsed.port:
            kwargs["port"] = parsed.port
        if parsed.username:
            kwargs["user"] = parsed.username
        if parsed.password is not None:
            kwargs["password"] = parsed.password
        if parsed.database:
            kwargs["dbname"] = parsed.database
        for key, value in parsed.query.items():
            kwargs[key] = value[-1] if isinstance(value, tuple) else value
        return DatabaseTarget(
            dialect="postgresql",
            sqlalchemy_url=parsed.set(drivername="postgresql+psycopg"),
            display=display,
            connect_kwargs=kwargs,
        )
    raise StoreError(f"database URL {display!r}: unsupported database {backend!r}; {_EXAMPLES}")


def database_key(url: str | URL, *parts: str) -> str:
    """16 hex digits naming one database (and ``parts``, e.g. schema and table): the
    SHA-256 of its URL without the password, so a changed password keeps the key and two
    databases never share one. Spools are filed under it, so rows spooled for one
    database are never replayed into another. Raises :class:`StoreError` like
    :func:`parse_database_url`."""
    target = parse_database_url(url)
    ident = target.sqlalchemy_url.set(password=None).render_as_string(hide_password=False)
    return hashlib.sha256("\x00".join((ident, *parts)).encode("utf-8")).hexdigest()[:16]
