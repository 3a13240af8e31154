"""Engine API serialisation: msgspec msgpack structs against the stdlib baseline, same run.

Why :mod:`desk.engine.api` uses msgspec: a view decodes a quote delta 4-20 times a second
per engine, and the order replies are nested. This measures, on the messages the engine
really sends (a QuoteRows of N watchlist rows, a PreviewReport with its 13 checks), the
time to encode and to decode-and-validate one message:

- msgspec: ``encode_frame`` / ``decode_reply`` (typed structs, validated while decoding);
- baseline: the same content as dataclasses, ``json.dumps(dataclasses.asdict(...))`` and
  ``json.loads`` then rebuilding the dataclasses (no validation: the baseline is generous;
  ``asdict`` dominates its encode time, as it does in code that uses it).

Prints microseconds per message and bytes per message, and the ratio baseline/msgspec.

    .venv/bin/python bench/engine_api.py [--rows 100] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time

import msgspec

from desk.engine import api


@dataclasses.dataclass
class JRow:
    con_id: int
    symbol: str
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    volume: float
    close: float
    time: float
    seq: int


@dataclasses.dataclass
class JRows:
    id: int
    full: bool
    rows: list[JRow]


def quote_rows(n: int) -> api.QuoteRows:
    rows = [
        api.QuoteRow(
            265598 + i,
            f"S{i:03d}",
            100.0 + i * 0.01,
            100.02 + i * 0.01,
            100.01 + i * 0.01,
            300.0,
            500.0,
            1.2e6 + i,
            99.5,
            1.78e9 + i * 0.001,
            1000 + i,
        )
        for i in range(n)
    ]
    return api.QuoteRows(7, False, rows)


def preview() -> api.PreviewReport:
    checks = [api.CheckRow(f"check_{i}", True, 1.0 * i, 10.0 * i, f"value {i} <= limit {10 * i}") for i in range(13)]
    wi = api.WhatIf(*([1234.5] * 12))
    return api.PreviewReport(
        id=3,
        order="BUY 2 SPY LMT 500 DAY",
        is_combo=False,
        checks=checks,
        gate_allowed=True,
        gate_reason="sim mode",
        price=500.0,
        bid=598.71,
        ask=598.72,
        legs=[],
        notional=1000.0,
        commission=1.0,
        whatif=wi,
        funds_before=1e6,
        cost=402.28,
        cost_basis="IB what-if",
        funds_after=999597.72,
        blocked=False,
    )


def per_call(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2000)
    a = ap.parse_args()

    msg = quote_rows(a.rows)
    frame = api.encode_frame(msg)
    jmsg = JRows(msg.id, msg.full, [JRow(*(getattr(r, f) for f in r.__struct_fields__)) for r in msg.rows])
    jtext = json.dumps(dataclasses.asdict(jmsg)).encode()

    def j_decode() -> JRows:
        d = json.loads(jtext)
        return JRows(d["id"], d["full"], [JRow(**r) for r in d["rows"]])

    assert api.decode_reply(frame[4:]) == msg and j_decode() == jmsg
    print(f"QuoteRows of {a.rows} rows   bytes: msgspec {len(frame)}  json {len(jtext)}")
    enc_m = per_call(lambda: api.encode_frame(msg), a.repeat)
    enc_j = per_call(lambda: json.dumps(dataclasses.asdict(jmsg)).encode(), a.repeat)
    dec_m = per_call(lambda: api.decode_reply(frame[4:]), a.repeat)
    dec_j = per_call(j_decode, a.repeat)
    print(f"  encode  msgspec {enc_m:8.1f} us   json+dataclasses {enc_j:8.1f} us   ratio {enc_j / enc_m:5.1f}x")
    print(f"  decode  msgspec {dec_m:8.1f} us   json+dataclasses {dec_j:8.1f} us   ratio {dec_j / dec_m:5.1f}x")

    p = preview()
    pframe = api.encode_frame(p)
    ptext = json.dumps(msgspec_to_builtins(p)).encode()
    enc_m = per_call(lambda: api.encode_frame(p), a.repeat)
    enc_j = per_call(lambda: json.dumps(msgspec_to_builtins(p)).encode(), a.repeat)
    dec_m = per_call(lambda: api.decode_reply(pframe[4:]), a.repeat)
    dec_j = per_call(lambda: json.loads(ptext), a.repeat)
    print(f"PreviewReport (13 checks)   bytes: msgspec {len(pframe)}  json {len(ptext)}")
    print(f"  encode  msgspec {enc_m:8.1f} us   json {enc_j:8.1f} us   ratio {enc_j / enc_m:5.1f}x")
    print(f"  decode  msgspec {dec_m:8.1f} us   json (dicts only, no types) {dec_j:8.1f} us   ratio {dec_j / dec_m:5.1f}x")


def msgspec_to_builtins(m: msgspec.Struct) -> object:
    return msgspec.to_builtins(m)


if __name__ == "__main__":
    main()
