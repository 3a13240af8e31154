"""Fixtures of the UI tests; the shared pieces are in ui_testlib."""

from __future__ import annotations

import math

import pytest
from ui_testlib import FakeRuntime, Settings, fill_fixed_quotes, make_settings  # noqa: F401


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def runtime(settings) -> FakeRuntime:
    rt = FakeRuntime(settings)
    fill_fixed_quotes(rt)
    return rt


@pytest.fixture
def nan() -> float:
    return math.nan
