"""TWS API wire codec: framing, the handshake, and field encoding.

Wire format (TWS API socket protocol, as spoken by TWS / IB Gateway and ib_async 2.1):

* the client opens with the 4 bytes ``API\\0``;
* every message, both directions, is a 4-byte big-endian length then a payload of
  UTF-8 fields, each terminated by ``\\0`` (the last one too);
* the client's first framed message is one field ``v<min>..<max>`` (optionally followed
  by a space and options such as ``+PACEAPI``); the server answers with one frame of
  exactly two fields, ``<server version>`` and ``<connection time>``.

:class:`FrameDecoder` is incremental: feed it whatever ``data_received`` got (a partial
frame, several frames, the ``API\\0`` prefix glued to the first frame) and it returns the
complete messages, keeping the rest for the next call.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

__all__ = [
    "API_PREFIX",
    "MAX_FRAME",
    "FrameDecoder",
    "ProtocolError",
    "encode_fields",
    "frame",
    "parse_version_range",
]

#: The bytes a TWS API client sends before its first frame.
API_PREFIX = b"API\0"
#: Largest payload accepted, bytes (TWS's own limit is 16 MiB - 1).
MAX_FRAME = 0xFFFFFF

_LEN = struct.Struct(">I")
pack_len = _LEN.pack


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API protocol (bad prefix, oversized
    frame, malformed version range). The connection should be closed."""


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return pack_len(len(payload)) + payload


def encode_fields(fields: Iterable[object]) -> bytes:
    """One framed message from ``fields``: each ``str()``-ed, UTF-8, NUL-terminated.

    ``None`` becomes ``""`` and bools ``"1"``/``"0"``, as the TWS API expects. Callers
    format floats themselves (prices on the tick grid, sizes as integers).
    """
    parts = []
    for f in fields:
        if f is None:
            parts.append("")
        elif f is True:
            parts.append("1")
        elif f is False:
            parts.append("0")
        else:
            parts.append(str(f))
    payload = ("\0".join(parts) + "\0").encode()
    return pack_len(len(payload)) + payload


_VERSION_RE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$", re.DOTALL)


def parse_version_range(text: str) -> tuple[int, int, str]:
    """Parse the client's version frame ``v157..178 +PACEAPI`` into ``(157, 178, "+PACEAPI")``.

    A single version ``v176`` gives ``(176, 176, "")``. Raises :class:`ProtocolError` for
    anything else.
    """
    m = _VERSION_RE.match(text.strip())
    if not m:
        raise ProtocolError(f"bad version range {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise ProtocolError(f"bad version range {text!r}")
    return lo, hi, (m.group(3) or "").strip()


class FrameDecoder:
    """Incremental decoder of length-prefixed, NUL-separated TWS API messages.

    ``expect_prefix=True`` (server side) first requires the client's ``API\\0``.
    :meth:`feed` returns a list of messages, each a list of ``str`` fields (the empty
    string after the final NUL is not a field). Raises :class:`ProtocolError` on a bad
    prefix or a frame longer than ``max_frame`` bytes; the decoder is then unusable.
    """

    __slots__ = ("_buf", "_need_prefix", "max_frame")

    def __init__(self, expect_prefix: bool = True, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._need_prefix = expect_prefix
        self.max_frame = max_frame

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[list[str]]:
        buf = self._buf
        buf += data
        if self._need_prefix:
            n = min(len(buf), len(API_PREFIX))
            if buf[:n] != API_PREFIX[:n]:
                raise ProtocolError(f"expected {API_PREFIX!r}, got {bytes(buf[:n])!r}")
            if len(buf) < len(API_PREFIX):
                return []
            del buf[: len(API_PREFIX)]
            self._need_prefix = False
        out: list[list[str]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self.max_frame:
                raise ProtocolError(f"frame of {size} bytes exceeds {self.max_frame}")
            stop = pos + 4 + size
            if stop > end:
                break
            text = buf[pos + 4 : stop].decode("utf-8", errors="backslashreplace")
            fields = text.split("\0")
            if fields and fields[-1] == "":
                fields.pop()
            out.append(fields)
            pos = stop
        if pos:
            del buf[:pos]
        return out
