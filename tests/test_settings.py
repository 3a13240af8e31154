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
