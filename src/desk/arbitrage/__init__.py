"""desk.arbitrage: vectorized no-arbitrage scanners over an option chain, net of costs.

No Textual, no IB: the input is a :class:`ChainSnapshot` (numpy arrays on an expiry x
strike grid), the output :class:`~desk.domain.opportunity.Opportunity` objects. Formulas
and their sources are documented in :mod:`desk.arbitrage.scanners`.

Typical use::

    scanner = ChainScanner(Carry(rate=0.045, borrow_rate=0.0025), Costs())
    book = OpportunityBook()
    update = book.update(snapshot.symbol, scanner.scan(snapshot), snapshot.now)
"""

from desk.arbitrage.book import BookUpdate, OpportunityBook
from desk.arbitrage.chain import (
    Carry,
    ChainSnapshot,
    Costs,
    Dividend,
    carry_from_settings,
    costs_from_settings,
    dividend_pv,
)
from desk.arbitrage.scanner import ChainScanner, changed_cells
from desk.arbitrage.scanners import (
    ALL_SCANNERS,
    AMERICAN,
    EUROPEAN,
    scan_boxes,
    scan_butterflies,
    scan_calendars,
    scan_chain,
    scan_parity,
    scan_verticals,
)
from desk.domain.opportunity import Leg, LegAction, Opportunity, OpportunityKind, RiskFlag

__all__ = [
    "ALL_SCANNERS",
    "AMERICAN",
    "EUROPEAN",
    "BookUpdate",
    "Carry",
    "ChainScanner",
    "ChainSnapshot",
    "Costs",
    "Dividend",
    "Leg",
    "LegAction",
    "Opportunity",
    "OpportunityBook",
    "OpportunityKind",
    "RiskFlag",
    "carry_from_settings",
    "changed_cells",
    "costs_from_settings",
    "dividend_pv",
    "scan_boxes",
    "scan_butterflies",
    "scan_calendars",
    "scan_chain",
    "scan_parity",
    "scan_verticals",
]
