"""The command line side of the replay (:mod:`desk.sim.replay`): ``desk import lean PATH``
(:func:`import_command`) and the arguments of ``desk sim --replay`` (:func:`replay_command_kwargs`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from datetime import time as dtime
from typing import Any, TextIO

from desk.sim.replay_data import ReplayError, parse_day, run_import
from desk.sim.replay_market import ReplayMarket, replay_gateway_kwargs

__all__ = ["import_command", "replay_command_kwargs"]


def _symbols(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return [p.strip().upper() for p in parts if p.strip()]


def import_command(
    path: str, url: str, symbols: str | None = None, dates: Sequence[str] | None = None, stream: TextIO = sys.stderr
) -> int:
    """``desk import lean PATH [--symbols A,B] [--date D ...]`` into the store at ``url``:
    a progress line on ``stream``, then one summary line on stdout. Exit code 0; 2 for a
    bad argument; 1 for a malformed file (named with its line) or a database failure, in
    which case nothing was imported."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.store import StoreError, parse_database_url

    try:
        days = [parse_day(d) for d in dates] if dates else None
        where = parse_database_url(url).where
    except (ReplayError, StoreError) as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_import(url, path, symbols=_symbols(symbols) or None, dates=days, stream=stream)
    except StoreError as exc:
        print(f"desk: import failed, nothing imported: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"desk: import failed, nothing imported: {where}: {first}", file=sys.stderr)
        return 1
    print(f"desk: imported {result.summary()} into {where}", flush=True)
    if result.skipped:
        print(f"desk: skipped {len(result.skipped)} file(s) not in a supported LEAN layout, e.g. {result.skipped[0]}", flush=True)
    return 0


def replay_command_kwargs(
    url: str, day: str, symbols: str | Sequence[str] | None, start: str | None = None, stream: TextIO | None = sys.stderr
) -> tuple[dict[str, Any], str]:
    """The :class:`~desk.sim.gateway.SimGateway` arguments and a banner label for
    ``desk sim --replay DAY --symbols A,B [--start HH:MM]`` (``desk`` in sim mode uses the
    same). Every failure is a :class:`ReplayError` with one line to show."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.store import StoreError

    syms = _symbols(symbols)
    if not syms:
        raise ReplayError("--replay needs --symbols, e.g. --replay 2015-12-24 --symbols GOOG")
    d = parse_day(day)
    at: dtime | None = None
    if start:
        try:
            at = datetime.strptime(start.strip(), "%H:%M").time()
        except ValueError:
            raise ReplayError(f"bad --start {start!r}: expected HH:MM (US/Eastern), e.g. 09:30") from None
    try:
        kwargs = replay_gateway_kwargs(url, d, syms, start=at, stream=stream)
    except StoreError as exc:
        raise ReplayError(str(exc)) from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ReplayError(f"cannot read the tick store: {first}") from None
    market: ReplayMarket = kwargs["market"]
    n_opt = len(market.data.options)
    label = f"replay of {d} {','.join(syms)}, {n_opt:,} options, from {market.clock.now():%H:%M} UTC"
    return kwargs, label
