"""Command line: ``desk``, ``desk --headless``, ``desk sim``, ``desk import``, ``desk doctor``.

Every failure the user can cause (bad settings, unreachable services) ends in one line on
stderr starting with ``desk:`` and a non-zero exit code, never a traceback.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence

from desk import __version__
from desk.settings import Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="desk",
        description="Keyboard-driven terminal trading desk for Interactive Brokers. "
        "Settings come from DESK_* variables or .env (see .env.example).",
    )
    p.add_argument("--version", action="version", version=f"desk {__version__}")
    p.add_argument("--headless", action="store_true", help="run only the collector (no UI): record ticks, print stats")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="with --headless: stop after this many seconds")
    p.add_argument(
        "--stats-interval", type=float, default=5.0, metavar="SECONDS", help="with --headless: seconds between stats lines"
    )
    p.add_argument("--replay", metavar="YYYY-MM-DD", dest="desk_replay", help="sim mode: replay a recorded day (DESK_SIM_REPLAY)")
    p.add_argument("--symbols", metavar="SYM,...", dest="desk_symbols", help="with --replay: symbols to replay (DESK_SIM_REPLAY_SYMBOLS)")
    p.add_argument("--speed", type=float, metavar="X", dest="desk_speed", help="with --replay: recorded seconds per second (DESK_SIM_REPLAY_SPEED)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr (headless) ")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sim = sub.add_parser("sim", help="run the simulated IB Gateway on its own")
    sim.add_argument("--port", type=int, default=4002, help="TCP port on 127.0.0.1 (default 4002, IB Gateway paper)")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    sim.add_argument("--seed", type=int, default=None, help="market seed (default DESK_SIM_SEED)")
    sim.add_argument("--mispricing-rate", type=float, default=None, metavar="PER_MIN",
                     help="inject simulated option mispricings, per minute (default DESK_SIM_MISPRICING_RATE)")
    sim.add_argument("--max-lines", type=_positive_int, default=100, metavar="N",
                     help="market data lines per connection, stocks and options (default 100, IB's; error 101 beyond)")
    sim.add_argument("--rate", type=_rate, default=0.045, metavar="R",
                     help="risk-free rate of option prices and Greeks, annual fraction (default 0.045)")
    sim.add_argument("--cash", type=_positive_float, default=1_000_000.0, metavar="USD",
                     help="starting cash of the simulated account DU1234567 (default 1,000,000)")
    sim.add_argument("--market-hours", action="store_true",
                     help="orders work only 09:30-16:00 US/Eastern on weekdays, DAY orders expire at the "
                     "close (default: the simulated market is always open)")
    sim.add_argument("--state", metavar="FILE",
                     help="keep the account, orders and executions in this JSON file across restarts "
                     "(read at start, written at exit; default: start afresh)")
    sim.add_argument("--replay", metavar="DATE", help="replay a recorded day from the tick store (imported on "
                     "demand from DESK_LEAN_DIR), e.g. 2015-12-24; needs --symbols")
    sim.add_argument("--symbols", metavar="A,B", help="with --replay: underlyings to replay, e.g. GOOG")
    sim.add_argument("--speed", type=_positive_float, default=1.0, metavar="X",
                     help="market seconds per second (with --replay: 60 = a recorded minute per second)")
    sim.add_argument("--start", metavar="HH:MM", help="with --replay: start time, US/Eastern (default 09:30)")
    sim.add_argument("--pacing", type=_positive_int, nargs="?", const=50, metavar="N",
                     help="refuse client messages above N per second with error 100 (default N 50)")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="ctl")
    ctl = sim_sub.add_parser("ctl", help="send a fault command to a running desk sim: drop, 1100, 1102, 1101, "
                             "outage SECONDS, pacing on [N] | off, status")
    ctl.add_argument("--port", dest="ctl_port", type=int, default=4002, help="port of the desk sim (default 4002)")
    ctl.add_argument("words", nargs="+", metavar="COMMAND")
    imp = sub.add_parser("import", help="import recorded market data into the tick store")
    imp_sub = imp.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lean = imp_sub.add_parser("lean", help="LEAN-format data: minute quote/trade bars, open interest, ticks, daily")
    lean.add_argument("path", help="a LEAN data folder (with equity/, option/) or one of its zip files")
    lean.add_argument("--symbols", metavar="A,B", help="only these underlyings")
    lean.add_argument("--date", action="append", metavar="DATE", help="only this day (repeatable), e.g. 2015-12-24")
    sub.add_parser("doctor", help="check settings, database, Redis and the IB endpoint")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``desk`` console script. Returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.duration is not None and not args.headless:
        print("desk: --duration needs --headless", file=sys.stderr)
        return 2
    try:
        overrides: dict[str, object] = {}
        if args.command is None:
            for arg, name in (("desk_replay", "sim_replay"), ("desk_symbols", "sim_replay_symbols"), ("desk_speed", "sim_replay_speed")):
                if getattr(args, arg, None) is not None:
                    overrides[name] = getattr(args, arg)
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"desk: invalid setting: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # ib_async logs every unknown contract and reconnect at ERROR; desk reports those itself.
        logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    try:
        if args.command == "sim":
            return _run_sim(args, settings)
        if args.command == "import":
            from desk.sim.replay import import_command

            return import_command(args.path, settings.database_url, args.symbols, args.date)
        if args.command == "doctor":
            from desk.doctor import run_doctor

            return asyncio.run(run_doctor(settings))
        if args.headless:
            return asyncio.run(run_headless(settings, duration=args.duration, stats_interval=args.stats_interval))
        from desk.ui.app import run_desk

        return run_desk(settings)
    except KeyboardInterrupt:
        return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an annual rate such as 0.045, got {text!r}") from None
    if not -0.1 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"rate is an annual fraction (0.045 = 4.5%), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an amount of dollars, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive amount, got {text}")
    return value


def _run_sim(args: argparse.Namespace, settings: Settings) -> int:
    from desk.sim import serve

    seed = settings.sim_seed if args.seed is None else args.seed
    if args.sim_command == "ctl":
        from desk.sim.faults import ctl_command

        return ctl_command(args.ctl_port, args.words)
    replay, label = {}, None
    if args.replay:
        from desk.sim.replay import ReplayError, replay_command_kwargs

        try:
            replay, label = replay_command_kwargs(settings.database_url, args.replay, args.symbols, args.start)
        except ReplayError as exc:
            print(f"desk: {exc}", file=sys.stderr)
            return 2
    rate_per_min = settings.sim_mispricing_rate if args.mispricing_rate is None else args.mispricing_rate
    if rate_per_min and not args.replay:
        from desk.sim.mispricing import MispricingSource

        try:
            replay = {"option_source": MispricingSource(rate_per_minute=rate_per_min, seed=seed)}
        except ValueError as exc:
            print(f"desk: --mispricing-rate: {exc}", file=sys.stderr)
            return 2
    try:
        serve(args.host, args.port, seed, max_tickers=args.max_lines, rate=args.rate, cash=args.cash,
              market_hours=args.market_hours, state_file=args.state, speed=args.speed,
              gateway_kwargs=replay, pacing=args.pacing, label=label)
    except OSError as exc:
        print(f"desk: simulator cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an unreadable --state file
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    return 0


def format_stats(runtime, rate: float) -> str:
    """One stats line of the headless collector (UTC time, counters, ticks/s)."""
    now = time.strftime("%H:%M:%S", time.gmtime())
    parts = [f"{now}Z", f"{runtime.broker.state.value:<12}"]
    rec = runtime.recorder.stats if runtime.recorder is not None else None
    if rec is not None:
        parts.append(
            f"received {rec.received:,}  written {rec.written:,}  queued {rec.queued:,}  spooled {rec.spooled:,}"
        )
        if rec.errors:
            parts.append(f"errors {rec.errors} ({rec.last_error})")
    else:
        parts.append(f"received {runtime.broker.ticks_recorded:,}  (recording off)")
    parts.append(f"ticks/s {rate:,.0f}")
    if runtime.publisher is not None:
        ps = runtime.publisher.stats
        parts.append(f"redis {ps.published:,}")
    return "  ".join(parts)


async def run_headless(settings: Settings, *, duration: float | None = None, stats_interval: float = 5.0) -> int:
    """Run the collector until SIGINT / SIGTERM or ``duration`` seconds; flush; return 0.

    Prints a stats line every ``stats_interval`` seconds and a final one after the flush.
    """
    from desk.broker import StateChanged
    from desk.runtime import Runtime, RuntimeStartError

    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_event(event: object) -> None:
        if isinstance(event, StateChanged):
            print(f"desk: {event.state.value}: {event.detail}", flush=True)
        elif hasattr(event, "level") and event.level in ("error", "warning"):
            print(f"desk: {event.level}: {event.text}", flush=True)

    runtime.broker.add_listener(on_event)
    try:
        await runtime.start()
    except RuntimeStartError as exc:
        print(f"desk: {exc}", file=sys.stderr)
        await runtime.stop()
        return 1
    mode = settings.mode.value
    target = "embedded simulator" if settings.embedded_sim else "gateway"
    print(
        f"desk collector: mode {mode}, {target} {runtime.endpoint}, recording to {_redact(settings.database_url) if settings.record else 'nothing'}"
        + (f", publishing to {_redact(settings.redis_url)}" if settings.redis_url else ""),
        flush=True,
    )
    started = loop.time()
    last_t, last_n = started, 0
    try:
        while not stop.is_set():
            timeout = stats_interval
            if duration is not None:
                timeout = min(timeout, max(0.0, started + duration - loop.time()))
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            now = loop.time()
            n = runtime.broker.ticks_recorded
            rate = (n - last_n) / max(now - last_t, 1e-9)
            last_t, last_n = now, n
            print(format_stats(runtime, rate), flush=True)
            if duration is not None and now - started >= duration:
                break
    finally:
        await runtime.stop()
    total = max(loop.time() - started, 1e-9)
    print("flushed; " + format_stats(runtime, runtime.broker.ticks_recorded / total), flush=True)
    return 0


def _redact(url: str | None) -> str:
    """Hide the password in a database / Redis URL for printing."""
    if not url or "@" not in url or "://" not in url:
        return url or ""
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
