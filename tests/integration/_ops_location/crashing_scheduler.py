"""One scheduler iteration that dies with SIGKILL right after creating its run (Dagster's own
``RUN_CREATED`` crash point), leaving the tick STARTED: what a daemon killed mid-tick leaves behind.

Usage: ``python crashing_scheduler.py WORKSPACE_YAML TICK_ISO`` with ``DAGSTER_HOME`` set. The clock
is frozen 30 s before the tick to register the schedule, then 10 s after it to evaluate the tick.
"""

import datetime as dt
import logging
import signal
import sys

import dagster as dg
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._scheduler.scheduler import launch_scheduled_runs


def main(workspace: str, tick_iso: str) -> None:
    tick = dt.datetime.fromisoformat(tick_iso)
    logger = logging.getLogger("crashing_scheduler")
    with (
        dg.DagsterInstance.get() as instance,
        create_test_daemon_workspace_context(WorkspaceFileTarget([workspace]), instance) as ctx,
    ):
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
    main(sys.argv[1], sys.argv[2])
