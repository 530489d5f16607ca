"""``champion_change_sensor``: when the champion alias moves, re-score the latest sessions.

Cursor: the champion version last seen. A tick that finds the alias on another version requests
one ``serving_job`` run per partition of the latest ``ALPHADAG_CHAMPION_RERUNS``
(default 5) materialized ``predictions`` partitions, with run key ``<version>:<partition>``: a
version is re-served once per partition however often the sensor ticks, and a promotion back to
an older version (a rollback) re-serves again because its cursor differs. The first tick only
records the champion: predictions made before the sensor existed are not second-guessed. A moved
champion is loaded through the registry's one loader (``ModelRegistry.load``, cached) and the
runs are tagged ``alphadag/champion_loads`` (serving falls back with a reason if it does not).
"""

import dagster as dg

from alphadag import settings
from alphadag.defs.automation.jobs import serving_job
from alphadag.defs.resources.mlflow_resource import MlflowResource


@dg.sensor(
    job=serving_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 2 minutes, when the registry's @champion alias moves to another version: one "
        "serving_job run per latest materialized predictions partition (ALPHADAG_CHAMPION_RERUNS, "
        "default 5), run key <version>:<partition>, so each version re-serves a partition once. "
        "The first tick only records the champion."
    ),
)
def champion_change_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    """Re-run serving_job for the latest predictions partitions when @champion moves."""
    from alphadag.models.registry import ALIAS_CHAMPION

    try:
        models = mlflow.registry()
        champion = models.aliases().get(ALIAS_CHAMPION)
    except Exception as err:  # the registry is down: try again next tick, keep the cursor
        return dg.SkipReason(f"registry unreachable: {err}")
    if champion is None:
        return dg.SkipReason(f"{mlflow.model_name} has no champion yet")
    if context.cursor is None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"recorded champion version {champion}"),
            cursor=str(champion),
        )
    if context.cursor == str(champion):
        return dg.SkipReason(f"champion still version {champion}")
    try:  # the registry's one loader (cached): say whether the new champion will serve
        models.load(champion)
        loads = "true"
    except Exception as err:  # serving falls back to previous / the baseline with a reason
        context.log.warning(f"champion version {champion} does not load: {err}")
        loads = "false"
    done = context.instance.get_materialized_partitions(dg.AssetKey("predictions"))
    latest = sorted(done)[-settings.Settings.from_env().champion_reruns :]
    context.log.info(
        f"champion moved {context.cursor} -> {champion}: re-serving {len(latest)} partition(s)"
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{champion}:{key}",
                partition_key=key,
                tags={
                    "alphadag/trigger": "champion_change",
                    "alphadag/champion": str(champion),
                    "alphadag/champion_loads": loads,
                },
            )
            for key in latest
        ],
        cursor=str(champion),
    )
