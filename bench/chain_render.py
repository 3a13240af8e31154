"""Frame cost of the option chain pane: 40 strikes x 2 sides, every quote updating.

Builds the real desk app (create_app) over an offline :class:`desk.broker.chains.ChainManager`
with ``--strikes`` strikes (calls and puts, every contract visible, every column shown) and
times, per frame (median of ``--frames``, CPU time on this machine):

* ``cold``: every row strip rebuilt (first paint, theme switch), every line rendered;
* ``warm``: nothing changed, every line served from the strip cache;
* ``all dirty``: every one of the 2 x strikes quotes changed since the last frame: the
  manager's flush (drain + our IV/Greeks for the whole window, vectorized) + the pane's
  repaint of every row + rendering every line. Also split into ``greeks`` (the manager's
  flush alone) and ``paint`` (pane apply + render);
* ``dirty 10%``: a tenth of the quotes changed (a calmer market), the underlying moving:
  every Greek moves, so most rows are rebuilt anyway; ``10%, S still``: the same with the
  underlying still, where only the rows whose texts changed are rebuilt;
* ``screen``: the compositor rendering the whole screen after an all-dirty flush (the
  pane is maximized, so that is the chain and the key footer);
* baselines measured in the same run: ``naive`` (the same all-dirty frame with the strip
  cache bypassed: every row rebuilt on every render, as a widget without a cache would) and
  ``DataTable`` (Textual's DataTable with the same rows x columns, every changed cell patched
  with ``update_cell`` inside ``batch_update``, then the screen rendered).

Usage: python bench/chain_render.py [--strikes 40] [--frames 100]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import time
from datetime import UTC, datetime

from desk.pricing.chain_analytics import price_window
from desk.broker.chain_window import ChainDefinition

from desk.broker.chains import ChainManager
from desk.broker.lines import LineBudget
from desk.domain import ConnectionState, FrozenClock, Instrument, QuoteStore
from desk.domain.options import WindowSpec
from desk.settings import Settings

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
EXPIRY = "20260417"
UNDERLYING = Instrument("XYZ", con_id=1, primary_exchange="NASDAQ")


class _Broker:
    def __init__(self, quotes: QuoteStore) -> None:
        self.quotes = quotes
        self.watchlist = [UNDERLYING]
        self.state = ConnectionState.CONNECTED
        self.host, self.port = "127.0.0.1", 0

    def add_listener(self, fn: object) -> None:
        pass


class _Runtime:
    """The Runtime surface the app uses, with an offline chain of ``strikes`` strikes."""

    def __init__(self, strikes: int) -> None:
        self.settings = Settings(record=False, _env_file=None)  # type: ignore[call-arg]
        self.clock = FrozenClock(NOW)
        self.quotes = QuoteStore()
        self.recorder = None
        self.broker = _Broker(self.quotes)
        self.rng = random.Random(7)
        self.quotes.ensure(UNDERLYING)
        self.spot = 100.0
        self.quotes.update(UNDERLYING.con_id, bid=99.99, ask=100.01, last=100.0, time=NOW)
        ks = [80.0 + i for i in range(strikes)]
        instruments = []
        for i, k in enumerate(ks):
            for right in "CP":
                instruments.append(
                    Instrument(
                        "XYZ",
                        sec_type="OPT",
                        con_id=10_000 + 2 * i + (right == "P"),
                        expiry=EXPIRY,
                        strike=k,
                        right=right,
                        multiplier=100,
                    )
                )
        self.chains = ChainManager(
            None,
            pricer=price_window,
            quotes=self.quotes,
            budget=LineBudget(1000),
            spec=WindowSpec(count=strikes),
            clock=self.clock,
        )
        definition = ChainDefinition(UNDERLYING, "SMART", "XYZ", 100, (EXPIRY,), tuple(ks))
        self.chains.install(definition, EXPIRY, instruments)
        self.con_ids = sorted(self.chains.subscribed)
        for con_id in self.con_ids:
            self.tick(con_id, full=True)

    def tick(self, con_id: int, full: bool = False) -> None:
        q = self.chains.store.get(con_id)
        ins = q.instrument
        intrinsic = max(0.0, (self.spot - ins.strike) if ins.right == "C" else (ins.strike - self.spot))
        mid = intrinsic + 2.0 + self.rng.random() * 0.5
        half = 0.05 + self.rng.random() * 0.05
        self.chains.store.update(
            con_id,
            bid=round(mid - half, 2),
            ask=round(mid + half, 2),
            bid_size=self.rng.randrange(1, 50),
            ask_size=self.rng.randrange(1, 50),
            last=round(mid, 2),
            volume=self.rng.randrange(0, 5000),
            open_interest=self.rng.randrange(0, 50_000) if full else None,
            time=NOW,
        )

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


#: best (minimum) frame time per name, next to the medians: on a loaded machine the
#: minimum shows the cost of the code, the median what a frame costs under that load
BEST: dict[str, float] = {}


async def measure(strikes: int = 40, frames: int = 100) -> dict[str, float]:
    """``{name: ms per frame}`` (names in the module docstring)."""
    from desk.ui.app import create_app

    runtime = _Runtime(strikes)
    app = create_app(runtime, cursor_blink=False, animations=False)  # type: ignore[arg-type]
    results: dict[str, float] = {}
    size = (170, strikes + 16)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.chain
        manager = runtime.chains
        app.screen.maximize(pane, container=False)  # the chain alone, whatever else the desk shows
        app._flush_quotes()
        await pilot.pause()
        assert pane.page_rows >= strikes, f"terminal too small: {pane.page_rows} rows for {strikes} strikes"
        assert len(pane._columns) == 10, "terminal too narrow for every column"
        height = pane.size.height

        def render_all() -> None:
            for y in range(height):
                pane.render_line(y)

        def timed(fn, prepare=None, name: str = "") -> float:
            samples = []
            for _ in range(frames):
                if prepare is not None:
                    prepare()
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            if name:
                BEST[name] = min(samples) * 1000.0
            return _median_ms(samples)

        results["cold"] = timed(render_all, prepare=pane._cache.clear, name="cold")
        render_all()
        results["warm"] = timed(render_all, name="warm")

        def change(fraction: float, move: bool = True):
            n = max(1, round(len(runtime.con_ids) * fraction))

            def prepare() -> None:
                if move:
                    runtime.spot += runtime.rng.uniform(-0.05, 0.05)
                    mid = round(runtime.spot, 2)
                    runtime.quotes.update(UNDERLYING.con_id, bid=mid - 0.01, ask=mid + 0.01)
                for con_id in runtime.rng.sample(runtime.con_ids, n):
                    runtime.tick(con_id)

            return prepare

        def frame() -> None:
            pane.apply(manager.flush())
            render_all()

        results["all dirty"] = timed(frame, prepare=change(1.0), name="all dirty")
        results["greeks"] = timed(manager.flush, prepare=change(1.0), name="greeks")
        flushes: list = []

        def prepare_paint() -> None:
            change(1.0)()
            flushes.append(manager.flush())

        results["paint"] = timed(lambda: (pane.apply(flushes[-1]), render_all()), prepare=prepare_paint, name="paint")
        results["dirty 10%"] = timed(frame, prepare=change(0.1), name="dirty 10%")
        results["10%, S still"] = timed(frame, prepare=change(0.1, move=False), name="10%, S still")

        def naive() -> None:
            pane.apply(manager.flush())
            for y in range(height):
                pane._cache.clear()
                pane.render_line(y)

        results["naive"] = timed(naive, prepare=change(1.0), name="naive")

        compositor = app.screen._compositor

        def screen() -> None:
            pane.apply(manager.flush())
            compositor.render_strips()

        results["screen"] = timed(screen, prepare=change(1.0), name="screen")
    results["DataTable"] = await measure_datatable(runtime, frames, size)
    return results


async def measure_datatable(runtime: _Runtime, frames: int, size: tuple[int, int]) -> float:
    """The same grid in a DataTable: patch every changed cell, then render the screen."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from desk.ui.widgets.chain import ChainPane
    from desk.ui.widgets.chain_layout import SIDE_COLUMNS

    manager = runtime.chains
    rows = manager.rows
    keys = [c.key for c in SIDE_COLUMNS]
    pane = ChainPane(manager)

    def cells(row) -> list[str]:
        call, put = pane._cells(manager.quote(row.call)), pane._cells(manager.quote(row.put))
        return [call[k] for k in reversed(keys)] + [f"{row.strike:g}"] + [put[k] for k in keys]

    class Grid(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable(id="grid")

    app = Grid()
    async with app.run_test(size=size) as pilot:
        table = app.query_one(DataTable)
        columns = table.add_columns(*(list(reversed(keys)) + ["strike"] + keys))
        row_keys = [table.add_row(*cells(r)) for r in rows]
        await pilot.pause()
        compositor = app.screen._compositor
        shown = [cells(r) for r in rows]
        samples = []
        for _ in range(frames):
            for con_id in runtime.con_ids:
                runtime.tick(con_id)
            manager.flush()
            t0 = time.perf_counter()
            with app.batch_update():
                for i, r in enumerate(rows):
                    new = cells(r)
                    for j, (a, b) in enumerate(zip(shown[i], new)):
                        if a != b:
                            table.update_cell(row_keys[i], columns[j], b)
                    shown[i] = new
            compositor.render_strips()
            samples.append(time.perf_counter() - t0)
    BEST["DataTable"] = min(samples) * 1000.0
    return _median_ms(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strikes", type=int, default=40)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.strikes, args.frames))
    print(
        f"option chain pane, {args.strikes} strikes x 2 sides visible, every column, "
        f"{args.frames} frames (ms per frame; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    print(f"  {'':<12} {'median':>9} {'best':>9}")
    for name, ms in results.items():
        print(f"  {name:<12} {ms:9.3f} {BEST.get(name, math.nan):9.3f}")
    print(
        f"  naive / all dirty      {results['naive'] / results['all dirty']:6.1f} x (median)"
        f"  {BEST['naive'] / BEST['all dirty']:6.1f} x (best)"
    )
    print(
        f"  DataTable / screen     {results['DataTable'] / results['screen']:6.1f} x (median)"
        f"  {BEST['DataTable'] / BEST['screen']:6.1f} x (best)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
