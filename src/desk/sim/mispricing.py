"""Simulated mispricings: an option source that now and then quotes one option wrong.

:class:`MispricingSource` wraps the gateway's :class:`~desk.sim.option_source.OptionSource`
(default: :class:`~desk.sim.synthetic_options.SyntheticOptions` for the seed) and, at a Poisson
rate of ``rate_per_minute`` (market time), picks one *watched* option (a contract with
a streaming market data line, a bid, at least a day to expiry) and shifts its bid and ask
together for ``duration`` seconds: a call up, or a put down. The shift is
``3 x its spread + $0.20`` (``extra``), rounded up to $0.05, so it is beyond the spreads
and commissions of the legs against it and the desk's scanners find executable
violations: a conversion (sell the rich call / buy the cheap put, against the stock
and the other option at that strike), and usually a box, a vertical or a butterfly with
the neighbouring strikes too. Orders matched while it lasts fill at the shifted quotes
(the matching engine reads the same rows), so an opportunity can be traded.

Every injection is logged on ``desk.sim`` (``simulated mispricing: ...``) and kept in
:attr:`MispricingSource.injections`: this is simulated, not market behaviour. The desk
labels what it finds on its embedded simulator as simulated.

Use: ``SimGateway(option_source=MispricingSource(rate_per_minute=2, seed=7))``,
``EmbeddedSim(..., option_source=...)``, ``DESK_SIM_MISPRICING_RATE=2`` for the desk's
embedded simulator, ``desk sim --mispricing-rate 2``. :meth:`inject` forces one at once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from desk.domain.calendar import SECONDS_PER_YEAR
from desk.sim.market import Changed

__all__ = ["Injection", "MispricingSource"]

log = logging.getLogger("desk.sim")

_F_BID, _F_ASK = int(Changed.BID), int(Changed.ASK)
#: grid the shift is rounded up to (a multiple of every option tick: $0.01 and $0.05)
SHIFT_GRID = 0.05
#: seconds an injected option must outlive its injection by (so it is still quoted, and
#: still scanned, when the injection ends)
EXPIRY_MARGIN_S = 60.0


@dataclass(slots=True)
class Injection:
    """One simulated mispricing: option ``con_id`` (``symbol`` ``right`` ``strike``
    ``expiry``) quoted ``shift`` dollars per share off (positive: up) from UTC epoch
    seconds ``start`` to ``end``."""

    con_id: int
    symbol: str
    right: str
    strike: float
    expiry: str
    shift: float
    start: float
    end: float

    def describe(self) -> str:
        return (
            f"{self.symbol} {self.expiry} {self.strike:g} {self.right} quoted "
            f"{self.shift:+.2f}/share for {self.end - self.start:g}s"
        )


class MispricingSource:
    """An :class:`~desk.sim.option_source.OptionSource` injecting mispricings (module docstring).

    ``inner``: the source to wrap (``None``: :class:`SyntheticOptions(seed, today)` built
    on first use, ``today`` defaulting to the New York date then). ``rate_per_minute``:
    injections per minute of market time, >= 0 (0: only :meth:`inject`). ``duration``:
    seconds each lasts, > 0. ``extra``: dollars per share added to three spreads.
    Raises ``ValueError`` for a bad parameter.
    """

    def __init__(
        self,
        inner: Any = None,
        *,
        rate_per_minute: float = 1.0,
        seed: int = 7,
        today: date | None = None,
        duration: float = 10.0,
        extra: float = 0.20,
    ) -> None:
        if not (isinstance(rate_per_minute, int | float) and math.isfinite(rate_per_minute) and rate_per_minute >= 0):
            raise ValueError(f"mispricing rate must be >= 0 per minute, got {rate_per_minute!r}")
        if not (isinstance(duration, int | float) and math.isfinite(duration) and duration > 0):
            raise ValueError(f"mispricing duration must be > 0 seconds, got {duration!r}")
        if not (math.isfinite(extra) and extra >= 0):
            raise ValueError(f"mispricing extra must be >= 0 dollars per share, got {extra!r}")
        self._inner = inner
        self.seed = int(seed)
        self.today = today
        self.rate_per_minute = float(rate_per_minute)
        self.duration = float(duration)
        self.extra = float(extra)
        self.rng = np.random.default_rng([self.seed, 0x315])
        #: every injection so far (active and ended), oldest first
        self.injections: list[Injection] = []
        self._active: dict[int, Injection] = {}  # row -> injection
        self._pending = 0
        self._rows: Any = None

    @property
    def inner(self) -> Any:
        if self._inner is None:
            from desk.domain.calendar import exchange_date
            from desk.sim.synthetic_options import SyntheticOptions

            from datetime import UTC, datetime

            today = self.today or exchange_date(datetime.now(UTC))
            self._inner = SyntheticOptions(self.seed, today)
        return self._inner

    @property
    def active(self) -> list[Injection]:
        """Injections in force now."""
        return list(self._active.values())

    def inject(self) -> None:
        """Start one injection at the next market step (on a watched option)."""
        self._pending += 1

    # --- OptionSource: delegated ----------------------------------------------------------

    def __getattr__(self, name: str) -> Any:  # listing, surface, ... of the inner source
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def sec_def_params(self, symbol: str, con_id: int) -> Any:
        return self.inner.sec_def_params(symbol, con_id)

    def find(self, q: Any) -> Any:
        return self.inner.find(q)

    def option(self, con_id: int) -> Any:
        return self.inner.option(con_id)

    def dividend_yield(self, symbol: str) -> float:
        return self.inner.dividend_yield(symbol)

    def bind(self, underlyings: Any) -> None:
        bind = getattr(self.inner, "bind", None)
        if bind is not None:
            bind(underlyings)

    def open_rows(self, rows: Any, new: slice, S: NDArray[np.float64], now: float, r: float) -> None:
        self.inner.open_rows(rows, new, S, now, r)

    def underlying_stats(self, symbol: str, S: float, now: float, r: float) -> Any:
        return self.inner.underlying_stats(symbol, S, now, r)

    # --- stepping -------------------------------------------------------------------------

    def step_rows(self, rows: Any, S: NDArray[np.float64], now: float, dt: float, r: float) -> NDArray[np.integer]:
        """The inner step, then the injections: ended ones go back to the model quote
        (the inner step requoted them), active ones are shifted again, new ones start.
        Change bits of shifted rows are against the quotes sent before the step."""
        held = {i: (float(rows.bid[i]), float(rows.ask[i])) for i in self._active}
        bits = self.inner.step_rows(rows, S, now, dt, r)
        for i, inj in list(self._active.items()):
            if now >= inj.end:
                del self._active[i]
                log.info("simulated mispricing over: %s %s %g %s", inj.symbol, inj.expiry, inj.strike, inj.right)
        n_new = self._pending
        self._pending = 0
        if self.rate_per_minute > 0 and dt > 0:
            n_new += int(self.rng.poisson(self.rate_per_minute * dt / 60.0))
        for _ in range(n_new):
            self._start(rows, S, now)
        for i, inj in self._active.items():
            bid, ask = float(rows.bid[i]), float(rows.ask[i])
            new_bid = round(bid + inj.shift, 2) if bid > 0 else 0.0
            new_ask = round(ask + inj.shift, 2)
            rows.bid[i] = max(new_bid, 0.0)
            rows.ask[i] = new_ask
            old = held.get(i)
            flags = int(bits[i]) & ~(_F_BID | _F_ASK)
            if old is None or old[0] != rows.bid[i]:
                flags |= _F_BID
            if old is None or old[1] != rows.ask[i]:
                flags |= _F_ASK
            bits[i] = flags
        return bits

    def _start(self, rows: Any, S: NDArray[np.float64], now: float) -> None:
        T = rows.years(now)
        ok = (
            (rows.nsubs > 0)
            & (rows.bid > 0)
            & (rows.ask > rows.bid)
            & np.isfinite(S)
            & (T > (self.duration + EXPIRY_MARGIN_S) / SECONDS_PER_YEAR)
        )
        if self._active:
            ok[list(self._active)] = False
        candidates = np.flatnonzero(ok)
        if candidates.size == 0:
            log.info("simulated mispricing skipped: no watched option with a two-sided quote")
            return
        i = int(candidates[self.rng.integers(candidates.size)])
        spread = float(rows.ask[i] - rows.bid[i])
        size = math.ceil((3.0 * spread + self.extra) / SHIFT_GRID - 1e-9) * SHIFT_GRID
        call = bool(rows.is_call[i])
        if not call and rows.bid[i] - size < SHIFT_GRID:
            return self._shift(rows, i, now, size)  # too cheap to lower: raise it (a rich put)
        self._shift(rows, i, now, size if call else -size)

    def _shift(self, rows: Any, i: int, now: float, shift: float) -> None:
        opt = rows.options[i]
        inj = Injection(
            int(rows.con_id[i]), opt.symbol, opt.right, float(opt.strike), opt.expiry, round(shift, 2), now, now + self.duration
        )
        self._active[i] = inj
        self.injections.append(inj)
        log.info("simulated mispricing: %s", inj.describe())
