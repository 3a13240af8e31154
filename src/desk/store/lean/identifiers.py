"""LEAN identifiers: price units, OCC option symbols, desk's deterministic conIds, and
LEAN's option member file names.

Options get a deterministic conId from their OCC symbol (:func:`option_con_id`); stocks
take the conId the importer is given (desk passes the simulator's universe, so GOOG keeps
IB's 208813720) or a deterministic one (:func:`stock_con_id`).
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

__all__ = [
    "OPTION_MULTIPLIER",
    "PRICE_SCALE",
    "OptionKey",
    "occ_symbol",
    "option_con_id",
    "parse_option_member",
    "stock_con_id",
]

#: LEAN equity/option prices are integers of 1/PRICE_SCALE dollar (deci-cents).
PRICE_SCALE = 10_000
#: US equity option multiplier (shares per contract).
OPTION_MULTIPLIER = 100

_OPTION_MEMBER_RE = re.compile(
    r"^(?P<date>\d{8})_(?P<sym>[a-z0-9.]+)_(?P<res>minute|second|hour|daily)_"
    r"(?P<type>quote|trade|openinterest)_(?P<style>american|european)_"
    r"(?P<right>call|put)_(?P<strike>\d+)_(?P<expiry>\d{8})\.csv$",
    re.IGNORECASE,
)


def occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """The OCC option symbol IB reports as an option's ``localSymbol``:
    ``GOOG  160115C00750000`` (root padded to 6, expiry YYMMDD, C/P, strike x 1000 in 8
    digits). ``expiry`` is ``YYYYMMDD``, ``right`` ``C`` or ``P``, ``strike`` dollars."""
    return f"{symbol.upper():<6}{expiry[2:]}{right.upper()}{round(strike * 1000):08d}"


def _hash_con_id(text: str, base: int, span: int) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return base + int.from_bytes(digest, "big") % span


def option_con_id(symbol: str, expiry: str, right: str, strike: float) -> int:
    """Deterministic conId of a replayed option: 1,000,000,000 + a 64-bit BLAKE2b hash of
    its OCC symbol modulo 10^9 (always a positive 32-bit integer, as IB's are, and the same
    on every machine). Real IB conIds of options differ; desk only needs them stable."""
    return _hash_con_id("OPT " + occ_symbol(symbol, expiry, right, strike), 1_000_000_000, 1_000_000_000)


def stock_con_id(symbol: str) -> int:
    """Deterministic conId of an imported stock that the caller gave no conId for:
    100,000,000 + a BLAKE2b hash of the symbol modulo 8 x 10^8 (below the options' range)."""
    return _hash_con_id("STK " + symbol.upper(), 100_000_000, 800_000_000)


class OptionKey(NamedTuple):
    """An option contract named by a LEAN member file: ``right`` ``C``/``P``, ``strike``
    dollars per share, ``expiry`` ``YYYYMMDD``."""

    symbol: str
    right: str
    strike: float
    expiry: str


def parse_option_member(name: str) -> tuple[str, str, OptionKey]:
    """Parse a LEAN option member name into ``(date YYYYMMDD, type, OptionKey)``, e.g.
    ``20151224_goog_minute_quote_american_call_7500000_20160115.csv`` ->
    ``("20151224", "quote", OptionKey("GOOG", "C", 750.0, "20160115"))``.
    ``ValueError`` if the name does not follow LEAN's pattern."""
    m = _OPTION_MEMBER_RE.match(name.rsplit("/", 1)[-1])
    if not m:
        raise ValueError(f"not a LEAN option file name: {name!r}")
    strike = int(m["strike"]) / PRICE_SCALE
    key = OptionKey(m["sym"].upper(), "C" if m["right"].lower() == "call" else "P", strike, m["expiry"])
    return m["date"], m["type"].lower(), key
