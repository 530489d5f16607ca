"""Calibrated prediction intervals by split-conformal regression on held-out residuals.

Fit the model on the training segment, compute residuals ``e_i = y_i - y_pred_i`` on a held-out
calibration segment (the validation segment), and let ``q`` be the ``k``-th smallest score
``|e_i| / s_i`` with ``k = ceil((n + 1) * coverage)``, i.e. the empirical quantile at the
finite-sample corrected rank ``ceil((n + 1) * coverage) / n``. Then ``y_pred ± q * s`` covers a new
exchangeable point with probability ``>= coverage`` (and ``< coverage + 1 / (n + 1)`` without
ties). With ``s = 1`` the interval has constant width; with a normalising scale ``s_t`` known at
prediction time (such as the volatility forecast ``sigma_t``) it is locally adaptive, wide on
volatile days and narrow on calm ones, and stays calibrated under heteroscedastic noise.

This is written here rather than taken from MAPIE: MAPIE is not a dependency, and its fitted
objects wrap the estimator, so they would have to be serialised (skops trust lists included) and
versioned alongside every registered model. Split conformal needs only the single number ``q``
(plus the name of the scale column), which is logged as a parameter of the model's run.
"""

from __future__ import annotations

import math

import numpy as np

from alphadag.risk._checks import ArrayLike, as_float_array, check_level

__all__ = ["conformal_interval", "conformal_quantile", "min_calibration_size"]

_RANK_EPS = 1e-9
"""``(n + 1) * coverage`` is rounded up after subtracting this, so 100 * 0.9 gives rank 90 not 91."""


def _rank(n: int, coverage: float) -> int:
    return math.ceil((n + 1) * coverage - _RANK_EPS)


def min_calibration_size(coverage: float) -> int:
    """Smallest number of calibration residuals for which ``coverage`` gives a finite ``q``.

    >>> min_calibration_size(0.9), min_calibration_size(0.95)
    (9, 19)
    """
    c = check_level(coverage, "coverage")
    n = 1
    while _rank(n, c) > n:
        n += 1
    return n


def _scale_array(scale: object, name: str = "scale") -> np.ndarray:
    s = np.asarray(scale.to_numpy() if hasattr(scale, "to_numpy") else scale, dtype=np.float64)
    if not np.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"{name} must be finite and > 0 (e.g. a volatility forecast)")
    return s


def conformal_quantile(
    residuals: ArrayLike, coverage: float, scale: ArrayLike | None = None
) -> float:
    """Split-conformal quantile ``q`` of the absolute (optionally normalised) residuals.

    Parameters
    ----------
    residuals
        Held-out calibration residuals ``y_true - y_pred`` (never in-sample ones), finite.
    coverage
        Nominal coverage in (0, 1), e.g. 0.9.
    scale
        Optional positive normaliser ``s_i`` per residual, known at prediction time (e.g. the
        volatility forecast): scores are ``|e_i| / s_i`` and intervals ``y_pred ± q * s``.

    Returns
    -------
    float
        The ``ceil((n + 1) * coverage)``-th smallest score.

    Raises
    ------
    ValueError
        If there are fewer than :func:`min_calibration_size` residuals (the interval would be
        infinite), or on non-finite residuals or a non-positive scale.

    >>> conformal_quantile([0.3, -0.1, 0.2, -0.5, 0.05, 0.4, -0.25, 0.15, -0.35], 0.9)
    0.5
    >>> conformal_quantile([0.02, -0.04], 0.5, scale=[0.01, 0.02])   # scores 2, 2
    2.0
    """
    c = check_level(coverage, "coverage")
    e = as_float_array(residuals, "residuals")
    scores = np.abs(e)
    if scale is not None:
        s = _scale_array(scale)
        if s.shape != e.shape:
            raise ValueError(
                f"scale has shape {s.shape}, residuals {e.shape}; pass one per residual"
            )
        scores = scores / s
    n = scores.size
    k = _rank(n, c)
    if k > n:
        raise ValueError(
            f"{n} calibration residuals are too few for coverage {c}: need at least "
            f"{min_calibration_size(c)} (ceil((n + 1) * coverage) <= n)"
        )
    return float(np.partition(scores, k - 1)[k - 1])


def conformal_interval(
    y_pred: ArrayLike | float, q: float, scale: ArrayLike | float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The interval ``(y_pred - q * scale, y_pred + q * scale)`` (``scale = 1`` if omitted).

    Parameters
    ----------
    y_pred
        Point predictions (array-like or a number).
    q
        A quantile from :func:`conformal_quantile` computed with the same kind of scale.
    scale
        Positive normaliser per prediction (broadcast against ``y_pred``), or ``None``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lo, hi)``, float arrays of the broadcast shape.

    >>> lo, hi = conformal_interval([0.01, -0.02], 1.5, scale=[0.01, 0.02])
    >>> lo.round(6).tolist(), hi.round(6).tolist()
    ([-0.005, -0.05], [0.025, 0.01])
    """
    if isinstance(q, bool) or not isinstance(q, int | float | np.floating):
        raise TypeError(f"q must be a number from conformal_quantile, got {q!r}")
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"q must be finite and >= 0, got {q!r}")
    yp = np.asarray(y_pred.to_numpy() if hasattr(y_pred, "to_numpy") else y_pred, dtype=np.float64)
    if not np.isfinite(yp).all():
        raise ValueError("y_pred has NaN or infinite values")
    half = float(q) if scale is None else float(q) * _scale_array(scale)
    try:
        return np.asarray(yp - half, dtype=np.float64), np.asarray(yp + half, dtype=np.float64)
    except ValueError:
        raise ValueError(
            f"scale (shape {np.shape(half)}) does not broadcast against y_pred (shape {yp.shape})"
        ) from None
