"""Exceptions raised by :mod:`desk.store`.

Every message is one line a user can act on, e.g.
``cannot connect to PostgreSQL at 127.0.0.1:5433 (database test, user postgres): connection refused``.
"""

from __future__ import annotations


class StoreError(Exception):
    """A configuration or database problem of the tick store. ``str()`` is one line."""


class SinkUnavailable(StoreError):
    """The database cannot be written right now (down, unreachable, table missing).

    The recorder spools the batch and retries later with backoff.
    """


class SinkDataError(StoreError):
    """The database rejected the *content* of a batch (value out of range, bad type).

    Retrying the same rows cannot succeed; the recorder isolates the offending rows
    and moves them to the ``rejected/`` folder of the spool directory.
    """
