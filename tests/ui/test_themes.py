"""Theme files: the shipped ones mirror the built-ins; bad files are reported and skipped."""

from pathlib import Path

import pytest

from desk.ui.themes import (
    DESK_VARIABLES,
    ThemeFileError,
    builtin_themes,
    load_theme_file,
    load_themes,
    project_themes_dir,
)

GOOD = """
name = "my-theme"
dark = true
primary = "#112233"
[variables]
price-up = "#00ff00 50%"
footer-key-foreground = "#ffffff"
"""


def test_project_themes_mirror_builtins():
    errors: list[str] = []
    themes = {t.name: t for t in load_themes([project_themes_dir()], errors=errors)}
    assert errors == []
    for builtin in builtin_themes():
        assert themes[builtin.name] == builtin, f"themes/{builtin.name}.toml drifted from builtin_themes()"
        assert set(DESK_VARIABLES) <= set(builtin.variables)


def test_good_file_loads(tmp_path: Path):
    (tmp_path / "mine.toml").write_text(GOOD)
    theme = load_theme_file(tmp_path / "mine.toml")
    assert theme.name == "my-theme"
    assert theme.primary == "#112233"
    assert theme.variables["price-up"] == "#00ff00 50%"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = 'x'\nprimary = '#123456'\n[oops", "not valid TOML"),
        ("primary = '#123456'", "missing 'name'"),
        ("name = 'x'", "missing 'primary'"),
        ("name = 'x'\nprimary = 'bleu'", "'primary' is not a colour: 'bleu'"),
        ("name = 'x'\nprimary = '#123456'\nprimay = '#123456'", "unknown key 'primay'"),
        ("name = 'x'\nprimary = '#123456'\ndark = 'yes'", "'dark' must be true or false"),
        ("name = 'x y'\nprimary = '#123456'", "may only hold letters"),
        ("name = 'x'\nprimary = '#123456'\n[variables]\nprice-up = 'greenish'", "'variables.price-up' is not a colour"),
        ("name = 'x'\nprimary = '#123456'\n[variables]\nfoo = 3", "'variables.foo' must be a string"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ThemeFileError) as info:
        load_theme_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_load_themes_skips_bad_files_and_keeps_going(tmp_path: Path):
    (tmp_path / "a-bad.toml").write_text("name = 'broken'\nprimary = 'no-such-colour'\n")
    (tmp_path / "b-good.toml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a theme")
    errors: list[str] = []
    themes = load_themes([tmp_path / "missing", None, tmp_path], errors=errors)
    assert [t.name for t in themes] == ["my-theme"]
    assert len(errors) == 1 and "a-bad.toml" in errors[0]


def test_later_folders_override_earlier(tmp_path: Path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    (first / "t.toml").write_text(GOOD)
    (second / "t.toml").write_text(GOOD.replace("#112233", "#445566"))
    themes = load_themes([first, second])
    assert len(themes) == 1 and themes[0].primary == "#445566"
