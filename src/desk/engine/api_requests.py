"""The engine API's requests (view -> engine), version :data:`desk.engine.api.API_VERSION`.

The conversation, framing and units are :mod:`desk.engine.api`'s docstring; this module
holds the base of every message (:class:`Message`), the order terms `desk order` parses
and the ticket fills in, and the requests a view may send (the :data:`Request` union).
:mod:`desk.engine.api` re-exports all of them; import them from there.

Units: prices dollars per share (a combo's net per unit), sizes shares or contracts,
times UTC epoch seconds, money dollars.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from desk.domain.intent import MarginImpact, OrderIntent
from desk.domain.models import Instrument


class Message(msgspec.Struct, tag_field="t", tag=str.lower, forbid_unknown_fields=False):
    """Base of every engine API message: msgpack-encoded, tagged in the field ``t`` by
    its class name in lower case (``{"t": "hello", ...}``); unknown fields are ignored
    so that a newer peer's additions do not break an older one."""


# --- order terms (what `desk order` parses and the ticket fills in) ---------------------


class ContractTerms(msgspec.Struct, frozen=True):
    """A contract by its terms: a stock (``expiry`` empty) or an option (``expiry``
    ``YYYYMMDD``, ``strike`` dollars per share, ``right`` ``C`` / ``P``)."""

    symbol: str
    expiry: str = ""
    strike: float = 0.0
    right: str = ""

    @property
    def is_option(self) -> bool:
        return bool(self.expiry)


class LegTerms(msgspec.Struct, frozen=True):
    """One combo leg: ``action`` BUY / SELL, ``ratio`` > 0, the contract (a stock leg is
    the combo's underlying)."""

    action: str
    ratio: int
    contract: ContractTerms


class OrderTerms(msgspec.Struct, frozen=True):
    """An order as a trader states it: ``order_type`` LMT / MKT / STP / STP LMT,
    ``limit_price`` / ``stop_price`` dollars per share (a combo's net per unit), ``tif``
    DAY / GTC / IOC; a combo has ``legs`` and its ``contract`` is the underlying."""

    action: str
    quantity: int
    contract: ContractTerms
    order_type: str
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "DAY"
    legs: tuple[LegTerms, ...] = ()
    outside_rth: bool = False


# --- requests (view -> engine) -----------------------------------------------------------


class Hello(Message):
    """First message of a view: its API version, a name for the engine's log and, over
    loopback TCP, the engine's ``token`` (the Unix socket's file mode is its access
    control; a TCP port has none, so the engine asks for a secret only its user can read)."""

    version: int
    client: str = ""
    token: str = ""


class Preview(Message):
    """Every pre-trade check of ``terms`` without sending it (answer :class:`PreviewReport`).
    ``wait``: seconds the engine may wait for quotes of the instruments."""

    id: int
    terms: OrderTerms
    confirmation: str | None = None
    wait: float = 5.0


class Place(Message):
    """Send ``terms`` through the gate and every check (answer :class:`PlaceReport`).
    ``confirmation``: the symbol typed to confirm a live order."""

    id: int
    terms: OrderTerms
    confirmation: str | None = None
    wait: float = 5.0


class ListOrders(Message):
    """The day's orders at the gateway with the audit log's states (answer :class:`OrderList`)."""

    id: int


class Cancel(Message):
    """Cancel one working order by orderRef (answer :class:`CancelReport`)."""

    id: int
    order_ref: str
    wait: float = 5.0


class WatchQuotes(Message):
    """Stream the watchlist's quotes: a full :class:`QuoteRows`, then the changed rows
    every ``1 / rate_hz`` seconds (clamped to 4-20 Hz). A second WatchQuotes changes the
    rate. ``rate_hz = 0`` stops the stream."""

    id: int
    rate_hz: float = 10.0


#: What a :class:`KillSwitch` request does.
KillAction = Literal["state", "halt", "reduce_only", "reset"]


class KillSwitch(Message):
    """Engage (``halt``), restrict (``reduce_only``) or release (``reset``) the kill
    switch (answer :class:`KillSwitchReport`); ``state`` only reads it."""

    id: int
    action: KillAction
    reason: str = ""


class WatchDesk(Message):
    """Stream what the terminal view shows: a full :class:`DeskState`, then every
    ``1 / rate_hz`` seconds (clamped to 4-20 Hz) a :class:`DeskState` with only what
    changed. A second WatchDesk changes the rate; ``rate_hz = 0`` stops the stream."""

    id: int
    rate_hz: float = 10.0


class AddSymbol(Message):
    """Qualify ``symbol`` (a stock or ETF) and add it to the watchlist (answer
    :class:`SymbolReport`; ``refused`` with the gateway's reason when unknown)."""

    id: int
    symbol: str


class RemoveSymbol(Message):
    """Remove ``symbol`` from the watchlist (answer :class:`SymbolReport`)."""

    id: int
    symbol: str


class Modify(Message):
    """Change a working order of this desk by orderRef: its limit / stop price (dollars
    per share, net per combo unit) and / or total quantity, through the gate and every
    check (answer :class:`PlaceReport`). ``None``: unchanged."""

    id: int
    order_ref: str
    limit_price: float | None = None
    stop_price: float | None = None
    quantity: int | None = None


class CancelAll(Message):
    """Cancel every working order of this desk (answer :class:`CancelAllReport`)."""

    id: int


class WatchChain(Message):
    """Stream the engine's option chain: a full :class:`ChainState`, then what changed
    every ``1 / rate_hz`` seconds (4-20 Hz); ``rate_hz = 0`` stops. The chain (its
    underlying, expiry and strike window) is the engine's, shared by its views: it holds
    market data lines, of which IB allows only so many."""

    id: int
    rate_hz: float = 10.0


class ChainSelect(Message):
    """Show the chain of ``underlying`` (a stock or ETF; answer :class:`ChainReport`,
    ``refused`` with the reason when nothing is listed)."""

    id: int
    underlying: Instrument


class ChainExpiry(Message):
    """Show the expiry ``expiry`` (``YYYYMMDD``) of the chain (answer :class:`ChainReport`)."""

    id: int
    expiry: str


class ChainWindow(Message):
    """One step wider (``wider``) or narrower strike window (answer :class:`ChainReport`)."""

    id: int
    wider: bool


class WatchOpportunities(Message):
    """Stream the engine's live arbitrage opportunities (the chain on screen, scanned by
    the engine): an :class:`OpportunityState` now and whenever the list changed, checked
    every ``1 / rate_hz`` seconds (4-20 Hz); ``rate_hz = 0`` stops."""

    id: int
    rate_hz: float = 4.0


class PreviewIntent(Message):
    """The order ticket's risk preview of ``intent`` (every pre-trade check, the market,
    funds, the payoff at expiry) with IB's what-if ``margin`` when the ticket has it
    (answer :class:`IntentPreview`)."""

    id: int
    intent: OrderIntent
    margin: MarginImpact | None = None


class WhatIfIntent(Message):
    """IB's what-if margin of ``intent`` (answer :class:`WhatIfReport`)."""

    id: int
    intent: OrderIntent


class PlaceIntent(Message):
    """Send the ticket's ``intent`` through the gate and every check (answer
    :class:`PlaceReport`); ``confirmation`` the symbol typed in live mode, ``margin`` the
    what-if the ticket showed."""

    id: int
    intent: OrderIntent
    confirmation: str | None = None
    margin: MarginImpact | None = None


Request = (
    Hello
    | Preview
    | Place
    | ListOrders
    | Cancel
    | WatchQuotes
    | KillSwitch
    | WatchDesk
    | AddSymbol
    | RemoveSymbol
    | Modify
    | CancelAll
    | WatchChain
    | ChainSelect
    | ChainExpiry
    | ChainWindow
    | WatchOpportunities
    | PreviewIntent
    | WhatIfIntent
    | PlaceIntent
)
