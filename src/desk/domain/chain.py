"""The option chain as a view sees it: its rows, what changed since the last look, and
the error a chain request raises.

Plain values (no ib_async, no pricing): :class:`desk.broker.chains.ChainManager` builds
them in the engine; the engine API carries them to views (:mod:`desk.engine.view`).
"""

from __future__ import annotations

from dataclasses import dataclass

from desk.domain.models import Instrument

__all__ = ["ChainError", "ChainFlush", "ChainRow"]


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
