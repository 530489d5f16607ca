"""Argument checks shared by the risk modules (private).

Each helper turns a user value into the form the numerics need, or raises a ``ValueError`` /
``TypeError`` that names the argument and says what was expected; none of them uses ``assert``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

ArrayLike = np.ndarray | pl.Series | Sequence[float]


def as_float_array(values: object, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """``values`` as a 1-d float64 array of finite numbers."""
    if isinstance(values, pl.Series):
        if values.null_count():
            raise ValueError(f"{name} has null values; drop them first")
        values = values.cast(pl.Float64).to_numpy()
    if isinstance(values, str | bytes) or np.isscalar(values):
        raise TypeError(f"{name} must be a 1-d sequence of numbers, got {type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-d sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has NaN or infinite values; drop them first")
    return arr


def check_level(level: object, name: str = "level") -> float:
    """A confidence level strictly between 0 and 1 (e.g. 0.95)."""
    if isinstance(level, bool) or not isinstance(level, int | float):
        raise TypeError(f"{name} must be a float in (0, 1), got {level!r}")
    value = float(level)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return value


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """An ``int`` (not ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_lambda(lam: object) -> float:
    """The EWMA decay factor, strictly between 0 and 1."""
    if isinstance(lam, bool) or not isinstance(lam, int | float):
        raise TypeError(f"lam must be a float in (0, 1), got {lam!r}")
    value = float(lam)
    if not 0.0 < value < 1.0 or math.isnan(value):
        raise ValueError(
            f"lam must be strictly between 0 and 1 (RiskMetrics uses 0.94), got {lam!r}"
        )
    return value
