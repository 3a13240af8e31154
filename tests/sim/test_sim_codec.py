"""The wire codec: framing, partial reads, coalesced frames, the handshake pieces."""

from __future__ import annotations

import struct

import pytest

from desk.sim.codec import (
    API_PREFIX,
    FrameDecoder,
    ProtocolError,
    encode_fields,
    frame,
    parse_version_range,
)


def test_encode_fields_is_length_prefixed_and_nul_terminated() -> None:
    data = encode_fields((1, 6, 12, "SPY", None, True, False, 1.5))
    (n,) = struct.unpack(">I", data[:4])
    assert n == len(data) - 4
    assert data[4:] == b"1\x006\x0012\x00SPY\x00\x001\x000\x001.5\x00"


def test_frame_prefixes_length() -> None:
    assert frame(b"abc\0") == b"\x00\x00\x00\x04abc\x00"


def _stream() -> tuple[bytes, list[list[str]]]:
    msgs = [["v157..178"], ["71", "2", "1", ""], ["49", "1"], ["9", "8", "3", "Ünï"]]
    return API_PREFIX + b"".join(encode_fields(m) for m in msgs), msgs


def test_decoder_byte_by_byte() -> None:
    data, msgs = _stream()
    dec = FrameDecoder()
    got = []
    for i in range(len(data)):
        got += dec.feed(data[i : i + 1])
    assert got == msgs
    assert dec.pending == 0


def test_decoder_everything_in_one_read() -> None:
    data, msgs = _stream()
    assert FrameDecoder().feed(data) == msgs


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 7, 8, 13, 20])
def test_decoder_split_anywhere(cut: int) -> None:
    data, msgs = _stream()
    dec = FrameDecoder()
    assert dec.feed(data[:cut]) + dec.feed(data[cut:]) == msgs


def test_decoder_keeps_partial_frame() -> None:
    dec = FrameDecoder(expect_prefix=False)
    data = encode_fields(("1", "2")) + encode_fields(("3",))
    assert dec.feed(data[:-2]) == [["1", "2"]]
    assert dec.pending == len(encode_fields(("3",))) - 2
    assert dec.feed(data[-2:]) == [["3"]]


def test_decoder_empty_fields_survive() -> None:
    dec = FrameDecoder(expect_prefix=False)
    assert dec.feed(encode_fields(("4", "", "", ""))) == [["4", "", "", ""]]


def test_decoder_rejects_bad_prefix() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\n")


def test_decoder_rejects_bad_prefix_early() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"AP") == []
    with pytest.raises(ProtocolError):
        dec.feed(b"X")


def test_decoder_rejects_oversized_frame() -> None:
    dec = FrameDecoder(expect_prefix=False, max_frame=100)
    with pytest.raises(ProtocolError):
        dec.feed(struct.pack(">I", 101) + b"x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v157..178", (157, 178, "")),
        ("v100..176 +PACEAPI", (100, 176, "+PACEAPI")),
        ("v176", (176, 176, "")),
    ],
)
def test_parse_version_range(text: str, expected: tuple[int, int, str]) -> None:
    assert parse_version_range(text) == expected


@pytest.mark.parametrize("text", ["", "157..178", "v178..157", "vX..Y"])
def test_parse_version_range_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_version_range(text)
