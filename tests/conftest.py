"""Shared test set-up. This folder is on sys.path (pytest's prepend import mode puts the
folder of a rootless conftest there), so test helpers such as ``netfaults`` import by name."""

import pytest


@pytest.fixture(autouse=True)
def _workspace_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The desk saves the user's workspace (desk.workspace) when the watchlist or theme
    changes: in the tests that goes to a temporary file, never to the user's config dir."""
    monkeypatch.setenv("DESK_WORKSPACE_FILE", str(tmp_path_factory.mktemp("workspace") / "workspace.json"))


@pytest.fixture(autouse=True)
def _engine_socket_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every engine a test starts serves its API on a socket of its own (short path: a
    Unix socket path has at most 107 bytes), never on the user's."""
    monkeypatch.setenv("DESK_ENGINE_SOCKET", str(tmp_path_factory.mktemp("e") / "engine.sock"))
