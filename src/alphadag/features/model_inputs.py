"""The model's inputs: a scale-free view of the ``features`` table, computed row by row.

The ``features`` table keeps TA-Lib's columns as TA-Lib defines them, several in price units
(``sma_*``, ``ema_*``, ``bb_*``, ``macd*``, ``atr_14``, ``mom_*``) or in cumulative volume units
(``obv``). A model fitted on those learns from a ticker's price *level*: multiplying one ticker's
prices by a constant leaves its returns and labels unchanged but moves its inputs, and with
back-adjusted prices a level at ``t`` also encodes dividends and splits paid after ``t``. The
default model inputs (:data:`MODEL_FEATURE_COLUMNS`, the ``"scale_free"`` feature set) are
therefore invariant to multiplying one ticker's open/high/low/close by a constant, and to
multiplying its volume by a constant:

- price-level indicators enter as ratios to the close (:data:`DERIVED_COLUMNS`);
- ``mom_n = close - close[t-n]`` is left out: ``mom_n / close = roc_n / (1 + roc_n)`` is a
  function of ``roc_n``, which is kept;
- ``obv`` is left out: its level is a running total from the ticker's first row (see
  :data:`alphadag.features.PATH_DEPENDENT_COLUMNS`) and the table has no same-row volume scale to
  divide it by; ``volume_z_20`` is the (volume-scale-free) volume feature;
- ``bb_upper_20``, ``bb_mid_20`` and ``bb_lower_20`` enter as ``sma_20_rel`` (the middle band is
  SMA(20)), the band width ``bb_width_20``, and ``zscore_20`` (the position in the bands:
  ``%B = 0.5 + zscore_20 / 4``);
- returns, volatilities, oscillators (RSI, stochastics), z-scores, 52-week distances and the
  cross-sectional ranks are scale-free already and are kept as they are (:data:`KEPT_COLUMNS`).

**The close** is not a column of ``features``; every derived ratio uses the close implied by the
same row's Bollinger columns, ``close = bb_mid_20 + zscore_20 * (bb_upper_20 - bb_lower_20) / 4``
(``zscore_20 = (close - SMA20) / std20`` and the bands are ``SMA20 +- 2 std20``), which reproduces
the close to a few ulps (exactly the middle band on a flat window, where ``zscore_20`` is 0 by
definition and the close equals it to 1e-10). The ratios are therefore null where ``zscore_20``
is (the first 19 rows of a ticker), a few rows longer than ``sma_10`` or ``atr_14`` alone.

**No look-ahead, no history.** Every derived value reads only columns of its own row, so a frame
of one session (serving) gives the same inputs as the full history (training), and the inputs
inherit the features' guarantee that a value at ``t`` depends on bars up to ``t`` only.

**One function.** :func:`with_model_inputs` adds the derived columns a column list asks for;
:func:`alphadag.models.feature_matrix` calls it, so training, cross-validation, walk-forward
predictions and serving all build their matrices through it and cannot diverge. A model's
signature lists the derived names; :func:`missing_sources` says what a frame lacks to provide them.
The raw columns stay in the ``features`` table; the ``"raw"`` feature set
(:data:`FEATURE_SETS`) uses them unchanged, as before. Pure polars, no dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from alphadag.features.compute import FEATURE_COLUMNS, XS_RANK_SIGNALS

__all__ = [
    "DEFAULT_FEATURE_SET",
    "DERIVED_COLUMNS",
    "FEATURE_SETS",
    "KEPT_COLUMNS",
    "MODEL_FEATURE_COLUMNS",
    "PRICE_LEVEL_COLUMNS",
    "DerivedColumn",
    "feature_set_columns",
    "implied_close",
    "missing_sources",
    "model_inputs",
    "with_model_inputs",
]

_CLOSE_SOURCES = ("bb_mid_20", "bb_upper_20", "bb_lower_20", "zscore_20")


def implied_close() -> pl.Expr:
    """The close implied by a row's Bollinger columns (see the module docstring).

    >>> f = pl.DataFrame({"bb_mid_20": [100.0], "bb_upper_20": [104.0], "bb_lower_20": [96.0],
    ...                   "zscore_20": [1.5]})
    >>> f.select(implied_close()).item()
    103.0
    """
    bb_mid, zscore = pl.col("bb_mid_20"), pl.col("zscore_20")
    std = (pl.col("bb_upper_20") - pl.col("bb_lower_20")) / 4.0
    return bb_mid + zscore * std


def _finite(expr: pl.Expr) -> pl.Expr:
    """``expr`` where finite, else null (the features never hold NaN or inf; neither do inputs)."""
    return pl.when(expr.is_finite()).then(expr)


@dataclass(frozen=True, slots=True)
class DerivedColumn:
    """A model input computed from columns of the same ``features`` row."""

    name: str
    formula: str
    sources: tuple[str, ...]
    build: Callable[[], pl.Expr]

    def expr(self) -> pl.Expr:
        """The Float64 expression, null where a source is null or the result is not finite."""
        return _finite(self.build().cast(pl.Float64)).alias(self.name)


def _minus_one(column: str) -> Callable[[], pl.Expr]:
    return lambda: pl.col(column) / implied_close() - 1.0


def _ratio(column: str) -> Callable[[], pl.Expr]:
    return lambda: pl.col(column) / implied_close()


def _derived() -> dict[str, DerivedColumn]:
    specs: list[DerivedColumn] = []
    for col in ("sma_10", "sma_20", "sma_50", "ema_12", "ema_26"):
        specs.append(
            DerivedColumn(
                f"{col}_rel", f"{col} / close - 1", (col, *_CLOSE_SOURCES), _minus_one(col)
            )
        )
    for col in ("macd", "macd_signal", "macd_hist", "atr_14"):
        specs.append(
            DerivedColumn(f"{col}_rel", f"{col} / close", (col, *_CLOSE_SOURCES), _ratio(col))
        )
    specs.append(
        DerivedColumn(
            "bb_width_20",
            "(bb_upper_20 - bb_lower_20) / bb_mid_20",
            ("bb_upper_20", "bb_lower_20", "bb_mid_20"),
            lambda: (pl.col("bb_upper_20") - pl.col("bb_lower_20")) / pl.col("bb_mid_20"),
        )
    )
    return {s.name: s for s in specs}


DERIVED_COLUMNS: Mapping[str, DerivedColumn] = MappingProxyType(_derived())
"""The derived, scale-free inputs by name; ``close`` is :func:`implied_close`."""

PRICE_LEVEL_COLUMNS: tuple[str, ...] = (
    "sma_10",
    "sma_20",
    "sma_50",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper_20",
    "bb_mid_20",
    "bb_lower_20",
    "atr_14",
    "obv",
    "mom_5",
    "mom_20",
    "mom_60",
)
"""``features`` columns whose value scales with the ticker's price (or volume) level: left out of
the default model inputs (replaced by :data:`DERIVED_COLUMNS` or by a kept equivalent)."""

KEPT_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in PRICE_LEVEL_COLUMNS)
"""``features`` columns that are scale-free already and enter the model unchanged."""

MODEL_FEATURE_COLUMNS: tuple[str, ...] = (
    "sma_10_rel",
    "sma_20_rel",
    "sma_50_rel",
    "ema_12_rel",
    "ema_26_rel",
    "rsi_14",
    "macd_rel",
    "macd_signal_rel",
    "macd_hist_rel",
    "bb_width_20",
    "atr_14_rel",
    "stoch_k",
    "stoch_d",
    "roc_5",
    "roc_20",
    "roc_60",
    "logret_1",
    "logret_5",
    "logret_20",
    "rvol_20",
    "rvol_60",
    "zscore_20",
    "volume_z_20",
    "dist_52w_high",
    "dist_52w_low",
    *(f"xs_rank_{signal}" for signal in XS_RANK_SIGNALS),
)
"""The default model inputs (the ``"scale_free"`` feature set), in matrix column order."""

FEATURE_SETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"scale_free": MODEL_FEATURE_COLUMNS, "raw": FEATURE_COLUMNS}
)
"""Named model input sets: ``scale_free`` (default) and ``raw`` (every ``features`` column)."""

DEFAULT_FEATURE_SET = "scale_free"

# the two sets must not disagree on what a name means
assert not set(DERIVED_COLUMNS) & set(FEATURE_COLUMNS)
assert set(MODEL_FEATURE_COLUMNS) == set(KEPT_COLUMNS) | set(DERIVED_COLUMNS)


def feature_set_columns(name: str) -> tuple[str, ...]:
    """The columns of the named feature set.

    >>> feature_set_columns("scale_free")[:2]
    ('sma_10_rel', 'sma_20_rel')
    >>> len(feature_set_columns("raw"))
    36
    """
    if name not in FEATURE_SETS:
        raise ValueError(f"feature set must be one of {sorted(FEATURE_SETS)}, got {name!r}")
    return FEATURE_SETS[name]


def missing_sources(columns: Sequence[str], available: Sequence[str]) -> list[str]:
    """The columns a frame with ``available`` columns lacks to provide ``columns``.

    A column is provided when present, or when it is derived and all its sources are present.

    >>> missing_sources(["atr_14_rel", "rsi_14"], ["atr_14", "rsi_14"])
    ['bb_mid_20', 'bb_upper_20', 'bb_lower_20', 'zscore_20']
    """
    have = set(available)
    out: list[str] = []
    for col in columns:
        if col in have:
            continue
        needed = DERIVED_COLUMNS[col].sources if col in DERIVED_COLUMNS else (col,)
        out += [s for s in needed if s not in have and s not in out]
    return out


def with_model_inputs(
    frame: pl.DataFrame, columns: Sequence[str] = MODEL_FEATURE_COLUMNS
) -> pl.DataFrame:
    """``frame`` with every derived column of ``columns`` that it lacks added at the end.

    Columns already in ``frame`` are left as they are (a frame of model inputs passes through);
    a derived column reads only its own row's sources. Raises when a source is missing.

    >>> f = pl.DataFrame({"sma_10": [99.0], "bb_mid_20": [100.0], "bb_upper_20": [104.0],
    ...                   "bb_lower_20": [96.0], "zscore_20": [-0.5]})
    >>> with_model_inputs(f, ["sma_10_rel", "bb_width_20"]).select("sma_10_rel", "bb_width_20").row(0)
    (0.0, 0.08)
    """
    missing = missing_sources(columns, frame.columns)
    if missing:
        raise ValueError(
            f"frame lacks feature column(s) {missing} needed for the model inputs "
            f"{[c for c in columns if c not in frame.columns][:5]}; expected the features "
            "table (alphadag.features.FEATURE_COLUMNS)"
        )
    todo = [DERIVED_COLUMNS[c].expr() for c in columns if c not in frame.columns]
    return frame.with_columns(todo) if todo else frame


def model_inputs(
    features: pl.DataFrame, columns: Sequence[str] = MODEL_FEATURE_COLUMNS
) -> pl.DataFrame:
    """Exactly ``columns`` (Float64, in that order) for the rows of ``features``.

    The frame form of the model's input matrix: e.g. the input example whose columns become a
    logged model's signature. Row order is kept.

    >>> import datetime as dt
    >>> from alphadag.features import compute_features
    >>> days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(30)]
    >>> bars = pl.DataFrame({"ticker": "A", "date": days, "close": [100.0 + k for k in range(30)]})
    >>> x = model_inputs(compute_features(bars))
    >>> x.columns == list(MODEL_FEATURE_COLUMNS), round(x["sma_10_rel"][-1], 6)
    (True, -0.034884)
    """
    cols = list(columns)
    return with_model_inputs(features, cols).select(pl.col(c).cast(pl.Float64) for c in cols)
