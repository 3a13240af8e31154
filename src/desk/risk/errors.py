"""Exceptions of :mod:`desk.risk`: the input error is the domain's, raised by the order
intent's own validation and by the risk engine alike."""

from __future__ import annotations

from desk.domain.intent import RiskInputError

__all__ = ["RiskInputError"]
