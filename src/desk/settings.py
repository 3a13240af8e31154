"""desk settings: environment variables with the ``DESK_`` prefix, or a ``.env`` file.

Every field's docstring is the user's documentation: ``.env.example`` carries the same
text (``tests/test_settings.py`` checks that every field appears there).

Invalid values raise :class:`SettingsError` with one line naming the variable, e.g.
``DESK_IB_PORT: Input should be a valid integer, got 'abc'``.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "desk"

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
    """Seconds to wait for the gateway when connecting."""

    database_url: str = Field(default_factory=default_database_url)
    """Where ticks are recorded. Default: a SQLite file in the user's data directory.
    PostgreSQL / TimescaleDB: postgresql+psycopg://user:password@host:5432/dbname"""

    redis_url: str | None = None
    """Optional Redis for tick fan-out, e.g. redis://127.0.0.1:6379/0. Empty: no Redis."""

    watchlist: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_WATCHLIST))
    """Comma-separated symbols shown at start-up."""

    sim_seed: int = 7
    """Seed of the simulator's synthetic market (same seed, same market)."""

    sim_mispricing_rate: float = Field(default=0.0, ge=0, le=600)
    """Simulated option mispricings injected per minute by the embedded simulator (0: none),
    so the opportunities pane can be shown working; each lasts a few seconds and is
    labelled simulated (desk.sim.mispricing)."""

    sim_replay: str = ""
    """Replay a recorded day instead of the synthetic market (embedded simulator): a date
    YYYY-MM-DD in the store, imported on demand from the LEAN data folder (DESK_LEAN_DIR,
    default ../shared/data/lean) if the store lacks it. Empty: the synthetic market."""

    sim_replay_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated symbols to replay with DESK_SIM_REPLAY (they also form the watchlist)."""

    sim_replay_speed: float = Field(default=60.0, gt=0, le=100_000)
    """Replay speed: recorded seconds per wall-clock second (1 = real time)."""

    theme: str = "desk-dark"
    """Colour theme: desk-dark, desk-light, any Textual theme, or a theme file in themes/."""

    themes_dir: Path | None = None
    """Extra folder of theme files (*.toml); themes/ of the project is always searched."""

    record: bool = True
    """Record every tick to the database (the desk and the headless collector)."""

    flush_interval: float = Field(default=0.25, gt=0, le=60)
    """Seconds between recorder flushes at most (batches also flush at flush_rows)."""

    flush_rows: int = Field(default=5000, ge=1, le=1_000_000)
    """Rows per recorder batch at most."""

    spool_dir: Path | None = None
    """Where the recorder spools batches while the database is unreachable.
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

    # --- orders: pre-trade risk limits (desk.risk) ------------------------------------

    risk_max_order_quantity: int = Field(default=1000, ge=0)
    """Largest stock order, in shares."""

    risk_max_order_contracts: int = Field(default=20, ge=0)
    """Largest option or combo order, in contracts (combo units)."""

    risk_max_notional: float = Field(default=50_000.0, ge=0)
    """Largest order value in dollars (quantity x price x multiplier)."""

    risk_price_collar_pct: float = Field(default=5.0, ge=0)
    """Largest distance of a limit price from the mid price, in percent of mid."""

    risk_duplicate_window: float = Field(default=10.0, ge=0)
    """Seconds during which sending the same order again is refused as a duplicate."""

    risk_max_orders_per_minute: int = Field(default=20, ge=0)
    """Most orders sent in any 60 seconds."""

    risk_max_position_shares: int = Field(default=5000, ge=0)
    """Largest position per stock, in shares (long or short), working orders included."""

    risk_max_position_contracts: int = Field(default=100, ge=0)
    """Largest position per option contract (conId), in contracts, working orders included."""

    risk_daily_loss_limit: float = Field(default=2000.0, ge=0)
    """Dollars: once today's P&L is at or below minus this, only orders that reduce
    positions are allowed."""

    risk_restricted_symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated symbols that may not be traded (options on them neither)."""

    risk_stale_quote_seconds: float = Field(default=10.0, gt=0)
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
    def effective_kill_switch_file(self) -> Path:
        """The kill switch's state file (``kill_switch_file`` or its default)."""
        return self.kill_switch_file or default_data_dir() / "kill-switch"


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, ``.env`` and ``overrides``.

    Raises :class:`SettingsError` with one line per invalid setting, naming the
    environment variable, instead of pydantic's multi-line report.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None


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
        if isinstance(got, str | int | float) and not isinstance(got, bool):
            lines.append(f"{name}: {msg}, got {got!r}")
        else:
            lines.append(f"{name}: {msg}")
    return "; ".join(lines)
