"""``champion_change_sensor`` ticked against a real MLflow registry and a real instance."""

import dagster as dg
import polars as pl
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from alphadag.defs.automation.model_sensors import champion_change_sensor
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.market.calendar import sessions

MODEL = "alphadag-returns"


@pytest.fixture()
def store(tmp_path) -> MlflowResource:
    return MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "art")
    )


def _register(store: MlflowResource) -> int:
    x = pl.DataFrame({"a": [0.0, 1.0, 2.0]})
    pipe = Pipeline([("ridge", Ridge())]).fit(x.to_numpy(), [0.0, 1.0, 2.0])
    return store.log_and_register(
        pipeline=pipe, input_example=x, metrics={}, params={}, tags={}
    ).version


def _tick(instance, store, cursor, defs):
    ctx = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"mlflow": store}, definitions=defs
    )
    return champion_change_sensor.evaluate_tick(ctx)


@pytest.fixture()
def instance_with_predictions():
    with dg.instance_for_test() as instance:
        for day in sessions("2024-03-01", "2024-03-14"):  # 10 sessions
            instance.report_runless_asset_event(
                dg.AssetMaterialization("predictions", partition=day.isoformat())
            )
        yield instance


def test_a_moved_champion_reserves_the_latest_partitions_once(
    instance_with_predictions, store, monkeypatch, defs
):
    monkeypatch.setenv("ALPHADAG_CHAMPION_RERUNS", "3")
    client = store.client()
    first = _register(store)
    client.set_registered_model_alias(MODEL, "champion", str(first))

    recorded = _tick(instance_with_predictions, store, None, defs)
    assert recorded.run_requests == []  # the first tick only records the champion
    assert recorded.cursor == str(first)

    unchanged = _tick(instance_with_predictions, store, recorded.cursor, defs)
    assert unchanged.run_requests == [] and unchanged.cursor in (None, str(first))

    second = _register(store)
    client.set_registered_model_alias(MODEL, "champion", str(second))
    moved = _tick(instance_with_predictions, store, recorded.cursor, defs)
    assert moved.cursor == str(second)
    latest = [d.isoformat() for d in sessions("2024-03-12", "2024-03-14")]
    assert [r.partition_key for r in moved.run_requests] == latest
    assert [r.run_key for r in moved.run_requests] == [f"{second}:{k}" for k in latest]
    assert all(r.tags["alphadag/trigger"] == "champion_change" for r in moved.run_requests)

    again = _tick(instance_with_predictions, store, moved.cursor, defs)
    assert again.run_requests == []

    # a rollback to the first version re-serves, with run keys of its own
    client.set_registered_model_alias(MODEL, "champion", str(first))
    rolled = _tick(instance_with_predictions, store, moved.cursor, defs)
    assert [r.run_key for r in rolled.run_requests] == [f"{first}:{k}" for k in latest]


def test_no_champion_and_unreachable_registry_skip_without_moving_the_cursor(
    instance_with_predictions, store, monkeypatch, defs
):
    _register(store)  # a version, but no champion alias
    result = _tick(instance_with_predictions, store, "7", defs)
    assert result.run_requests == [] and "no champion" in result.skip_message
    assert result.cursor in (None, "7")

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = MlflowResource(tracking_uri="http://127.0.0.1:9")
    result = _tick(instance_with_predictions, down, "7", defs)
    assert result.run_requests == [] and "unreachable" in result.skip_message
    assert result.cursor in (None, "7")
