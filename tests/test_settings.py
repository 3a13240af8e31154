"""Settings: defaults, environment parsing, and one-line errors naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from desk.settings import DEFAULT_WATCHLIST, Mode, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("DESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_sim_on_sqlite_with_the_full_universe() -> None:
    s = load_settings()
    assert s.mode is Mode.SIM
    assert s.embedded_sim
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("desk.sqlite3")
    assert s.redis_url is None
    assert s.watchlist == DEFAULT_WATCHLIST
    assert s.theme == "desk-dark"


def test_environment_overrides_and_normalises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_MODE", "paper")
    monkeypatch.setenv("DESK_WATCHLIST", "spy, aapl,SPY  msft")
    monkeypatch.setenv("DESK_DATABASE_URL", "postgresql://u:p@db:5432/ticks")
    monkeypatch.setenv("DESK_REDIS_URL", "redis://127.0.0.1:6379/1")
    s = load_settings()
    assert s.mode is Mode.PAPER
    assert s.effective_port == 4002 and not s.embedded_sim
    assert s.watchlist == ["SPY", "AAPL", "MSFT"]
    assert s.database_url == "postgresql+psycopg://u:p@db:5432/ticks"
    assert s.redis_url == "redis://127.0.0.1:6379/1"


def test_live_mode_default_port_and_explicit_port() -> None:
    assert load_settings(mode="live").effective_port == 4001
    s = load_settings(mode="sim", ib_port=4010)
    assert s.effective_port == 4010 and not s.embedded_sim


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DESK_SIM_SEED=99\nDESK_THEME=desk-light\n")
    s = load_settings()
    assert s.sim_seed == 99 and s.theme == "desk-light"


def test_sqlite_url_expands_home() -> None:
    s = load_settings(database_url="sqlite:///~/x/desk.sqlite3")
    assert s.database_url == f"sqlite:///{Path.home() / 'x' / 'desk.sqlite3'}"


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("DESK_IB_PORT", "abc", r"^DESK_IB_PORT: .*integer.*got 'abc'$"),
        ("DESK_IB_PORT", "70000", r"^DESK_IB_PORT: .*65535.*got '70000'$"),
        ("DESK_MODE", "real", r"^DESK_MODE: .*'sim', 'paper' or 'live'.*got 'real'$"),
        ("DESK_DATABASE_URL", "mysql://x", r"^DESK_DATABASE_URL: must start with .*got 'mysql://x'$"),
        ("DESK_REDIS_URL", "localhost:6379", r"^DESK_REDIS_URL: must start with redis://.*$"),
        ("DESK_WATCHLIST", "SPY,$$$", r"^DESK_WATCHLIST: '\$\$\$' is not a symbol"),
        ("DESK_FLUSH_INTERVAL", "0", r"^DESK_FLUSH_INTERVAL: .*greater than 0"),
    ],
)
def test_invalid_values_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expect: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert re.search(expect, message), message


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"DESK_{name.upper()}=" in text, name


# --- settings that catch mistakes ----------------------------------------------------------


def test_an_unknown_variable_is_named_with_the_closest_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("DESK_RISK_MAX_NOTONAL=100\n")
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=env)
    assert str(err.value) == f"DESK_RISK_MAX_NOTONAL ({env}) is not a desk setting; did you mean DESK_RISK_MAX_NOTIONAL?"
    # the test suite's own variables and the LEAN folder are not settings, and are allowed
    monkeypatch.setenv("DESK_TEST_PG_URL", "x")
    monkeypatch.setenv("DESK_LEAN_DIR", str(tmp_path))
    assert load_settings(env_file=None).mode is Mode.SIM
    monkeypatch.setenv("DESK_IB_PROT", "4002")
    with pytest.raises(SettingsError, match=r"^DESK_IB_PROT \(environment\) .*did you mean DESK_IB_PORT\?$"):
        load_settings(env_file=None)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("cp1252", b"")],
)
def test_a_dotenv_in_any_windows_encoding_is_read(tmp_path: Path, encoding: str, bom: bytes) -> None:
    env = tmp_path / ".env"
    env.write_bytes(bom + "# caf\u00e9 \u2014 Notepad\nDESK_IB_PORT=4010\nDESK_WATCHLIST=SPY,AAPL\n".encode(encoding))
    s = load_settings(env_file=env)
    assert (s.ib_port, s.watchlist) == (4010, ["SPY", "AAPL"])


def test_an_unparsable_dotenv_line_is_one_line_naming_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DESK_IB_PORT=4010\nthis is not a setting\n")
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=env)
    assert str(err.value) == f"{env} line 2: cannot parse 'this is not a setting': expected NAME=value"


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("postgresql+psycopg://me:s3cret@db:notaport/x", "the port is not a number"),
        ("mysql://me:s3cret@db/x", "must start with"),
        ("sqlite:///", "in-memory SQLite is not supported"),
    ],
)
def test_a_malformed_database_url_is_one_line_and_never_shows_the_password(
    url: str, expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESK_DATABASE_URL", url)
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=None)
    message = str(err.value)
    assert message.startswith("DESK_DATABASE_URL: ") and expect in message and "\n" not in message
    assert "s3cret" not in message


def test_risk_limit_defaults_are_defined_once() -> None:
    from desk.risk import RiskLimits

    assert RiskLimits.from_settings(Settings(_env_file=None)) == RiskLimits(enforce_market_hours=False)


def test_unwritable_folders_stop_start_up_with_one_line(tmp_path: Path) -> None:
    from desk.cli import check_paths

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    good = Settings(database_url=f"sqlite:///{tmp_path / 'db' / 'x.sqlite3'}", spool_dir=tmp_path / "spool", _env_file=None)
    assert check_paths(good) is None and (tmp_path / "db").is_dir() and (tmp_path / "spool").is_dir()
    bad_spool = Settings(database_url=good.database_url, spool_dir=blocker / "spool", _env_file=None)
    assert check_paths(bad_spool) == f"DESK_SPOOL_DIR: cannot write in {blocker / 'spool'}: Not a directory"
    bad_db = Settings(database_url=f"sqlite:///{blocker / 'db' / 'x.sqlite3'}", spool_dir=tmp_path / "spool", _env_file=None)
    assert check_paths(bad_db) == f"DESK_DATABASE_URL: cannot write in {blocker / 'db'}: Not a directory"


def test_a_view_that_never_opens_the_store_does_not_parse_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """``store=False`` (``desk --attach``): the scheme is still checked, the rest is the
    engine's business; every other process parses the URL as before."""
    monkeypatch.setenv("DESK_DATABASE_URL", "postgresql+psycopg://me:s3cret@db:notaport/x")
    assert load_settings(env_file=None, store=False).database_url == "postgresql+psycopg://me:s3cret@db:notaport/x"
    with pytest.raises(SettingsError, match="the port is not a number"):
        load_settings(env_file=None)
    monkeypatch.setenv("DESK_DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError, match="must start with"):
        load_settings(env_file=None, store=False)
