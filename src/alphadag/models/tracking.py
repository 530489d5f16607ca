"""Log a plain MLflow run (no model): params, metrics, tags and artifact files, for reports.

:func:`log_run` is what the ``backtest_report`` asset calls: one run in ``experiment`` with the
given params (stringified), finite metrics, tags and artifacts (files or whole directories), in
the stores named by the URIs and nowhere else (the fluent API is pointed at them only for the
call, as :mod:`alphadag.models.registry` does). Keys that look like secrets are refused. MLflow's
HTTP retries and timeout are bounded (:func:`~alphadag.models.registry.bound_http_waits`), and
an unreachable server raises :class:`~alphadag.models.registry.RegistryUnavailable` naming the
URI. No dagster here; MLflow telemetry is off.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from alphadag.models import registry
from alphadag.models.registry import MlflowClient

__all__ = ["log_run", "metric_key"]

_METRIC_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """A valid MLflow metric or param key from ``parts`` joined by ``/``.

    >>> metric_key("sma_cross(fast=10,slow=20)", "sharpe")
    'sma_cross_fast_10_slow_20/sharpe'
    """
    cleaned = [_METRIC_KEY_BAD.sub("_", p).strip("_") or "_" for p in parts]
    return "/".join(cleaned)


def log_run(
    *,
    tracking_uri: str,
    experiment: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str | os.PathLike[str]] = MappingProxyType({}),
    tags: Mapping[str, str] = MappingProxyType({}),
    registry_uri: str | None = None,
    artifact_location: str | None = None,
) -> str:
    """Log one run and return its id.

    Parameters:
        tracking_uri / registry_uri: the MLflow stores (registry defaults to tracking).
        experiment: experiment name, created under ``artifact_location`` if missing.
        params: logged as strings; metrics: non-finite values are skipped (MLflow would store
            ``nan``, which no chart or comparison can use).
        artifacts: ``{artifact_dir: local file or directory}``; a directory's files are logged
            under ``artifact_dir``.
        tags: run tags (e.g. ``dagster.run_id``); keys that look like secrets are refused.
    """
    import mlflow

    for kind, values in (("params", params), ("metrics", metrics), ("tags", tags)):
        registry._check_no_secrets(kind, values)
    registry.bound_http_waits()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    with registry._reaching(tracking_uri):
        experiment_id = registry.ensure_experiment(
            client, experiment, artifact_location=artifact_location
        )
    finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    with (
        registry._reaching(tracking_uri),
        registry._uris(tracking_uri, registry_uri),
        mlflow.start_run(experiment_id=experiment_id, tags=dict(tags)) as run,
    ):
        if params:
            mlflow.log_params({k: str(v) for k, v in params.items()})
        if finite:
            mlflow.log_metrics(finite)
        for artifact_dir, local in artifacts.items():
            path = Path(local)
            if path.is_dir():
                mlflow.log_artifacts(os.fspath(path), artifact_path=artifact_dir or None)
            elif path.is_file():
                mlflow.log_artifact(os.fspath(path), artifact_path=artifact_dir or None)
            else:
                raise FileNotFoundError(f"artifact {artifact_dir!r}: {path} does not exist")
    return run.info.run_id
