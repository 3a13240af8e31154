"""Cash dividends of the option models: the schedule type and the escrowed spot.

Shared by the European formulas (:mod:`desk.pricing.bsm`, :mod:`desk.pricing.iv`) and the
American engine (:mod:`desk.pricing.american`), so the dividend rule exists once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Dividends", "escrowed_spot"]

FloatArray = NDArray[np.float64]

#: Cash dividends: ``(times, amounts)``, years from now (ACT/365) and dollars per share;
#: each 1-D (the same schedule for every option) or 2-D ``(options, dividends)``, NaN-padded.
Dividends = tuple[ArrayLike, ArrayLike]


def _dividend_arrays(dividends: Dividends) -> tuple[FloatArray, FloatArray]:
    try:
        times, amounts = dividends
    except (TypeError, ValueError) as exc:
        raise ValueError("dividends must be (times, amounts): years from now and dollars per share") from exc
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    a = np.atleast_1d(np.asarray(amounts, dtype=np.float64))
    if t.shape != a.shape:
        raise ValueError(f"dividend times and amounts must have one shape; got {t.shape} and {a.shape}")
    if np.any(a < 0):
        raise ValueError("dividend amounts must be >= 0 (dollars per share)")
    return t, a


def escrowed_spot(S: ArrayLike, T: ArrayLike, r: ArrayLike, dividends: Dividends | None) -> FloatArray:
    """``S - sum_i D_i e^{-r t_i}`` over the cash dividends with ``0 < t_i <= T`` (dollars per
    share), broadcast to the shape of ``S``, ``T`` and ``r``. ``dividends``: see
    :data:`Dividends`; ``None`` returns ``S``. Raises ``ValueError`` for mismatched shapes or
    negative amounts."""
    s = np.asarray(S, dtype=np.float64)
    if dividends is None:
        return np.broadcast_arrays(s, np.asarray(T, dtype=np.float64), np.asarray(r, dtype=np.float64))[0].copy()
    times, amounts = _dividend_arrays(dividends)
    t = np.asarray(T, dtype=np.float64)[..., None]
    rr = np.asarray(r, dtype=np.float64)[..., None]
    live = (times > 0) & (times <= t) & np.isfinite(amounts)
    pv: FloatArray = np.where(live, np.nan_to_num(amounts) * np.exp(-rr * np.where(live, times, 0.0)), 0.0).sum(axis=-1)
    return s - pv
