"""The promotion gate: a paired test on out-of-sample per-date rank-IC differences.

The challenger's out-of-sample series (:mod:`alphadag.models.oos`) is compared, on the dates
*before the final test segment* only, with each rival scored on the same rows: the current
champion (its own walk-forward series, recomputed from its spec with the same settings) and
each naive baseline. For one rival, with ``IC_c(t)`` and ``IC_r(t)`` the cross-sectional
Spearman correlations of the two forecasts with the realised label on date ``t`` (dates where
both are defined):

    d(t) = IC_c(t) - IC_r(t),   gain = mean d(t),   se = Newey-West (HAC) standard error of
    the mean with Bartlett weights and ``lag >= horizon`` (labels of consecutive dates overlap
    for ``horizon`` sessions, so d(t) is autocorrelated), ``t = gain / se``

(:func:`alphadag.models.ic.daily_ic` and :func:`alphadag.models.ic.ic_difference`, the project's
one IC implementation; the block-bootstrap interval of the gain is reported beside it).

The challenger wins that comparison when ``gain > margin`` **and** ``gain > k * se``. It is
promoted only when it wins every comparison; with no champion the baselines alone must be
beaten, and a challenger that cannot beat them is not promoted (the baseline keeps serving).
The final test segment is never read here. No dagster, no mlflow.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import polars as pl

from alphadag.models.ic import daily_ic, ic_difference

__all__ = ["Comparison", "GateDecision", "compare", "flat_numbers", "gate"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The challenger against one rival on the pre-test out-of-sample dates."""

    rival: str
    gain: float
    se: float
    t: float
    n_dates: int
    lag: int
    ci_lo: float
    ci_hi: float
    challenger_rank_ic: float
    rival_rank_ic: float
    margin: float
    k: float
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, float | int | str | bool]:
        """Plain data (for metadata and MLflow)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether to promote, why, and every comparison behind it."""

    promoted: bool
    reason: str
    comparisons: tuple[Comparison, ...]
    before: dt.date


def compare(
    frame: pl.DataFrame,
    rival: str,
    *,
    horizon: int,
    margin: float,
    k: float,
    challenger: str = "y_pred",
    y_true: str = "y_true",
) -> Comparison:
    """The paired rank-IC test of column ``challenger`` against column ``rival`` of ``frame``.

    ``frame`` holds ``date``, ``y_true`` and both forecasts on the same rows (already restricted
    to the dates the gate may look at).
    """
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"promotion_margin must be a finite number >= 0, got {margin!r}")
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"promotion_k must be a finite number >= 0, got {k!r}")
    diff = ic_difference(
        daily_ic(frame, y_true=y_true, y_pred=challenger),
        daily_ic(frame, y_true=y_true, y_pred=rival),
        horizon,
    )
    gain, se, t, n = float(diff.gain), float(diff.se), float(diff.t), int(diff.n)
    if n < 2 or not math.isfinite(gain) or not math.isfinite(se):
        passed, why = False, f"not enough dates with a defined rank IC on both sides ({n})"
    elif gain <= margin:
        passed, why = False, f"gain {gain:+.4f} is not above the margin {margin:g}"
    elif gain <= k * se:
        passed, why = False, f"gain {gain:+.4f} is not above {k:g} x se {se:.4f} (t {t:.2f})"
    else:
        passed = True
        why = f"gain {gain:+.4f} > margin {margin:g} and > {k:g} x se {se:.4f} (t {t:.2f})"
    return Comparison(
        rival=rival,
        gain=gain,
        se=se,
        t=t,
        n_dates=n,
        lag=int(diff.hac_maxlags),
        ci_lo=float(diff.ci_lo),
        ci_hi=float(diff.ci_hi),
        challenger_rank_ic=float(diff.mean_a),
        rival_rank_ic=float(diff.mean_b),
        margin=float(margin),
        k=float(k),
        passed=passed,
        reason=f"vs {rival}: {why} over {n} dates",
    )


def gate(
    challenger: pl.DataFrame,
    *,
    baselines: tuple[str, ...],
    champion: pl.DataFrame | None,
    before: dt.date,
    horizon: int,
    margin: float,
    k: float = 2.0,
) -> GateDecision:
    """Decide promotion from out-of-sample series (see the module docstring).

    Parameters:
        challenger: the challenger's series (``date, ticker, y_true, y_pred`` and the
            ``baselines`` columns), as :func:`alphadag.models.oos.walk_forward` returns it.
        baselines: the baseline columns of ``challenger`` the challenger must beat.
        champion: the champion's series over the same training set (``date, ticker, y_pred``),
            or ``None`` when there is no champion.
        before: the first date of the final test segment; only earlier dates are compared.
        horizon: label horizon; the HAC lag is at least this.
        margin / k: the gain must exceed ``margin`` and ``k`` standard errors.
    """
    pre = challenger.filter(pl.col("date") < before)
    rivals: dict[str, pl.DataFrame] = {}
    if champion is not None:
        rows = pre.join(
            champion.select("date", "ticker", pl.col("y_pred").alias("champion")),
            on=["date", "ticker"],
            how="inner",
        )
        rivals["champion"] = rows
    for name in baselines:
        rivals[name] = pre
    comparisons = tuple(
        compare(rows, name, horizon=horizon, margin=margin, k=k) for name, rows in rivals.items()
    )
    failed = [c for c in comparisons if not c.passed]
    if failed:
        reason = "refused: " + "; ".join(c.reason for c in failed)
        if champion is None:
            reason += "; no champion, the baseline keeps serving"
        return GateDecision(False, reason, comparisons, before)
    lead = "promoted (no champion): " if champion is None else "promoted: "
    return GateDecision(True, lead + "; ".join(c.reason for c in comparisons), comparisons, before)


def flat_numbers(decision: GateDecision) -> Mapping[str, float]:
    """``gate/<rival>/<gain|se|t|n_dates|passed>`` numbers (MLflow metrics, metadata)."""
    out: dict[str, float] = {}
    for c in decision.comparisons:
        for key in (
            "gain",
            "se",
            "t",
            "n_dates",
            "ci_lo",
            "ci_hi",
            "challenger_rank_ic",
            "rival_rank_ic",
        ):
            out[f"gate/{c.rival}/{key}"] = float(getattr(c, key))
        out[f"gate/{c.rival}/beats"] = float(c.passed)  # not "passed": secret-like key
    out["gate/promoted"] = float(decision.promoted)
    return out
