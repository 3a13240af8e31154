"""The option chain as a view sees it: its rows, what changed since the last look, and
the error a chain request raises.

Plain values (no ib_async, no pricing): :class:`desk.broker.chains.ChainManager` builds
them in the engine; the engine API carries them to views (:mod:`desk.engine.view`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from desk.domain.models import Instrument
from desk.domain.options import OptionGreeks

if TYPE_CHECKING:  # the view imports this module: numpy only for the pricer's signature
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ChainAnalytics", "ChainError", "ChainFlush", "ChainPricer", "ChainRow"]


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One line of the chain: a strike with its call and put (either may be missing)."""

    strike: float
    call: Instrument | None
    put: Instrument | None


@dataclass(frozen=True, slots=True)
class ChainFlush:
    """What changed since a view last looked (:meth:`desk.broker.chains.ChainManager.flush`).

    ``con_ids``: option quotes that changed (repaint their rows); ``layout``: the rows,
    the expiry or the underlying changed (rebuild the pane); ``computed``: our Greeks were
    recomputed in this flush.
    """

    con_ids: frozenset[int]
    layout: bool
    computed: bool


class ChainError(Exception):
    """A chain request failed. ``str()`` is one line meant for the user."""


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    """Inputs and outputs of one pricing of a chain window
    (:func:`desk.pricing.chain_analytics.compute_greeks`) (lists in the order given).

    ``spot`` and ``forward`` dollars per share; ``q`` the implied continuous dividend /
    borrow yield (fraction per year); ``T`` years (ACT/365); ``greeks`` one
    :class:`OptionGreeks` per option and ``reasons`` the :class:`desk.pricing.IVReason`
    codes of their mid IVs.
    """

    spot: float
    forward: float
    q: float
    T: float
    greeks: list[OptionGreeks]
    reasons: list[int]


class ChainPricer(Protocol):
    """Prices the window of one expiry: what the broker's chain calls with its quotes
    (:func:`desk.pricing.chain_analytics.price_window` in the engine, which injects it, so
    the broker computes nothing itself).

    ``is_call``/``strikes``/``bids``/``asks``: parallel 1-D arrays of shape ``(n,)``
    (dollars per share, ``nan`` for a missing side); ``expiry`` ``YYYYMMDD``; ``now`` an
    aware datetime (the gateway's clock); ``spot`` dollars per share (``nan`` if unknown);
    ``r`` continuously compounded, fraction per year; ``exercise`` ``"american"`` or
    ``"european"``. Returns one :class:`OptionGreeks` per option, in order. Raises
    ``ValueError`` or ``ArithmeticError`` when the inputs cannot be priced.
    """

    def __call__(
        self,
        expiry: str,
        now: datetime,
        is_call: NDArray[np.bool_],
        strikes: NDArray[np.float64],
        bids: NDArray[np.float64],
        asks: NDArray[np.float64],
        *,
        spot: float,
        r: float,
        exercise: str,
    ) -> ChainAnalytics: ...
