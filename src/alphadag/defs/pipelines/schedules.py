"""Schedules: the weekly retraining of the return model (Saturday 06:00 New York, markets shut)."""

import dagster as dg

from alphadag.defs.pipelines.jobs import train_job

train_job_weekly_schedule = dg.ScheduleDefinition(
    name="train_job_weekly_schedule",
    job=train_job,
    cron_schedule="0 6 * * 6",
    execution_timezone="America/New_York",
    description="Retrain, register and gate the return model once a week, after Friday's close.",
)
