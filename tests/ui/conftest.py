"""Fixtures of the UI tests; the shared pieces are in ui_testlib."""

from __future__ import annotations

import math

import pytest
from ui_testlib import Settings, make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def nan() -> float:
    return math.nan
