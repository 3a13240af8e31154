"""Where the simulator's options come from: the :class:`OptionSource` seam.

The seam (pluggable source): the :class:`OptionEngine` that the gateway owns asks an
:class:`OptionSource` for everything about options:

* definitions: :meth:`OptionSource.sec_def_params` (reqSecDefOptParams),
  :meth:`OptionSource.find` (contract details, market data) and
  :meth:`OptionSource.option` (by conId);
* quotes: :meth:`OptionSource.open_rows` fills the quote columns of contracts that become
  active (subscribed, or asked for by :meth:`OptionEngine.quote`),
  :meth:`OptionSource.step_rows` moves them on every market step and returns a
  :class:`~desk.sim.market.Changed` bit mask per row. ``OptionRows.model_iv`` may be left
  NaN: the engine then implies the model IV from the mid.

The engine owns the rows, subscriptions, Greeks, encoding and delayed data; a source
owns what is listed and how quotes move. The underlying price each step is the mid of the
gateway's market (``symbol in market`` and ``market.snapshot(symbol)``'s bid / ask), so a
replayed market drives recorded or synthetic options alike. :class:`SyntheticOptions` (the default) lists
the chains of :mod:`desk.sim.chain` and quotes Black-Scholes-Merton prices on the seeded
:class:`~desk.sim.volsurface.VolSurface`; a replay source gives recorded contracts and
quotes instead (``SimGateway(option_source=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import (
    SECONDS_PER_YEAR,
)
from desk.sim.chain import (
    SimOption,
    expiry_epoch,
)
from desk.sim.contracts import ContractQuery

__all__ = ["OptionRows", "OptionSource", "SecDefParams"]


class SecDefParams(NamedTuple):
    """One securityDefinitionOptionParameter (75) message: the chain on one exchange.

    ``expirations`` ``YYYYMMDD`` ascending; ``strikes`` dollars per share ascending (the
    union over the expirations); ``multiplier`` as text (``"100"``)."""

    exchange: str
    underlying_con_id: int
    trading_class: str
    multiplier: str
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


class OptionRows:
    """Structure of arrays of the active option contracts (owned by :class:`OptionEngine`).

    Row ``i`` is ``options[i]``. Static columns (engine-filled): ``con_id``, ``und``
    (index into the engine's underlyings), ``is_call``, ``strike`` ($/share),
    ``expiry_ts`` (UTC epoch seconds of the expiry's close, :func:`~desk.sim.chain.expiry_epoch`), ``q``
    (dividend yield). Quote columns (source-filled; prices dollars per share, sizes and
    volumes in contracts): ``bid`` (0 = no bid), ``ask``, ``bid_size``, ``ask_size``,
    ``last`` (NaN = none), ``last_size``, ``volume``, ``open_interest``, ``high``,
    ``low``, ``close``, ``open``, ``model_iv`` (annual fraction; NaN = imply from mid).
    Engine state: ``und_price`` (underlying mid at the last step), ``nsubs`` (streaming
    lines on the row). Sources may keep their own per-row arrays in ``extra``.
    """

    _FLOAT = ("strike", "expiry_ts", "q", "bid", "ask", "last", "high", "low", "close", "open", "model_iv", "und_price")
    _INT = ("con_id", "und", "bid_size", "ask_size", "last_size", "volume", "open_interest", "nsubs")

    def __init__(self) -> None:
        self.n = 0
        self.options: list[SimOption] = []
        self.is_call = np.zeros(0, dtype=bool)
        for name in self._FLOAT:
            setattr(self, name, np.zeros(0, dtype=np.float64))
        for name in self._INT:
            setattr(self, name, np.zeros(0, dtype=np.int64))
        #: source-owned float columns, grown with the rows (filled by ``open_rows``)
        self.extra: dict[str, NDArray[np.float64]] = {}

    # typed attribute declarations for readers and type checkers
    strike: NDArray[np.float64]
    expiry_ts: NDArray[np.float64]
    q: NDArray[np.float64]
    bid: NDArray[np.float64]
    ask: NDArray[np.float64]
    last: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    open: NDArray[np.float64]
    model_iv: NDArray[np.float64]
    und_price: NDArray[np.float64]
    con_id: NDArray[np.int64]
    und: NDArray[np.int64]
    bid_size: NDArray[np.int64]
    ask_size: NDArray[np.int64]
    last_size: NDArray[np.int64]
    volume: NDArray[np.int64]
    open_interest: NDArray[np.int64]
    nsubs: NDArray[np.int64]

    def append(self, options: Sequence[SimOption], und: Sequence[int], q: Sequence[float]) -> slice:
        """Add rows for ``options`` (underlying indices ``und``, dividend yields ``q``);
        quote columns start at 0 / NaN. Returns the slice of the new rows."""
        k = len(options)
        start = self.n
        grow = {
            "con_id": [o.con_id for o in options],
            "und": list(und),
            "strike": [o.strike for o in options],
            "expiry_ts": [expiry_epoch(o.expiry) for o in options],
            "q": list(q),
        }
        for name in self._FLOAT + self._INT:
            arr = getattr(self, name)
            fill = grow.get(name)
            if fill is None:
                new = np.full(k, np.nan if name in ("last", "model_iv", "und_price") else 0, dtype=arr.dtype)
            else:
                new = np.asarray(fill, dtype=arr.dtype)
            setattr(self, name, np.concatenate([arr, new]))
        self.is_call = np.concatenate([self.is_call, [o.is_call for o in options]])
        for name, arr in self.extra.items():
            self.extra[name] = np.concatenate([arr, np.zeros(k)])
        self.options.extend(options)
        self.n += k
        return slice(start, self.n)

    def years(self, now: float, rows: slice | NDArray[np.integer] = slice(None)) -> NDArray[np.float64]:
        """Years (ACT/365) from UTC epoch ``now`` to each row's expiry, floored at 0."""
        return np.maximum((self.expiry_ts[rows] - now) / SECONDS_PER_YEAR, 0.0)


class OptionSource(Protocol):
    """Where the gateway's options come from: definitions and quotes (the replay seam).

    Prices are dollars per share, sizes contracts, times UTC epoch seconds, ``S`` the
    underlying mid per row (dollars per share), ``r`` the continuously compounded rate.
    Optional: ``bind(underlyings)``, called with the engine's list of underlying symbols
    whenever it grows (``OptionRows.und`` indexes it). Called on the gateway's loop only.
    """

    def sec_def_params(self, symbol: str, con_id: int) -> list[SecDefParams] | None:
        """The chain of an underlying (by symbol and/or conId, 0 = any) per exchange;
        ``None`` if the underlying is unknown (error 200), ``[]`` if it has no options."""
        ...

    def find(self, q: ContractQuery) -> list[SimOption]:
        """Every option matching the query (secType OPT or a bare conId)."""
        ...

    def option(self, con_id: int) -> SimOption | None:
        """The option with this conId, or ``None``."""
        ...

    def dividend_yield(self, symbol: str) -> float:
        """Continuous dividend yield of an underlying (annual fraction)."""
        ...

    def open_rows(self, rows: OptionRows, new: slice, S: NDArray[np.float64], now: float, r: float) -> None:
        """Fill the quote columns of the new rows ``rows[new]`` (``S`` covers all rows)."""
        ...

    def step_rows(self, rows: OptionRows, S: NDArray[np.float64], now: float, dt: float, r: float) -> NDArray[np.integer]:
        """Move every row's quote ``dt`` market seconds on; return a
        :class:`~desk.sim.market.Changed` bit mask per row (0 = unchanged). Rows whose
        ``S`` is NaN (underlying not simulated) are left alone."""
        ...

    def underlying_stats(self, symbol: str, S: float, now: float, r: float) -> tuple[int, int, int, int, float] | None:
        """``(call OI, put OI, call volume, put volume, 30-day ATM IV)`` of an underlying's
        whole chain (contracts; IV annual fraction), or ``None``."""
        ...
