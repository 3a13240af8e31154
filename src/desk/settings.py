"""desk settings: environment variables with the ``DESK_`` prefix, or a ``.env`` file.

Every field's docstring is the user's documentation: ``.env.example`` carries the same
text (``tests/test_settings.py`` checks that every field appears there).

Invalid values raise :class:`SettingsError` with one line naming the variable, e.g.
``DESK_IB_PORT: Input should be a valid integer, got 'abc'``.
"""

from __future__ import annotations

import codecs
import difflib
import io
import os
import re
import tempfile
from collections.abc import Iterable
from contextvars import ContextVar
from enum import Enum
from pathlib import Path
from typing import Annotated

import platformdirs
from dotenv.parser import parse_stream
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from desk.domain.secrets import redact_url
from desk.domain.shard import Shard
from desk.risk.limits import RiskLimits

APP_NAME = "desk"

#: The risk engine's default limits: the one definition of each default (desk.risk.limits).
_LIMITS = RiskLimits()

#: Default watchlist: the simulator's universe, so the first start shows every symbol.
DEFAULT_WATCHLIST = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA"]

_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,11}$")


class Mode(str, Enum):
    """Where orders and market data come from."""

    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


def default_data_dir() -> Path:
    """Per-user data directory (``~/.local/share/desk`` on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_engine_socket() -> Path:
    """``engine.sock`` in the user's runtime directory (``$XDG_RUNTIME_DIR/desk``), or in
    ``desk-UID`` of the temporary directory where there is none (containers, macOS)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME / "engine.sock"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"{APP_NAME}-{uid}" / "engine.sock"


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'desk.sqlite3'}"


class SettingsError(Exception):
    """A setting has an invalid value. ``str()`` is one line naming the variable."""


class Settings(BaseSettings):
    """All settings of desk. Read from ``DESK_*`` variables, then ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="DESK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    mode: Mode = Mode.SIM
    """sim (embedded simulated IB Gateway, the default), paper or live."""

    ib_host: str = "127.0.0.1"
    """Host of TWS / IB Gateway (paper and live modes, or an external simulator)."""

    ib_port: int = Field(default=0, ge=0, le=65535)
    """TWS / IB Gateway API port. 0 picks the default: in sim mode an embedded simulator
    on a free port; paper 4002 (IB Gateway; TWS paper is 7497); live 4001 (TWS live is 7496).
    In sim mode a non-zero port connects to an already running `desk sim --port N`."""

    ib_client_id: int = Field(default=1, ge=0, le=2**31 - 1)
    """API client id. Each connection to one gateway needs its own (error 326 otherwise)."""

    ib_connect_timeout: float = Field(default=4.0, gt=0, le=120)
    """Seconds to wait for the gateway when connecting (a gateway that accepts the socket
    but never finishes the handshake is given up after this)."""

    ib_client_id_fallback: int = Field(default=0, ge=0, le=32)
    """After error 326 (client id already in use, e.g. held by a crashed client), try up
    to this many next client ids, saying so. 0: keep retrying the same id."""

    ib_market_data_type: int = Field(default=1, ge=1, le=4)
    """reqMarketDataType sent after every connect: 1 live, 2 frozen, 3 delayed, 4 delayed
    frozen (TWS forgets it at each connection)."""

    ib_restart_time: str | None = None
    """The gateway's daily auto-restart time, HH:MM (TWS / IB Gateway "Lock and Exit"
    settings), in DESK_IB_RESTART_TIMEZONE: disconnects then are expected, the status bar
    counts down to it and reconnects retry every few seconds. Empty: no restart window."""

    ib_restart_timezone: str = "America/New_York"
    """Time zone of DESK_IB_RESTART_TIME (IANA name)."""

    ib_restart_minutes: float = Field(default=10.0, gt=0, le=120)
    """How long the daily restart window lasts, minutes."""

    stale_stock_seconds: float = Field(default=30.0, gt=0)
    """A stock line with no tick for this many seconds while its market is open is marked
    stale and requested again (a silently dead line)."""

    stale_option_seconds: float = Field(default=120.0, gt=0)
    """The same for an option line (options quote less often than stocks)."""

    database_url: str = Field(default_factory=default_database_url)
    """Where ticks are recorded. Default: a SQLite file in the user's data directory.
    PostgreSQL / TimescaleDB: postgresql+psycopg://user:password@host:5432/dbname"""

    redis_url: str | None = None
    """Optional Redis for tick fan-out, e.g. redis://127.0.0.1:6379/0. Empty: no Redis."""

    watchlist: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_WATCHLIST))
    """Comma-separated symbols shown at start-up."""

    sim_seed: int = 7
    """Seed of the simulator's synthetic market (same seed, same market)."""

    sim_port: int = Field(default=0, ge=0, le=65535)
    """Port of the embedded simulator on 127.0.0.1 (0: any free port), for pointing another
    IB program at the desk's simulated gateway."""

    sim_paused: bool = False
    """The embedded simulator's market stands still after the opening quotes (screenshots,
    demos, step-by-step tests). Its quotes then age: the ticket's stale-quote check refuses
    orders once they are older than the risk limit's (10 s by default)."""

    sim_mispricing_rate: float = Field(default=0.0, ge=0, le=600)
    """Simulated option mispricings injected per minute by the embedded simulator (0: none),
    so the opportunities pane can be shown working; each lasts a few seconds and is
    labelled simulated (desk.sim.mispricing)."""

    sim_replay: str = ""
    """Replay a recorded day instead of the synthetic market (embedded simulator): a date
    YYYY-MM-DD in the store, imported on demand from the LEAN data folder (DESK_LEAN_DIR,
    default the sample data in the package: GOOG 2015-12-24, SPY 2013-10-07) if the store lacks it. Empty: the synthetic market."""

    sim_replay_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated symbols to replay with DESK_SIM_REPLAY (they also form the watchlist)."""

    sim_replay_speed: float = Field(default=60.0, gt=0, le=100_000)
    """Replay speed: recorded seconds per wall-clock second (1 = real time)."""

    theme: str = "desk-dark"
    """Colour theme: desk-dark, desk-light, any Textual theme, or a theme file in themes/."""

    workspace_file: Path | None = None
    """Where the desk keeps the watchlist and theme between runs (JSON). Default:
    workspace.json in the user's config directory. A DESK_WATCHLIST or DESK_THEME given
    explicitly wins over the saved one."""

    themes_dir: Path | None = None
    """Extra folder of theme files (*.toml); themes/ of the project is always searched."""

    record: bool = True
    """Record every tick to the database (the desk and the headless collector)."""

    flush_interval: float = Field(default=0.25, gt=0, le=60)
    """Seconds between recorder flushes at most (batches also flush at flush_rows)."""

    flush_rows: int = Field(default=5000, ge=1, le=1_000_000)
    """Rows per recorder batch at most."""

    data_check_at_close: bool = False
    """Headless collector: run `desk data check` on each day's recorded ticks five minutes
    after the exchange's close, print its lines and keep them in table data_quality."""

    shard: str = ""
    """I/N: this collector records shard I of N of the symbols (a stable split by symbol,
    desk.domain.shard) with client id DESK_IB_CLIENT_ID + I - 1, so N collectors share the
    market data lines of N connections and one database without duplicates. Empty: every
    symbol."""

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on this port
    (0: any free port, said at start). Empty: no metrics server."""

    metrics_host: str = "127.0.0.1"
    """Address the metrics server listens on (0.0.0.0 for every interface)."""

    engine_api: bool = True
    """Serve the engine API (desk.engine) on engine_socket, so that `desk order`,
    `desk --attach` and other views use this engine instead of opening their own gateway
    connection. `desk` runs its engine in a process of its own and its view attaches over
    this API; False runs the engine in the view's process (no socket, no other views)."""

    engine_socket: Path | None = None
    """The engine API's Unix socket (mode 0600: only you can attach). Default: engine.sock
    in desk/ of your runtime directory ($XDG_RUNTIME_DIR, else a private folder in the
    temporary directory)."""

    engine_tcp_port: int = Field(default=0, ge=0, le=65535)
    """Also serve the engine API on 127.0.0.1:PORT (loopback only), for a view that cannot
    reach the Unix socket (a container, another sandbox): `desk --attach 127.0.0.1:PORT`.
    TCP views must send the engine's token, written to engine.token beside the socket
    (mode 0600) at each start. 0: no TCP."""

    engine_token: SecretStr = SecretStr("")
    """The token a view sends to an engine's TCP port (`desk --attach HOST:PORT`) when it
    cannot read the engine's engine.token file. Empty: read that file."""

    tick_retention_days: float = Field(default=0.0, ge=0)
    """Ticks older than this many days are deleted (TimescaleDB: whole chunks dropped)
    after each connect and every hour. 0 keeps everything (about 100 MB an hour at 145
    ticks/s on SQLite)."""

    db_write_timeout: float = Field(default=10.0, gt=0, le=600)
    """Seconds a write to PostgreSQL may wait for a server that stopped answering before
    the database is treated as down and the rows are spooled (so memory stays bounded)."""

    spool_dir: Path | None = None
    """Where the recorder spools batches while the database is unreachable, one folder
    per database (rows are only ever written to the database they were spooled for), and
    the audit log its rows. Must be writable, or the desk does not start.
    Default: spool/ in the user's data directory."""

    # --- market data lines and the option chain (desk.broker.chains) -----------------

    market_data_lines: int = Field(default=100, ge=1, le=10_000)
    """Market data lines your IB account may hold at once (IB's default is 100; quote
    booster packs add more). The watchlist and the option chain share them; a chain
    window that needs more lines than are free is trimmed from the far strikes in."""

    chain_strikes: str = "20"
    """Strikes the option chain shows around the money: a count (20) or a range of the
    underlying price (10% for +/-10 %). + and - change it in the chain pane."""

    chain_rate: float = Field(default=0.04, gt=-0.5, lt=1.0)
    """Risk-free rate for the chain's own IVs and Greeks, continuously compounded annual
    fraction (0.04 = 4 %). The forward comes from put-call parity, so it matters little."""

    chain_stale_seconds: float = Field(default=30.0, gt=0)
    """An option quote not updated for this many seconds is marked stale (*) in the chain."""

    # --- orders: safety gates (desk.safety) -------------------------------------------

    orders_enabled: bool = False
    """Allow orders to leave in paper and live modes (sim mode always allows them).
    Live mode also needs the override file and the symbol typed to confirm each order."""

    live_override_file: Path | None = None
    """Live mode only sends orders while this file exists (create it on purpose, delete it
    to stop). Default: live-trading-override in the user's data directory."""

    kill_switch_file: Path | None = None
    """Where the kill switch's state is kept, so an engaged switch survives a restart.
    Default: kill-switch in the user's data directory."""

    # --- orders: pre-trade risk limits (desk.risk; defaults are RiskLimits') -----------

    risk_max_order_quantity: int = Field(default=_LIMITS.max_order_quantity, ge=0)
    """Largest stock order, in shares."""

    risk_max_order_contracts: int = Field(default=_LIMITS.max_order_contracts, ge=0)
    """Largest option or combo order, in contracts (combo units)."""

    risk_max_notional: float = Field(default=_LIMITS.max_notional, ge=0)
    """Largest order value in dollars: quantity x price x multiplier, and for a combo the
    gross over its legs (so a wide short box cannot hide behind its small net price)."""

    risk_max_working_notional: float = Field(default=_LIMITS.max_working_notional, ge=0)
    """Largest total value in dollars of every working order plus the new one."""

    risk_price_collar_pct: float = Field(default=_LIMITS.price_collar_pct, ge=0)
    """Collar: how far beyond the touch a limit may be (a buy above the ask, a sell below
    the bid), in percent of the touch price; a limit at or inside the touch always passes.
    The allowance is the largest of this, DESK_RISK_COLLAR_TICKS and DESK_RISK_COLLAR_SPREADS."""

    risk_collar_ticks: int = Field(default=_LIMITS.collar_ticks, ge=0)
    """Collar: how far beyond the touch a limit may be, in ticks of the contract."""

    risk_collar_spreads: float = Field(default=_LIMITS.collar_spreads, ge=0)
    """Collar: how far beyond the touch a limit may be, in bid-ask spreads."""

    risk_duplicate_window: float = Field(default=_LIMITS.duplicate_window_s, ge=0)
    """Seconds during which sending the same order again is refused as a duplicate."""

    risk_max_orders_per_minute: int = Field(default=_LIMITS.max_orders_per_minute, ge=0)
    """Most orders sent in any 60 seconds."""

    risk_max_position_shares: int = Field(default=_LIMITS.max_position_shares, ge=0)
    """Largest position per stock, in shares (long or short), working orders included."""

    risk_max_position_contracts: int = Field(default=_LIMITS.max_position_contracts, ge=0)
    """Largest position per option contract (conId), in contracts, working orders included."""

    risk_daily_loss_limit: float = Field(default=_LIMITS.daily_loss_limit, ge=0)
    """Dollars: once today's P&L is at or below minus this, only orders that reduce
    positions are allowed."""

    risk_restricted_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated symbols that may not be traded (options on them neither)."""

    risk_stale_quote_seconds: float = Field(default=_LIMITS.stale_quote_s, gt=0)
    """A quote older than this many seconds blocks an order on that instrument."""

    risk_sim_any_hours: bool = True
    """In sim mode, allow orders at any hour (the simulated market never closes).
    Paper and live modes always check NYSE hours."""

    # --- arbitrage scanners (desk.arbitrage) ------------------------------------------

    arb_rate: float = Field(default=0.04, gt=-0.5, lt=1.0)
    """Rate that discounts strikes in the arbitrage scanners (conversions, reversals, boxes,
    vertical bounds), continuously compounded annual fraction (0.04 = 4 %). Use your own
    financing rate: an edge smaller than an error in this rate is no arbitrage."""

    arb_borrow_rate: float = Field(default=0.0025, ge=0, lt=10)
    """Annual fee for borrowing stock to sell short in reversals, continuously compounded
    fraction of the short sale's value (0.0025 = 0.25 %, an easy-to-borrow stock)."""

    arb_min_edge: float = Field(default=0.0, ge=0)
    """Dollars per combo after commissions at or below which an opportunity is not shown."""

    arb_fee_per_contract: float = Field(default=0.0, ge=0)
    """Exchange, regulatory and clearing fees per option contract, dollars, added to the
    IBKR fixed commissions the scanners charge (the order ticket's estimate leaves them out)."""

    arb_full_scan_seconds: float = Field(default=1.0, ge=0)
    """Seconds between full rescans of a chain; in between only the expiries and strikes
    whose quotes changed are rescanned (0: always a full scan)."""

    @field_validator("ib_restart_time")
    @classmethod
    def _restart_time(cls, value: str | None) -> str | None:
        if value is None or not str(value).strip():
            return None
        text = str(value).strip()
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError("must be a time of day HH:MM (24 h)")
        return text

    @field_validator("ib_restart_timezone")
    @classmethod
    def _restart_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as America/New_York") from None
        return value

    @field_validator("watchlist", "risk_restricted_symbols", "sim_replay_symbols", mode="before")
    @classmethod
    def _split_watchlist(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in re.split(r"[,\s]+", value) if part]
        if isinstance(value, list | tuple):
            out: list[str] = []
            for item in value:
                symbol = str(item).strip().upper()
                if not _SYMBOL_RE.match(symbol):
                    raise ValueError(f"{item!r} is not a symbol")
                if symbol not in out:
                    out.append(symbol)
            return out
        return value

    @field_validator("chain_strikes")
    @classmethod
    def _check_chain_strikes(cls, value: str) -> str:
        from desk.domain.options import WindowSpec  # the one parser of the window syntax

        return WindowSpec.parse(value).text

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("sqlite://", "postgresql", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///~"):
            value = "sqlite:///" + str(Path(value[len("sqlite:///") :]).expanduser())
        if _PARSE_DATABASE_URL.get():  # not for a view (see load_settings)
            _parse_database_url(value)
        return value

    @field_validator("sim_replay")
    @classmethod
    def _check_replay_day(cls, value: str) -> str:
        value = value.strip()
        if value:
            from datetime import date

            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError("must be a date YYYY-MM-DD") from None
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("shard")
    @classmethod
    def _check_shard(cls, value: str) -> str:
        if not value.strip():
            return ""
        from desk.domain.shard import parse_shard

        return str(parse_shard(value))

    @property
    def shard_of(self) -> Shard:
        """The :class:`~desk.domain.shard.Shard` this process records (1/1 without one)."""
        from desk.domain.shard import Shard, parse_shard

        return parse_shard(self.shard) if self.shard else Shard(1, 1)

    @property
    def effective_watchlist(self) -> list[str]:
        """The symbols this process subscribes: the replay's or the watchlist, this
        shard's only."""
        symbols = self.sim_replay_symbols if self.sim_replay else self.watchlist
        return self.shard_of.select(symbols)

    @property
    def effective_client_id(self) -> int:
        """``ib_client_id`` plus the shard's index minus one (each shard its own id)."""
        return self.ib_client_id + self.shard_of.index - 1

    @model_validator(mode="after")
    def _replay_needs_symbols(self) -> Settings:
        if self.sim_replay and not self.sim_replay_symbols:
            raise ValueError("DESK_SIM_REPLAY needs DESK_SIM_REPLAY_SYMBOLS (e.g. GOOG)")
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to; 0 in sim mode means "start the embedded simulator"."""
        if self.ib_port:
            return self.ib_port
        return {Mode.SIM: 0, Mode.PAPER: 4002, Mode.LIVE: 4001}[self.mode]

    @property
    def embedded_sim(self) -> bool:
        """True when the desk must start its own simulated gateway."""
        return self.mode is Mode.SIM and self.ib_port == 0

    @property
    def effective_spool_dir(self) -> Path:
        return self.spool_dir or default_data_dir() / "spool"

    @property
    def effective_live_override_file(self) -> Path:
        """The live-trading override file (``live_override_file`` or its default)."""
        return self.live_override_file or default_data_dir() / "live-trading-override"

    @property
    def effective_engine_socket(self) -> Path:
        """The engine API's socket (``engine_socket`` or :func:`default_engine_socket`)."""
        return self.engine_socket or default_engine_socket()

    @property
    def effective_kill_switch_file(self) -> Path:
        """The kill switch's state file (``kill_switch_file`` or its default)."""
        return self.kill_switch_file or default_data_dir() / "kill-switch"


#: DESK_* variables that are not settings but are read elsewhere: allowed in the environment.
OTHER_VARIABLES = {
    "DESK_LEAN_DIR": "folder of LEAN-format market data (desk.store.lean)",
}
#: Prefix reserved for the test suite's own variables (DESK_TEST_PG_URL, ...).
TEST_PREFIX = "DESK_TEST_"


def setting_names() -> list[str]:
    """Every ``DESK_*`` variable that is a setting, upper case."""
    return ["DESK_" + name.upper() for name in Settings.model_fields]


def _unknown(keys: Iterable[str], where: str) -> list[str]:
    known = set(setting_names())
    out = []
    for key in keys:
        upper = key.upper()
        if not upper.startswith("DESK_") or upper in known or upper in OTHER_VARIABLES or upper.startswith(TEST_PREFIX):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; desk --help and .env.example list the settings"
        out.append(f"{key} ({where}) is not a desk setting{hint}")
    return out


def read_env_file(path: Path) -> tuple[str, str]:
    """The text and encoding of a ``.env`` file: UTF-8 (with or without BOM), UTF-16 with
    a BOM (Windows Notepad's "Unicode"), else Windows-1252 (Notepad's "ANSI"), else
    Latin-1. Raises :class:`SettingsError` (one line) if the file cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "cp1252", "latin-1"]
    for encoding in candidates:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            error = exc
    raise SettingsError(f"{path}: not text in {candidates[0]} (byte {error.start})")


def _env_file_keys(path: Path, text: str) -> list[str]:
    """The variable names of a ``.env`` text; :class:`SettingsError` naming the first line
    python-dotenv cannot parse."""
    keys = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            snippet = binding.original.string.strip().splitlines()[0][:60] if binding.original.string.strip() else ""
            raise SettingsError(f"{path} line {binding.original.line}: cannot parse {snippet!r}: expected NAME=value")
        if binding.key:
            keys.append(binding.key)
    return keys


def _parse_database_url(value: str) -> None:
    """Parse a normalised ``DESK_DATABASE_URL`` with the store's parser (SQLAlchemy's);
    ``ValueError`` naming the problem (no password) if it cannot be used."""
    from desk.store.errors import StoreError  # the store's one parser of database URLs
    from desk.store.urls import parse_database_url

    try:
        target = parse_database_url(value)
        target.sqlalchemy_url.port  # noqa: B018 (parses the port: "db:abc" fails here)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    except ValueError:
        raise ValueError("the port is not a number") from None


def check_database_url(settings: Settings) -> str | None:
    """The store's check of ``settings.database_url``, for settings loaded with
    ``store=False`` by a view that then starts an engine: one line
    (``DESK_DATABASE_URL: ...``, no password) or None."""
    try:
        _parse_database_url(settings.database_url)
    except ValueError as exc:
        return f"DESK_DATABASE_URL: {exc}"
    return None


#: False while :func:`load_settings` builds the settings of a process that does not open the
#: store itself: ``DESK_DATABASE_URL`` is then only checked for its scheme, not parsed (the
#: parser is SQLAlchemy's, 0.15-0.35 s of imports a view does not need before its engine
#: starts; `desk` checks it with :func:`check_database_url` once the engine is on its way)
_PARSE_DATABASE_URL: ContextVar[bool] = ContextVar("desk_parse_database_url", default=True)


def load_settings(env_file: Path | str | None = ".env", *, store: bool = True, **overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, the ``env_file`` (``.env`` in the
    current folder; ``None``: none) and ``overrides``. ``store=False``: for a view, which
    does not open the tick store itself, the database URL is checked for its scheme only
    (``desk --attach``; ``desk`` calls :func:`check_database_url` once its engine is
    started).

    Raises :class:`SettingsError`, one line per problem and never a traceback: an invalid
    value (naming the variable; passwords in URLs shown as ``***``), an unknown ``DESK_*``
    variable in the environment or the file (with the closest setting's name), a file that
    cannot be read or parsed (naming the line). Any text encoding is read (see
    :func:`read_env_file`).
    """
    problems = _unknown(os.environ, "environment")
    kwargs: dict[str, object] = {"_env_file": None}
    path = Path(env_file) if env_file is not None else None
    if path is not None and path.is_file():
        text, encoding = read_env_file(path)
        problems += _unknown(_env_file_keys(path, text), str(path))
        kwargs = {"_env_file": path, "_env_file_encoding": encoding}
    if problems:
        raise SettingsError("; ".join(problems))
    token = _PARSE_DATABASE_URL.set(store)
    try:
        return Settings(**kwargs, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None
    finally:
        _PARSE_DATABASE_URL.reset(token)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = "DESK_" + "__".join(str(p).upper() for p in err["loc"] if not isinstance(p, int))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if name == "DESK_":  # a check across settings: its message names them
            lines.append(msg)
            continue
        got = err.get("input")
        if isinstance(got, str):
            lines.append(f"{name}: {msg}, got {redact_url(got)!r}")
        elif isinstance(got, int | float) and not isinstance(got, bool):
            lines.append(f"{name}: {msg}, got {got!r}")
        else:
            lines.append(f"{name}: {msg}")
    return "; ".join(lines)
