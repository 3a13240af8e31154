"""Command line: ``desk``, ``desk --headless``, ``desk --attach``, ``desk sim``, ``desk import``, ``desk order``, ``desk doctor``.

Every failure the user can cause (bad settings, unreachable services) ends in one line on
stderr starting with ``desk:`` and a non-zero exit code, never a traceback.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error (``desk order``: 3
when a gate or a check refuses the order).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
import time
from collections.abc import Sequence
from typing import Any

from desk import __version__
from desk.domain.secrets import redact_url
from desk.settings import Settings, SettingsError, check_database_url, load_settings


class _CtlHelp(argparse.Action):
    """``desk sim ctl --help``: the usage and the simulator's command list
    (:data:`desk.sim.faults.COMMANDS`, imported only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)  # type: ignore[arg-type]

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option_string: str | None = None
    ) -> None:
        from desk.sim.faults import ctl_help

        parser.print_help()
        print(f"\ncommands:\n{ctl_help()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="desk",
        description="Keyboard-driven terminal trading desk for Interactive Brokers. "
        "Settings come from DESK_* variables or .env (see .env.example).",
    )
    p.add_argument("--version", action="version", version=f"desk {__version__}")
    p.add_argument("--headless", action="store_true", help="run only the collector (no UI): record ticks, print stats")
    p.add_argument(
        "--attach",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="open a view on a running engine (`desk --headless`, or another desk) through its engine "
        "API socket (default DESK_ENGINE_SOCKET, else the user's runtime directory), or its loopback "
        "TCP port 127.0.0.1:PORT (DESK_ENGINE_TCP_PORT; the token from engine.token beside the socket "
        "or DESK_ENGINE_TOKEN); quitting the view leaves the engine running",
    )
    p.add_argument("--for-view", type=int, metavar="PID", help=argparse.SUPPRESS)  # the engine `desk` PID starts
    p.add_argument("--duration", type=float, metavar="SECONDS", help="with --headless: stop after this many seconds")
    p.add_argument(
        "--stats-interval", type=float, default=5.0, metavar="SECONDS", help="with --headless: seconds between stats lines"
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        dest="desk_shard",
        help="with --headless: record shard I of N of the symbols, client id + I - 1 (DESK_SHARD)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        dest="desk_metrics_port",
        help="serve Prometheus /metrics, /healthz and /readyz on this port (DESK_METRICS_PORT)",
    )
    p.add_argument("--replay", metavar="YYYY-MM-DD", dest="desk_replay", help="sim mode: replay a recorded day (DESK_SIM_REPLAY)")
    p.add_argument(
        "--symbols", metavar="SYM,...", dest="desk_symbols", help="with --replay: symbols to replay (DESK_SIM_REPLAY_SYMBOLS)"
    )
    p.add_argument(
        "--speed",
        type=float,
        metavar="X",
        dest="desk_speed",
        help="with --replay: recorded seconds per second (DESK_SIM_REPLAY_SPEED)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr (headless) ")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sim = sub.add_parser("sim", help="run the simulated IB Gateway on its own")
    sim.add_argument("--port", type=int, default=4002, help="TCP port on 127.0.0.1 (default 4002, IB Gateway paper)")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    sim.add_argument("--seed", type=int, default=None, help="market seed (default DESK_SIM_SEED)")
    sim.add_argument(
        "--mispricing-rate",
        type=float,
        default=None,
        metavar="PER_MIN",
        help="inject simulated option mispricings, per minute (default DESK_SIM_MISPRICING_RATE)",
    )
    sim.add_argument(
        "--max-lines",
        type=_positive_int,
        default=100,
        metavar="N",
        help="market data lines per connection, stocks and options (default 100, IB's; error 101 beyond)",
    )
    sim.add_argument(
        "--rate",
        type=_rate,
        default=0.045,
        metavar="R",
        help="risk-free rate of option prices and Greeks, annual fraction (default 0.045)",
    )
    sim.add_argument(
        "--cash",
        type=_positive_float,
        default=1_000_000.0,
        metavar="USD",
        help="starting cash of the simulated account DU1234567 (default 1,000,000)",
    )
    sim.add_argument(
        "--market-hours",
        action="store_true",
        help="orders work only in NYSE sessions (09:30 ET to the close; no weekends or "
        "holidays, 13:00 on half days), DAY orders expire at the close (default: the "
        "simulated market is always open)",
    )
    sim.add_argument(
        "--state",
        metavar="FILE",
        help="keep the account, orders and executions across restarts and crashes: every "
        "change is journaled to FILE.journal (fsynced) and compacted into the JSON snapshot "
        "FILE; read back at start (default: start afresh)",
    )
    sim.add_argument(
        "--replay",
        metavar="DATE",
        help="replay a recorded day from the tick store (imported on "
        "demand from DESK_LEAN_DIR or the sample data in the package), e.g. 2015-12-24; needs --symbols",
    )
    sim.add_argument("--symbols", metavar="A,B", help="with --replay: underlyings to replay, e.g. GOOG")
    sim.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="market seconds per second (with --replay: 60 = a recorded minute per second)",
    )
    sim.add_argument("--start", metavar="HH:MM", help="with --replay: start time, New York time (default the open, 09:30)")
    sim.add_argument(
        "--pacing",
        type=_positive_int,
        nargs="?",
        const=50,
        metavar="N",
        help="refuse client messages above N per second with error 100 (default N 50)",
    )
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="ctl")
    ctl = sim_sub.add_parser(
        "ctl",
        help="send a fault command to a running desk sim: drop, 1100, 1102, 1101, "
        "outage, farm, silent, restart, hold-id, no-status, stuck-executions, pacing, "
        "status (--help lists them)",
        add_help=False,
        description="Send one fault command to the desk sim listening on --port and print "
        "its one-line answer (exit 0; 1 if no simulator listens; 2 if the command failed).",
    )
    ctl.add_argument("-h", "--help", action=_CtlHelp, help="show this help and the commands, then exit")
    ctl.add_argument("--port", dest="ctl_port", type=int, default=4002, help="port of the desk sim (default 4002)")
    ctl.add_argument("words", nargs="+", metavar="COMMAND")
    imp = sub.add_parser("import", help="import recorded market data into the tick store")
    imp_sub = imp.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lean = imp_sub.add_parser("lean", help="LEAN-format data: minute quote/trade bars, open interest, ticks, daily")
    lean.add_argument("path", help="a LEAN data folder (with equity/, option/) or one of its zip files")
    lean.add_argument("--symbols", metavar="A,B", help="only these underlyings")
    lean.add_argument("--date", action="append", metavar="DATE", help="only this day (repeatable), e.g. 2015-12-24")
    sub.add_parser("doctor", help="check settings, database, Redis and the IB endpoint")
    data = sub.add_parser("data", help="data quality of the recorded ticks")
    data_sub = data.add_subparsers(dest="data_command", metavar="check", required=True)
    check = data_sub.add_parser(
        "check",
        help="per symbol and day: RTH coverage, gaps, crossed/locked, stale, "
        "outliers, duplicates, option chain completeness; results into table data_quality",
    )
    check.add_argument(
        "--date", action="append", metavar="YYYY-MM-DD", help="exchange day (repeatable; default: the last session)"
    )
    check.add_argument("--symbols", default="", metavar="A,B", help="only these symbols")
    tail = sub.add_parser("tail", help="show the tick stream on Redis live (DESK_REDIS_URL), through a consumer group")
    tail.add_argument("--stream", default="desk:ticks", help="stream key (default desk:ticks, the collector's)")
    tail.add_argument("--group", default="desk-tail", help="consumer group (default desk-tail; each group sees every tick)")
    tail.add_argument("--consumer", default=None, help="consumer name in the group (default host-pid)")
    tail.add_argument("--symbols", default="", metavar="A,B", help="only these symbols")
    tail.add_argument("--count", type=_positive_int, default=None, metavar="N", help="stop after N ticks")
    tail.add_argument("--from-start", action="store_true", help="a new group starts at the stream's oldest entry")
    add_order_parser(sub)
    return p


def add_order_parser(sub: Any) -> None:
    """Register ``desk order`` on the CLI's subparsers (here, not in :mod:`desk.order_command`:
    parsing the command line must not import the engine API, numpy and the risk engine)."""
    order = sub.add_parser("order", help="preview, place, list or cancel orders through the desk's checks")
    osub = order.add_subparsers(dest="order_command", metavar="{preview,place,list,cancel}", required=True)
    for name, text in (
        ("preview", "every pre-trade check, notional, commission and IB's what-if"),
        ("place", "send the order through every gate and check"),
    ):
        p = osub.add_parser(name, help=text)
        p.add_argument(
            "terms", nargs="+", metavar="TERM", help="ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF]"
        )
        p.add_argument(
            "--leg",
            action="append",
            default=[],
            metavar="LEG",
            help='a combo leg: "BUY 100 STK" or "SELL 1 20261218 600 C" (repeat, 2 to 4)',
        )
        p.add_argument("--outside-rth", action="store_true", help="let a stock limit order work outside regular hours")
        p.add_argument("--confirm", metavar="SYMBOL", help="live mode: the symbol typed to confirm the order")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument(
            "--wait", type=float, default=5.0, metavar="S", help="seconds to wait for quotes and the gateway's answer (default 5)"
        )
        p.add_argument("--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)")
    ls = osub.add_parser("list", help="the gateway's orders and the audit log's states")
    ls.add_argument("--json", action="store_true", help="print one JSON array")
    ls.add_argument("--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)")
    cancel = osub.add_parser("cancel", help="cancel one working order by its orderRef")
    cancel.add_argument("order_ref", metavar="ORDERREF")
    cancel.add_argument("--wait", type=float, default=5.0, metavar="S", help="seconds to wait for the gateway (default 5)")
    cancel.add_argument(
        "--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)"
    )


#: command-line flags that set the engine's settings: (argparse dest, setting, flag)
_ENGINE_FLAGS = (
    ("desk_replay", "sim_replay", "--replay"),
    ("desk_symbols", "sim_replay_symbols", "--symbols"),
    ("desk_speed", "sim_replay_speed", "--speed"),
    ("desk_metrics_port", "metrics_port", "--metrics-port"),
    ("desk_shard", "shard", "--shard"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``desk`` console script. Returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.duration is not None and not args.headless:
        print("desk: --duration needs --headless", file=sys.stderr)
        return 2
    if args.attach is not None and (args.headless or args.command is not None):
        print("desk: --attach opens a view; it does not go with --headless or a command", file=sys.stderr)
        return 2
    try:
        overrides: dict[str, object] = {}
        #: the same flags for the engine process a `desk` starts (its settings are its own)
        engine_flags: list[str] = []
        if args.command is None:
            for arg, name, flag in _ENGINE_FLAGS:
                if getattr(args, arg, None) is not None:
                    overrides[name] = getattr(args, arg)
                    engine_flags += [flag, str(getattr(args, arg))]
        # the view and the engine do not parse the database URL here (SQLAlchemy's parser):
        # a view never opens the store, and the engine checks it on a worker thread while
        # it connects (desk.engine.runtime), so the first quote does not wait for it
        settings = load_settings(store=args.command is not None, **overrides)
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
            from desk.sim.replay_cli import import_command

            return import_command(args.path, settings.database_url, args.symbols, args.date)
        if args.command == "order":
            from desk.order_command import run_order_command

            return run_order_command(args, settings)
        if args.command == "data":
            return run_data_check(settings, args)
        if args.command == "tail":
            return asyncio.run(run_tail(settings, args))
        if args.command == "doctor":
            from desk.engine.doctor import run_doctor

            return asyncio.run(run_doctor(settings))
        if args.attach is not None:
            return _run_attached(settings, args.attach)
        problem = check_paths(settings)
        if problem:
            print(f"desk: {problem}", file=sys.stderr)
            return 2
        if args.headless:
            if args.for_view is not None:  # the engine of a `desk`: the user's saved watchlist
                from desk.workspace import apply_workspace

                settings, _ = apply_workspace(settings)
            return asyncio.run(
                run_headless(settings, duration=args.duration, stats_interval=args.stats_interval, for_view=args.for_view)
            )
        return run_desk(settings, engine_flags)
    except KeyboardInterrupt:
        return 0


def _run_attached(settings: Settings, address: str) -> int:
    """``desk --attach [ADDRESS]``: a terminal view on the engine listening on ADDRESS (its
    Unix socket, default the local engine's, or ``127.0.0.1:PORT``, its loopback TCP port).
    Exit 2 with one line when the address is malformed or no engine answers there."""
    from desk.engine.client import parse_address

    try:
        path = parse_address(address, socket=settings.effective_engine_socket, token=settings.engine_token.get_secret_value())
    except ValueError as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    if not _answers(path):
        print(f"desk: no engine is running on {path} (start one with `desk --headless`, or run `desk`)", file=sys.stderr)
        return 2
    problem = _handshake_problem(path)
    if problem:
        print(f"desk: the engine on {path} refused this view: {problem}", file=sys.stderr)
        return 2
    from desk.engine.view import RemoteDesk
    from desk.ui.app import create_app

    return _run_app(create_app(RemoteDesk(path), settings=settings))


def _run_app(app: Any) -> int:
    """Run the desk app; 0 after a normal quit, else the app's return code (1 after an
    unexpected error, which Textual prints)."""
    result = app.run()
    if getattr(app, "fatal", None):
        print(app.fatal, file=sys.stderr)
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return result if isinstance(result, int) else 0


async def _stop_when_orphaned(stop: asyncio.Event, view_pid: int, interval: float = 0.5) -> None:
    """Set ``stop`` once the view ``view_pid`` that started this engine is gone (this
    process is then no longer its child: the parent pid changes)."""
    while not stop.is_set():
        if os.getppid() != view_pid:
            print("desk: the view that started this engine is gone; stopping", flush=True)
            stop.set()
            return
        await asyncio.sleep(interval)


def _handshake_problem(address: Any) -> str:
    """Why the engine on a TCP ``address`` refuses a view's Hello (a wrong token, another
    API version), or ``""`` (also for a Unix socket: nothing to check before the view)."""
    from desk.engine.client import EngineClient, EngineRequestError, TcpAddress

    if not isinstance(address, TcpAddress):
        return ""

    async def hello() -> str:
        try:
            client = await EngineClient.connect(address, "desk --attach check", timeout=5.0)
        except EngineRequestError as exc:
            return str(exc)
        except (OSError, asyncio.TimeoutError) as exc:
            return f"no answer to the Hello ({exc.__class__.__name__})"
        await client.close()
        return ""

    return asyncio.run(hello())


def _answers(path: Any) -> bool:
    """Whether an engine accepts connections on the Unix socket ``path`` (or on its TCP
    port, a :class:`~desk.engine.client.TcpAddress`)."""
    import socket

    tcp = not isinstance(path, Path)
    probe = socket.socket(
        socket.AF_INET6 if tcp and ":" in path.host else socket.AF_INET if tcp else socket.AF_UNIX, socket.SOCK_STREAM
    )
    try:
        probe.settimeout(2.0)
        probe.connect((path.host, path.port) if tcp else str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def run_desk(settings: Settings, engine_flags: Sequence[str] = ()) -> int:
    """``desk``: the terminal view here and the engine in a process of its own
    (:class:`~desk.engine.process.EngineProcess`, stopped when the view quits, started
    with ``engine_flags``: the command line's ``--replay``, ``--metrics-port``...), or the
    engine already running on the socket (then quitting leaves it running, and the flags,
    which are that engine's to take, are not applied: the view says so). With
    ``DESK_ENGINE_API=0`` (no socket) the engine runs in this process
    (:class:`~desk.engine.local.LocalDesk`). Returns the exit code."""
    from desk.workspace import apply_workspace

    settings, problem = apply_workspace(settings)
    if settings.engine_api:
        from desk.engine.process import EngineProcess

        path = settings.effective_engine_socket
        running = _answers(path)
        owned = None
        if not running:  # first: the engine warms up while the view imports and paints
            # the engine checks DESK_DATABASE_URL itself (SQLAlchemy's parser, ~0.2 s of
            # imports the view does not pay): a refusal ends the view with its one line
            owned = EngineProcess(path, args=engine_flags)
            owned.start()
        from desk.engine.view import RemoteDesk
        from desk.ui.app import create_app

        desk = RemoteDesk(path, owned=owned)
        app = create_app(desk, settings=settings)
        if running:
            ignored = f" ({' '.join(engine_flags)} not applied: they are for a new engine)" if engine_flags else ""
            app.warn_at_start(
                f"an engine is already running on {path}: this desk is a view of it (quitting leaves it running){ignored}"
            )
    else:
        bad_url = check_database_url(settings)
        if bad_url:
            print(f"desk: invalid setting: {bad_url}", file=sys.stderr)
            return 2
        from desk.engine.local import LocalDesk
        from desk.engine.runtime import Runtime
        from desk.ui.app import create_app

        app = create_app(LocalDesk(Runtime(settings)), settings=settings)
    if problem:
        app.warn_at_start(problem)
    return _run_app(app)


def run_data_check(settings: Settings, args: argparse.Namespace) -> int:
    """``desk data check``: one line per symbol and day, written to ``data_quality``. Exit
    0 when every day is clean, 1 when a problem was found, 2 for bad input."""
    from datetime import date, datetime

    from desk.domain.calendar import NEW_YORK, nyse_calendar
    from desk.store import StoreError
    from desk.store.quality import check_store, write_reports

    try:
        days = [date.fromisoformat(d) for d in (args.date or [])]
    except ValueError as exc:
        print(f"desk: --date: {exc}", file=sys.stderr)
        return 2
    if not days:
        today = datetime.now(NEW_YORK).date()
        days = [nyse_calendar().previous_session(today, inclusive=True).day]
    symbols = [s for s in args.symbols.replace(",", " ").split() if s]
    try:
        reports = check_store(settings.database_url, days, symbols or None)
        write_reports(settings.database_url, reports)
    except ValueError as exc:  # not a trading day
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 1
    if not reports:
        print(
            f"no ticks recorded on {', '.join(d.isoformat() for d in days)}" + (f" for {', '.join(symbols)}" if symbols else "")
        )
    for r in reports:
        print(r.line())
    return 1 if any(r.problems for r in reports) else 0


async def run_tail(settings: Settings, args: argparse.Namespace) -> int:
    """``desk tail``: print ticks from the Redis stream as they come (desk.bus.consumer),
    acknowledging them in the consumer group. Exit 0 (Ctrl-C or --count reached), 1 when
    Redis is unreachable, 2 without DESK_REDIS_URL."""
    from desk.bus import BusError
    from desk.bus.consumer import TickConsumer, format_tick

    if not settings.redis_url:
        print("desk: tail needs DESK_REDIS_URL (the Redis the collector publishes to)", file=sys.stderr)
        return 2
    only = {s.strip().upper() for s in args.symbols.split(",") if s.strip()}
    shown = 0
    try:
        async with TickConsumer(
            settings.redis_url,
            stream=args.stream,
            group=args.group,
            consumer=args.consumer,
            start_at="0" if args.from_start else "$",
        ) as consumer:
            while args.count is None or shown < args.count:
                # never read past --count: what is read is acknowledged, and an entry read
                # but not shown would be lost to the group's next reader
                batch = 500 if args.count is None else min(500, args.count - shown)
                for _, tick in await consumer.read(count=batch, block=1.0):
                    if only and tick.symbol.upper() not in only:
                        continue
                    print(format_tick(tick), flush=True)
                    shown += 1
                await consumer.ack()
    except BusError as exc:
        print(f"desk: {exc}", file=sys.stderr)
        return 1
    return 0


def check_paths(settings: Settings) -> str | None:
    """Create the folders the desk writes to (the SQLite file's, the spool) and prove the
    spool writable; one line naming the setting and the problem, or None when all is well.
    Run before start-up, so nothing is accepted that could not be kept."""
    folders = [("DESK_SPOOL_DIR", settings.effective_spool_dir)]
    if settings.database_url.startswith("sqlite:///"):
        folders.append(("DESK_DATABASE_URL", Path(settings.database_url[len("sqlite:///") :]).parent))
    for name, folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if name == "DESK_SPOOL_DIR":
                probe = folder / f".write-test-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as exc:
            return f"{name}: cannot write in {folder}: {exc.strerror or exc}"
    return None


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
        from desk.sim.control import ctl_command

        return ctl_command(args.ctl_port, args.words)
    replay, label = {}, None
    if args.replay:
        from desk.sim.replay_cli import replay_command_kwargs
        from desk.sim.replay_data import ReplayError

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
        serve(
            args.host,
            args.port,
            seed,
            max_tickers=args.max_lines,
            rate=args.rate,
            cash=args.cash,
            market_hours=args.market_hours,
            state_file=args.state,
            speed=args.speed,
            gateway_kwargs=replay,
            pacing=args.pacing,
            label=label,
        )
    except OSError as exc:
        print(f"desk: simulator cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an unreadable, unwritable or busy --state file (one line, names it)
        print(f"desk: {exc}", file=sys.stderr)
        return 2
    return 0


def format_stats(runtime, rate: float) -> str:
    """One stats line of the headless collector (UTC time, counters, ticks/s)."""
    now = time.strftime("%H:%M:%S", time.gmtime())
    parts = [f"{now}Z", f"{runtime.broker.state.value:<12}"]
    rec = runtime.recorder.stats if runtime.recorder is not None else None
    if rec is not None:
        parts.append(f"received {rec.received:,}  written {rec.written:,}  queued {rec.queued:,}  spooled {rec.spooled:,}")
        if rec.errors:
            parts.append(f"errors {rec.errors} ({rec.last_error})")
    else:
        parts.append(f"received {runtime.broker.ticks_recorded:,}  (recording off)")
    parts.append(f"ticks/s {rate:,.0f}")
    parts.append(f"IB messages {runtime.broker.messages_received:,}")
    stale = len(getattr(runtime.broker, "stale_lines", ()))
    if stale or runtime.broker.resubscribes:
        parts.append(f"stale lines {stale}  resubscribed {runtime.broker.resubscribes}x")
    if runtime.publisher is not None:
        ps = runtime.publisher.stats
        parts.append(f"redis {ps.published:,}")
    return "  ".join(parts)


def day_to_check(now: datetime, checked: date | None, delay: timedelta = timedelta(minutes=5)) -> date | None:
    """The exchange day whose data check is due at ``now`` (UTC): the latest session that
    closed at least ``delay`` ago, if it is not ``checked`` already; else None."""
    from desk.domain.calendar import NEW_YORK, nyse_calendar

    cal = nyse_calendar()
    session = cal.previous_session(now.astimezone(NEW_YORK).date(), inclusive=True)
    if session.close + delay > now:
        session = cal.previous_session(session.day)
    return None if session.day == checked else session.day


def _data_check_lines(settings: Settings, day: date) -> list[str]:
    from desk.store import StoreError
    from desk.store.quality import check_store, write_reports

    try:
        reports = check_store(settings.database_url, [day])
        write_reports(settings.database_url, reports)
    except (StoreError, ValueError) as exc:
        return [f"desk: data check of {day}: {exc}"]
    return [f"data check: {r.line()}" for r in reports] or [f"data check: no ticks recorded on {day}"]


async def run_headless(
    settings: Settings, *, duration: float | None = None, stats_interval: float = 5.0, for_view: int | None = None
) -> int:
    """Run the collector until SIGINT / SIGTERM or ``duration`` seconds; flush; return 0.

    Prints a stats line every ``stats_interval`` seconds and a final one after the flush.
    ``for_view``: the pid of the ``desk`` view that started this engine; the engine also
    stops (and flushes) when that process is gone, however it ended (killed, terminal
    closed).
    """
    from desk.broker import StateChanged
    from desk.engine.runtime import Runtime, RuntimeStartError, SettingsRefused

    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # kept in a name: a task needs a reference
    orphan_watch = loop.create_task(_stop_when_orphaned(stop, for_view)) if for_view else None

    def on_event(event: object) -> None:
        if isinstance(event, StateChanged):
            print(f"desk: {event.state.value}: {event.detail}", flush=True)
        elif hasattr(event, "level") and event.level in ("error", "warning"):
            print(f"desk: {event.level}: {event.text}", flush=True)

    runtime.broker.add_listener(on_event)
    try:
        await runtime.start()
    except RuntimeStartError as exc:
        await runtime.stop()  # first: the line below is the log's last (a view reads it)
        if isinstance(exc, SettingsRefused):
            print(f"desk: invalid setting: {exc}", file=sys.stderr)
            return 2
        print(f"desk: {exc}", file=sys.stderr)
        return 1
    mode = settings.mode.value
    target = "embedded simulator" if settings.embedded_sim else "gateway"
    print(
        f"desk collector: mode {mode}, {target} {runtime.endpoint}, recording to {redact_url(settings.database_url) if settings.record else 'nothing'}"
        + (f", publishing to {redact_url(settings.redis_url)}" if settings.redis_url else "")
        + (f", metrics on http://{runtime.metrics.host}:{runtime.metrics.port}/metrics" if runtime.metrics else "")
        + (f", engine API on {runtime.api.path}" if runtime.api is not None else ""),
        flush=True,
    )
    started = loop.time()
    last_t, last_n = started, 0
    checked: date | None = None
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
            day = day_to_check(datetime.now(UTC), checked) if settings.data_check_at_close and settings.record else None
            if day is not None:
                checked = day
                if runtime.recorder is not None:
                    await runtime.recorder.flush()  # the day's last ticks are in the table
                for line in await asyncio.to_thread(_data_check_lines, settings, day):
                    print(line, flush=True)
            if duration is not None and now - started >= duration:
                break
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        await runtime.stop()
    total = max(loop.time() - started, 1e-9)
    print("flushed; " + format_stats(runtime, runtime.broker.ticks_recorded / total), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
