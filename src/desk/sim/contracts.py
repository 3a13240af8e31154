"""Contracts in requests: parsing the wire fields and resolving them against the universe.

A request's contract arrives as the 12 fields ib_async writes for a ``Contract``
(``client.py``: conId, symbol, secType, lastTradeDateOrContractMonth, strike, right,
multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass).

Resolution follows what IB does for stocks: a conId identifies the contract by itself
(other non-empty fields must agree); otherwise the symbol (or an ISIN via
secIdType/secId) together with optional secType ``STK``, currency ``USD``, an exchange
that the stock trades on (``SMART`` when empty), the primary exchange and the trading
class. Anything that does not resolve gets IB error 200 from the session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from desk.sim.messages import VALID_EXCHANGES, trading_class
from desk.sim.universe import SimStock, by_con_id, by_isin, lookup

__all__ = ["ContractQuery", "resolve"]

_EXCHANGES = frozenset(VALID_EXCHANGES.split(","))
#: How many fields a contract takes on the wire.
CONTRACT_FIELDS = 12


def _to_int(text: str) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return int(float(text))


def _to_float(text: str) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """A contract as a request carries it (strings as sent; ``strike`` in dollars)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    sec_id_type: str = ""
    sec_id: str = ""

    @classmethod
    def from_fields(cls, fields: list[str], start: int) -> ContractQuery:
        """Read the 12 contract fields starting at ``fields[start]``; ``IndexError`` if
        the message is too short, ``ValueError`` if conId is not a number."""
        f = fields[start : start + CONTRACT_FIELDS]
        if len(f) < CONTRACT_FIELDS:
            raise IndexError(f"contract needs {CONTRACT_FIELDS} fields, got {len(f)}")
        return cls(
            con_id=_to_int(f[0]),
            symbol=f[1].strip(),
            sec_type=f[2].strip().upper(),
            last_trade_date=f[3],
            strike=_to_float(f[4]),
            right=f[5].strip(),
            multiplier=f[6].strip(),
            exchange=f[7].strip().upper(),
            primary_exchange=f[8].strip().upper(),
            currency=f[9].strip().upper(),
            local_symbol=f[10].strip(),
            trading_class=f[11].strip(),
        )

    def with_sec_id(self, sec_id_type: str, sec_id: str) -> ContractQuery:
        """A copy with the secIdType / secId of the request (e.g. ``ISIN``)."""
        return replace(self, sec_id_type=sec_id_type.strip().upper(), sec_id=sec_id.strip())

    def describe(self) -> str:
        """Short text for log lines: ``SPY STK SMART USD conId=0``."""
        return f"{self.symbol or '?'} {self.sec_type or '-'} {self.exchange or '-'} {self.currency or '-'} conId={self.con_id}"


def resolve(q: ContractQuery) -> tuple[SimStock, str] | None:
    """The stock ``q`` designates and the exchange to report (``SMART`` when the query
    leaves it empty), or ``None`` if nothing in the universe matches (IB error 200)."""
    if q.sec_type not in ("", "STK"):
        return None
    if q.currency not in ("", "USD"):
        return None
    if q.last_trade_date or q.strike or q.right not in ("", "?", "0"):
        return None
    stock: SimStock | None
    if q.con_id:
        stock = by_con_id(q.con_id)
    elif q.symbol:
        stock = lookup(q.symbol)
    elif q.sec_id_type == "ISIN" and q.sec_id:
        stock = by_isin(q.sec_id)
    elif q.local_symbol:
        stock = lookup(q.local_symbol)
    else:
        return None
    if stock is None:
        return None
    if q.symbol and q.symbol.upper() != stock.symbol:
        return None
    if q.local_symbol and q.local_symbol.upper() != stock.symbol:
        return None
    if q.primary_exchange and q.primary_exchange != stock.primary_exchange:
        return None
    if q.trading_class and q.trading_class != trading_class(stock):
        return None
    if q.sec_id_type == "ISIN" and q.sec_id and q.sec_id.upper() != stock.isin:
        return None
    exchange = q.exchange or "SMART"
    if exchange not in _EXCHANGES:
        return None
    return stock, exchange
