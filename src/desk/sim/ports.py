"""The narrow interfaces between the simulated gateway, its sessions and its services.

:class:`~desk.sim.gateway.SimGateway` is the composition root of the simulator: it owns
the market model, the sessions (one per socket, :mod:`desk.sim.session`) and the services
that answer requests — options (:mod:`desk.sim.options`), history
(:mod:`desk.sim.history`), orders (:mod:`desk.sim.matching` with
:mod:`desk.sim.order_types` and :mod:`desk.sim.exercise`) and faults
(:mod:`desk.sim.faults`). The services never import the gateway, the session or each
other's modules back: they are written against the protocols here, which say exactly what
each one uses of the others. The dependency graph is therefore a tree rooted at the
gateway, with this module (and the data modules it names) as leaves.

- :class:`Client` — one connected API client as a service sees it: its outbox
  (:meth:`Client.send` for replies, ``out`` for the step's tick frames), its negotiated
  version, client id and market data type, and its stock lines.
- :class:`Host` — what services use of the gateway: clock, market, accounts, the order-id
  counters, quotes and contracts by conId, line (un)registration, and the other services
  through :class:`OptionsPort`, :class:`HistoryPort`, :class:`OrdersPort` and
  :class:`FaultsPort`.
- :class:`OrderBook` — what the order-type rules and exercises use of the order engine.

It also holds the records those interfaces pass around: :class:`Subscription` (a stock
line) and :class:`OptionLine` (an option line), :class:`SimQuote` and :data:`Quote5`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import NamedTuple, Protocol

from desk.domain.clock import Clock
from desk.sim.account import SimAccount
from desk.sim.chain import SimOption
from desk.sim.contracts import ContractQuery
from desk.sim.market import MarketModel
from desk.sim.messages import Part, TickEncoder
from desk.sim.orders import SimOrder, Tradable
from desk.sim.universe import SimStock

__all__ = [
    "Client",
    "Host",
    "OptionsPort",
    "HistoryPort",
    "OrdersPort",
    "FaultsPort",
    "OrderBook",
    "InstrumentsPort",
    "Subscription",
    "OptionLine",
    "SimQuote",
    "Quote5",
]

#: ``(bid, ask, bid_size, ask_size, last)`` of one contract: prices in dollars per share,
#: sizes in shares (stocks) or contracts (options); ``last`` NaN before any trade.
Quote5 = tuple[float, float, float, float, float]


class SimQuote(NamedTuple):
    """Top of book and last trade of a stock or an option (:meth:`Host.quote_for`).

    Prices in dollars per share (for options too: multiply by ``multiplier`` for dollars
    per contract); sizes in shares for stocks, contracts for options. An option without
    a bid has ``bid == 0.0`` and ``bid_size == 0``; ``last`` is NaN before any trade.
    """

    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float


class Subscription:
    """A streaming market data line on a stock: one reqMktData of one session.

    ``rid`` is the request id already encoded as wire bytes (``b"12\\0"``); ``rt_volume``
    and ``rt_trade_volume`` say whether generic ticks 233 / 375 were asked for;
    ``delayed`` whether the line carries delayed tick types (:mod:`desk.sim.delayed`).
    """

    __slots__ = ("session", "req_id", "rid", "stock", "rt_volume", "rt_trade_volume", "delayed")

    def __init__(self, session: Client, req_id: int, stock: SimStock, generic: frozenset[int]) -> None:
        self.session = session
        self.req_id = req_id
        self.rid = f"{req_id}\0".encode()
        self.stock = stock
        self.rt_volume = 233 in generic
        self.rt_trade_volume = 375 in generic
        self.delayed = False


class OptionLine:
    """A streaming market data line on one option (one reqMktData of one session).

    ``rid`` is the request id as wire bytes; ``row`` the contract's row in the option
    engine's arrays (:class:`desk.sim.option_source.OptionRows`); ``delayed`` whether it
    carries delayed tick types; ``volume_ticks`` / ``oi_ticks`` whether generic ticks
    100 / 101 were asked for.
    """

    __slots__ = ("session", "req_id", "rid", "row", "option", "delayed", "volume_ticks", "oi_ticks")

    def __init__(self, session: Client, req_id: int, row: int, option: SimOption, delayed: bool, generic: frozenset[int]) -> None:
        self.session = session
        self.req_id = req_id
        self.rid = f"{req_id}\0".encode()
        self.row = row
        self.option = option
        self.delayed = delayed
        self.volume_ticks = 100 in generic
        self.oi_ticks = 101 in generic


class Client(Protocol):
    """One connected API client (a :class:`desk.sim.session.Session`)."""

    transport: asyncio.Transport | None
    #: ``host:port`` of the peer, for log lines
    peer: str
    #: negotiated server version, 0 before the handshake
    version: int
    #: the client's id once startApi was accepted, else ``None``
    client_id: int | None
    #: marketDataType the client asked for (1 live, 2 frozen, 3 delayed, 4 delayed frozen)
    data_type: int
    #: the client's stock lines by reqId
    subscriptions: dict[int, Subscription]
    #: tick frames gathered during the current market step (written at its end)
    out: list[bytes]

    #: True while the transport is above its high-water mark (ticks are dropped)
    paused: bool
    #: tick frames not sent because the client fell behind
    dropped_ticks: int
    #: resolved when the connection is lost
    closed: asyncio.Future[None]

    def send(self, data: bytes) -> None:
        """Write a reply now (replies are never conflated)."""
        ...

    def flush_ticks(self) -> None:
        """Write the tick frames gathered during a market step."""
        ...

    def close(self) -> None:
        """Close the connection after pending output is written."""
        ...

    def abort(self) -> None:
        """Close the connection at once, discarding pending output."""
        ...


class OptionsPort(Protocol):
    """What other parts of the simulator use of :class:`desk.sim.options.OptionEngine`."""

    def find(self, q: ContractQuery) -> list[SimOption] | None: ...

    def contract_details(self, req_id: int, q: ContractQuery) -> bytes | None: ...

    def sec_def_opt_params(self, req_id: int, symbol: str, fut_fop_exchange: str, sec_type: str, con_id: int) -> bytes: ...

    def request_market_data(
        self, session: Client, req_id: int, q: ContractQuery, generic: frozenset[int], snapshot: bool
    ) -> bool: ...

    def resubscribe(self, line: OptionLine, refresh: bool = False) -> None: ...

    def unsubscribe(self, line: OptionLine) -> None: ...

    def underlying_parts(self, stock: SimStock, generic: frozenset[int]) -> list[Part]: ...


class HistoryPort(Protocol):
    """What other parts of the simulator use of :class:`desk.sim.history.HistoryService`."""

    def handle_request(self, session: Client, fields: list[str]) -> None: ...

    def handle_cancel(self, session: Client, fields: list[str]) -> None: ...

    def handle_head_timestamp(self, session: Client, fields: list[str]) -> None: ...

    def silence_updates(self) -> int: ...


class OrdersPort(Protocol):
    """What other parts of the simulator use of :class:`desk.sim.matching.OrderEngine`."""

    def handlers(self, session: Client) -> dict[int, Callable[[list[str]], None]]: ...

    def session_closed(self, session: Client) -> None: ...

    def drop_account_subscriptions(self) -> int: ...


class FaultsPort(Protocol):
    """What other parts of the simulator use of :class:`desk.sim.faults.FaultInjector`."""

    #: True while IB is unreachable (error 1100 sent, 1101/1102 not yet)
    @property
    def outage(self) -> bool: ...

    def allow(self, session: Client) -> bool: ...

    def client_id_held(self, client_id: int) -> bool: ...

    def farm_notices(self) -> bytes: ...

    def fill_status(self, data: bytes) -> bytes: ...

    def executions_end(self, session: Client, req_id: int) -> bytes: ...


class Host(Protocol):
    """What the services and sessions use of :class:`desk.sim.gateway.SimGateway`."""

    @property
    def clock(self) -> Clock: ...

    @property
    def seed(self) -> int: ...

    @property
    def port(self) -> int: ...

    @property
    def market(self) -> MarketModel: ...

    @property
    def encoder(self) -> TickEncoder: ...

    @property
    def accounts(self) -> list[SimAccount]: ...

    @property
    def sessions(self) -> AbstractSet[Client]: ...

    @property
    def max_tickers(self) -> int: ...

    @property
    def max_write_buffer(self) -> int: ...

    @property
    def delayed_data(self) -> bool: ...

    @property
    def options(self) -> OptionsPort: ...

    @property
    def history(self) -> HistoryPort: ...

    @property
    def orders(self) -> OrdersPort: ...

    @property
    def faults(self) -> FaultsPort: ...

    @property
    def account_ids(self) -> list[str]: ...

    @property
    def clients(self) -> int: ...

    @property
    def client_ids(self) -> list[int]: ...

    def account(self, account_id: str = "") -> SimAccount | None: ...

    def epoch_ms(self) -> int:
        """The gateway clock's time, UTC epoch milliseconds."""
        ...

    def quote_for(self, con_id: int) -> SimQuote | None: ...

    def contract_for(self, con_id: int) -> SimStock | SimOption | None: ...

    def next_order_id(self, client_id: int) -> int: ...

    def note_order_id(self, client_id: int, order_id: int) -> None: ...

    def order_ids(self) -> dict[int, int]: ...

    def restore_order_ids(self, next_ids: dict[int, int]) -> None: ...

    def session_for(self, client_id: int) -> Client | None:
        """The connected client with this client id, if any."""
        ...

    def session_opened(self, session: Client) -> None: ...

    def session_closed(self, session: Client) -> None: ...

    def register_client(self, session: Client, client_id: int) -> bool:
        """Claim ``client_id`` for ``session``; False when it is in use or held."""
        ...

    def subscribe(self, sub: Subscription) -> None:
        """Register a stock line so that market steps feed it."""
        ...

    def unsubscribe(self, sub: Subscription | OptionLine) -> None:
        """Forget a stock or option line."""
        ...

    async def drop_clients(self, timeout: float = 2.0) -> int: ...

    async def close_listener(self, timeout: float = 2.0) -> int: ...

    async def open_listener(self) -> bool: ...


class InstrumentsPort(Protocol):
    """Contracts and quotes by conId, as :class:`desk.sim.instruments.Instruments` gives."""

    def contract(self, con_id: int) -> Tradable | None: ...

    def quote(self, con_id: int) -> Quote5 | None:
        """:data:`Quote5` of the contract now (dollars per share), ``None`` if unknown."""
        ...

    def mark(self, con_id: int) -> float | None:
        """Mark price, dollars per share; ``None`` without a price."""
        ...


class OrderBook(Protocol):
    """What the order-type rules (:mod:`desk.sim.order_types`) and exercises
    (:mod:`desk.sim.exercise`) use of :class:`desk.sim.matching.OrderEngine`."""

    @property
    def gateway(self) -> Host: ...

    @property
    def instruments(self) -> InstrumentsPort: ...

    #: every order of the day by ``(clientId, orderId)``, working and done
    orders: dict[tuple[int, int], SimOrder]

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]: ...

    def activate(self, order: SimOrder) -> None:
        """Start working an order that was held (a bracket child, a transmitted parent)."""
        ...

    def touch(self, order: SimOrder) -> None:
        """Note that an order changed, for the journal."""
        ...

    def cancel(self, order: SimOrder, reason: str, *, system: bool = False, notify_error: bool = True) -> None:
        """Cancel a working order, telling its client why."""
        ...

    def set_status(self, order: SimOrder, status: str) -> None:
        """Move an order to a :class:`desk.sim.orders.Status` and tell its client."""
        ...

    def fill_single(self, order: SimOrder, qty: float, price: float, liquidity: int) -> None:
        """Fill ``qty`` of a single-leg order at ``price`` (dollars per share);
        ``liquidity`` is IB's lastLiquidity (1 added, 2 removed, 3 routed)."""
        ...

    def send_client(self, client_id: int, data: bytes) -> None:
        """Send to the client with this id if it is connected (else drop)."""
        ...

    def send_session(self, session: Client, data: bytes) -> None: ...

    def mark_dirty(self, account_id: str, *con_ids: int) -> None:
        """Note that these positions of an account changed (pushed at the step's end)."""
        ...
