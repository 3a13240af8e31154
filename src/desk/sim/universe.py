"""The simulator's instruments: liquid US stocks and ETFs with realistic static data.

Each :class:`SimStock` carries what IB's contract details report for it (conId, primary
exchange, long name, min tick, ISIN) plus the parameters the synthetic market model uses
(reference price, volatility, spread, displayed size, volume, trade rate).

Units: prices in dollars per share; sizes and volumes in shares; ``annual_vol`` is the
annualised volatility of log returns (0.15 = 15 %/yr); rates are events per second.

conIds and ISINs are the real IB / ISO values for these listings as far as known; the
reference prices are plausible late-2026 levels, not market data. Lookups are
case-insensitive::

    >>> lookup("spy").con_id
    756733
    >>> by_con_id(265598).symbol
    'AAPL'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from desk.domain.models import Instrument

__all__ = [
    "UNIVERSE",
    "SimStock",
    "by_con_id",
    "by_isin",
    "lookup",
    "symbols",
]


@dataclass(frozen=True, slots=True)
class SimStock:
    """A stock or ETF the simulator quotes and trades (IB secType ``STK``, currency USD).

    Static data (as IB's contractDetails reports it):

    * ``symbol``, ``con_id`` (IB conId), ``primary_exchange`` (``ARCA``, ``NASDAQ``,
      ``NYSE``), ``long_name`` (ASCII: ib_async unicode-escapes it), ``stock_type``
      (``ETF`` or ``COMMON``), ``isin``, ``industry`` / ``category`` / ``subcategory``;
    * ``min_tick``: price increment in dollars (0.01 for US stocks above $1).

    Market model parameters:

    * ``price``: reference price, dollars per share; the model uses it as the previous
      session's close (IB tick type 9);
    * ``annual_vol``: annualised volatility of log returns;
    * ``spread_ticks``: typical quoted spread in ticks (>= 1);
    * ``display_size``: typical displayed size at the top of book, shares;
    * ``daily_volume``: typical full-day volume, shares;
    * ``trade_rate``: trade prints per second (before IB's ~250 ms aggregation);
    * ``quote_rate``: top-of-book changes per second (before aggregation).

    Borrow: ``easy_to_borrow`` False marks a hard-to-borrow stock: the simulator rejects
    short sales of it (error 201) and reports it not shortable (generic tick 236).
    """

    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str
    stock_type: str
    isin: str
    industry: str
    category: str
    subcategory: str
    price: float
    annual_vol: float
    spread_ticks: int
    display_size: int
    daily_volume: int
    trade_rate: float
    quote_rate: float
    min_tick: float = 0.01
    currency: str = "USD"
    sec_type: str = "STK"
    easy_to_borrow: bool = True

    @property
    def decimals(self) -> int:
        """Number of decimals of a price on this stock's tick grid (2 for 0.01)."""
        text = f"{self.min_tick:.10f}".rstrip("0")
        return len(text.split(".")[1]) if "." in text else 0

    def to_instrument(self) -> Instrument:
        """This stock as the desk's domain :class:`~desk.domain.models.Instrument`
        (exchange ``SMART``, as qualified through the gateway)."""
        return Instrument(
            symbol=self.symbol,
            sec_type=self.sec_type,
            exchange="SMART",
            currency=self.currency,
            con_id=self.con_id,
            primary_exchange=self.primary_exchange,
            local_symbol=self.symbol,
            min_tick=self.min_tick,
            long_name=self.long_name,
        )


def _etf(symbol, con_id, primary, name, isin, sub, price, vol, spread, size, volume, trades, quotes) -> SimStock:
    return SimStock(
        symbol, con_id, primary, name, "ETF", isin, "Funds", "Equity Fund", sub, price, vol, spread, size, volume, trades, quotes
    )


def _stk(
    symbol, con_id, primary, name, isin, industry, category, sub, price, vol, spread, size, volume, trades, quotes
) -> SimStock:
    return SimStock(
        symbol, con_id, primary, name, "COMMON", isin, industry, category, sub, price, vol, spread, size, volume, trades, quotes
    )


# fmt: off
_STOCKS: tuple[SimStock, ...] = (
    #    symbol  conId      primary   long name                               ISIN           subcategory
    _etf("SPY",  756733,    "ARCA",   "SPDR S&P 500 ETF TRUST",                "US78462F1030", "Growth&Income-Large Cap",
         600.00, 0.15, 1, 1500, 60_000_000, 12.0, 10.0),
    _etf("QQQ",  320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1",            "US46090E1038", "Growth-Large Cap",
         520.00, 0.20, 1, 800, 40_000_000, 10.0, 9.0),
    _etf("IWM",  9579970,   "ARCA",   "ISHARES RUSSELL 2000 ETF",              "US4642876555", "Small Cap",
         230.00, 0.22, 1, 1200, 30_000_000, 8.0, 8.0),
    _etf("DIA",  73128548,  "ARCA",   "SPDR DJ INDUSTRIAL AVERAGE ETF TRUST",  "US2527871065", "Growth&Income-Large Cap",
         440.00, 0.14, 2, 300, 3_000_000, 2.0, 5.0),
    _etf("XLF",  4215235,   "ARCA",   "FINANCIAL SELECT SECTOR SPDR FUND",     "US81369Y6059", "Sector Fund-Financial",
         50.00, 0.18, 1, 8000, 40_000_000, 6.0, 5.0),
    #    symbol  conId      primary   long name                               ISIN           industry / category / subcategory
    _stk("AAPL", 265598,    "NASDAQ", "APPLE INC",                             "US0378331005", "Technology", "Computers", "Computers",
         230.00, 0.28, 1, 300, 50_000_000, 10.0, 9.0),
    _stk("MSFT", 272093,    "NASDAQ", "MICROSOFT CORP",                        "US5949181045", "Technology", "Software", "Software",
         430.00, 0.25, 2, 200, 20_000_000, 8.0, 8.0),
    _stk("NVDA", 4815747,   "NASDAQ", "NVIDIA CORP",                           "US67066G1040", "Technology", "Semiconductors", "Electronic Compo-Semicon",
         140.00, 0.50, 1, 800, 200_000_000, 14.0, 10.0),
    _stk("AMZN", 3691937,   "NASDAQ", "AMAZON.COM INC",                        "US0231351067", "Communications", "Internet", "E-Commerce/Products",
         200.00, 0.32, 1, 300, 40_000_000, 9.0, 8.0),
    _stk("GOOG", 208813720, "NASDAQ", "ALPHABET INC-CL C",                     "US02079K1079", "Communications", "Internet", "Web Portals/ISP",
         175.00, 0.30, 1, 300, 20_000_000, 8.0, 8.0),
    _stk("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A",            "US30303M1027", "Communications", "Internet", "Internet Content-Entmnt",
         580.00, 0.38, 3, 100, 12_000_000, 7.0, 7.0),
    _stk("TSLA", 76792991,  "NASDAQ", "TESLA INC",                             "US88160R1014", "Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks",
         330.00, 0.60, 3, 200, 90_000_000, 14.0, 10.0),
    _stk("AMD",  4391,      "NASDAQ", "ADVANCED MICRO DEVICES",                "US0079031078", "Technology", "Semiconductors", "Electronic Compo-Semicon",
         150.00, 0.50, 1, 300, 40_000_000, 9.0, 8.0),
    _stk("JPM",  1520593,   "NYSE",   "JPMORGAN CHASE & CO",                   "US46625H1005", "Financial", "Banks", "Money Center Banks",
         300.00, 0.22, 2, 200, 9_000_000, 5.0, 6.0),
    # hard to borrow: short sales are rejected
    replace(_stk("GME", 36285627, "NYSE", "GAMESTOP CORP-CLASS A",            "US36467W1099", "Consumer, Cyclical", "Retail", "Retail-Computer Equipment",
                 25.00, 0.65, 1, 500, 8_000_000, 6.0, 6.0), easy_to_borrow=False),
)
# fmt: on

#: Every simulated instrument by symbol (read-only mapping, in a stable display order).
UNIVERSE: Mapping[str, SimStock] = MappingProxyType({s.symbol: s for s in _STOCKS})

_BY_CON_ID: dict[int, SimStock] = {s.con_id: s for s in _STOCKS}
_BY_ISIN: dict[str, SimStock] = {s.isin: s for s in _STOCKS}


def symbols() -> list[str]:
    """All symbols of the universe, in display order (ETFs first)."""
    return list(UNIVERSE)


def lookup(symbol: str) -> SimStock | None:
    """The stock with this symbol (case-insensitive), or ``None`` if it is not simulated."""
    return UNIVERSE.get(symbol.strip().upper())


def by_con_id(con_id: int) -> SimStock | None:
    """The stock with this IB conId, or ``None``."""
    return _BY_CON_ID.get(con_id)


def by_isin(isin: str) -> SimStock | None:
    """The stock with this ISIN (case-insensitive), or ``None``."""
    return _BY_ISIN.get(isin.strip().upper())
