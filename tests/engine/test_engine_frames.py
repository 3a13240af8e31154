"""The engine API's framing and message types, without an engine."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.engine import api
from desk.order_command import parse_terms

_rows = st.lists(
    st.builds(
        api.QuoteRow,
        st.integers(1, 2**31),
        st.text(min_size=1, max_size=6),
        *[st.floats(allow_nan=True, allow_infinity=False)] * 8,
        st.integers(-1, 2**40),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.builds(api.QuoteRows, st.integers(0, 2**31), st.booleans(), _rows), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 4000), max_size=40),
)
def test_any_chunking_of_the_stream_gives_back_the_same_messages(messages, cuts) -> None:
    stream = b"".join(api.encode_frame(m) for m in messages)
    reader, out, pos = api.FrameReader(), [], 0
    for n in cuts:
        out += reader.feed(stream[pos : pos + n])
        pos += n
    out += reader.feed(stream[pos:])
    decoded = [api.decode_reply(b) for b in out]
    assert len(decoded) == len(messages)
    for got, want in zip(decoded, messages):
        # byte for byte: every float (NaN included: "no value") survives exactly
        assert msgspec.msgpack.encode(got) == msgspec.msgpack.encode(want)


def test_order_terms_round_trip_and_bad_messages_name_the_field() -> None:
    terms = parse_terms("BUY 1 SPY LMT 599.50".split(), ["BUY 100 STK", "SELL 1 20261218 600 C", "BUY 1 20261218 600 P"])
    msg = api.Place(5, terms, "SPY", 2.0)
    assert api.decode_request(api.encode_frame(msg)[4:]) == msg
    with pytest.raises(api.ApiError, match=r"quantity"):
        api.decode_request(
            msgspec.msgpack.encode(
                {
                    "t": "preview",
                    "id": 1,
                    "terms": {"action": "BUY", "quantity": "ten", "contract": {"symbol": "SPY"}, "order_type": "MKT"},
                }
            )
        )
    with pytest.raises(api.ApiError, match="malformed message"):
        api.decode_request(b"\xc1not msgpack")
    too_big = (api.MAX_FRAME + 1).to_bytes(4, "big")
    with pytest.raises(api.ApiError, match="exceeds the limit"):
        api.FrameReader().feed(too_big)
