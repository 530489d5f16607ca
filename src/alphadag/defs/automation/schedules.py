"""Schedules: ``daily_schedule`` runs ``daily_job`` for each XNYS session after the US close, and
``train_job_weekly_schedule`` retrains the return model (Saturday 06:00 New York, markets shut).

``daily_schedule``'s cron and time zone (``ALPHADAG_DAILY_CRON``, ``ALPHADAG_TIMEZONE``) come from
:func:`alphadag.settings.loaded`, the same read the freshness deadline (``freshness.py``) is
derived from, so the deadline always follows the tick.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from alphadag import settings
from alphadag.defs.automation.jobs import daily_job, train_job
from alphadag.market.calendar import is_session

DAILY_RUN_PRIORITY = 10
"""``dagster/priority`` of the scheduled daily runs. Backfills carry no priority tag (0), so the
queued run coordinator dequeues the day's run ahead of any queued backfill."""

BUILT_FROM = settings.loaded()
"""The settings this module's objects were built from."""
_DAILY_CRON, _DAILY_TZ = BUILT_FROM.daily_cron, BUILT_FROM.timezone


def session_of(scheduled: dt.datetime | None, timezone: str = _DAILY_TZ) -> dt.date:
    """The exchange-local calendar date of a tick (naive times are taken as ``timezone``)."""
    tz = ZoneInfo(timezone)
    if scheduled is None:
        return dt.datetime.now(tz).date()
    if scheduled.tzinfo is None:
        return scheduled.replace(tzinfo=tz).date()
    return scheduled.astimezone(tz).date()


@dg.schedule(
    name="daily_schedule",
    job=daily_job,
    cron_schedule=_DAILY_CRON,
    execution_timezone=_DAILY_TZ,
    description=(
        f"After the US close ({_DAILY_CRON}, {_DAILY_TZ}): daily_job for that XNYS session; "
        "holidays are skipped; run key = session, so a session is never run twice. "
        "Off until started (the sample source has no new sessions)."
    ),
)
def daily_schedule(context: dg.ScheduleEvaluationContext):
    """One ``daily_job`` run for the tick's session, or a skip when the exchange is shut."""
    day = session_of(context.scheduled_execution_time)
    if not is_session(day):
        return dg.SkipReason(f"{day.isoformat()} is not an XNYS session")
    key = day.isoformat()
    return dg.RunRequest(
        partition_key=key,
        run_key=key,
        tags={"dagster/priority": str(DAILY_RUN_PRIORITY), "alphadag/trigger": "daily_schedule"},
    )


train_job_weekly_schedule = dg.ScheduleDefinition(
    name="train_job_weekly_schedule",
    job=train_job,
    cron_schedule="0 6 * * 6",
    execution_timezone=settings.EXCHANGE_TIMEZONE,
    description=(
        "Retrain, register and gate the return model once a week, after Friday's close. "
        "Off until started."
    ),
)
