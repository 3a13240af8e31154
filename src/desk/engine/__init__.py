"""desk.engine: the engine process's API — how views talk to the engine.

- :mod:`desk.engine.api`: the typed, versioned messages (msgspec structs, msgpack frames);
- :mod:`desk.engine.server`: :class:`EngineServer`, the API on a local Unix socket (0600);
- :mod:`desk.engine.client`: :class:`EngineClient` (over the socket), :func:`attach`;
  :mod:`desk.engine.local`: :class:`LocalEngine` (in-process, same methods);
- :mod:`desk.engine.operations`: the order operations both run (preview, place, list,
  cancel, kill switch), on the engine's order service.

The composition root the server serves (broker, chains, account, order path, recorder,
bus) is :class:`desk.runtime.Runtime`; ``desk`` and ``desk --headless`` serve the API
from it (``DESK_ENGINE_SOCKET``), ``desk order`` uses it when it answers.
"""
