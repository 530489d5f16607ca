"""Feature drift against a model's training data: binned shares, PSI and a calibrated test.

What is compared: the distribution of each feature over the serving model's training rows (the
*reference*, logged with the model as ``drift/feature_reference.parquet``) against the rows of
the latest sessions served (the *current* sample: the cross-sections of the universe on one or
several consecutive sessions, pooled).

At training time :func:`psi_reference` bins each feature at its deciles (``bins`` quantile bins;
the outer bins are open-ended) and records each bin's share of rows, the feature's row count and
a *window null*: the reference's own sessions are cut into consecutive windows of
``window_sessions`` sessions and the test statistic below is computed for each window against
the whole reference; the mean and variance of those values give the scaled chi-square the
statistic follows when nothing has drifted (Satterthwaite's two-moment match, the second-order
Rao-Scott correction for clustered samples). At serving time:

- :func:`psi` is the population stability index, ``sum (a - e) ln(a / e)`` over the bins (shares
  floored at ``eps``). It is kept for reading only: on a small sample its empty bins alone add
  ``e ln(e / eps)`` each (0.69 for a decile), so 5 rows give a PSI near 3.5 whatever the data.
- :func:`drift_test` decides. Per feature, with ``m`` current rows, ``n`` reference rows, shares
  ``a`` and ``e``: ``X2 = sum (a - e)^2 / e / (1/m + 1/n)``, Pearson's statistic with the two-
  sample correction; for independent rows and no drift ``X2 ~ chi2(k - 1)`` (``k`` bins). The
  p-values of the features go through Benjamini-Hochberg at ``alpha``, so across 36 undrifted
  features the chance that any fires is at most ``alpha``. Below ``min_rows`` current rows a
  feature is not tested: its verdict is ``insufficient sample``.

Rows are not independent. The tickers of one session share the market's move, and consecutive
sessions share most of the 20- to 60-session windows the features are computed on, so a window
of 10 sessions of 20 tickers holds far fewer than 200 independent draws and pooling consecutive
sessions adds little. On the bundled sample the independent-rows null fires on every 10-session
window taken from inside the reference itself (28 of 31 features on average). The window null
measures that dependence on the reference: with it the p-value asks "is this window more unusual
than the reference's own windows of the same length?", which is the question a drift warning
should answer; the p-values remain approximate (two moments, windows of the past). A reference
without dates, with fewer than :data:`MIN_NULL_WINDOWS` windows, or logged before the window
null existed falls back to the independent-rows chi-square, said in the result (``null``).
Nulls (warm-up) are left out on both sides.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

__all__ = [
    "DRIFT_TABLE_SCHEMA",
    "DRIFT_WINDOW_SESSIONS",
    "MIN_NULL_WINDOWS",
    "REFERENCE_SCHEMA",
    "VERDICTS",
    "DriftTest",
    "benjamini_hochberg",
    "drift_test",
    "psi",
    "psi_reference",
]

REFERENCE_SCHEMA = {
    "feature": pl.String,
    "bin": pl.Int64,
    "upper": pl.Float64,
    "share": pl.Float64,
    "rows": pl.Int64,
    "window_sessions": pl.Int64,
    "null_scale": pl.Float64,
    "null_dof": pl.Float64,
}
"""Columns of a drift reference, one row per (feature, bin): bin ``i`` holds values ``<= upper``
(the last bin: ``+inf``) and ``share`` of the feature's ``rows`` non-null reference rows. The
last three repeat per feature: the window null ``X2 / null_scale ~ chi2(null_dof)`` for windows
of ``window_sessions`` sessions (null when not estimated). References logged before these
columns existed have only the first four; :func:`drift_test` reads both."""

MIN_NULL_WINDOWS = 20
"""Fewest reference windows from which the window null is estimated (else: independent rows)."""

VERDICTS = ("drift", "no drift", "insufficient sample")
"""A feature's verdict in :func:`drift_test`."""

DRIFT_TABLE_SCHEMA = {
    "feature": pl.String,
    "verdict": pl.String,
    "statistic": pl.Float64,
    "p_value": pl.Float64,
    "q_value": pl.Float64,
    "psi": pl.Float64,
    "n_reference": pl.Int64,
    "n_current": pl.Int64,
    "null": pl.String,
}
"""Columns of :attr:`DriftTest.table`: ``q_value`` is the Benjamini-Hochberg adjusted p-value
(``drift`` where ``q_value <= alpha``), ``null`` is ``window`` or ``iid``; the statistic and the
p-values are null for an ``insufficient sample``."""

Null = Literal["window", "iid"]


def _bin_counts(x: np.ndarray, uppers: np.ndarray) -> np.ndarray:
    """Counts of ``x`` in the bins ``(.., u0], (u0, u1], .., (u_{k-2}, +inf)``."""
    return np.bincount(np.searchsorted(uppers[:-1], x, side="left"), minlength=uppers.size)


def _values(frame: pl.DataFrame, column: str) -> pl.Series:
    return frame.get_column(column).cast(pl.Float64).fill_nan(None)


def _statistic(counts: np.ndarray, share: np.ndarray, n_reference: float) -> np.ndarray:
    """``X2`` of each row of ``counts`` (windows x bins) against ``share`` (see the module)."""
    m = counts.sum(axis=-1)
    a = counts / m[..., None]
    return np.sum((a - share) ** 2 / share, axis=-1) / (1.0 / m + 1.0 / n_reference)


def _window_null(
    counts: np.ndarray, share: np.ndarray, n_reference: int
) -> tuple[float, float] | None:
    """``(scale, dof)`` of ``X2`` over the reference windows (rows of ``counts``), or None."""
    rows = counts.sum(axis=1)
    # windows much smaller than usual (warm-up, a ticker joining) would only add noise
    counts = counts[rows >= max(1.0, 0.5 * float(np.median(rows)))] if rows.size else counts
    if counts.shape[0] < MIN_NULL_WINDOWS:
        return None
    x2 = _statistic(counts, share, n_reference)
    mean, var = float(x2.mean()), float(x2.var(ddof=1))
    if not (mean > 0 and var > 0 and math.isfinite(mean) and math.isfinite(var)):
        return None
    return var / (2 * mean), 2 * mean * mean / var


DRIFT_WINDOW_SESSIONS = 10
"""The window length, in sessions, a drift test pools and its null is calibrated on: the default
of psi_reference and the features partitions the predictions' drift check reads."""


def psi_reference(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    bins: int = 10,
    window_sessions: int = DRIFT_WINDOW_SESSIONS,
) -> pl.DataFrame:
    """The drift reference of ``frame`` (schema :data:`REFERENCE_SCHEMA`, see the module).

    Parameters
    ----------
    frame:
        The model's training rows: the feature ``columns`` and, for the window null, ``date``.
    columns:
        Features to bin; a feature with no non-null value gets no rows.
    bins:
        Quantile bins per feature (fewer when values tie; a bin is never empty).
    window_sessions:
        Consecutive sessions per window of the window null: what the serving side pools.

    >>> f = pl.DataFrame({"x": [float(i) for i in range(100)]})
    >>> ref = psi_reference(f, ["x"], bins=4)
    >>> ref["share"].to_list(), ref["upper"].to_list()[:3], ref["rows"][0]
    ([0.25, 0.25, 0.25, 0.25], [24.0, 49.0, 74.0], 100)
    >>> ref["null_scale"][0] is None  # no dates: no window null
    True
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if window_sessions < 1:
        raise ValueError(f"window_sessions must be >= 1, got {window_sessions}")
    window = None
    if "date" in frame.columns:
        days = frame.get_column("date").unique().sort()
        full = days.len() // window_sessions * window_sessions  # drop the last partial window
        window = frame.get_column("date").replace_strict(
            days.head(full), pl.int_range(full, eager=True) // window_sessions, default=None
        )
    rows: list[tuple] = []
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"frame lacks feature column {col!r}")
        values = _values(frame, col)
        x = values.drop_nulls().to_numpy()
        if x.size == 0:
            continue
        cuts = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="lower"))
        uppers = np.array([*cuts.tolist(), math.inf])
        counts = _bin_counts(x, uppers)
        keep = (counts > 0) | (np.arange(uppers.size) == uppers.size - 1)
        uppers, counts = uppers[keep], counts[keep]  # an empty bin merges into the next one
        if counts[-1] == 0:  # nothing above the last cut: the bin below becomes the open one
            uppers, counts = np.append(uppers[:-2], math.inf), counts[:-1]
        share = counts / x.size
        null = None
        if window is not None and uppers.size > 1:
            present = values.is_not_null() & window.is_not_null()
            w = window.filter(present).to_numpy().astype(np.int64)
            b = np.searchsorted(uppers[:-1], values.filter(present).to_numpy(), side="left")
            n_windows = int(w.max()) + 1 if w.size else 0
            per_window = np.bincount(w * uppers.size + b, minlength=n_windows * uppers.size)
            null = _window_null(per_window.reshape(n_windows, uppers.size), share, x.size)
        scale, dof = null if null is not None else (None, None)
        rows += [
            (col, i, float(u), float(s), x.size, window_sessions, scale, dof)
            for i, (u, s) in enumerate(zip(uppers, share, strict=True))
        ]
    return pl.DataFrame(rows, schema=REFERENCE_SCHEMA, orient="row")


def _features(reference: pl.DataFrame):
    """``(feature, bins frame)`` of ``reference`` in bin order (either reference layout)."""
    for (feature,), group in reference.sort("feature", "bin").group_by(
        "feature", maintain_order=True
    ):
        yield str(feature), group


def psi(reference: pl.DataFrame, frame: pl.DataFrame, *, eps: float = 1e-4) -> dict[str, float]:
    """PSI of each reference feature in ``frame`` (NaN where ``frame`` has no value of it).

    For reading, not deciding: see the module docstring and :func:`drift_test`.

    >>> ref = psi_reference(pl.DataFrame({"x": [float(i) for i in range(100)]}), ["x"], bins=4)
    >>> round(psi(ref, pl.DataFrame({"x": [float(i) for i in range(100)]}))["x"], 12)
    0.0
    >>> psi(ref, pl.DataFrame({"x": [200.0] * 10}))["x"] > 1.0
    True
    """
    out: dict[str, float] = {}
    for feature, group in _features(reference):
        if feature not in frame.columns:
            raise ValueError(f"frame lacks feature column {feature!r} of the drift reference")
        x = _values(frame, feature).drop_nulls().to_numpy()
        if x.size == 0:
            out[feature] = math.nan
            continue
        counts = _bin_counts(x, group["upper"].to_numpy())
        actual = np.maximum(counts / x.size, eps)
        expected = np.maximum(group["share"].to_numpy(), eps)
        out[feature] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject where ``q <= alpha``.

    Controls the false discovery rate at ``alpha`` for independent (or positively dependent)
    p-values; when nothing has drifted that is the chance of any false alarm.

    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must be in [0, 1], got {p.tolist()}")
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = np.empty_like(q)
    out[order] = q
    return out


@dataclass(frozen=True)
class DriftTest:
    """What :func:`drift_test` returns: one row per feature (:data:`DRIFT_TABLE_SCHEMA`),
    sorted by ``q_value`` (untested features last), and the settings that produced it."""

    table: pl.DataFrame
    alpha: float
    min_rows: int
    sessions: tuple[dt.date, ...] = ()
    """The sessions tested, oldest first (empty when the current rows have no ``date``)."""

    @property
    def drifted(self) -> list[str]:
        """Features whose verdict is ``drift``."""
        return self.table.filter(pl.col("verdict") == "drift")["feature"].to_list()

    @property
    def insufficient(self) -> list[str]:
        """Features with fewer than ``min_rows`` current rows (not tested)."""
        return self.table.filter(pl.col("verdict") == "insufficient sample")["feature"].to_list()

    @property
    def passed(self) -> bool:
        """No feature drifted (an insufficient sample passes: there is nothing to conclude)."""
        return not self.drifted

    def describe(self) -> str:
        """One sentence for a check's description."""
        tested = self.table.height - len(self.insufficient)
        if tested == 0:
            n = int(self.table["n_current"].max() or 0) if self.table.height else 0
            return (
                f"insufficient sample: {n} current rows, fewer than the {self.min_rows} "
                "needed to tell drift from sampling noise; nothing tested"
            )
        nulls = set(self.table.filter(pl.col("p_value").is_not_null())["null"].to_list())
        caveat = (
            "; p-values assume independent rows (the reference has no window null: "
            "retrain to log one), so they are too small on real panels"
            if "iid" in nulls
            else ""
        )
        head = (
            f"{len(self.drifted)} of {tested} features drifted: {', '.join(self.drifted)}"
            if self.drifted
            else f"no drift in {tested} features"
        )
        skipped = f"; {len(self.insufficient)} not tested (insufficient sample)"
        return (
            f"{head} (Benjamini-Hochberg at {self.alpha:g})"
            f"{skipped if self.insufficient else ''}{caveat}"
        )


def drift_test(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    min_rows: int = 200,
    alpha: float = 0.05,
) -> DriftTest:
    """Test each reference feature for drift in ``current`` (see the module docstring).

    Parameters
    ----------
    reference:
        A drift reference (:func:`psi_reference`; the four-column layout of older models too:
        then ``n`` is taken as infinite and the null is ``iid``).
    current:
        The rows to test, every reference feature a column: the cross-sections of the latest
        sessions. With a ``date`` column only its last ``window_sessions`` sessions (the
        reference's) are tested, the window length the null is calibrated for.
    min_rows:
        Fewest non-null current rows of a feature to test it; below, ``insufficient sample``.
    alpha:
        Benjamini-Hochberg level across the tested features.

    >>> rng = np.random.default_rng(0)
    >>> ref = psi_reference(pl.DataFrame({"x": rng.normal(size=5000)}), ["x"])
    >>> drift_test(ref, pl.DataFrame({"x": rng.normal(size=300)})).table["verdict"].to_list()
    ['no drift']
    >>> drift_test(ref, pl.DataFrame({"x": rng.normal(1.0, size=300)})).drifted
    ['x']
    >>> drift_test(ref, pl.DataFrame({"x": rng.normal(1.0, size=20)})).describe()
    'insufficient sample: 20 current rows, fewer than the 200 needed to tell drift from sampling noise; nothing tested'
    """
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    sessions: tuple[dt.date, ...] = ()
    if "date" in current.columns:
        days = current.get_column("date").unique().sort()
        if "window_sessions" in reference.columns and reference.height:
            # the window null is calibrated for windows of this many sessions: test the last one
            days = days.tail(int(reference["window_sessions"][0]))
            current = current.filter(pl.col("date").is_in(days.implode()))
        sessions = tuple(days.to_list())
    rows: list[dict] = []
    for feature, group in _features(reference):
        if feature not in current.columns:
            raise ValueError(f"current rows lack feature column {feature!r} of the drift reference")
        x = _values(current, feature).drop_nulls().to_numpy()
        share = group["share"].to_numpy()
        n_ref = group["rows"][0] if "rows" in group.columns else None
        scale = group["null_scale"][0] if "null_scale" in group.columns else None
        dof = group["null_dof"][0] if "null_dof" in group.columns else None
        null: Null = "window" if scale is not None and dof is not None else "iid"
        row = {"feature": feature, "n_reference": n_ref, "n_current": x.size, "null": null}
        row["psi"] = psi(group, pl.DataFrame({feature: x}))[feature] if x.size else None
        if x.size < min_rows:
            rows.append({**row, "verdict": "insufficient sample"})
            continue
        counts = _bin_counts(x, group["upper"].to_numpy())
        stat = float(_statistic(counts, share, n_ref or math.inf))
        if null == "window":
            p = float(stats.chi2.sf(stat / scale, dof))
        else:
            p = float(stats.chi2.sf(stat, share.size - 1)) if share.size > 1 else 1.0
        rows.append({**row, "statistic": stat, "p_value": p})
    table = pl.DataFrame(
        rows, schema={k: v for k, v in DRIFT_TABLE_SCHEMA.items() if k != "q_value"}
    )
    tested = table["p_value"].is_not_null()
    q = np.full(table.height, np.nan)
    q[tested.to_numpy()] = benjamini_hochberg(table.filter(tested)["p_value"].to_numpy())
    table = (
        table.with_columns(q_value=pl.Series(q).fill_nan(None))
        .with_columns(
            verdict=pl.when(pl.col("q_value").is_null())
            .then(pl.lit("insufficient sample"))
            .when(pl.col("q_value") <= alpha)
            .then(pl.lit("drift"))
            .otherwise(pl.lit("no drift"))
        )
        .select(list(DRIFT_TABLE_SCHEMA))
        .sort("q_value", "feature", nulls_last=True)
    )
    return DriftTest(
        table=table.cast(DRIFT_TABLE_SCHEMA), alpha=alpha, min_rows=min_rows, sessions=sessions
    )
