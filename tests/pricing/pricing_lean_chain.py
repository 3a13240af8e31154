"""Read the real GOOG option chain of 2015-12-24 (LEAN minute quote bars) at one minute.

The data is the packaged sample (src/desk/data/lean, see its NOTICE.md) or ``DESK_LEAN_DIR``
(tests/lean_data.py). Prices in the files are
integers in 1/10,000 dollar; times are ms since midnight America/New_York.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np

DAY = "20151224"
_NAME = re.compile(r"^\d{8}_goog_minute_quote_american_(call|put)_(\d+)_(\d{8})\.csv$")


from lean_data import lean_dir  # noqa: E402  (one rule for where LEAN data is)


@dataclass
class Chain:
    """One snapshot: arrays of one length per option, plus the underlying mid."""

    is_call: np.ndarray
    strike: np.ndarray
    expiry: list[str]
    bid: np.ndarray
    ask: np.ndarray
    spot: float


def _last_at_or_before(rows: list[list[str]], ms: int) -> tuple[float, float]:
    bid = ask = np.nan
    for row in rows:
        if int(row[0]) > ms:
            break
        # an empty side means no quote during that minute: keep the last one seen (fill forward)
        if row[4]:
            bid = int(row[4]) / 10_000
        if row[9]:
            ask = int(row[9]) / 10_000
    return bid, ask


def load_chain(ms_since_midnight: int) -> Chain:
    """Latest bid_close/ask_close of every GOOG option and the GOOG mid at the given minute."""
    base = lean_dir()
    with zipfile.ZipFile(base / "equity/usa/minute/goog" / f"{DAY}_quote.zip") as zf:
        rows = list(csv.reader(io.TextIOWrapper(zf.open(zf.namelist()[0]), "ascii")))
    sb, sa = _last_at_or_before(rows, ms_since_midnight)
    calls, strikes, expiries, bids, asks = [], [], [], [], []
    with zipfile.ZipFile(base / "option/usa/minute/goog" / f"{DAY}_quote_american.zip") as zf:
        for name in zf.namelist():
            match = _NAME.match(name)
            if not match:
                continue
            rows = list(csv.reader(io.TextIOWrapper(zf.open(name), "ascii")))
            bid, ask = _last_at_or_before(rows, ms_since_midnight)
            calls.append(match[1] == "call")
            strikes.append(int(match[2]) / 10_000)
            expiries.append(match[3])
            bids.append(bid)
            asks.append(ask)
    return Chain(np.array(calls), np.array(strikes), expiries, np.array(bids), np.array(asks), 0.5 * (sb + sa))
