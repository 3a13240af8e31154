"""Exceptions of :mod:`desk.risk`."""

from __future__ import annotations


class RiskInputError(ValueError):
    """An order intent, limit or market context is malformed. ``str()`` is one line naming
    the field and the problem, e.g. ``quantity must be a positive whole number, got -5``."""
