"""The real GOOG option chain of 2015-12-24 (LEAN minute bars), as of one minute, for tests.

Reads the packaged sample data (or ``DESK_LEAN_DIR``, see tests/lean_data.py) in place; nothing is copied into the
repository. :func:`goog_chain_at` returns the underlying's bid/ask and, for every contract
of the expiries asked for, the bid/ask/sizes of the last minute bar at or before the given
time (ET), the day's volume and last trade price so far (trade bars) and the open interest (LEAN's morning
value). Prices dollars per share; the files hold deci-cents (README of the data folder).

conIds are made up here (stable: a counter in file-name order); they only need to be
unique inside one test.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from desk.domain import Instrument

ET = ZoneInfo("America/New_York")
DAY = "20151224"
GOOG = Instrument("GOOG", con_id=208813720, primary_exchange="NASDAQ", long_name="ALPHABET INC-CL C")
#: The twelve expiries listed that day.
EXPIRIES = (
    "20151224",
    "20151231",
    "20160108",
    "20160115",
    "20160122",
    "20160129",
    "20160205",
    "20160219",
    "20160318",
    "20160617",
    "20170120",
    "20180119",
)


from lean_data import lean_dir  # noqa: E402  (one rule for where LEAN data is)


@dataclass
class ContractState:
    instrument: Instrument
    bid: float = math.nan
    ask: float = math.nan
    bid_size: float = math.nan
    ask_size: float = math.nan
    last: float = math.nan
    volume: float = 0.0
    open_interest: float = math.nan


@dataclass
class ChainAt:
    """The chain as of ``at`` (UTC): underlying bid/ask and the contracts by conId."""

    at: datetime
    und_bid: float
    und_ask: float
    strikes: tuple[float, ...]
    contracts: dict[int, ContractState] = field(default_factory=dict)

    @property
    def und_mid(self) -> float:
        return (self.und_bid + self.und_ask) / 2

    def instruments(self, expiry: str) -> list[Instrument]:
        return [c.instrument for c in self.contracts.values() if c.instrument.expiry == expiry]


def _ms(et: time) -> int:
    return ((et.hour * 60 + et.minute) * 60 + et.second) * 1000


def _parse_name(name: str) -> tuple[str, str, float]:
    # 20151224_goog_minute_quote_american_call_7500000_20160115.csv
    parts = name[:-4].split("_")
    right = "C" if parts[-3] == "call" else "P"
    return parts[-1], right, int(parts[-2]) / 10_000


def _last_sides(text: str, ms: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(bid, bid size), (ask, ask size) of the last minute bars at or before ``ms`` that
    quoted each side (an empty group means that side did not quote in the minute)."""
    bid = ask = (math.nan, math.nan)
    for line in text.splitlines():
        f = line.split(",")
        if not f[0] or int(f[0]) > ms:
            break
        if f[4]:
            bid = (int(f[4]) / 10_000, float(f[5] or 0))
        if f[9]:
            ask = (int(f[9]) / 10_000, float(f[10] or 0))
    return bid, ask


@lru_cache(maxsize=8)
def goog_chain_at(et: time = time(10, 30), expiries: tuple[str, ...] = ("20160115",)) -> ChainAt:
    """The GOOG chain at ``et`` (exchange time) of 2015-12-24, for ``expiries``."""
    root = lean_dir()
    at = datetime.combine(datetime.strptime(DAY, "%Y%m%d").date(), et, ET).astimezone(UTC)
    ms = _ms(et)
    with zipfile.ZipFile(root / "equity/usa/minute/goog" / f"{DAY}_quote.zip") as z:
        (und_bid, _), (und_ask, _) = _last_sides(z.read(z.namelist()[0]).decode(), ms)
    assert und_bid == und_bid and und_ask == und_ask, "no GOOG quote before that time"
    chain = ChainAt(at, und_bid, und_ask, ())
    option = root / "option/usa/minute/goog"
    by_key: dict[tuple[str, str, float], ContractState] = {}
    with zipfile.ZipFile(option / f"{DAY}_quote_american.zip") as z:
        names = sorted(z.namelist())
        strikes = sorted({_parse_name(n)[2] for n in names})
        for i, name in enumerate(names):
            expiry, right, strike = _parse_name(name)
            if expiry not in expiries:
                continue
            ins = Instrument(
                "GOOG",
                sec_type="OPT",
                con_id=900_000 + i,
                expiry=expiry,
                strike=strike,
                right=right,
                multiplier=100,
                local_symbol=f"GOOG  {expiry[2:]}{right}{int(round(strike * 1000)):08d}",
            )
            state = ContractState(ins)
            (state.bid, state.bid_size), (state.ask, state.ask_size) = _last_sides(z.read(name).decode(), ms)
            by_key[(expiry, right, strike)] = state
    chain.strikes = tuple(strikes)
    with zipfile.ZipFile(option / f"{DAY}_trade_american.zip") as z:
        for name in z.namelist():
            key = _parse_name(name)
            state = by_key.get(key)
            if state is None:
                continue
            for line in z.read(name).decode().splitlines():
                f = line.split(",")
                if int(f[0]) > ms:
                    break
                state.volume += float(f[5])
                state.last = int(f[4]) / 10_000
    with zipfile.ZipFile(option / f"{DAY}_openinterest_american.zip") as z:
        for name in z.namelist():
            state = by_key.get(_parse_name(name))
            if state is None:
                continue
            lines = z.read(name).decode().splitlines()
            if lines:
                state.open_interest = float(lines[0].split(",")[1])
    chain.contracts = {s.instrument.con_id: s for s in by_key.values()}
    return chain


_REPLAY_DIRS: list[Path] = []


@lru_cache(maxsize=2)
def goog_replay_data(start: time = time(10, 30)):
    """The 2015-12-24 GOOG replay (:func:`desk.sim.replay.load_replay`) starting at ``start``
    ET, imported once per test process into a temporary SQLite store (removed at exit).
    Feed it to ``ReplayMarket`` (one per gateway; the data is shared read-only)."""
    import atexit
    import shutil
    import tempfile
    from datetime import date

    from desk.sim.replay_data import load_replay

    folder = Path(tempfile.mkdtemp(prefix="desk-goog-replay-"))
    if not _REPLAY_DIRS:
        atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _REPLAY_DIRS])
    _REPLAY_DIRS.append(folder)
    url = f"sqlite:///{folder / 'replay.sqlite3'}"
    return load_replay(url, date(2015, 12, 24), ["GOOG"], start=start, lean_dir=lean_dir(), stream=None)


class ReplayGateway:
    """The simulated gateway replaying GOOG 2015-12-24 from ``start`` ET, ``paused`` (the
    recorded quotes of that minute stand still), on an event loop in a thread of its own: the
    desk under test runs on the test's loop (or on ``snap_compare``'s) and reaches it over
    the TWS socket, as it reaches a ``desk sim --replay`` beside it. Use as a context manager;
    :attr:`port` (``port=0``: any free one) and :attr:`clock` (the replay's clock, to give
    the desk) are set inside it."""

    def __init__(self, start: time = time(10, 30), *, port: int = 0, paused: bool = True) -> None:
        import asyncio
        import threading

        from desk.sim.replay_market import ReplayMarket

        self.market = ReplayMarket(goog_replay_data(start))
        self.clock = self.market.clock
        self._port, self._paused = port, paused
        self.port = 0
        self.gateway = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="replay-gateway", daemon=True)

    def _call(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def __enter__(self) -> ReplayGateway:
        from desk.sim import SimGateway

        self._thread.start()
        m = self.market
        self.gateway = SimGateway("127.0.0.1", self._port, market=m, clock=m.clock, option_source=m.options, paused=self._paused)
        self._call(self.gateway.start())
        self.port = self.gateway.port
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.gateway is not None:
                self._call(self.gateway.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
