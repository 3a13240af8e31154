"""Measure the watchlist's rendering cost: ``python bench/watchlist_render.py [--rows 50] [--frames 200]``.

Runs the real :class:`~desk.ui.app.DeskApp` headless (``run_test``) over a stub runtime
with ``rows`` instruments, all visible, quotes moving every frame, and prints the
milliseconds per frame for:

* ``cold``: every row strip rebuilt (first paint, theme switch);
* ``warm``: nothing changed, every line served from the strip cache;
* ``dirty N``: N rows changed since the last frame (the normal case): drain + rebuild N
  rows + render every visible line;
* ``naive``: the same frame with the cache bypassed (every row rebuilt every frame), the
  baseline the cache is measured against;
* ``screen``: the compositor rendering the whole screen (watchlist, status bar, footer)
  after N dirty rows, i.e. what one real frame costs.

Figures are per frame, CPU time on this machine, median of ``frames`` repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time
from datetime import UTC, datetime

from desk.domain import ConnectionState, FrozenClock, Instrument, QuoteStore
from desk.settings import Settings


class _Broker:
    def __init__(self, quotes: QuoteStore, rows: list[Instrument]) -> None:
        self.quotes = quotes
        self.watchlist = rows
        self.state = ConnectionState.CONNECTED
        self.host, self.port = "127.0.0.1", 0

    def add_listener(self, fn: object) -> None:
        pass

    async def add_symbol(self, symbol: str) -> Instrument:  # pragma: no cover - not used
        raise NotImplementedError

    async def remove_symbol(self, symbol: str) -> bool:  # pragma: no cover - not used
        return False


class _Runtime:
    def __init__(self, rows: int) -> None:
        self.settings = Settings(record=False, _env_file=None)  # type: ignore[call-arg]
        self.clock = FrozenClock(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
        self.quotes = QuoteStore()
        self.recorder = None
        instruments = [Instrument(f"S{i:03d}", con_id=10_000 + i) for i in range(rows)]
        self.broker = _Broker(self.quotes, instruments)
        self.rng = random.Random(7)
        for instrument in instruments:
            self.quotes.ensure(instrument)
            self.tick(instrument.con_id, full=True)

    def tick(self, con_id: int, full: bool = False) -> None:
        price = 100 + self.rng.random() * 400
        self.quotes.update(
            con_id,
            bid=round(price - 0.01, 2),
            ask=round(price + 0.01, 2),
            last=round(price, 2),
            bid_size=self.rng.randrange(1, 50) * 100,
            ask_size=self.rng.randrange(1, 50) * 100,
            volume=self.rng.randrange(1_000_000, 90_000_000),
            close=round(price * 0.99, 2) if full else None,
        )

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


async def measure(rows: int = 50, frames: int = 200, dirty: int = 5) -> dict[str, float]:
    """Return ``{name: ms per frame}`` (see the module docstring for the names)."""
    from desk.ui.app import create_app

    runtime = _Runtime(rows)
    app = create_app(runtime, cursor_blink=False, animations=False)  # type: ignore[arg-type]
    results: dict[str, float] = {}
    # the watchlist is at most 40 % of the screen (desk.tcss): a screen tall enough for it to
    # show every row
    async with app.run_test(size=(120, int((rows + 4) / 0.4) + 1)) as pilot:
        await pilot.pause()
        watchlist = app.watchlist
        height = watchlist.size.height
        assert watchlist.page_rows >= rows, (
            f"terminal too small to show every row ({watchlist.page_rows} of {rows}, {watchlist.size})"
        )
        con_ids = [i.con_id for i in watchlist.instruments]

        def render_all() -> None:
            for y in range(height):
                watchlist.render_line(y)

        def timed(fn, prepare=None) -> float:
            samples = []
            for _ in range(frames):
                if prepare is not None:
                    prepare()
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            return _median_ms(samples)

        results["cold"] = timed(render_all, prepare=lambda: watchlist._cache.clear())
        render_all()
        results["warm"] = timed(render_all)

        def change_some() -> None:
            for con_id in runtime.rng.sample(con_ids, dirty):
                runtime.tick(con_id)

        def dirty_frame() -> None:
            watchlist.apply_dirty(runtime.quotes.drain_dirty())
            render_all()

        results[f"dirty {dirty}"] = timed(dirty_frame, prepare=change_some)

        def naive_frame() -> None:
            watchlist._cache.clear()
            watchlist.apply_dirty(runtime.quotes.drain_dirty())
            render_all()

        results["naive"] = timed(naive_frame, prepare=change_some)

        compositor = app.screen._compositor

        def screen_frame() -> None:
            watchlist.apply_dirty(runtime.quotes.drain_dirty())
            compositor.render_strips()

        results["screen"] = timed(screen_frame, prepare=change_some)
        results["per line (warm)"] = results["warm"] / height
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--dirty", type=int, default=5)
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.rows, args.frames, args.dirty))
    print(f"watchlist, {args.rows} rows visible, median of {args.frames} frames (ms per frame):")
    for name, ms in results.items():
        print(f"  {name:<16} {ms:8.3f} ms")
    naive, dirty = results["naive"], results[f"dirty {args.dirty}"]
    if dirty > 0 and not math.isnan(naive):
        print(f"  naive / dirty    {naive / dirty:8.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
