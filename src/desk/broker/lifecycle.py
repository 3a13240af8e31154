"""What a real gateway does to a connection, and what the broker makes of it (pure rules).

* **Data farms** (TWS API messages 2103-2108, 2157/2158): "Market data farm connection is
  broken" (2103) and then "... is OK" (2104) can leave every line silently dead, so a
  market-data farm that comes back after being broken means: re-request every line.
  The historical-data (HMDS, 2105/2106) and security-definition (2157/2158) farms are
  reported, nothing is re-requested for them. A 2104 without a 2103 before it (the
  notices every connect starts with) is not a recovery.
* **1101** "Connectivity between IB and TWS has been restored - data lost": every
  subscription must be requested again (1102 "- data maintained": nothing to do).
* **326** "Unable to connect as the client id is already in use": a crashed client's id
  is still held by the gateway; retry later, or with the next id when allowed.
* **The daily restart** of TWS / IB Gateway (its "auto restart" time, set in the gateway's
  configuration): disconnects in :class:`RestartWindow` are expected, the status says so
  with a countdown, and reconnecting retries every few seconds (with jitter) so the desk is
  back as soon as the gateway is.

Sources: TWS API "Message Codes" (interactivebrokers.github.io/tws-api/message_codes.html);
IB Gateway / TWS "Lock and Exit" auto-restart settings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CLIENT_ID_IN_USE", "DATA_LOST", "DATA_MAINTAINED", "FarmTracker", "RestartWindow", "reconnect_delay"]

DATA_LOST = 1101
DATA_MAINTAINED = 1102
CLIENT_ID_IN_USE = 326
#: farm status codes: broken / OK -> which farm
FARM_BROKEN = {2103: "market data", 2105: "historical data", 2157: "security definition"}
FARM_OK = {2104: "market data", 2106: "historical data", 2158: "security definition"}


@dataclass
class FarmTracker:
    """Farm states from the gateway's notices. :meth:`on_code` returns True when a market
    data farm came back after being broken (every line should be requested again)."""

    broken: set[str] = field(default_factory=set)

    def on_code(self, code: int, text: str = "") -> bool:
        name = _farm_name(code, text)
        if code in FARM_BROKEN:
            self.broken.add(name)
            return False
        if code in FARM_OK:
            was = name in self.broken
            self.broken.discard(name)
            return was and code == 2104
        return False

    def reset(self) -> None:
        """A new connection starts with no farm known broken."""
        self.broken.clear()


def _farm_name(code: int, text: str) -> str:
    """``market data:usfarm`` from the notice's text (the farm after the last colon)."""
    kind = FARM_BROKEN.get(code) or FARM_OK.get(code) or "?"
    farm = text.rsplit(":", 1)[-1].strip() if ":" in text else ""
    return f"{kind}:{farm}"


@dataclass(frozen=True)
class RestartWindow:
    """The gateway's daily restart: from ``at`` (a time of day in ``zone``) for ``minutes``
    minutes; ``warn_minutes`` before it the status counts down."""

    at: time
    zone: ZoneInfo
    minutes: float = 10.0
    warn_minutes: float = 10.0

    @classmethod
    def parse(cls, text: str, zone: str = "America/New_York", minutes: float = 10.0) -> RestartWindow:
        """From ``HH:MM`` (24 h) in the IANA zone ``zone``. Raises ``ValueError`` naming what
        is wrong."""
        try:
            hh, mm = text.strip().split(":")
            at = time(int(hh), int(mm))
        except (ValueError, TypeError):
            raise ValueError(f"restart time must be HH:MM (24 h), got {text!r}") from None
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        if not minutes > 0:
            raise ValueError(f"restart window must be > 0 minutes, got {minutes!r}")
        return cls(at, tz, float(minutes))

    def _start_on(self, day: datetime) -> datetime:
        return datetime.combine(day.date(), self.at, tzinfo=self.zone).astimezone(UTC)

    def current(self, now: datetime) -> tuple[datetime, datetime]:
        """(start, end) in UTC of the window ``now`` is in or the next one."""
        local = now.astimezone(self.zone)
        length = timedelta(minutes=self.minutes)
        for delta in (-1, 0, 1):
            start = self._start_on(local + timedelta(days=delta))
            if now < start + length:
                return start, start + length
        start = self._start_on(local + timedelta(days=2))
        return start, start + length

    def in_window(self, now: datetime) -> bool:
        start, end = self.current(now)
        return start <= now < end

    def status(self, now: datetime) -> str:
        """One line for the status bar: empty, ``gateway restart in 4:59`` within the warning
        time, or ``daily gateway restart: reconnects expected, 3:10 left`` inside."""
        start, end = self.current(now)
        if start <= now < end:
            return f"daily gateway restart: reconnects expected, {_mmss(end - now)} left"
        if start - now <= timedelta(minutes=self.warn_minutes):
            return f"gateway restart in {_mmss(start - now)}"
        return ""


def _mmss(d: timedelta) -> str:
    s = max(0, int(d.total_seconds()))
    return f"{s // 60}:{s % 60:02d}"


def reconnect_delay(attempt: int, backoff: tuple[float, ...], *, near_restart: bool, rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (0-based): the ``backoff`` schedule
    (its last value repeats), capped at 2 s in or near the restart window, with up to
    20 % jitter so several desks do not reconnect in lockstep."""
    base = backoff[min(attempt, len(backoff) - 1)]
    if near_restart:
        base = min(base, 2.0)
    r = rng.random() if rng is not None else random.random()
    return base * (1.0 + 0.2 * r)
