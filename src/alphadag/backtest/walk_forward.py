"""Walk-forward model predictions: each date scored only by a model trained before it.

The registry history is ``{version: trained_through}`` (:func:`registry_history`): every
registered version of the return model carries the tag ``alphadag.trained_through``, the last
date any of its training labels reads. :func:`models_for_dates` picks, for each date ``t``, the
version with the latest ``trained_through`` strictly before ``t`` (ties: the higher version);
a date before any such version gets ``None``. :func:`walk_forward_predictions` scores the
feature rows of each date with that date's model only, so a backtest of the model signal never
uses a model that saw the date's future. No dagster here; mlflow is imported only by
:func:`registry_loader`.

>>> import datetime as dt
>>> history = {1: dt.date(2024, 1, 31), 2: dt.date(2024, 3, 29)}
>>> models_for_dates([dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 4, 1)], history)
{datetime.date(2024, 1, 31): None, datetime.date(2024, 2, 1): 1, datetime.date(2024, 4, 1): 2}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from sklearn.pipeline import Pipeline

__all__ = [
    "TRAINED_THROUGH_TAG",
    "models_for_dates",
    "registry_history",
    "registry_loader",
    "walk_forward_predictions",
]

TRAINED_THROUGH_TAG = "alphadag.trained_through"

PREDICTION_SCHEMA = {
    "date": pl.Date,
    "ticker": pl.String,
    "y_pred": pl.Float64,
    "model_version": pl.Int64,
}


def registry_history(client: MlflowClient, model_name: str) -> dict[int, dt.date]:
    """``{version: trained_through}`` of every registered version of ``model_name``.

    Versions without a parseable ``alphadag.trained_through`` tag are left out: nothing proves
    when their training data ended, so no date may use them. An unknown model gives ``{}``.
    """
    if "'" in model_name:
        raise ValueError(f"model name {model_name!r} must not contain a quote")
    history: dict[int, dt.date] = {}
    for mv in client.search_model_versions(f"name = '{model_name}'"):
        raw = (mv.tags or {}).get(TRAINED_THROUGH_TAG)
        if not raw:
            continue
        try:
            history[int(mv.version)] = dt.date.fromisoformat(raw)
        except ValueError:
            continue
    return dict(sorted(history.items()))


def models_for_dates(
    dates: Iterable[dt.date], versions: Mapping[int, dt.date]
) -> dict[dt.date, int | None]:
    """For each date, the version trained through the latest date strictly before it.

    Parameters:
        dates: the dates to be scored (a prediction dated ``t`` is made on ``t``'s close).
        versions: ``{version: trained_through}`` (see :func:`registry_history`).

    Ties in ``trained_through`` go to the higher (later registered) version; a date on or
    before every ``trained_through`` maps to ``None``.
    """
    # (trained_through, version) ascending: the last eligible entry is the one to use
    ordered = sorted((through, int(v)) for v, through in versions.items())
    throughs = np.array([t.toordinal() for t, _ in ordered], dtype=np.int64)
    out: dict[dt.date, int | None] = {}
    for day in sorted(set(dates)):
        # count of versions with trained_through < day (strict: day's own label is unseen)
        n = int(np.searchsorted(throughs, day.toordinal(), side="left"))
        out[day] = ordered[n - 1][1] if n else None
    return out


def walk_forward_predictions(
    features: pl.DataFrame,
    versions: Mapping[int, dt.date],
    load: Callable[[int], Any],
    *,
    feature_columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Predictions (``date, ticker, y_pred, model_version``) with each date's allowed model.

    Parameters:
        features: ``ticker, date`` and the feature columns.
        versions: ``{version: trained_through}``; each date uses :func:`models_for_dates`'s pick.
        load: ``version -> fitted Pipeline`` (e.g. :func:`registry_loader`); called once per
            version actually used, never for a version no date may use.
        feature_columns: the model inputs (default :data:`alphadag.features.FEATURE_COLUMNS`).

    Dates with no allowed model have no rows. Output sorted by ``date, ticker``.

    >>> import datetime as dt
    >>> from sklearn.dummy import DummyRegressor
    >>> from sklearn.pipeline import Pipeline
    >>> def fitted(value):
    ...     return Pipeline([("m", DummyRegressor(strategy="constant", constant=value))]).fit(
    ...         [[0.0]], [value])
    >>> feats = pl.DataFrame({"ticker": ["A"] * 3, "x": [1.0, 2.0, 3.0],
    ...                       "date": [dt.date(2024, 1, d) for d in (2, 3, 4)]})
    >>> out = walk_forward_predictions(feats, {7: dt.date(2024, 1, 2)}, lambda v: fitted(v),
    ...                                feature_columns=["x"])
    >>> out.select("date", "y_pred", "model_version").rows()
    [(datetime.date(2024, 1, 3), 7.0, 7), (datetime.date(2024, 1, 4), 7.0, 7)]
    """
    from alphadag.models import predict

    if feature_columns is None:
        from alphadag.features import FEATURE_COLUMNS

        feature_columns = FEATURE_COLUMNS
    missing = {"ticker", "date", *feature_columns} - set(features.columns)
    if missing:
        raise ValueError(f"features lack column(s) {sorted(missing)}")
    days = features.get_column("date").unique().to_list()
    chosen = models_for_dates(days, versions)
    assignment = pl.DataFrame(
        {"date": list(chosen), "model_version": list(chosen.values())},
        schema={"date": features.schema["date"], "model_version": pl.Int64},
    )
    frame = features.join(assignment, on="date", how="inner").filter(
        pl.col("model_version").is_not_null()
    )
    parts = []
    for (version,), rows in frame.group_by("model_version", maintain_order=True):
        pipeline = load(int(version))
        parts.append(
            rows.select(
                pl.col("date").cast(pl.Date),
                pl.col("ticker").cast(pl.String),
                pl.Series("y_pred", predict(pipeline, rows, feature_columns), dtype=pl.Float64),
                pl.col("model_version"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=PREDICTION_SCHEMA)
    return pl.concat(parts).sort("date", "ticker")


def registry_loader(
    model_name: str, *, tracking_uri: str, registry_uri: str | None = None
) -> Callable[[int], Pipeline]:
    """``version -> Pipeline`` loading ``models:/<model_name>/<version>`` (skops, allow-listed)."""
    from alphadag.models import registry

    def load(version: int) -> Pipeline:
        return registry.load_model(
            f"models:/{model_name}/{int(version)}",
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
        )

    return load
