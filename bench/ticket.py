"""Cost of the trading panes on the event loop: a ticket keystroke and a blotter refresh.

The ticket recomputes its risk preview on every key (and every 0.25 s), on the loop that
also runs ib_async; the blotter is refreshed every 0.25 s. Figures (median / p95 over
many calls, each next to a baseline measured in the same run):

* ticket keystroke to repainted frame, for a stock, an option and a 3-leg combo (a
  conversion): a key event posted to the ticket's form as the terminal driver posts it,
  until the app has composed the frame that shows the new preview (``App._display``
  called after the key: form, risk evaluate, preview text, payoff chart); against
  ``desk.risk.evaluate`` alone for the same order;
* blotter: ``Blotter.apply`` of 200 orders of which 5 changed (cells patched inside
  ``batch_update``), against rebuilding the table (clear + 200 ``add_row``).

Usage: python bench/ticket.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from textual import events
from textual.app import App

from desk.domain import Instrument, Quote
from desk.domain.orders import OrderRow
from desk.risk import ComboLeg, MarketContext, OrderIntent, RiskLimits, evaluate
from desk.ui.screens.ticket import TicketScreen
from desk.ui.widgets.blotter import Blotter, blotter_cells

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
SPY = Instrument("SPY", con_id=1, min_tick=0.01)
CALL = Instrument("SPY", "OPT", con_id=2, expiry="20260320", strike=600, right="C", multiplier=100, min_tick=0.01)
PUT = Instrument("SPY", "OPT", con_id=3, expiry="20260320", strike=600, right="P", multiplier=100, min_tick=0.01)
BAG = Instrument("SPY", "BAG", multiplier=100)
CONVERSION = OrderIntent(
    BAG, "BUY", 1, "LMT", limit_price=599.0, legs=(ComboLeg(SPY, "BUY", 100), ComboLeg(CALL, "SELL", 1), ComboLeg(PUT, "BUY", 1))
)
QUOTES = {
    1: Quote(SPY, 599.99, 600.01, 600.0, time=NOW),
    2: Quote(CALL, 7.10, 7.20, 7.15, time=NOW),
    3: Quote(PUT, 6.30, 6.40, 6.35, time=NOW),
}
LIMITS = RiskLimits(enforce_market_hours=False)


class Backend:
    live = False

    def quote(self, ins):
        q = QUOTES[ins.con_id]
        return q.bid, q.ask, q.last

    def delta(self, ins):
        return {1: 1.0, 2: 0.52, 3: -0.48}.get(ins.con_id, math.nan)

    def context(self, intent, margin=None):
        return MarketContext(
            NOW, QUOTES, buying_power=4e6, available_funds=1e6, daily_pnl=0.0, margin=margin, underlying_price=600.0
        )

    def preview(self, intent, margin):
        return evaluate(intent, self.context(intent, margin), LIMITS)

    async def what_if(self, intent):
        return None

    def gate_summary(self):
        return "SIM: orders on", True


def stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


class BenchApp(App):
    def compose(self):
        yield Blotter(id="blotter")


async def run(calls: int) -> None:
    app = BenchApp()
    frames: list[float] = []
    display = app._display

    def counted(screen, renderable):  # every frame the app composes (headless: not written)
        if renderable is not None:
            frames.append(time.perf_counter())
        return display(screen, renderable)

    app._display = counted  # type: ignore[method-assign]
    async with app.run_test(size=(140, 50)) as pilot:
        for ins, intent in ((SPY, None), (CALL, None), (BAG, CONVERSION)):
            screen = TicketScreen(ins, "BUY", Backend(), intent=intent)
            app.push_screen(screen)
            await pilot.pause(0.5)
            form = screen.query_one("#ticket-form")
            screen.model.field = "limit"
            keys, base = [], []
            probe = screen.model.intent()
            ctx = Backend().context(probe)
            for i in range(calls):
                seen = len(frames)
                t0 = time.perf_counter()
                form.post_message(events.Key("up" if i % 2 else "down", None))
                while len(frames) == seen or frames[-1] < t0:
                    await asyncio.sleep(0)
                keys.append(frames[-1] - t0)
                t0 = time.perf_counter()
                evaluate(probe, ctx, LIMITS)
                base.append(time.perf_counter() - t0)
            (km, kp), (bm, _) = stats(keys), stats(base)
            name = "3-leg combo" if intent is not None else ins.key
            print(
                f"ticket key -> repainted frame ({name:>18}): median {km * 1e3:6.2f} ms  p95 {kp * 1e3:6.2f} ms   "
                f"evaluate alone {bm * 1e6:6.0f} us   ratio {km / bm:6.1f}x"
            )
            screen.dismiss(None)
            await pilot.pause()

        blotter = app.query_one(Blotter)
        rows = [
            OrderRow(
                f"desk-{i:04d}", i, 1000 + i, SPY, "BUY", 10, "LMT", 599.0, math.nan, "DAY", "Submitted", 0, 10, math.nan, NOW
            )
            for i in range(200)
        ]
        blotter.apply(rows)
        patch, rebuild = [], []
        for k in range(max(50, calls // 20)):
            changed = list(rows)
            for j in range(5):
                idx = (k * 5 + j) % 200
                changed[idx] = replace(rows[idx], filled=k % 10, remaining=10 - k % 10, updated=NOW + timedelta(seconds=k))
            t0 = time.perf_counter()
            blotter.apply(changed)
            patch.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with app.batch_update():
                blotter.clear()
                for r in changed:
                    blotter.add_row(*blotter_cells(r), key=r.order_ref + "x")
            rebuild.append(time.perf_counter() - t0)
            blotter.clear()
            blotter.shown.clear()
            blotter.apply(rows)
        (pm, pp), (rm, _) = stats(patch), stats(rebuild)
        print(
            f"blotter 200 orders, 5 changed: patch median {pm * 1e3:6.2f} ms p95 {pp * 1e3:6.2f} ms   "
            f"rebuild median {rm * 1e3:6.2f} ms   ratio rebuild/patch {rm / pm:5.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args.calls))


if __name__ == "__main__":
    main()
