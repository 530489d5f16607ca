"""One scheduler iteration that dies with SIGKILL right after creating its run (Dagster's own
``RUN_CREATED`` crash point), leaving the tick STARTED: what a daemon killed mid-tick leaves behind.

Usage: ``python crashing_scheduler.py WORKSPACE_YAML TICK_FILE LEAD_SECONDS`` with ``DAGSTER_HOME``
set. Once its code location is loaded it picks the tick, the first whole minute at least
``LEAD_SECONDS`` ahead, and writes it (ISO 8601) to ``TICK_FILE``: a restarted daemon must be up
during that minute to resume it. The clock is frozen 30 s before the tick to register the schedule,
then 10 s after it to evaluate the tick.
"""

import datetime as dt
import logging
import signal
import sys
from pathlib import Path

import dagster as dg
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._scheduler.scheduler import launch_scheduled_runs


def next_minute(lead_s: float) -> dt.datetime:
    """The first whole minute (UTC) at least ``lead_s`` seconds from now."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead_s)
    return ahead.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def main(workspace: str, tick_file: str, lead_s: str) -> None:
    logger = logging.getLogger("crashing_scheduler")
    with (
        dg.DagsterInstance.get() as instance,
        create_test_daemon_workspace_context(WorkspaceFileTarget([workspace]), instance) as ctx,
    ):
        tick = next_minute(float(lead_s))
        Path(tick_file).write_text(tick.isoformat())
        for when, flags in (
            (tick - dt.timedelta(seconds=30), None),
            (tick + dt.timedelta(seconds=10), {"RUN_CREATED": signal.SIGKILL}),
        ):
            with freeze_time(when):
                list(
                    launch_scheduled_runs(
                        ctx,
                        logger,
                        when,
                        iteration_times={},
                        debug_crash_flags={"minutely_session_schedule": flags} if flags else None,
                    )
                )
    raise SystemExit("the crash point was not reached")


if __name__ == "__main__":
    main(*sys.argv[1:4])
