"""Out-of-sample predictions by walk-forward retraining: every date scored by an earlier fit.

:func:`fit_schedule` cuts the sorted dates of a training set into prediction blocks of
``refit_every`` dates; :func:`walk_forward` fits the model spec once per block and scores the
block with it. For a block whose first date is ``D[s]`` the fit uses only rows whose

- date is at most ``D[s - 1 - embargo]`` (``embargo >= horizon`` dates are dropped before the
  block, and with ``window`` set only the last ``window`` dates before that gap are used), **and**
- label window ends strictly before the block: ``label_end_date < D[s]``,

so no date is scored by a fit whose training labels read that date or anything after it. The
first block starts once ``min_train_sessions`` dates are available before the embargo gap; from
there the series covers every date of the training set (contiguous over its dates: the embargo
gaps that :func:`~alphadag.models.segments.build_training_set` leaves between segments are not
in the training set, so they are not scored either).

The output is *wide*, one row per ``(date, ticker)``: the model's ``y_pred``, the realised label
``y_true`` (over ``horizon`` sessions), the ``segment`` the training set gave the row, the fit's ``fit_start`` and
``fit_trained_through`` (its first training date and the last date any of its labels reads), and
the naive baselines scored on the same rows (:data:`BASELINE_COLUMNS`):

- ``baseline_momentum``: ``logret_20 * h / 20``, the trailing 20-session return scaled to the
  horizon (the forecast serving falls back to);
- ``baseline_reversal``: ``-logret_5 * h / 5``, short-term reversal, a cross-sectional signal
  whose IC is defined on every date with at least two distinct trailing returns (the zero
  forecast's is not).

Both use only information known at ``t``'s close and are 0 in warm-up. No dagster, no mlflow.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.pipeline import Pipeline

from alphadag.features.model_inputs import missing_sources
from alphadag.models.estimators import ModelSpec, fit_pipeline, predict

__all__ = [
    "BASELINE_COLUMNS",
    "OOS_SCHEMA",
    "PlannedFit",
    "WalkForwardSettings",
    "baseline_columns",
    "experiment_key",
    "fit_schedule",
    "walk_forward",
]

BASELINE_COLUMNS: tuple[str, ...] = ("baseline_momentum", "baseline_reversal")
"""The naive forecasts scored beside the model on every out-of-sample row."""

OOS_SCHEMA: dict[str, Any] = {
    "date": pl.Date,
    "ticker": pl.String,
    "segment": pl.String,
    "horizon": pl.Int64,
    "y_true": pl.Float64,
    "y_pred": pl.Float64,
    "baseline_momentum": pl.Float64,
    "baseline_reversal": pl.Float64,
    "fit_start": pl.Date,
    "fit_trained_through": pl.Date,
}
"""Columns and types of the series :func:`walk_forward` returns."""


@dataclass(frozen=True, slots=True)
class WalkForwardSettings:
    """How often to refit, on which window, with which embargo, from how much history.

    ``window=None`` is an expanding window; an integer keeps the last ``window`` dates before the
    embargo gap. ``embargo=None`` means the label horizon. All counts are dates of the training
    set (sessions).

    >>> WalkForwardSettings(refit_every=21, window=250).to_dict()["window"]
    250
    """

    refit_every: int = 63
    window: int | None = None
    embargo: int | None = None
    min_train_sessions: int = 126

    def __post_init__(self) -> None:
        for name in ("refit_every", "min_train_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer of sessions, got {value!r}")
        for name in ("window", "embargo"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}")
        if self.window is not None and self.window < self.min_train_sessions:
            raise ValueError(
                f"a rolling window of {self.window} sessions is shorter than "
                f"min_train_sessions ({self.min_train_sessions}): no fit could start"
            )

    def embargo_for(self, horizon: int) -> int:
        """The embargo in sessions for ``horizon`` (``horizon`` when unset; never less)."""
        embargo = horizon if self.embargo is None else self.embargo
        if embargo < horizon:
            raise ValueError(
                f"embargo ({embargo}) must be at least the label horizon ({horizon}): a shorter "
                "gap lets a training label window reach the dates it scores"
            )
        return embargo

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for logging with a run."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PlannedFit:
    """One fit: it trains on dates ``train_first..train_last`` (index range into the sorted
    dates, inclusive) and scores dates ``predict_first..predict_last`` (inclusive)."""

    train_first: int
    train_last: int
    predict_first: int
    predict_last: int


def fit_schedule(n_dates: int, settings: WalkForwardSettings, *, horizon: int) -> list[PlannedFit]:
    """The fits of a walk-forward over ``n_dates`` sorted dates (indices, see :class:`PlannedFit`).

    Block ``k`` scores dates ``s .. s + refit_every - 1`` with ``s = embargo +
    min_train_sessions + k * refit_every`` and trains on dates up to ``s - 1 - embargo``.

    >>> [(f.train_first, f.train_last, f.predict_first, f.predict_last)
    ...  for f in fit_schedule(20, WalkForwardSettings(refit_every=5, min_train_sessions=8),
    ...                        horizon=2)]
    [(0, 7, 10, 14), (0, 12, 15, 19)]
    >>> [(f.train_first, f.train_last) for f in fit_schedule(
    ...     20, WalkForwardSettings(refit_every=5, window=8, min_train_sessions=8), horizon=2)]
    [(0, 7), (5, 12)]
    """
    embargo = settings.embargo_for(horizon)
    first = embargo + settings.min_train_sessions
    if n_dates <= first:
        raise ValueError(
            f"{n_dates} dates are too few for a walk-forward with min_train_sessions="
            f"{settings.min_train_sessions} and an embargo of {embargo}: the first prediction "
            f"needs at least {first + 1} dates (materialize more sessions or lower "
            "min_train_sessions)"
        )
    fits: list[PlannedFit] = []
    for s in range(first, n_dates, settings.refit_every):
        last_train = s - 1 - embargo
        start = 0 if settings.window is None else max(0, last_train - settings.window + 1)
        fits.append(PlannedFit(start, last_train, s, min(s + settings.refit_every, n_dates) - 1))
    return fits


def baseline_columns(frame: pl.DataFrame, *, horizon: int) -> list[pl.Expr]:
    """The :data:`BASELINE_COLUMNS` expressions over ``frame``'s ``logret_20`` and ``logret_5``.

    >>> f = pl.DataFrame({"logret_20": [0.04, None], "logret_5": [0.01, -0.02]})
    >>> f.select(baseline_columns(f, horizon=5)).rows()
    [(0.01, -0.01), (0.0, 0.02)]
    """
    missing = [c for c in ("logret_20", "logret_5") if c not in frame.columns]
    if missing:
        raise ValueError(f"the naive baselines need the feature column(s) {missing}")

    def scaled(col: str, n: int, sign: float) -> pl.Expr:
        return (sign * pl.col(col).cast(pl.Float64) * (horizon / n)).fill_nan(None).fill_null(0.0)

    return [
        scaled("logret_20", 20, 1.0).alias("baseline_momentum"),
        scaled("logret_5", 5, -1.0).alias("baseline_reversal"),
    ]


def walk_forward(
    training_set: pl.DataFrame,
    spec: ModelSpec,
    *,
    feature_columns: Sequence[str],
    label: str,
    horizon: int,
    settings: WalkForwardSettings,
    fit: Callable[..., Pipeline] = fit_pipeline,
) -> pl.DataFrame:
    """The out-of-sample series of ``spec`` over ``training_set`` (see the module docstring).

    Parameters:
        training_set: ``ticker, date, label_end_date``, the features and ``label``; a
            ``segment`` column is carried through (null when absent).
        spec: the model to refit at every block.
        feature_columns: the model inputs, in order.
        label: the label column (``fwd_ret_{horizon}d``), ``y_true`` in the output.
        horizon: the label horizon in sessions (the embargo is at least this).
        settings: refit interval, window, embargo, minimum history.
        fit: ``(frame, spec, feature_columns, label) -> fitted Pipeline`` (tests pass a recorder).

    Returns :data:`OOS_SCHEMA` rows sorted by ``(date, ticker)``.

    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    >>> rows = [(t, d, days[min(i + 2, 29)], float(k), float(k) * 0.01)
    ...         for i, d in enumerate(days) for k, t in enumerate("ABC")]
    >>> ts = pl.DataFrame(rows, schema=["ticker", "date", "label_end_date", "logret_5", "y"],
    ...                   orient="row").with_columns(logret_20=pl.col("logret_5"))
    >>> out = walk_forward(ts, ModelSpec("ridge"), feature_columns=["logret_5"], label="y",
    ...                    horizon=2, settings=WalkForwardSettings(10, min_train_sessions=10))
    >>> out["date"].min() == days[12], bool((out["fit_trained_through"] < out["date"]).all())
    (True, True)
    """
    need = {"ticker", "date", "label_end_date", label}
    missing = sorted(need - set(training_set.columns))
    missing += missing_sources(feature_columns, training_set.columns)  # derived inputs: sources
    if missing:
        raise ValueError(f"the training set lacks column(s) {missing}")
    frame = training_set.sort("date", "ticker")
    if "segment" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("segment"))
    dates = frame.get_column("date").unique().sort().to_list()
    index = pl.DataFrame({"date": dates, "_i": np.arange(len(dates), dtype=np.int64)})
    frame = frame.join(index, on="date", how="left")
    parts: list[pl.DataFrame] = []
    for planned in fit_schedule(len(dates), settings, horizon=horizon):
        block_start: dt.date = dates[planned.predict_first]
        train = frame.filter(
            pl.col("_i").is_between(planned.train_first, planned.train_last)
            # the guarantee itself, row by row: every training label ends before the block
            & (pl.col("label_end_date") < block_start)
        )
        if train.height == 0:
            raise ValueError(f"no training row ends its label before {block_start}")
        model = fit(train, spec, list(feature_columns), label)
        block = frame.filter(pl.col("_i").is_between(planned.predict_first, planned.predict_last))
        parts.append(
            block.select(
                "date",
                pl.col("ticker").cast(pl.String),
                "segment",
                pl.lit(horizon, dtype=pl.Int64).alias("horizon"),
                pl.col(label).cast(pl.Float64).alias("y_true"),
                pl.Series("y_pred", predict(model, block, feature_columns), dtype=pl.Float64),
                *baseline_columns(block, horizon=horizon),
                pl.lit(train.get_column("date").min(), dtype=pl.Date).alias("fit_start"),
                pl.lit(train.get_column("label_end_date").max(), dtype=pl.Date).alias(
                    "fit_trained_through"
                ),
            )
        )
    out = pl.concat(parts) if parts else pl.DataFrame(schema=OOS_SCHEMA)
    return out.select([pl.col(c).cast(t) for c, t in OOS_SCHEMA.items()]).sort("date", "ticker")


def experiment_key(spec: ModelSpec, feature_columns: Sequence[str], settings: WalkForwardSettings):
    """A stable JSON string naming the spec, its inputs and the walk-forward settings.

    >>> experiment_key(ModelSpec("ridge"), ["a"], WalkForwardSettings())[:20]
    '{"feature_columns": '
    """
    return json.dumps(
        {
            "spec": spec.to_dict(),
            "feature_columns": list(feature_columns),
            "walk_forward": settings.to_dict(),
        },
        sort_keys=True,
        default=str,
    )


OOS_PERIODS = ("pre_test", "test")
"""Periods of :func:`oos_ic_table`: before the final test segment (what the gate compares) and the
test segment (reported, never used to choose)."""


def oos_ic_table(oos: pl.DataFrame) -> list[dict[str, Any]]:
    """Out-of-sample rank IC of the model (``y_pred``) and each ``baseline_*`` column, per period.

    Each row: ``who`` (model or the baseline's column), ``period`` (:data:`OOS_PERIODS`), ``dates``
    with a defined rank IC, the mean rank IC, its Newey-West t (lag = the series' horizon) and the
    95% block-bootstrap interval of the mean (:mod:`alphadag.models.ic`).
    """
    from alphadag.models.ic import daily_ic, ic_figures

    if oos.height == 0:
        return []
    horizon = int(oos["horizon"][0])
    who = ["y_pred", *sorted(c for c in oos.columns if c.startswith("baseline_"))]
    rows: list[dict[str, Any]] = []
    for period, frame in zip(
        OOS_PERIODS,
        (oos.filter(pl.col("segment") != "test"), oos.filter(pl.col("segment") == "test")),
        strict=True,
    ):
        if frame.height == 0:
            continue
        for column in who:
            figures = ic_figures(daily_ic(frame, y_pred=column), horizon)
            rows.append(
                {
                    "who": "model" if column == "y_pred" else column,
                    "period": period,
                    "dates": int(figures["n_ic_dates"]),
                    "rank_ic": float(figures["rank_ic_mean"]),
                    "hac_t": float(figures["rank_ic_hac_t"]),
                    "ci_lo": float(figures["rank_ic_ci_lo"]),
                    "ci_hi": float(figures["rank_ic_ci_hi"]),
                }
            )
    return rows


def oos_ic_metrics(table: list[dict[str, Any]]) -> dict[str, float]:
    """:func:`oos_ic_table` as flat, finite MLflow metrics ``oos/<who>/<period>/rank_ic_<stat>``."""
    out = {}
    for r in table:
        for stat, key in (
            ("mean", "rank_ic"),
            ("hac_t", "hac_t"),
            ("ci_lo", "ci_lo"),
            ("ci_hi", "ci_hi"),
        ):
            value = r[key]
            if np.isfinite(value):
                out[f"oos/{r['who']}/{r['period']}/rank_ic_{stat}"] = float(value)
    return out
