"""The MLflow registry helpers against a real temporary store (SQLite + local artifacts).

Log and register, alias-based promotion (champion / previous / challenger) with its decision tags,
skops round trips for every model family, and failure atomicity: an error before or during the
alias moves leaves every alias where it was. No network: MLflow telemetry is off.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow_http import bounds, closed_port_uri, record_http_calls

from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.models import ModelSpec, fit_pipeline, predict
from alphadag.models import registry as reg
from alphadag.models.registry import MlflowClient

FEATURES = ["f1", "f2", "f3", "f4"]
LABEL = "fwd_ret_5d"
FAST = {
    "ridge": {"alpha": 3.0},
    "hgb": {"max_iter": 15, "min_samples_leaf": 20},
    "random_forest": {"n_estimators": 8, "max_depth": 5, "min_samples_leaf": 10},
}


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """400 rows of four features (with nulls, as in warm-up) and a noisy linear label."""
    rng = np.random.default_rng(11)
    n = 400
    x = rng.standard_normal((n, len(FEATURES)))
    y = 0.02 * x[:, 0] - 0.01 * x[:, 2] + 0.01 * rng.standard_normal(n)
    x[rng.random(x.shape) < 0.05] = np.nan
    return pl.DataFrame({**{c: x[:, i] for i, c in enumerate(FEATURES)}, LABEL: y})


@pytest.fixture(scope="module")
def example(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(FEATURES).head(25)


def _fit(frame: pl.DataFrame, family: str, impute: bool | None = None):
    return fit_pipeline(frame, ModelSpec(family, FAST[family], impute=impute), FEATURES, LABEL)


class Store:
    """A temporary MLflow store: one SQLite file and one artifact directory."""

    def __init__(self, root: Path) -> None:
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.artifacts = str(root / "mlartifacts")
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def register(self, pipeline, example, *, model_name: str, score: float = 0.0):
        return reg.log_and_register(
            tracking_uri=self.tracking_uri,
            experiment="alphadag",
            artifact_location=self.artifacts,
            model_name=model_name,
            pipeline=pipeline,
            input_example=example,
            metrics={"valid.model.ic_mean": score, "valid.model.rmse": 0.01},
            params={"family": "ridge", "alpha": 3.0, "horizon": 5},
            tags={"alphadag.partition_range": "2024-01-02..2024-03-28"},
        )

    def aliases(self, name: str) -> dict[str, int]:
        return reg.versions_by_alias(self.client, name)

    def version_tags(self, name: str, version: int) -> dict[str, str]:
        return self.client.get_model_version(name, str(version)).tags


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for the module (schema creation is the slow part); each test uses its own name."""
    return Store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture()
def ridge(frame: pl.DataFrame):
    return _fit(frame, "ridge")


def test_log_and_register_creates_a_version_with_the_challenger_alias(
    store, ridge, example, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    name = "alphadag-returns"
    rv = store.register(ridge, example, model_name=name, score=0.03)
    assert rv.version == 1
    assert rv.model_uri == f"models:/{name}/1"
    assert store.aliases(name) == {"challenger": 1}
    run = store.client.get_run(rv.run_id)
    assert run.data.params == {"family": "ridge", "alpha": "3.0", "horizon": "5"}
    assert run.data.metrics["valid.model.ic_mean"] == pytest.approx(0.03)
    assert run.data.tags["alphadag.partition_range"] == "2024-01-02..2024-03-28"
    assert store.client.get_model_version(name, "1").run_id == rv.run_id
    # the artifact lives under the experiment's artifact location, saved with skops
    assert store.client.get_experiment_by_name("alphadag").artifact_location.endswith("mlartifacts")
    # models:/ URIs resolve through the global stores (a default would create ./mlflow.db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.tracking_uri)
    model_dir = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/1", dst_path=str(tmp_path)
    )
    mlmodel = Model.load(model_dir)
    flavor = mlmodel.flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert set(flavor["skops_trusted_types"]) == set(reg.SKOPS_TRUSTED_TYPES)
    assert [i.name for i in mlmodel.signature.inputs.inputs] == FEATURES
    requirements = Path(model_dir, "requirements.txt").read_text().split()
    assert set(reg.pip_requirements()) <= set(requirements)


def test_promotion_sequence_moves_aliases_and_records_decisions(store, frame, example):
    name = "promotion-sequence"
    v1 = store.register(_fit(frame, "ridge"), example, model_name=name, score=0.02)
    d1 = reg.promote_if_better(
        store.client,
        name,
        challenger_version=v1.version,
        challenger_score=0.02,
        champion_score=None,
        margin=0.005,
    )
    assert d1.promoted and d1.reason == "no champion" and d1.champion_version is None
    assert store.aliases(name) == {"challenger": 1, "champion": 1}
    assert store.version_tags(name, 1)["alphadag.promotion.decision"] == "promoted"

    v2 = store.register(_fit(frame, "ridge"), example, model_name=name, score=0.04)
    assert store.aliases(name) == {"challenger": 2, "champion": 1}
    d2 = reg.promote_if_better(
        store.client,
        name,
        challenger_version=v2.version,
        challenger_score=0.04,
        champion_score=0.02,
        margin=0.005,
    )
    assert d2.promoted and d2.champion_version == 1
    assert store.aliases(name) == {"challenger": 2, "champion": 2, "previous": 1}
    tags2 = store.version_tags(name, 2)
    assert tags2["alphadag.promotion.decision"] == "promoted"
    assert float(tags2["alphadag.promotion.challenger_score"]) == 0.04
    assert float(tags2["alphadag.promotion.champion_score"]) == 0.02
    assert tags2["alphadag.promotion.champion_version"] == "1"
    assert store.version_tags(name, 1)["alphadag.promotion.challenged_by"] == "2"

    # a challenger better by less than the margin is refused
    v3 = store.register(_fit(frame, "ridge"), example, model_name=name, score=0.043)
    d3 = reg.promote_if_better(
        store.client,
        name,
        challenger_version=v3.version,
        challenger_score=0.043,
        champion_score=0.04,
        margin=0.005,
    )
    assert not d3.promoted and "not above margin" in d3.reason
    assert store.aliases(name) == {"challenger": 3, "champion": 2, "previous": 1}
    tags3 = store.version_tags(name, 3)
    assert tags3["alphadag.promotion.decision"] == "refused"
    assert tags3["alphadag.promotion.reason"] == d3.reason
    assert store.version_tags(name, 2)["alphadag.promotion.challenged_by"] == "3"


def test_lower_is_better_and_nan_scores(store, ridge, example):
    name = "lower-is-better"
    v1 = store.register(ridge, example, model_name=name)
    v2 = store.register(ridge, example, model_name=name)
    reg.promote_if_better(
        store.client, name, challenger_version=1, challenger_score=0.02, champion_score=None,
        margin=0.0, higher_is_better=False,
    )  # fmt: skip
    nan = reg.promote_if_better(
        store.client, name, challenger_version=v2.version, challenger_score=float("nan"),
        champion_score=0.02, margin=0.0, higher_is_better=False,
    )  # fmt: skip
    assert not nan.promoted and "not finite" in nan.reason
    lower = reg.promote_if_better(
        store.client, name, challenger_version=v2.version, challenger_score=0.01,
        champion_score=0.02, margin=0.0, higher_is_better=False,
    )  # fmt: skip
    assert lower.promoted
    assert store.aliases(name) == {"challenger": 2, "champion": 2, "previous": v1.version}


def test_champion_loads_back_and_reproduces_predictions_exactly(store, frame, example):
    name = "alphadag-returns-load"
    pipeline = _fit(frame, "ridge")
    rv = store.register(pipeline, example, model_name=name)
    reg.promote_if_better(
        store.client, name, challenger_version=rv.version, challenger_score=0.01,
        champion_score=None, margin=0.0,
    )  # fmt: skip
    loaded = reg.load_model(f"models:/{name}@champion", tracking_uri=store.tracking_uri)
    np.testing.assert_array_equal(
        predict(loaded, example, FEATURES), predict(pipeline, example, FEATURES)
    )
    np.testing.assert_array_equal(
        predict(loaded, frame, FEATURES), predict(pipeline, frame, FEATURES)
    )


@pytest.mark.parametrize(
    ("family", "impute"), [("hgb", None), ("hgb", True), ("random_forest", None)]
)
def test_tree_pipelines_round_trip_through_skops(store, frame, example, family, impute):
    name = f"roundtrip-{family}-{impute}"
    pipeline = _fit(frame, family, impute)
    rv = store.register(pipeline, example, model_name=name)
    loaded = reg.load_model(rv.model_uri, tracking_uri=store.tracking_uri)
    np.testing.assert_array_equal(
        predict(loaded, frame, FEATURES), predict(pipeline, frame, FEATURES)
    )


class FailingAliasClient:
    """Wraps a real client; ``set_registered_model_alias`` raises for the chosen alias."""

    def __init__(self, client: MlflowClient, fail_on: str) -> None:
        self._client = client
        self.fail_on = fail_on
        self.alias_calls: list[tuple[str, str]] = []

    def __getattr__(self, attr: str):
        return getattr(self._client, attr)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias_calls.append((alias, version))
        if alias == self.fail_on:
            raise MlflowException(f"injected failure moving {alias!r}")
        self._client.set_registered_model_alias(name, alias, version)


def _two_versions_and_a_champion(store: Store, pipeline, example, name: str) -> None:
    for _ in range(3):
        store.register(pipeline, example, model_name=name)
    reg.promote_if_better(
        store.client, name, challenger_version=1, challenger_score=0.01, champion_score=None,
        margin=0.0,
    )  # fmt: skip
    reg.promote_if_better(
        store.client, name, challenger_version=2, challenger_score=0.02, champion_score=0.01,
        margin=0.0,
    )  # fmt: skip


@pytest.mark.parametrize("fail_on", ["previous", "champion"])
def test_a_failed_alias_move_leaves_every_alias_unchanged(store, ridge, example, fail_on):
    name = f"atomic-{fail_on}"
    _two_versions_and_a_champion(store, ridge, example, name)
    before = store.aliases(name)
    assert before == {"challenger": 3, "champion": 2, "previous": 1}
    failing = FailingAliasClient(store.client, fail_on)
    with pytest.raises(MlflowException, match="injected failure"):
        reg.promote_if_better(
            failing, name, challenger_version=3, challenger_score=0.05, champion_score=0.02,
            margin=0.0,
        )  # fmt: skip
    assert store.aliases(name) == before
    assert store.version_tags(name, 3)["alphadag.promotion.decision"] == "failed"
    if fail_on == "champion":  # 'previous' moved first, then was put back
        assert failing.alias_calls == [("previous", "2"), ("champion", "3"), ("previous", "1")]


def test_errors_before_the_move_touch_nothing(store, ridge, example):
    name = "atomic-invalid"
    _two_versions_and_a_champion(store, ridge, example, name)
    before = store.aliases(name)
    with pytest.raises(MlflowException, match="not found"):
        reg.promote_if_better(
            store.client, name, challenger_version=99, challenger_score=1.0, champion_score=0.02,
            margin=0.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="pass its champion_score"):
        reg.promote_if_better(
            store.client, name, challenger_version=3, challenger_score=1.0, champion_score=None,
            margin=0.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="margin"):
        reg.promote_if_better(
            store.client, name, challenger_version=3, challenger_score=1.0, champion_score=0.02,
            margin=-1.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="already the champion"):
        reg.promote_if_better(
            store.client, name, challenger_version=2, challenger_score=1.0, champion_score=0.02,
            margin=0.0,
        )  # fmt: skip
    assert store.aliases(name) == before
    assert "alphadag.promotion.decision" not in store.version_tags(name, 3)


@pytest.mark.parametrize("key", ["api_key", "DB_PASSWORD", "hf_token"])
def test_secret_looking_keys_are_refused(store, ridge, example, key):
    with pytest.raises(ValueError, match="secrets"):
        reg.log_and_register(
            tracking_uri=store.tracking_uri, experiment="alphadag", model_name="secrets",
            pipeline=ridge, input_example=example, metrics={}, params={key: "x"}, tags={},
        )  # fmt: skip


def test_versions_by_alias_of_an_unknown_model_is_empty(store):
    assert reg.versions_by_alias(store.client, "no-such-model") == {}


def test_global_mlflow_state_is_restored(store, ridge, example):
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    tracking, registry_uri = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    store.register(ridge, example, model_name="restore")
    assert {k: os.environ.get(k) for k in env} == env
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (tracking, registry_uri)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"].lower() == "true"


def test_mlflow_resource_local_store(tmp_path, ridge, example, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_UI_BASE", "http://127.0.0.1:5055/")
    resource = MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'nested' / 'mlflow.db'}",
        artifact_location=str(tmp_path / "mlartifacts"),
    )
    experiment_id = resource.ensure_experiment()
    assert resource.ensure_experiment() == experiment_id  # idempotent
    client = resource.client()
    location = client.get_experiment(experiment_id).artifact_location
    assert location == (tmp_path / "mlartifacts").as_uri()
    rv = resource.log_and_register(
        pipeline=ridge, input_example=example, metrics={"ic": 0.1}, params={}, tags={}
    )
    assert reg.versions_by_alias(client, "alphadag-returns") == {"challenger": rv.version}
    assert resource.ui_url(rv.run_id) == (
        f"http://127.0.0.1:5055/#/experiments/{experiment_id}/runs/{rv.run_id}"
    )
    assert resource.model_version_url(1).endswith("/#/models/alphadag-returns/versions/1")


def test_resource_defaults() -> None:
    resource = MlflowResource()
    assert resource.tracking_uri == "sqlite:///.alphadag/mlflow.db"
    assert resource.resolved_registry_uri == resource.tracking_uri
    assert resource.experiment == "alphadag"
    assert resource.model_name == "alphadag-returns"


def test_model_registry_one_cached_load_with_a_signature_check(
    store, ridge, example, monkeypatch: pytest.MonkeyPatch
):
    name = "registry-object"
    models = reg.ModelRegistry(
        name, tracking_uri=store.tracking_uri, artifact_location=store.artifacts
    )
    rv = models.register(
        pipeline=ridge,
        input_example=example,
        metrics={},
        params={
            "family": "ridge",
            "params": '{"alpha": 3.0, "random_state": 0}',
            "seed": "0",
            "feature_columns": ",".join(FEATURES),
        },
        tags={},
        version_tags={"alphadag.kind": "challenger", "alphadag.trained_through": "2024-03-28"},
        run_name="ridge h5 2026-12-06T12:00",
    )
    assert models.client.get_run(rv.run_id).info.run_name == "ridge h5 2026-12-06T12:00"
    assert models.aliases() == {"challenger": rv.version} and models.count_trials() == 1
    (info,) = models.history()
    assert (info.version, info.kind, info.trained_through, info.aliases) == (
        rv.version,
        "challenger",
        "2024-03-28",
        ("challenger",),
    )
    spec = models.logged_spec(rv.version)
    assert (spec.family, spec.params, spec.seed, spec.columns) == (
        "ridge",
        {"alpha": 3.0},
        0,
        tuple(FEATURES),
    )
    reg.clear_model_cache()
    loaded = models.load(rv.version, expected_columns=FEATURES)
    assert loaded.inputs == tuple(FEATURES) and loaded.tags["alphadag.kind"] == "challenger"
    np.testing.assert_array_equal(
        predict(loaded.pipeline, example, FEATURES), predict(ridge, example, FEATURES)
    )
    assert loaded.run_frame("calibration/none.parquet") is None  # not logged: None, not raised

    # cached per (registry, name, version): a second load downloads nothing
    def no_download(*args, **kwargs):
        raise RuntimeError("downloaded twice")

    monkeypatch.setattr(reg, "download_model", no_download)
    same = reg.ModelRegistry(name, tracking_uri=store.tracking_uri).load(rv.version)
    assert same is loaded
    with pytest.raises(reg.SignatureMismatch, match="expected"):
        models.load(rv.version, expected_columns=FEATURES[::-1])
    reg.clear_model_cache()
    with pytest.raises(RuntimeError, match="downloaded twice"):  # the cache was cleared
        models.load(rv.version)


# --- integrity: the served bytes are the registered bytes -------------------------------------


def _stored_file(models: reg.ModelRegistry, version: int) -> Path:
    """The skops file of ``version`` in the artifact store (not a downloaded copy)."""
    root = models.client.get_model_version_download_uri(models.name, str(version))
    tags = models.client.get_model_version(models.name, str(version)).tags
    return Path(root.removeprefix("file://"), tags[reg.TAG_MODEL_FILE])


def test_registration_records_the_digest_of_the_logged_file(store, ridge, example):
    import hashlib

    models = reg.ModelRegistry(
        "integrity-recorded", tracking_uri=store.tracking_uri, artifact_location=store.artifacts
    )
    rv = models.register(pipeline=ridge, input_example=example, metrics={}, params={}, tags={})
    tags = models.client.get_model_version(models.name, str(rv.version)).tags
    stored = _stored_file(models, rv.version)
    assert stored.suffix == ".skops" and stored.is_file()
    assert tags[reg.TAG_MODEL_SHA256] == hashlib.sha256(stored.read_bytes()).hexdigest()
    mlmodel = stored.parent / "MLmodel"
    assert tags[reg.TAG_MLMODEL_SHA256] == hashlib.sha256(mlmodel.read_bytes()).hexdigest()
    run_tags = models.client.get_run(rv.run_id).data.tags  # visible on the run page too
    assert run_tags[reg.TAG_MODEL_SHA256] == tags[reg.TAG_MODEL_SHA256]
    reg.clear_model_cache()
    loaded = models.load(rv.version)
    assert loaded.model_sha256 == tags[reg.TAG_MODEL_SHA256]
    with pytest.raises(ValueError, match="digests are computed here"):
        models.register(
            pipeline=ridge, input_example=example, metrics={}, params={}, tags={},
            version_tags={reg.TAG_MODEL_SHA256: "0" * 64},
        )  # fmt: skip


def test_a_model_file_swapped_for_another_versions_is_refused(store, frame, example):
    models = reg.ModelRegistry(
        "integrity-swapped", tracking_uri=store.tracking_uri, artifact_location=store.artifacts
    )
    kwargs = {"input_example": example, "metrics": {}, "params": {}, "tags": {}}
    v1 = models.register(pipeline=_fit(frame, "ridge"), **kwargs)
    v2 = models.register(pipeline=_fit(frame, "hgb"), **kwargs)
    target, other = _stored_file(models, v1.version), _stored_file(models, v2.version)
    expected = models.client.get_model_version(models.name, "1").tags[reg.TAG_MODEL_SHA256]
    target.write_bytes(other.read_bytes())  # a valid skops file, of another version
    actual = models.client.get_model_version(models.name, "2").tags[reg.TAG_MODEL_SHA256]
    reg.clear_model_cache()
    with pytest.raises(reg.ModelIntegrityError) as err:
        models.load(v1.version)
    assert (err.value.expected, err.value.actual, err.value.path) == (expected, actual, str(target))
    assert str(err.value).startswith(
        f"digest mismatch: integrity-swapped version 1: {target} has sha256 {actual}, "
        f"expected {expected}"
    )
    assert models.load(v2.version).model_sha256 == actual  # the untouched version loads


def test_a_version_registered_here_without_its_digest_is_refused(store, ridge, example):
    models = reg.ModelRegistry(
        "integrity-untagged", tracking_uri=store.tracking_uri, artifact_location=store.artifacts
    )
    rv = models.register(pipeline=ridge, input_example=example, metrics={}, params={}, tags={})
    models.client.delete_model_version_tag(models.name, str(rv.version), reg.TAG_MODEL_SHA256)
    reg.clear_model_cache()
    with pytest.raises(
        reg.ModelIntegrityError, match="no recorded digest: integrity-untagged"
    ) as err:
        models.load(rv.version)
    assert err.value.expected is None and err.value.path.endswith(".skops")


# --- bounded waits on an unreachable server ----------------------------------------------------

HTTP_KEYS = tuple(reg.HTTP_WAIT_DEFAULTS)


@pytest.fixture()
def http_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    return record_http_calls(monkeypatch)


def test_the_resource_bounds_mlflow_waits_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
):
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    for key in HTTP_KEYS:
        monkeypatch.setenv(key, "")
    MlflowResource(tracking_uri=closed_port_uri()).client()  # no request is made
    assert (
        MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(),
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get(),
        MLFLOW_HTTP_REQUEST_TIMEOUT.get(),
    ) == (2, 1, 10)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    assert reg.bound_http_waits() == {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    }
    MlflowResource(tracking_uri=closed_port_uri()).client()
    assert (MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(), MLFLOW_HTTP_REQUEST_TIMEOUT.get()) == (5, 60)


def test_an_unreachable_registry_raises_naming_its_uri_after_bounded_retries(http_calls):
    uri = closed_port_uri()
    models = MlflowResource(tracking_uri=uri).registry()
    with pytest.raises(reg.RegistryUnavailable, match=f"MLflow server at {uri} did not answer"):
        models.aliases()
    assert http_calls and all(c["url"].startswith(uri) for c in http_calls)
    assert bounds(http_calls) == {(2, 1, 10)}
