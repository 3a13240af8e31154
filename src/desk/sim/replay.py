"""Replay of a recorded day through the simulated gateway.

``desk import lean PATH`` loads LEAN-format data into the tick store
(:mod:`desk.store.lean`); ``desk sim --replay 2015-12-24 --symbols GOOG --speed 60`` then
streams that day to every client as if it were live: the underlying's quotes and trades
and the **whole option chain** (contract details, reqSecDefOptParams, quotes, Greeks),
historical bars from the recorded bars, and orders filled against the recorded quotes.
When the store has no data for the day, it is imported on demand from the LEAN folder
(``$DESK_LEAN_DIR`` or the sample data in the package, :func:`desk.store.lean.default_lean_dir`),
with a progress line.

The pieces, each plugging into the gateway's existing seams:

* :class:`ReplayClock` — the gateway's clock, at the **recorded time** (UTC), moved only
  by the replay: ``currentTime``, the handshake, tick timestamps, executions and the
  order engine's market hours all see 2015-12-24;
* :class:`ReplayMarket` — ``SimGateway(market=...)`` in place of the synthetic
  :class:`~desk.sim.market.MarketModel` (same interface: ``step(dt)`` returns
  :class:`~desk.sim.market.MarketChange` per changed symbol; ``state(symbol)``);
* :class:`ReplayOptions` — ``SimGateway(option_source=...)``, an
  :class:`~desk.sim.option_source.OptionSource` listing the recorded contracts (conIds from
  :func:`desk.store.lean.option_con_id`, OCC local symbols) and quoting them from their
  recorded minute bars (IV and Greeks are implied by the option engine from the mid);
* :class:`ReplayHistory` — the :class:`~desk.sim.history.HistorySource` of the day's
  recorded bars (and recorded daily bars before it).

Timing (no look-ahead, LEAN's convention): a minute bar that starts at ``t`` is known at
its end, ``t + 60 s``. From then on the quote is the bar's close: bid = bid close, ask =
ask close, sizes = the last displayed sizes; a trade bar adds its volume to the day's
volume and reports its close as the last price (with the minute's volume as the last
size: one aggregated print) and its high/low to the day's. A bar with no quote on one side
means no bid (or no ask): bid 0 / size 0, as IB shows it. Historical requests return the
bars completed by the replay clock. The underlying's previous close (tick 9) is the last
recorded daily close before the day, its open (tick 14) the first regular-hours trade.

``speed`` is the gateway's: replay seconds per wall-clock second (``speed=60``: one
recorded minute per second). The replay starts at ``start`` (default: the day's regular open, 09:30 ET) and
holds the last recorded state after the data ends.

Prices are dollars per share (options too), sizes shares or contracts, times UTC.

The code is split along those seams, and this module re-exports it:

* :mod:`desk.sim.replay_data` — the recorded day (:func:`load_replay`, :class:`ReplayData`,
  :func:`run_import`, :class:`ReplayError`, :func:`parse_day`);
* :mod:`desk.sim.replay_market` — :class:`ReplayClock`, :class:`ReplayMarket`,
  :class:`ReplayHistory` and :func:`replay_gateway_kwargs`;
* :mod:`desk.sim.replay_options` — :class:`ReplayOptions`;
* :mod:`desk.sim.replay_cli` — ``desk import lean`` and ``desk sim --replay`` arguments.
"""

from __future__ import annotations

from desk.sim.replay_cli import import_command as import_command
from desk.sim.replay_cli import replay_command_kwargs as replay_command_kwargs
from desk.sim.replay_data import ReplayData, ReplayError, load_replay, parse_day, run_import
from desk.sim.replay_market import ReplayClock, ReplayHistory, ReplayMarket, replay_gateway_kwargs
from desk.sim.replay_market import ReplayState as ReplayState
from desk.sim.replay_options import ReplayOptions

__all__ = [
    "ReplayClock",
    "ReplayData",
    "ReplayError",
    "ReplayHistory",
    "ReplayMarket",
    "ReplayOptions",
    "load_replay",
    "parse_day",
    "replay_gateway_kwargs",
    "run_import",
]
