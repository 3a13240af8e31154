"""Conversions shared by the sinks, the spool and the schema types.

Times: desk passes tz-aware UTC :class:`datetime` objects. Storage formats:

* PostgreSQL ``timestamptz`` (microsecond resolution, the same as ``datetime``);
* SQLite and the spool: integer **microseconds since 1970-01-01T00:00:00Z**
  (exact, sortable, 8 bytes; see :func:`to_epoch_us`).

A naive ``datetime`` is taken to be UTC (documented leniency: the broker always passes
aware times, but a naive one must not poison a whole batch).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from desk.domain.models import TickRecord

UTC = timezone.utc
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)

INT4_MIN = -(2**31)
INT4_MAX = 2**31 - 1

#: Column order of the tick table, of every COPY / INSERT and of :class:`TickRecord`.
TICK_COLUMNS: tuple[str, ...] = TickRecord._fields


def to_epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch (UTC) of ``value``; naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - UNIX_EPOCH) // ONE_US


def from_epoch_us(value: int) -> datetime:
    """Inverse of :func:`to_epoch_us`: a tz-aware UTC ``datetime``."""
    return UNIX_EPOCH + timedelta(microseconds=int(value))


def as_utc(value: datetime) -> datetime:
    """``value`` converted to UTC (``tzinfo=timezone.utc``); naive means UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def normalize_row(rec: object) -> tuple[TickRecord | None, str]:
    """Validate one row the slow, careful way.

    Returns ``(row, "")`` with a cleaned :class:`TickRecord` (time in UTC, floats as
    ``float``), or ``(None, reason)`` when the row cannot be stored: time not a datetime,
    con_id not an int within PostgreSQL ``integer`` (int4) range, symbol not a string, kind
    not a one-character string, a price/size not convertible to float.
    Used only after the database or the spool refused a batch; the fast paths do not
    validate.
    """
    try:
        time, con_id, symbol, kind, *floats = rec  # type: ignore[misc]
    except (TypeError, ValueError):
        return None, f"not a TickRecord: {rec!r:.200}"
    if len(floats) != 6:
        return None, f"expected 10 fields, got {len(floats) + 4}"
    if not isinstance(time, datetime):
        return None, f"time is {type(time).__name__}, not datetime"
    try:
        time = as_utc(time)
    except (OverflowError, ValueError) as exc:
        return None, f"time {time!r}: {exc}"
    if isinstance(con_id, bool) or not isinstance(con_id, int):
        return None, f"con_id is {type(con_id).__name__}, not int"
    if not INT4_MIN <= con_id <= INT4_MAX:
        return None, f"con_id {con_id} out of integer range"
    if not isinstance(symbol, str):
        return None, f"symbol is {type(symbol).__name__}, not str"
    if "\x00" in symbol:
        return None, "symbol contains a NUL character"
    if not isinstance(kind, str) or len(kind) != 1 or kind == "\x00":
        return None, f"kind {kind!r} is not one character"
    try:
        values = [math.nan if v is None else float(v) for v in floats]
    except (TypeError, ValueError) as exc:
        return None, f"price/size not a number: {exc}"
    return TickRecord(time, con_id, symbol, kind, *values), ""
