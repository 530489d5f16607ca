"""``orphaned_run_sensor``: a CLI run whose process is gone is marked failed within about 30 s.

``alphadag`` CLI runs execute in the CLI's own process (``execute_in_process``), so no run launcher
watches them: when that process is killed (``kill -9``, an OOM kill, a closed laptop) the run stays
``STARTED`` until run monitoring's ``max_runtime_seconds`` (2 hours in ``dagster.yaml``). The CLI
therefore tags each run with its host, pid and the process's start time (:func:`process_tags`),
and :func:`reap_orphaned_runs` reports every run of this host that is still in progress while its
process no longer exists (or its pid now belongs to a younger process) as failed, with a message
naming the run, the pid and the host. The sensor runs that sweep every 30 s under the daemon; the
CLI runs it too when it starts, so a dead run is failed at the latest when the next CLI run begins.
Runs without the tags (launched by the daemon, the UI or ``alphadag ... --queue``) are left to
Dagster: their code server fails a run whose worker process died.

>>> tags = process_tags()
>>> sorted(tags) == sorted([HOST_TAG, PID_TAG, PID_START_TAG])
True
>>> process_alive(int(tags[PID_TAG]), tags[PID_START_TAG])
True
"""

from __future__ import annotations

import dataclasses
import os
import socket

import dagster as dg

HOST_TAG = "alphadag/host"
"""Host name of the process that executes a CLI run."""
PID_TAG = "alphadag/pid"
"""Process id of the process that executes a CLI run."""
PID_START_TAG = "alphadag/pid_start"
"""That process's start time in clock ticks after boot (``/proc/<pid>/stat``), so a reused pid is
not mistaken for the run's process; empty where ``/proc`` is unavailable."""

IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
"""The statuses of a run whose process must still be alive (a CLI run is never QUEUED)."""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of ``pid`` from ``/proc/<pid>/stat``; ``None`` without it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime)


def process_tags() -> dict[str, str]:
    """The run tags that name this process: host, pid and start time."""
    pid = os.getpid()
    stat = _proc_stat(pid)
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        PID_START_TAG: stat[1] if stat else "",
    }


def process_alive(pid: int, start: str = "") -> bool:
    """Whether process ``pid`` exists on this host, is not a zombie and, when ``start`` is given
    and ``/proc`` is readable, is the process that started at ``start`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (not start or started == start)


@dataclasses.dataclass(frozen=True)
class OrphanedRun:
    """A run reported failed because its process is gone."""

    run_id: str
    job_name: str
    pid: int
    host: str
    message: str


def reap_orphaned_runs(
    instance: dg.DagsterInstance, *, host: str | None = None, reaper: str = "alphadag"
) -> list[OrphanedRun]:
    """Report failed every in-progress run tagged with ``host`` (this host by default) whose
    process no longer exists; ``reaper`` names who did it in the failure message.

    Returns the runs reported. A run whose pid tag is not a number is left alone.
    """
    host = host or socket.gethostname()
    runs = instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: host}))
    reaped = []
    for run in runs:
        try:
            pid = int(run.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if process_alive(pid, run.tags.get(PID_START_TAG, "")):
            continue
        fresh = instance.get_run_by_id(run.run_id)  # it may have ended since the query
        if fresh is None or fresh.is_finished:
            continue
        message = (
            f"run {run.run_id} of {run.job_name} was {fresh.status.value} but its process "
            f"(pid {pid} on {host}) is gone: killed or crashed; marked failed by {reaper}"
        )
        instance.report_run_failed(fresh, message)
        reaped.append(OrphanedRun(run.run_id, run.job_name, pid, host, message))
    return reaped


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s, mark failed the in-progress CLI runs of this host whose process is "
    "gone (tags alphadag/host, alphadag/pid), instead of leaving them STARTED for the 2-hour "
    "max runtime.",
)
def orphaned_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Mark failed the in-progress runs of this host whose CLI process no longer exists.

    Launches nothing; the skip reason lists the runs it failed (each also gets a run-failure
    alert from ``run_failure_alert_sensor``).
    """
    reaped = reap_orphaned_runs(context.instance, reaper="orphaned_run_sensor")
    for run in reaped:
        context.log.warning(run.message)
    if not reaped:
        return dg.SkipReason("no orphaned CLI run on this host")
    return dg.SkipReason(
        f"marked {len(reaped)} orphaned run(s) failed: "
        + ", ".join(f"{r.run_id} (pid {r.pid})" for r in reaped)
    )
