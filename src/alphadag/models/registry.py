"""MLflow registry helpers: log a fitted Pipeline as a model version, promote it by aliases.

The registry is the only place a served model comes from. :func:`log_and_register` records one
training run (params, metrics, tags, the Pipeline in the skops format with its signature),
registers the model as a new version of ``model_name`` and points the ``challenger`` alias at it.
:func:`promote_if_better` compares that challenger with the current ``champion`` and, if it wins by
``margin`` (or there is no champion), moves ``champion`` to it and ``previous`` to the old champion.
Every decision is recorded as ``alphadag.promotion.*`` tags on the versions involved; the alias
moves come last and are rolled back if the second one fails, so a failure leaves the aliases as
they were. :func:`load_model` loads a version back with the project's own skops allow-list
(:data:`SKOPS_TRUSTED_TYPES`), never with a list read from the artifact. Aliases, not stages
(MLflow 3): ``models:/alphadag-returns@champion``. No dagster here; telemetry is off by default.

:class:`ModelRegistry` is the one object every caller goes through: ``register`` (log a run and
register its model), ``apply_gate`` (record a gate decision and move the aliases), ``aliases``,
``history``, ``logged_spec`` (a version's spec from its run params) and **one**
``load(version)``: download, the signature check against the expected input columns (when
given), the skops load with the project's allow-list, and a per-process LRU cache keyed by
(registry, name, version). Serving, the champion sensor and the reload check all load through it.

**Integrity.** At registration the sha256 of the skops file and of ``MLmodel`` *as logged* (read
back from the artifact store once, never re-serialised) are recorded as version tags
``alphadag.model_sha256`` and ``alphadag.mlmodel_sha256`` (and as run tags), with the file's path
in ``alphadag.model_file``. ``load`` reads each file's bytes once, hashes them and deserialises
those same bytes: a file that differs from the registered one, or a version registered here
whose digest tag is missing, raises :class:`ModelIntegrityError` naming the model, version,
both digests and the file. **Bounded waits.** :func:`bound_http_waits` gives MLflow's HTTP
client at most :data:`HTTP_WAIT_DEFAULTS` retries and timeout unless the environment already says
otherwise; every entry point here applies it, so an unreachable server fails in seconds, not
minutes, and :class:`RegistryUnavailable` names the URI.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from types import MappingProxyType
from typing import Any

# MLflow sends usage telemetry unless told not to; this project runs offline. Set before the
# first mlflow import (the client is created at import) and honoured again on every call.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# artifact downloads (every served model) would draw tqdm bars into logs and the demo's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow
import mlflow.data
import mlflow.sklearn
import numpy as np
import pandas as pd
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from alphadag.settings import MLFLOW_HTTP_WAIT_DEFAULTS

__all__ = [
    "ALIAS_CHALLENGER",
    "ALIAS_CHAMPION",
    "ALIAS_PREVIOUS",
    "HTTP_WAIT_DEFAULTS",
    "SKOPS_TRUSTED_TYPES",
    "TAG_MLMODEL_SHA256",
    "TAG_MODEL_FILE",
    "TAG_MODEL_SHA256",
    "LoadedModel",
    "LoggedSpec",
    "ModelFiles",
    "ModelIntegrityError",
    "ModelRegistry",
    "PromotionDecision",
    "RegisteredVersion",
    "RegistryUnavailable",
    "SignatureMismatch",
    "VersionInfo",
    "apply_gate",
    "bound_http_waits",
    "check_digests",
    "clear_model_cache",
    "count_trials",
    "decide_promotion",
    "download_model",
    "download_run_artifact",
    "ensure_experiment",
    "git_commit",
    "load_model",
    "load_pipeline_dir",
    "log_and_register",
    "pip_requirements",
    "promote_if_better",
    "read_model_files",
    "versions_by_alias",
]

ALIAS_CHAMPION = "champion"
ALIAS_CHALLENGER = "challenger"
ALIAS_PREVIOUS = "previous"
TAG_PREFIX = "alphadag.promotion."

SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)
"""Types beyond skops' defaults that the ridge, hgb and random_forest Pipelines contain."""

TAG_MODEL_SHA256 = "alphadag.model_sha256"
TAG_MLMODEL_SHA256 = "alphadag.mlmodel_sha256"
TAG_MODEL_FILE = "alphadag.model_file"
TAG_RUN_ID = "alphadag.run_id"  # set on every version log_and_register registers

HTTP_WAIT_DEFAULTS: Mapping[str, str] = MappingProxyType(dict(MLFLOW_HTTP_WAIT_DEFAULTS))
"""MLflow's HTTP retries, backoff factor and per-try timeout (s) unless the environment sets them.

MLflow's own defaults (7 retries, factor 2, 120 s per try) make a call to a closed port fail
after about 4 minutes (247 s measured) and to a server that never answers after about 20
(8 tries of 120 s plus backoff); these make them fail in 2 to 6 s and about 35 s (measured).
"""

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One logged run and the model version registered from it."""

    run_id: str
    version: int
    model_uri: str  # models:/<name>/<version>


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """The outcome of :func:`promote_if_better` (also written as version tags)."""

    promoted: bool
    reason: str
    challenger_version: int
    challenger_score: float
    champion_version: int | None
    champion_score: float | None
    margin: float
    higher_is_better: bool


def pip_requirements() -> list[str]:
    """Pinned requirements to serve a Pipeline (explicit: MLflow's inference takes seconds).

    >>> any(r.startswith("scikit-learn==") for r in pip_requirements())
    True
    """
    return [
        f"{dist}=={_dist_version(dist)}" for dist in ("scikit-learn", "skops", "numpy", "scipy")
    ]


def bound_http_waits() -> dict[str, str]:
    """Bound MLflow's client waits: each of :data:`HTTP_WAIT_DEFAULTS` the environment does not
    set is set (the user's own values win); returns the effective values.

    MLflow reads these variables on every request, so calling this any time before the first
    request is enough (the import does not need it). Idempotent.

    >>> sorted(bound_http_waits())  # doctest: +NORMALIZE_WHITESPACE
    ['MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR', 'MLFLOW_HTTP_REQUEST_MAX_RETRIES',
     'MLFLOW_HTTP_REQUEST_TIMEOUT']
    """
    for key, value in HTTP_WAIT_DEFAULTS.items():
        if not os.environ.get(key, "").strip():
            os.environ[key] = value
    return {key: os.environ[key] for key in HTTP_WAIT_DEFAULTS}


class RegistryUnavailable(RuntimeError):
    """The MLflow tracking or registry server did not answer (after the bounded retries)."""


def _connection_failure(err: BaseException) -> str | None:
    """The last error of a connection failure or timeout behind ``err`` (an MlflowException),
    e.g. ``[Errno 111] Connection refused``; ``None`` if the server answered."""
    import requests

    seen: BaseException | None = err
    for _ in range(10):  # the cause chain of an MLflow REST call is short
        if seen is None:
            return None
        if isinstance(seen, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            inner = seen.args[0] if seen.args else seen
            return str(getattr(inner, "reason", inner)).rsplit(": ", 1)[-1][:200]
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def _reaching(uri: str) -> Iterator[None]:
    """Turn a connection failure of the MLflow client into :class:`RegistryUnavailable`."""
    try:
        yield
    except MlflowException as err:
        failure = _connection_failure(err)
        if failure is None:
            raise
        waits = bound_http_waits()
        raise RegistryUnavailable(
            f"the MLflow server at {uri} did not answer "
            f"({waits['MLFLOW_HTTP_REQUEST_MAX_RETRIES']} retries, "
            f"{waits['MLFLOW_HTTP_REQUEST_TIMEOUT']} s per try; last error: {failure}): start "
            "it or point the tracking URI (ALPHADAG_MLFLOW_URI, the mlflow resource's "
            "tracking_uri) at a running one; MLFLOW_HTTP_REQUEST_MAX_RETRIES and "
            "MLFLOW_HTTP_REQUEST_TIMEOUT bound the wait"
        ) from err


@contextmanager
def _uris(tracking_uri: str | None, registry_uri: str | None) -> Iterator[None]:
    """Point the fluent API (``log_model`` needs it) at the given stores for the block only.

    ``mlflow.set_*_uri`` also export ``MLFLOW_*_URI`` environment variables, and setting the old
    value back would pin a default; so the previous module state and variables are restored as
    they were (MLflow offers no public scoped setter).
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    try:
        if tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        if registry_uri is not None or tracking_uri is not None:
            mlflow.set_registry_uri(registry_uri or tracking_uri)
        yield
    finally:
        if tracking_utils._tracking_uri != saved[0]:
            mlflow.set_tracking_uri(saved[0])  # resets the tracer provider too
        registry_utils._registry_uri = saved[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_no_secrets(kind: str, values: Mapping[str, Any]) -> None:
    bad = sorted(k for k in values if _SECRET_KEY.search(str(k)))
    if bad:
        raise ValueError(f"{kind} must not carry secrets; remove {bad} (use dg.EnvVar instead)")


def _as_pandas(frame: pl.DataFrame | pd.DataFrame) -> pd.DataFrame:
    """Float64 features with NaN for nulls, the matrix the Pipelines are fitted on."""
    if isinstance(frame, pl.DataFrame):
        frame = frame.select(pl.all().cast(pl.Float64).fill_null(float("nan"))).to_pandas()
    elif not isinstance(frame, pd.DataFrame):
        raise TypeError(f"input_example must be a polars or pandas DataFrame, got {type(frame)}")
    if frame.shape[0] == 0:
        raise ValueError("input_example must have at least one row")
    return frame.astype("float64")


def ensure_experiment(
    client: MlflowClient, name: str, *, artifact_location: str | None = None
) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``) if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def log_and_register(
    *,
    tracking_uri: str,
    registry_uri: str | None = None,
    experiment: str,
    artifact_location: str | None = None,
    model_name: str,
    pipeline: Pipeline,
    input_example: pl.DataFrame | pd.DataFrame,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    step_metrics: Sequence[Mapping[str, float]] = (),
    artifacts: Mapping[str, str | os.PathLike[str]] = MappingProxyType({}),
    version_tags: Mapping[str, str] = MappingProxyType({}),
    alias: str | None = ALIAS_CHALLENGER,
    run_name: str | None = None,
    training_data: pl.DataFrame | None = None,
    training_data_version: str | None = None,
    training_data_targets: str | None = None,
) -> RegisteredVersion:
    """Log one run with ``pipeline`` and register it as a new version with alias ``challenger``.

    Parameters:
        tracking_uri / registry_uri: the MLflow stores (registry defaults to tracking).
        experiment: experiment name, created under ``artifact_location`` if missing.
        model_name: registered model name; a new version is created on every call.
        pipeline: a *fitted* sklearn Pipeline taking the columns of ``input_example`` in order.
        input_example: a few feature rows; the signature is inferred from them and their
            predictions (nulls become NaN, as :func:`alphadag.models.feature_matrix` does).
        metrics / params / tags: logged with the run; keys that look like secrets are refused.
        step_metrics: per-step metrics (e.g. walk-forward folds), logged with ``step=i``.
        artifacts: ``{artifact_dir: local_file}`` logged with the run (plots, calibration data).
        version_tags: tags of the registered version (e.g. what it was trained through); the
            digest tags (:data:`TAG_MODEL_SHA256` ...) are this function's own.
        alias: the alias pointed at the new version (``None``: none, e.g. for the refit of a
            promoted challenger, which gets ``champion`` from :func:`promote`).
        run_name: a readable run name (e.g. ``ridge h5 2026-12-06T12:00``).
        training_data / training_data_version / training_data_targets: the rows the model was
            fitted on, logged as an MLflow dataset input (context ``training``) named and
            digested by their data version, with the label column as targets.

    The run is tagged ``mlflow.source.git.commit`` with :func:`git_commit` when it is known.
    The model is saved with skops and :data:`SKOPS_TRUSTED_TYPES`, with :func:`pip_requirements`.
    The files as logged are read back once and their sha256 recorded on the version and the run
    (:meth:`ModelFiles.digest_tags`); :meth:`ModelRegistry.load` checks them. Raises
    :class:`RegistryUnavailable` (naming ``tracking_uri``) when the server does not answer.
    Nothing here touches ``champion``; call :func:`promote_if_better` for that.
    """
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"pipeline must be a fitted sklearn Pipeline, got {type(pipeline)}")
    reserved = sorted(set(version_tags) & {TAG_MODEL_SHA256, TAG_MLMODEL_SHA256, TAG_MODEL_FILE})
    if reserved:
        raise ValueError(f"version_tags must not set {reserved}: the digests are computed here")
    bound_http_waits()
    for kind, values in (
        ("params", params),
        ("tags", tags),
        ("metrics", metrics),
        ("version_tags", version_tags),
    ):
        _check_no_secrets(kind, values)
    run_tags = dict(tags)
    commit = git_commit()
    if commit is not None:
        run_tags.setdefault("mlflow.source.git.commit", commit)
    example = _as_pandas(input_example)
    predictions = np.asarray(pipeline.predict(example.to_numpy()), dtype=np.float64)
    signature = infer_signature(example, predictions)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    with _reaching(tracking_uri):
        experiment_id = ensure_experiment(client, experiment, artifact_location=artifact_location)
    with (
        _reaching(tracking_uri),
        _uris(tracking_uri, registry_uri),
        mlflow.start_run(experiment_id=experiment_id, tags=run_tags, run_name=run_name) as run,
    ):
        if training_data is not None:
            digest = (training_data_version or "")[:32] or None
            mlflow.log_input(
                mlflow.data.from_polars(
                    training_data,
                    targets=training_data_targets,
                    name=f"training_set@{digest[:12]}" if digest else "training_set",
                    digest=digest,
                ),
                context="training",
            )
        mlflow.log_params(dict(params))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for step, values in enumerate(step_metrics):
            mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)
        for artifact_dir, local in artifacts.items():
            mlflow.log_artifact(os.fspath(local), artifact_path=artifact_dir)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
            pip_requirements=pip_requirements(),
        )
        digests = _logged_digests(info.model_uri)
        mlflow.set_tags(digests)  # on the run page too
        version = mlflow.register_model(
            info.model_uri,
            model_name,
            tags={TAG_RUN_ID: run.info.run_id, **version_tags, **digests},
        )
    if alias is not None:
        client.set_registered_model_alias(model_name, alias, version.version)
    return RegisteredVersion(
        run_id=run.info.run_id,
        version=int(version.version),
        model_uri=f"models:/{model_name}/{version.version}",
    )


def _logged_digests(model_uri: str) -> dict[str, str]:
    """The digest tags of the model files as they were logged (read back from the store once)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        return read_model_files(local, model_uri).digest_tags()


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The commit the code runs from: ``ALPHADAG_GIT_COMMIT``, else ``git rev-parse HEAD``.

    ``None`` outside a checkout with no variable set (an installed wheel): nothing is guessed.
    """
    env = os.environ.get("ALPHADAG_GIT_COMMIT")
    if env:
        return env
    here = cwd if cwd is not None else os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def decide_promotion(
    challenger_score: float,
    champion_score: float | None,
    *,
    margin: float,
    higher_is_better: bool = True,
) -> tuple[bool, str]:
    """Whether the challenger should become champion, and why (pure; no registry calls).

    >>> decide_promotion(0.05, None, margin=0.01)
    (True, 'no champion')
    >>> decide_promotion(0.05, 0.045, margin=0.01)[0]
    False
    >>> decide_promotion(0.10, 0.12, margin=0.01, higher_is_better=False)[0]
    True
    """
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    if not math.isfinite(challenger_score):
        return False, f"challenger score {challenger_score!r} is not finite"
    if champion_score is None:
        return True, "no champion"
    if not math.isfinite(champion_score):
        return True, f"champion score {champion_score!r} is not finite"
    gain = (
        challenger_score - champion_score if higher_is_better else champion_score - challenger_score
    )
    if gain > margin:
        return True, f"challenger beats champion by {gain:.6g} > margin {margin:g}"
    return False, f"challenger gain {gain:.6g} is not above margin {margin:g}"


def _alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    # read from the model's alias map: a missing alias is INVALID_PARAMETER_VALUE in
    # get_model_version_by_alias, indistinguishable from a real argument error
    return versions_by_alias(client, name).get(alias)


def promote_if_better(
    client: MlflowClient,
    model_name: str,
    *,
    challenger_version: int,
    challenger_score: float,
    champion_score: float | None,
    margin: float,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Make ``challenger_version`` the ``champion`` if it beats the current one by ``margin``.

    With no champion the challenger is promoted. On promotion the old champion gets ``previous``.
    Both versions are tagged ``alphadag.promotion.{decision,reason,challenger_score,...}``. The
    tags are written first and the alias moves last; if moving ``champion`` fails, ``previous``
    is put back, so aliases either all move or none do. ``champion_score`` must be given when a
    champion exists (the caller scores both on the same data).
    """
    challenger_version = int(challenger_version)
    # fail before any write if the version does not exist
    client.get_model_version(model_name, str(challenger_version))
    champion_version = _alias_version(client, model_name, ALIAS_CHAMPION)
    if champion_version is not None and champion_score is None:
        raise ValueError(
            f"{model_name} has champion version {champion_version}; pass its champion_score"
        )
    if champion_version == challenger_version:
        raise ValueError(f"version {challenger_version} of {model_name} is already the champion")
    if champion_version is None:
        champion_score = None
    promoted, reason = decide_promotion(
        challenger_score, champion_score, margin=margin, higher_is_better=higher_is_better
    )
    decision = PromotionDecision(
        promoted=promoted,
        reason=reason,
        challenger_version=challenger_version,
        challenger_score=float(challenger_score),
        champion_version=champion_version,
        champion_score=None if champion_score is None else float(champion_score),
        margin=float(margin),
        higher_is_better=higher_is_better,
    )
    outcome = "promoted" if promoted else "refused"
    tags = {
        "decision": outcome,
        "reason": reason,
        "challenger_version": str(challenger_version),
        "challenger_score": repr(decision.challenger_score),
        "champion_version": "" if champion_version is None else str(champion_version),
        "champion_score": "" if decision.champion_score is None else repr(decision.champion_score),
        "margin": repr(decision.margin),
        "higher_is_better": str(higher_is_better).lower(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(challenger_version), TAG_PREFIX + key, value)
    if champion_version is not None:
        for key, value in {**tags, "challenged_by": str(challenger_version)}.items():
            client.set_model_version_tag(model_name, str(champion_version), TAG_PREFIX + key, value)
    if not promoted:
        return decision
    _move_champion(client, model_name, champion_version, challenger_version, challenger_version)
    return decision


def _move_champion(
    client: MlflowClient,
    model_name: str,
    champion_version: int | None,
    target_version: int,
    challenger_version: int,
) -> None:
    """``previous`` -> old champion, then ``champion`` -> ``target_version``; all or nothing."""
    old_previous = _alias_version(client, model_name, ALIAS_PREVIOUS)
    moved_previous = False
    try:
        if champion_version is not None:
            client.set_registered_model_alias(model_name, ALIAS_PREVIOUS, str(champion_version))
            moved_previous = True
        client.set_registered_model_alias(model_name, ALIAS_CHAMPION, str(target_version))
    except Exception:
        if moved_previous:
            if old_previous is None:
                client.delete_registered_model_alias(model_name, ALIAS_PREVIOUS)
            else:
                client.set_registered_model_alias(model_name, ALIAS_PREVIOUS, str(old_previous))
        with suppress(Exception):  # the original error matters more than this tag
            client.set_model_version_tag(
                model_name, str(challenger_version), TAG_PREFIX + "decision", "failed"
            )
        raise


def apply_gate(
    client: MlflowClient,
    model_name: str,
    *,
    challenger_version: int,
    promoted: bool,
    reason: str,
    evidence: Mapping[str, str] = MappingProxyType({}),
    serve_version: int | None = None,
) -> int | None:
    """Record a gate decision made elsewhere (:mod:`alphadag.models.gate`) and act on it.

    The challenger (and the current champion, with ``challenged_by``) get
    ``alphadag.promotion.{decision,reason,champion_version,...}`` tags plus ``evidence`` (the
    gate's numbers). On promotion ``champion`` moves to ``serve_version`` (default: the
    challenger; the asset passes the challenger's refit on every labelled row) and ``previous``
    to the old champion, all or nothing as in :func:`promote_if_better`. When the gate refused
    and ``serve_version`` is given, it must be a refit of the current champion (version tag
    ``alphadag.refit_of``): the champion is *refreshed* (same spec, more data), ``champion``
    moves to it and ``previous`` to the old champion. Returns the champion version before the
    call (``None``: there was none).
    """
    challenger_version = int(challenger_version)
    target = challenger_version if serve_version is None else int(serve_version)
    versions = {
        v: client.get_model_version(model_name, str(v)) for v in {challenger_version, target}
    }
    champion_version = _alias_version(client, model_name, ALIAS_CHAMPION)
    if champion_version in (challenger_version, target):
        raise ValueError(f"version {champion_version} of {model_name} is already the champion")
    refresh = not promoted and serve_version is not None
    if refresh:
        refit_of = (versions[target].tags or {}).get("alphadag.refit_of")
        if champion_version is None or refit_of != str(champion_version):
            raise ValueError(
                f"version {target} of {model_name} is not a refit of the champion "
                f"({champion_version}); a refused gate only refreshes the champion"
            )
    _check_no_secrets("evidence", evidence)
    tags = {
        "decision": "promoted" if promoted else "refused",
        "reason": reason[:5000],
        "challenger_version": str(challenger_version),
        "champion_version": "" if champion_version is None else str(champion_version),
        "serve_version": str(target) if promoted or refresh else "",
        "champion_refreshed": str(refresh).lower(),
        **{k: str(v) for k, v in evidence.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(challenger_version), TAG_PREFIX + key, value)
    if champion_version is not None:
        for key, value in {**tags, "challenged_by": str(challenger_version)}.items():
            client.set_model_version_tag(model_name, str(champion_version), TAG_PREFIX + key, value)
    if promoted or refresh:
        _move_champion(client, model_name, champion_version, target, challenger_version)
    return champion_version


def count_trials(client: MlflowClient, name: str) -> int:
    """How many models were tried for ``name``: registered versions that are not refits.

    A refit (version tag ``alphadag.kind = refit``) re-trains an already promoted spec on more
    data; it is not a new trial. An unknown model gives 0.
    """
    if "'" in name:
        raise ValueError(f"model name {name!r} must not contain a quote")
    versions = client.search_model_versions(f"name = '{name}'")
    return sum(1 for mv in versions if (mv.tags or {}).get("alphadag.kind") != "refit")


def versions_by_alias(client: MlflowClient, name: str) -> dict[str, int]:
    """``{alias: version}`` of registered model ``name`` (empty if it does not exist)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return {}
        raise
    return {alias: int(v) for alias, v in model.aliases.items()}


def download_model(
    model_uri: str,
    dst_path: str | os.PathLike[str],
    *,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> str:
    """Download the files of ``model_uri`` (``MLmodel``, the skops file, the input example).

    Returns the local directory. Nothing is deserialised here; see :func:`load_model`.
    """
    with _uris(tracking_uri, registry_uri):
        return mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=os.fspath(dst_path)
        )


def load_model(
    model_uri: str, *, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Pipeline:
    """Load the Pipeline at ``model_uri`` (e.g. ``models:/alphadag-returns@champion``).

    Only skops-format sklearn models load, and only with :data:`SKOPS_TRUSTED_TYPES` (the
    allow-list stored inside the artifact is ignored), so no pickle is ever executed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        local = download_model(model_uri, tmp, tracking_uri=tracking_uri, registry_uri=registry_uri)
        return load_pipeline_dir(local, model_uri)


def load_pipeline_dir(local: str | os.PathLike[str] | ModelFiles, model_uri: str = "") -> Pipeline:
    """The Pipeline in a downloaded model directory (see :func:`load_model` for the rules).

    ``local`` is the directory, or its files already read (:class:`ModelFiles`: what
    :meth:`ModelRegistry.load` passes once their digests are checked, so the bytes deserialised
    are the bytes hashed). ``model_uri`` only names the model in error messages. The one
    deserialiser of the registry: every load goes through it.
    """
    files = local if isinstance(local, ModelFiles) else read_model_files(local, model_uri)
    return files.pipeline()


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The bytes a load reads from a downloaded model: ``MLmodel`` and the skops file.

    Each file is read once: the digests are of these bytes and :meth:`pipeline` deserialises the
    same bytes, so nothing can change between the check and the load.
    """

    model_uri: str
    mlmodel: bytes
    model_file: str  # the skops file's path inside the model directory, e.g. model.skops
    model_bytes: bytes
    meta: Model

    @property
    def model_sha256(self) -> str:
        return hashlib.sha256(self.model_bytes).hexdigest()

    @property
    def mlmodel_sha256(self) -> str:
        return hashlib.sha256(self.mlmodel).hexdigest()

    def digest_tags(self) -> dict[str, str]:
        """The tags registration records: both digests and the skops file's path."""
        return {
            TAG_MODEL_SHA256: self.model_sha256,
            TAG_MLMODEL_SHA256: self.mlmodel_sha256,
            TAG_MODEL_FILE: self.model_file,
        }

    def inputs(self) -> list[str] | None:
        """The signature's input column names (``None`` without a signature)."""
        signature = self.meta.signature
        return None if signature is None else list(signature.inputs.input_names())

    def pipeline(self) -> Pipeline:
        """The Pipeline in :attr:`model_bytes`, loaded with :data:`SKOPS_TRUSTED_TYPES` only."""
        import skops.io

        model = skops.io.loads(self.model_bytes, trusted=list(SKOPS_TRUSTED_TYPES))
        if not isinstance(model, Pipeline):
            raise TypeError(f"{self.model_uri} holds a {type(model).__name__}, not a Pipeline")
        return model


def read_model_files(local: str | os.PathLike[str], model_uri: str = "") -> ModelFiles:
    """Read ``MLmodel`` and the skops file it names from a downloaded model directory.

    Raises ``ValueError`` for a model that is not an sklearn model in the skops format, or whose
    ``MLmodel`` names a file outside the directory.
    """
    import yaml

    local = os.path.realpath(os.fspath(local))
    name = model_uri or local
    with open(os.path.join(local, "MLmodel"), "rb") as f:
        mlmodel = f.read()
    meta = Model.from_dict(yaml.safe_load(mlmodel))
    flavor = meta.flavors.get("sklearn")
    if flavor is None or flavor.get("serialization_format") != "skops":
        raise ValueError(f"{name} is not an sklearn model saved in the skops format")
    path = os.path.realpath(os.path.join(local, flavor["pickled_model"]))
    if os.path.commonpath([local, path]) != local:
        raise ValueError(f"{name}'s MLmodel names a model file outside its directory: {path}")
    with open(path, "rb") as f:
        model_bytes = f.read()
    return ModelFiles(
        model_uri=name,
        mlmodel=mlmodel,
        model_file=os.path.relpath(path, local),
        model_bytes=model_bytes,
        meta=meta,
    )


class ModelIntegrityError(ValueError):
    """A version's file is not the bytes recorded at its registration, or it has no record.

    ``expected`` is the recorded sha256 (``None``: no digest tag), ``actual`` the sha256 of the
    bytes read from ``path`` (where the file is stored).
    """

    def __init__(
        self, *, name: str, version: int, path: str, tag: str, expected: str | None, actual: str
    ) -> None:
        self.name, self.version, self.path = name, version, path
        self.expected, self.actual = expected, actual
        if expected is None:
            message = (
                f"no recorded digest: {name} version {version} was registered by alphadag "
                f"without a {tag} tag, so {path} (sha256 {actual}) cannot be verified; "
                "retrain to register a version with one"
            )
        else:
            message = (
                f"digest mismatch: {name} version {version}: {path} has sha256 {actual}, "
                f"expected {expected} (version tag {tag}); the file is not the one registered"
            )
        super().__init__(message)


def check_digests(
    files: ModelFiles, tags: Mapping[str, str], *, name: str, version: int, location: str
) -> None:
    """Raise :class:`ModelIntegrityError` unless ``files`` hash to the digests in ``tags``.

    ``tags`` are the version's tags; ``location`` is where its files are stored (named in the
    message with the file). A version registered by :func:`log_and_register` (tag
    ``alphadag.run_id``) must carry both digests; a version registered by another tool without
    them has nothing to compare with and passes.
    """
    where = location.rstrip("/")
    for tag, path, actual in (
        (TAG_MODEL_SHA256, files.model_file, files.model_sha256),
        (TAG_MLMODEL_SHA256, "MLmodel", files.mlmodel_sha256),
    ):
        expected = tags.get(tag)
        if expected is None and TAG_RUN_ID not in tags:
            continue
        if expected != actual:
            raise ModelIntegrityError(
                name=name,
                version=version,
                path=f"{where}/{path}",
                tag=tag,
                expected=expected,
                actual=actual,
            )


def download_run_artifact(
    run_id: str,
    artifact_path: str,
    dst_path: str | os.PathLike[str],
    *,
    tracking_uri: str | None = None,
) -> str:
    """Download one artifact of run ``run_id`` (e.g. ``calibration/valid_residuals.parquet``)."""
    with _uris(tracking_uri, None):
        return mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=artifact_path,
            dst_path=os.fspath(dst_path),
            tracking_uri=tracking_uri,
        )


class SignatureMismatch(ValueError):
    """A version's MLmodel signature does not name the expected input columns."""


class LoadedModel:
    """One registry version loaded by :meth:`ModelRegistry.load` (cached per process).

    ``inputs`` are the signature's input columns (``None``: the model has no signature);
    :meth:`run_frame` reads a Parquet artifact of the version's run once (``None`` if absent).
    """

    def __init__(
        self,
        *,
        name: str,
        version: int,
        pipeline: Pipeline,
        inputs: tuple[str, ...] | None,
        run_id: str,
        tags: Mapping[str, str],
        tracking_uri: str | None,
        model_sha256: str = "",
    ) -> None:
        self.name = name
        self.version = version
        self.model_uri = f"models:/{name}/{version}"
        self.pipeline = pipeline
        self.inputs = inputs
        self.run_id = run_id
        self.tags = MappingProxyType(dict(tags))
        self.model_sha256 = model_sha256  # of the skops bytes that were deserialised
        self._tracking_uri = tracking_uri
        self._frames: dict[str, pl.DataFrame | None] = {}
        self._lock = threading.Lock()

    def run_frame(self, artifact_path: str) -> pl.DataFrame | None:
        """The Parquet artifact ``artifact_path`` of the version's run (``None``: not logged)."""
        with self._lock:
            if artifact_path in self._frames:
                return self._frames[artifact_path]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = download_run_artifact(
                    self.run_id, artifact_path, tmp, tracking_uri=self._tracking_uri
                )
                frame: pl.DataFrame | None = pl.read_parquet(local)
        except Exception:  # an older run without the artifact
            frame = None
        with self._lock:
            self._frames[artifact_path] = frame
        return frame


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One registered version as :meth:`ModelRegistry.history` lists it."""

    version: int
    run_id: str
    kind: str  # challenger | refit ("" for versions logged by other paths)
    trained_through: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LoggedSpec:
    """A version's model spec read back from its run's params (what the gate re-scores)."""

    version: int
    family: str
    params: dict[str, Any]  # resolved estimator params without random_state
    seed: int
    feature_set: str
    columns: tuple[str, ...]
    run_params: dict[str, str]


CACHE_SIZE = 16
_LOADED: OrderedDict[tuple[str, str, int], LoadedModel] = OrderedDict()
_LOADED_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget every loaded version (tests; a long-lived process never needs it)."""
    with _LOADED_LOCK:
        _LOADED.clear()


class ModelRegistry:
    """The registry of one model name: register, gate, aliases, history and one ``load``."""

    def __init__(
        self,
        name: str,
        *,
        tracking_uri: str,
        registry_uri: str | None = None,
        experiment: str = "alphadag",
        artifact_location: str | None = None,
        client: MlflowClient | None = None,
    ) -> None:
        self.name = name
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location
        self._client = client
        bound_http_waits()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def register(self, **kwargs: Any) -> RegisteredVersion:
        """:func:`log_and_register` into this registry's stores, experiment and name."""
        return log_and_register(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            experiment=self.experiment,
            artifact_location=self.artifact_location,
            model_name=self.name,
            **kwargs,
        )

    def apply_gate(self, **kwargs: Any) -> int | None:
        """:func:`apply_gate` for this name."""
        return apply_gate(self.client, self.name, **kwargs)

    def aliases(self) -> dict[str, int]:
        """``{alias: version}`` (empty if the model does not exist yet).

        Raises :class:`RegistryUnavailable` (naming the registry URI) if the server does not
        answer within the bounded retries (:func:`bound_http_waits`).
        """
        with _reaching(self.registry_uri):
            return versions_by_alias(self.client, self.name)

    def count_trials(self) -> int:
        return count_trials(self.client, self.name)

    def history(self) -> list[VersionInfo]:
        """Every registered version, oldest first, with its kind, trained_through and aliases."""
        if "'" in self.name:
            raise ValueError(f"model name {self.name!r} must not contain a quote")
        by_version: dict[int, list[str]] = {}
        for alias, version in self.aliases().items():
            by_version.setdefault(version, []).append(alias)
        out = []
        for mv in self.client.search_model_versions(f"name = '{self.name}'"):
            tags = dict(mv.tags or {})
            version = int(mv.version)
            out.append(
                VersionInfo(
                    version=version,
                    run_id=mv.run_id,
                    kind=tags.get("alphadag.kind", ""),
                    trained_through=tags.get("alphadag.trained_through", ""),
                    aliases=tuple(sorted(by_version.get(version, ()))),
                    tags=MappingProxyType(tags),
                )
            )
        return sorted(out, key=lambda v: v.version)

    def logged_spec(self, version: int) -> LoggedSpec:
        """The spec ``version`` was fitted with, from its run's params (raises ``ValueError``).

        A version logged before feature sets existed was fitted on the raw feature columns.
        """
        run = self.client.get_run(self.client.get_model_version(self.name, str(version)).run_id)
        params = dict(run.data.params)
        try:
            resolved = json.loads(params["params"])
            resolved.pop("random_state", None)
            return LoggedSpec(
                version=int(version),
                family=params["family"],
                params=resolved,
                seed=int(params["seed"]),
                feature_set=params.get("feature_set", "raw"),
                columns=tuple(params["feature_columns"].split(",")),
                run_params=params,
            )
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"version {version} has no readable spec: {err!r}") from err

    def load(self, version: int, *, expected_columns: Sequence[str] | None = None) -> LoadedModel:
        """Version ``version``, downloaded and loaded once per process (LRU of
        :data:`CACHE_SIZE`), its signature checked against ``expected_columns`` when given.

        Only skops-format sklearn Pipelines load, with :data:`SKOPS_TRUSTED_TYPES`, and only if
        the bytes read hash to the digests recorded at registration (:func:`check_digests`;
        :class:`ModelIntegrityError` otherwise); the bytes hashed are the bytes deserialised.
        """
        key = (self.registry_uri, self.name, int(version))
        with _LOADED_LOCK:
            model = _LOADED.get(key)
            if model is not None:
                _LOADED.move_to_end(key)
        if model is None:
            with _reaching(self.registry_uri):
                mv = self.client.get_model_version(self.name, str(version))
            uri = f"models:/{self.name}/{int(version)}"
            with tempfile.TemporaryDirectory() as tmp:
                local = download_model(
                    uri, tmp, tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
                )
                files = read_model_files(local, uri)
            tags = dict(mv.tags or {})
            check_digests(
                files, tags, name=self.name, version=int(version), location=self._location(uri)
            )
            inputs = files.inputs()
            model = LoadedModel(
                name=self.name,
                version=int(version),
                pipeline=load_pipeline_dir(files, uri),
                inputs=None if inputs is None else tuple(inputs),
                run_id=mv.run_id,
                tags=tags,
                tracking_uri=self.tracking_uri,
                model_sha256=files.model_sha256,
            )
            with _LOADED_LOCK:
                _LOADED[key] = model
                while len(_LOADED) > CACHE_SIZE:
                    _LOADED.popitem(last=False)
        if expected_columns is not None:
            if not model.inputs:
                raise SignatureMismatch(f"{model.model_uri} has no input signature")
            if list(model.inputs) != list(expected_columns):
                raise SignatureMismatch(
                    f"{model.model_uri}'s signature names {len(model.inputs)} input column(s) "
                    f"{list(model.inputs)[:5]}..., expected {list(expected_columns)[:5]}..."
                )
        return model

    def _location(self, uri: str) -> str:
        """Where the version's files are stored (the artifact store URI), for messages."""
        version = uri.rsplit("/", 1)[-1]
        try:
            return self.client.get_model_version_download_uri(self.name, version)
        except Exception:  # only a message depends on it
            return uri
