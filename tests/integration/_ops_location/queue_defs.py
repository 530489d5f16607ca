"""A test code location with one tiny job and a sensor that queues ``OPS_QUEUE_RUNS`` (20) runs of
it at once. Imports dagster only, so each run worker starts fast."""

import os
import time

import dagster as dg


@dg.op
def tick(context: dg.OpExecutionContext) -> None:
    """Sleep a little (so runs overlap in the queue) and record one materialization."""
    time.sleep(float(os.environ.get("OPS_QUEUE_SLEEP", "1")))
    context.log_event(dg.AssetMaterialization("queue_probe", partition=context.run.tags["n"]))


@dg.job(executor_def=dg.in_process_executor)
def queue_job() -> None:
    tick()


@dg.sensor(job=queue_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING)
def queue_sensor(context: dg.SensorEvaluationContext):
    """Request every run on the first tick; later ticks repeat the run keys, so nothing new."""
    n = int(os.environ.get("OPS_QUEUE_RUNS", "20"))
    return [dg.RunRequest(run_key=f"q-{i:03d}", tags={"n": f"{i:03d}"}) for i in range(n)]


defs = dg.Definitions(jobs=[queue_job], sensors=[queue_sensor])
