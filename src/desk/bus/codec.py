"""Wire format of ticks on Redis: one compact JSON array per tick.

::

    [time_us, con_id, "symbol", "kind", bid, ask, bid_size, ask_size, price, size]

* ``time_us``: integer microseconds since 1970-01-01T00:00:00Z (exact, no float rounding);
* ``con_id``: IB conId; ``kind``: ``"Q"`` quote or ``"T"`` trade;
* prices in dollars per share, sizes in shares or contracts, ``null`` when absent
  (``nan`` in desk; infinities are sent as ``null`` too: JSON has no infinity).

The same text is the ``tick`` field of each stream entry and the payload of each pub/sub
message, so one decoder (:func:`decode_tick`) serves both. Compact JSON rather than a
binary format so that any language, ``redis-cli`` and browsers can read it; at ~80 bytes
a tick it is within 2x of a packed binary layout.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

from desk.domain.models import TickRecord

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_US = timedelta(microseconds=1)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _finite(v: float) -> float | None:
    return v if v - v == 0 else None


def encode_tick(rec: TickRecord) -> str:
    """The compact JSON text of one tick (see the module docstring). A naive ``time`` is
    taken as UTC. Raises ``TypeError`` / ``ValueError`` for values JSON cannot carry."""
    t, c, s, k, b, a, bs, az, p, z = rec
    if t.tzinfo is None:
        t = t.replace(tzinfo=_UTC)
    us = (t - _EPOCH) // _US
    x = b + a + bs + az + p + z
    if x - x == 0:  # all finite: the common trade row
        return _dumps([us, c, s, k, b, a, bs, az, p, z])
    return _dumps([us, c, s, k, _finite(b), _finite(a), _finite(bs), _finite(az), _finite(p), _finite(z)])


def decode_tick(payload: str | bytes) -> TickRecord:
    """Inverse of :func:`encode_tick`: ``null`` becomes ``nan``, time tz-aware UTC.

    Raises ``ValueError`` for text that is not a 10-element tick array.
    """
    data = json.loads(payload)
    if not isinstance(data, list) or len(data) != 10:
        raise ValueError(f"not a desk tick payload: {payload[:80]!r}")
    us, c, s, k, *vals = data
    return TickRecord(
        _EPOCH + timedelta(microseconds=int(us)),
        int(c),
        str(s),
        str(k),
        *(math.nan if v is None else float(v) for v in vals),
    )
