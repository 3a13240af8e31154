"""The engine API in-process: :class:`LocalEngine`, on engine objects this process runs.

Same methods and replies as :class:`desk.engine.client.EngineClient`; ``desk order``
uses it when no engine is running, the tests use both.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from desk.engine import api, operations
from desk.engine.client import EngineRequestError

__all__ = ["LocalEngine"]

_R = TypeVar("_R")


class LocalEngine:
    """The engine API in-process, on engine objects this process runs itself
    (:class:`desk.runtime.Runtime`): same methods and replies as :class:`EngineClient`."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._ids = itertools.count(1)

    async def _call(self, fn: Callable[[Any, Any], Awaitable[_R]], msg: Any) -> _R:
        try:
            return await fn(self.runtime, msg)
        except operations.OperationError as exc:
            raise EngineRequestError(exc.code, str(exc)) from None

    async def preview(self, terms: api.OrderTerms, *, confirmation: str | None = None,
                      wait: float = 5.0) -> api.PreviewReport:
        return await self._call(operations.preview, api.Preview(next(self._ids), terms, confirmation, wait))

    async def place(self, terms: api.OrderTerms, *, confirmation: str | None = None,
                    wait: float = 5.0) -> api.PlaceReport:
        return await self._call(operations.place, api.Place(next(self._ids), terms, confirmation, wait))

    async def list_orders(self) -> api.OrderList:
        return await self._call(operations.list_orders, api.ListOrders(next(self._ids)))

    async def cancel(self, order_ref: str, *, wait: float = 5.0) -> api.CancelReport:
        return await self._call(operations.cancel, api.Cancel(next(self._ids), order_ref, wait))

    async def kill_switch(self, action: api.KillAction = "state", reason: str = "") -> api.KillSwitchReport:
        return await self._call(operations.kill_switch, api.KillSwitch(next(self._ids), action, reason))
