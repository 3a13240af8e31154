"""A package's names imported on first use (PEP 562): its ``__init__`` lists where each
name lives and imports none of them, so importing one of its modules does not load the
rest (``desk.risk``: the settings need only the limits; ``desk.store``: the order path
needs only the audit records, not SQLAlchemy).

The package keeps the real imports under ``typing.TYPE_CHECKING`` for mypy and
import-linter, and sets ``__getattr__ = lazy_exports(__name__, homes, globals())``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: ``homes`` maps each exported name to the
    module defining it; the first access imports that module and keeps the value in
    ``namespace`` (the package's ``globals()``), so later accesses are plain lookups.
    An unknown name raises ``AttributeError`` as a module's missing attribute does."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__
