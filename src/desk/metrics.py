"""Prometheus metrics and health endpoints of the engine (``desk``, ``desk --headless``).

With ``DESK_METRICS_PORT`` (or ``--metrics-port``) set, an HTTP server on
``DESK_METRICS_HOST`` (127.0.0.1) answers:

* ``/metrics``: Prometheus text format (prometheus_client), read from the running engine at
  scrape time, so the tick path pays nothing for them:

  ========================================  =========================================================
  ``desk_ticks_received_total``             ticks the broker handed to the recorder
  ``desk_ticks_recorded_total``             ticks committed to the database
  ``desk_ticks_spooled``                    ticks waiting in the spool for the database
  ``desk_recorder_queue``                   ticks waiting in memory for the writer thread
  ``desk_recorder_errors_total``            recorder errors (database down, rejected rows)
  ``desk_ib_messages_received_total``       IB messages decoded on the current connection
  ``desk_ib_connected``                     1 when the gateway connection is up
  ``desk_ib_state{state}``                  1 for the broker's current connection state
  ``desk_database_up``                      1 when the tick database answers (recording on)
  ``desk_redis_up``                         1 when the last Redis call succeeded (Redis set)
  ``desk_audit_log_healthy``                1 when the audit log is open with nothing queued
  ``desk_orders{status}``                   orders of this session by blotter status
  ``desk_order_refusals_total{check}``      orders refused, by gate, audit or failed check
  ``desk_stale_lines``                      market data lines the watchdog holds stale
  ``desk_resubscribes_total``               every-line re-requests after lost data
  ``desk_event_loop_lag_seconds``           worst event loop lag over the last second
  ========================================  =========================================================

* ``/healthz``: 200 ``ok`` while the process serves (liveness);
* ``/readyz``: 200 ``ready`` when the gateway is connected and, when recording, the
  database is up; else 503 with one line saying what is not.

The server runs in a daemon thread (wsgiref); collection reads plain attributes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from desk.domain import ConnectionState

log = logging.getLogger(__name__)

__all__ = ["EngineCollector", "LoopLag", "MetricsServer", "readiness"]


class LoopLag:
    """Measures how late the event loop runs a 0.1 s sleep: ``worst`` is the largest lag
    (seconds) seen over the last second. Start it on the loop it measures."""

    def __init__(self, period: float = 0.1, window: float = 1.0) -> None:
        self.period = period
        self.window = window
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="desk-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        worst, since = 0.0, loop.time()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.period)
            worst = max(worst, loop.time() - t0 - self.period)
            if loop.time() - since >= self.window:
                self.worst, worst, since = worst, 0.0, loop.time()


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class EngineCollector(Collector):
    """Reads a :class:`desk.engine.runtime.Runtime` at scrape time (see the module table)."""

    def __init__(self, runtime: Any, lag: LoopLag | None = None) -> None:
        self.runtime = runtime
        self.lag = lag

    def collect(self) -> Iterable[Metric]:
        rt = self.runtime
        broker = rt.broker
        rec = rt.recorder
        stats = rec.stats if rec is not None else None
        yield _counter(
            "desk_ticks_received", "Ticks the broker handed to the recorder.", stats.received if stats else broker.ticks_recorded
        )
        yield _counter("desk_ticks_recorded", "Ticks committed to the database.", stats.written if stats else 0)
        yield _gauge("desk_ticks_spooled", "Ticks waiting in the spool for the database.", stats.spooled if stats else 0)
        yield _gauge("desk_recorder_queue", "Ticks waiting in memory for the writer thread.", stats.queued if stats else 0)
        yield _counter("desk_recorder_errors", "Recorder errors.", stats.errors if stats else 0)
        yield _counter(
            "desk_ib_messages_received",
            "IB messages decoded on the current connection (restarts at each connect).",
            broker.messages_received,
        )
        yield _gauge(
            "desk_ib_connected", "1 when the gateway connection is up.", 1.0 if broker.state is ConnectionState.CONNECTED else 0.0
        )
        states = GaugeMetricFamily("desk_ib_state", "1 for the broker's current connection state.", labels=["state"])
        for state in ConnectionState:
            states.add_metric([state.value], 1.0 if broker.state is state else 0.0)
        yield states
        if rec is not None:
            yield _gauge("desk_database_up", "1 when the tick database answers.", 1.0 if rec.connected else 0.0)
        pub = rt.publisher
        if pub is not None:
            yield _gauge("desk_redis_up", "1 when the last Redis call succeeded.", 1.0 if pub.stats().connected else 0.0)
        audit = getattr(rt, "audit", None)
        if audit is not None:
            yield _gauge(
                "desk_audit_log_healthy",
                "1 when the audit log is open with nothing queued.",
                1.0 if audit.status().healthy else 0.0,
            )
        orders = getattr(rt, "orders", None)
        if orders is not None:
            by_status = GaugeMetricFamily("desk_orders", "Orders of this session by blotter status.", labels=["status"])
            counts: dict[str, int] = {}
            for row in list(orders.rows.values()):
                counts[row.status] = counts.get(row.status, 0) + 1
            for status, n in sorted(counts.items()):
                by_status.add_metric([status], n)
            yield by_status
            refusals = CounterMetricFamily(
                "desk_order_refusals", "Orders refused, by gate, audit or failed check.", labels=["check"]
            )
            for check, n in sorted(orders.router.refusals.items()):
                refusals.add_metric([check], n)
            yield refusals
        yield _gauge("desk_stale_lines", "Market data lines held stale by the watchdog.", len(broker.stale_lines))
        yield _counter("desk_resubscribes", "Every-line re-requests after lost data.", broker.resubscribes)
        if self.lag is not None:
            yield _gauge("desk_event_loop_lag_seconds", "Worst event loop lag over the last second.", self.lag.worst)


def readiness(runtime: Any) -> tuple[bool, str]:
    """``(ready, one line)``: ready when the gateway is connected and, when recording,
    the tick database answers."""
    problems = []
    if runtime.broker.state is not ConnectionState.CONNECTED:
        problems.append(f"IB not connected ({runtime.broker.state.value})")
    if runtime.recorder is not None and not runtime.recorder.connected:
        problems.append("tick database down")
    return (not problems, "ready" if not problems else "; ".join(problems))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's signature
        log.debug("metrics: " + format, *args)


class MetricsServer:
    """The HTTP server of ``/metrics``, ``/healthz`` and ``/readyz`` for ``runtime``.
    :meth:`start` binds ``host:port`` (port 0: any free one, see :attr:`port`) and raises
    OSError when it cannot."""

    def __init__(self, runtime: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.lag = LoopLag()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(EngineCollector(runtime, self.lag))
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return iter([b"ok\n"])
        if path == "/readyz":
            ready, line = readiness(self.runtime)
            start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return iter([(line + "\n").encode()])
        return self._metrics_app(environ, start_response)

    def start(self) -> None:
        self._server = make_server(self.host, self.port, self._app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="desk-metrics", daemon=True
        )
        self._thread.start()
        self.lag.start()
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        await self.lag.stop()
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
