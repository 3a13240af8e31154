"""The standard normal distribution function N(x) = P(Z <= x), Z ~ N(0, 1): SciPy's
``scipy.special.ndtr`` (float64 in, float64 out, elementwise over arrays of any shape).

SciPy is imported on the first call, not with the module: ``import scipy.special`` costs
about 0.1 s, and the engine's start (the simulator, the chain's pricer, the scanners all
import desk.pricing) must not pay it before the first quote; the first chain flush does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ndtr"]


def ndtr(x: Any) -> Any:
    """N(x) elementwise: a float64 array of ``x``'s shape (a NumPy float for a scalar)."""
    from scipy.special import ndtr as scipy_ndtr  # bound once; later calls are a dict lookup

    return scipy_ndtr(x)
