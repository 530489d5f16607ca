"""A test code location with a schedule shaped like ``daily_schedule`` (one tick per session, run
key = the session) that ticks every minute: here a "session" is the tick's minute."""

import dagster as dg


@dg.op
def noop() -> None:
    """Nothing to do: the test counts runs."""


@dg.job(executor_def=dg.in_process_executor)
def session_job() -> None:
    noop()


@dg.schedule(
    job=session_job, cron_schedule="* * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
def minutely_session_schedule(context: dg.ScheduleEvaluationContext):
    """run_key = session: a second tick of the same session launches nothing."""
    session = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return dg.RunRequest(run_key=session, tags={"session": session})


defs = dg.Definitions(jobs=[session_job], schedules=[minutely_session_schedule])
