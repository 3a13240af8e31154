"""desk.engine: the engine and how views talk to it.

``desk`` runs the terminal view in the terminal's process and the engine in a process of
its own (:mod:`desk.engine.process`); ``desk --headless`` is the engine alone;
``desk --attach`` is another view of a running engine. The engine's composition root
(broker, chains, account, order path, recorder, bus, analytics) is
:class:`desk.engine.runtime.Runtime`.

Engine side:

- :mod:`desk.engine.runtime`: :class:`Runtime`, the composition root; it gives the broker's
  chain and account their pricers (:mod:`desk.pricing`), so the broker only translates;
- :mod:`desk.engine.opportunity_feed`: the live arbitrage scan's feed, store writer and
  publisher, and the simulator's option source;
- :mod:`desk.engine.doctor`: ``desk doctor``'s checks of settings, database, Redis and the
  IB endpoint;
- :mod:`desk.engine.server`: :class:`EngineServer`, the API on a local Unix socket (0600),
  with the streams of each view (its state, the chain, the opportunities);
- :mod:`desk.engine.operations`: every request, defined once (orders, ticket, kill
  switch, watchlist, chain), on the engine's objects;
- :mod:`desk.engine.analytics`: the engine's timer for the chain's IV and Greeks and the
  arbitrage scan (never on a view's loop);
- :mod:`desk.engine.local`: the same in-process: :class:`LocalEngine` (``desk order``),
  :class:`LocalDesk` (the view on an engine in its own process: ``DESK_ENGINE_API=0``,
  and the UI tests on the real engine).

View side (these import only msgspec, :mod:`desk.domain` and the risk report; never
ib_async, SQLAlchemy or the analytics):

- :mod:`desk.engine.api`: the typed, versioned messages (msgspec structs, msgpack frames);
- :mod:`desk.engine.client`: :class:`EngineClient` over the socket, :func:`attach`;
- :mod:`desk.engine.backend`: :class:`DeskBackend` and its parts (what the terminal view
  reads and asks);
- :mod:`desk.engine.view`: :class:`RemoteDesk`, the view's copy of an engine it attached to;
- :mod:`desk.engine.process`: the engine process ``desk`` starts and stops.
"""
