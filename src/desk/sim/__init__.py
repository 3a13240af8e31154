"""desk.sim: the simulated IB Gateway.

A TCP server speaking the TWS API socket protocol to the real, unmodified ib_async
client, fed by a seeded synthetic market. Main entry points:

* :class:`SimGateway` (asyncio, caller's loop), :class:`EmbeddedSim` (own loop in a
  daemon thread: what the desk embeds), :func:`serve` (``desk sim``);
* :class:`MarketModel` (the market alone, for deterministic data without sockets);
* :data:`UNIVERSE`, :func:`lookup`: the simulated instruments; :class:`SimOption` their
  listed options (:mod:`desk.sim.chain`), quoted by :mod:`desk.sim.options`
  (:class:`OptionSource` is the seam for other option sources, :class:`SimQuote` what
  ``SimGateway.quote_for`` returns).

Inside, :class:`SimGateway` is the composition root and the services it owns (sessions,
options, history, order matching, faults) depend only on the narrow interfaces of
:mod:`desk.sim.ports`, so the package's imports form a tree, not a cycle.
"""

from desk.sim.chain import SimOption
from desk.sim.gateway import EmbeddedSim, SimGateway, serve
from desk.sim.market import Changed, MarketChange, MarketModel, Snapshot
from desk.sim.option_source import OptionSource
from desk.sim.ports import SimQuote
from desk.sim.universe import UNIVERSE, SimStock, by_con_id, lookup

__all__ = [
    "UNIVERSE",
    "Changed",
    "EmbeddedSim",
    "MarketChange",
    "MarketModel",
    "OptionSource",
    "SimGateway",
    "SimOption",
    "SimQuote",
    "SimStock",
    "Snapshot",
    "by_con_id",
    "lookup",
    "serve",
]
