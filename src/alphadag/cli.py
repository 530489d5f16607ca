"""The ``alphadag`` command line: run slices of the pipeline without the UI.

``alphadag demo`` materializes the whole asset graph that exists so far for the configured history
as ranged runs on the instance in ``DAGSTER_HOME`` (the embedded default: ``.dagster_home``), so the
runs and materializations then show in the Dagster UI. ``alphadag materialize --start --end``
does the same for any range of sessions. While a run executes, both show its progress on stderr
(per asset, partitions done / total and the elapsed time; ``--no-progress`` turns it off) and
``--log-level`` sets the level of Dagster's console logger; the summary follows on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, Protocol

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The levels ``--log-level`` accepts for Dagster's console logger (default WARNING)."""


def _default_end() -> dt.date:
    from alphadag.market.sources.sample import SAMPLE_COVERAGE

    return SAMPLE_COVERAGE.end or dt.date.today()


# --- input checks ------------------------------------------------------------------------------
#
# Everything a command is given is checked before a run is created: a bad job name or range is one
# line on stderr and exit status 2, never a traceback and never a failed run in the instance.


class CliInputError(ValueError):
    """Input the CLI refuses before any run starts; ``main`` prints it as one line, status 2."""


INPUT_ERROR_STATUS = 2
"""Exit status of refused input (argparse's own usage errors exit 2 too)."""

INTERRUPTED_STATUS = 130
"""Exit status after SIGINT, SIGTERM or SIGHUP (128 + SIGINT, the shell's convention)."""

_UNPARTITIONED_HINTS = {
    "train_job": "run `alphadag train` (or drop --start/--end)",
    "backtest_job": "its period is run config: run `alphadag backtest-report --start .. --end ..`",
}
"""How to run an unpartitioned job that was given a range, per job (default: without the range)."""


def public_jobs(defs: Any) -> list[str]:
    """The job names ``--job`` accepts: the jobs the code location defines, without Dagster's
    internal ``__ASSET_JOB`` ones."""
    return sorted({job.name for job in defs.jobs or () if not job.name.startswith("__")})


def resolve_job(job_name: str) -> Any:
    """The job ``job_name`` of the code location, resolved; a :class:`CliInputError` that lists
    the valid names when there is no such job."""
    from alphadag.definitions import defs as load_defs

    defs = load_defs()
    names = public_jobs(defs)
    if job_name not in names:
        raise CliInputError(f"unknown job {job_name!r}; valid jobs: {', '.join(names)}")
    return defs.resolve_job_def(job_name)


def _partition_bounds(job: Any) -> tuple[str, str, str]:
    """``(lowest date a range may start at, first key, last key)`` of ``job``'s partitions.

    A daily partitions definition starts at its start date even when that day is excluded (the
    sessions start at ``ALPHADAG_HISTORY_START``, 2010-01-01, a holiday), so a range may start
    there; any other kind starts at its first key."""
    import dagster as dg

    pdef = job.partitions_def
    keys = pdef.get_partition_keys()
    if not keys:
        raise CliInputError(f"{job.name} has no partitions yet")
    lowest = keys[0]
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        lowest = min(lowest, pdef.start.date().isoformat())
    return lowest, keys[0], keys[-1]


def _bounds_text(job: Any, first: str, last: str) -> str:
    from alphadag import settings
    from alphadag.defs.automation.partitions import sessions_partitions

    text = f"{job.name}'s sessions run {first} .. {last}"
    if job.partitions_def == sessions_partitions:
        text += f"; ALPHADAG_HISTORY_START (now {settings.loaded().history_start}) sets the first"
    return text


def check_range(job: Any, start: dt.date | None, end: dt.date | None) -> list[str] | None:
    """The partition keys a run of ``job`` from ``start`` to ``end`` covers, or ``None`` for an
    unpartitioned job given no range. A range ``job`` cannot run raises :class:`CliInputError`:
    a range for an unpartitioned job, no range for a partitioned one, ``start`` after ``end``, a
    range that starts before the first partition (``ALPHADAG_HISTORY_START``) or ends after the
    last one (today's session), or a range that holds no session (a weekend)."""
    if job.partitions_def is None:
        if start is not None or end is not None:
            hint = _UNPARTITIONED_HINTS.get(job.name, "drop --start/--end")
            raise CliInputError(
                f"{job.name} is not partitioned, so a range does not apply to it; {hint}"
            )
        return None
    lowest, first, last = _partition_bounds(job)
    bounds = _bounds_text(job, first, last)
    if start is None or end is None:
        raise CliInputError(f"{job.name} runs over a range: give --start and --end ({bounds})")
    asked = f"range {start} .. {end}"
    if start > end:
        raise CliInputError(f"{asked}: --start is after --end")
    if start.isoformat() < lowest:
        raise CliInputError(f"{asked} starts before the first session {first} ({bounds})")
    if end.isoformat() > last:
        raise CliInputError(f"{asked} ends after the last session {last} ({bounds})")
    keys = [
        k
        for k in job.partitions_def.get_partition_keys()
        if start.isoformat() <= k <= end.isoformat()
    ]
    if not keys:
        raise CliInputError(f"{asked} holds no session (weekends and holidays are none)")
    return keys


# --- progress of a run -----------------------------------------------------------------------
#
# ``execute_in_process`` stores every event of the run on the instance, and the instance hands each
# stored event to the listeners registered for the run id (``DagsterInstance.add_event_listener``),
# in the run's own thread. The CLI picks the run id itself, registers a ``RunProgress`` for it, and
# the ``RunProgress`` counts materializations per asset and steps started and finished, and tells a
# view: rich bars on a terminal, plain lines otherwise. With ``DAGSTER_EVENT_BATCH_SIZE`` set, the
# materializations of one output are stored (and so arrive) together when the output ends.


@dataclasses.dataclass
class AssetProgress:
    """One asset of a run: partitions materialized of those planned (1 when unpartitioned)."""

    total: int
    done: int = 0
    started: float | None = None
    """Clock time its step started (or its first materialization), ``None`` before."""
    finished: float | None = None
    """Clock time ``done`` reached ``total``."""
    failed: bool = False

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    def seconds(self, now: float) -> float:
        """Seconds from its start to its completion (or to ``now``); 0 before it started."""
        if self.started is None:
            return 0.0
        return (self.finished if self.finished is not None else now) - self.started


class ProgressView(Protocol):
    """What a display of a ``RunProgress`` is told."""

    def start(self, run: RunProgress) -> None: ...
    def run_started(self, run: RunProgress) -> None: ...
    def step_started(self, run: RunProgress, step: str) -> None: ...
    def materialized(self, run: RunProgress, asset: str) -> None: ...
    def step_finished(self, run: RunProgress, step: str, outcome: str, seconds: float) -> None: ...
    def close(self, run: RunProgress) -> None: ...


class RunProgress:
    """The progress of one run: partitions done per asset, steps started and finished.

    ``totals`` maps each asset of the job to the partitions the run plans for it (1 when the run is
    unpartitioned); ``step_assets`` maps step keys to the assets they materialize. Feed it the
    run's events with :meth:`handle` (an instance event listener) or the ``on_*`` methods.
    """

    def __init__(
        self,
        job_name: str,
        totals: Mapping[str, int],
        step_assets: Mapping[str, Sequence[str]],
        *,
        partitioned: bool,
        view: ProgressView,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_name = job_name
        self.partitioned = partitioned
        self.assets = {key: AssetProgress(total) for key, total in totals.items()}
        self.step_assets = {step: list(assets) for step, assets in step_assets.items()}
        self.steps_started: dict[str, float] = {}
        self.steps_finished: dict[str, str] = {}
        self.run_started: float | None = None
        self.view = view
        self.clock = clock
        self.t0 = clock()
        self._broken = False

    @property
    def n_steps(self) -> int:
        return len(self.step_assets)

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def running_steps(self) -> list[str]:
        return [s for s in self.steps_started if s not in self.steps_finished]

    def start(self) -> None:
        self.t0 = self.clock()
        self.view.start(self)

    def close(self) -> None:
        if not self._broken:
            self.view.close(self)

    def handle(self, entry: Any) -> None:
        """An instance event listener: count the run's stored ``EventLogEntry``s.

        A failure of the display never fails the run: it stops the display with one message.
        """
        if self._broken:
            return
        event = entry.dagster_event
        if event is None:
            return
        try:
            from dagster import DagsterEventType as Kind

            kind = event.event_type
            if kind == Kind.ASSET_MATERIALIZATION:
                self.on_materialization(event.asset_key.to_user_string())
            elif kind == Kind.RUN_START:  # stored as PIPELINE_START
                self.on_run_start()
            elif kind == Kind.STEP_START:
                self.on_step_start(event.step_key)
            elif kind in _STEP_OUTCOMES:
                self.on_step_end(event.step_key, _STEP_OUTCOMES[kind])
        except Exception as err:  # the display must not break the run
            self._broken = True
            print(f"alphadag: progress display stopped: {err!r}", file=sys.stderr)

    def on_run_start(self) -> None:
        """The run's execution began (Dagster's planning of the run's partitions is done)."""
        self.run_started = self.clock()
        self.view.run_started(self)

    def on_step_start(self, step: str) -> None:
        now = self.clock()
        self.steps_started.setdefault(step, now)
        for asset in self.step_assets.get(step, ()):
            if asset in self.assets and self.assets[asset].started is None:
                self.assets[asset].started = now
        self.view.step_started(self, step)

    def on_materialization(self, asset: str) -> None:
        now = self.clock()
        progress = self.assets.setdefault(asset, AssetProgress(total=1))
        if progress.started is None:
            progress.started = now
        progress.done += 1
        if progress.complete and progress.finished is None:
            progress.finished = now
        self.view.materialized(self, asset)

    def on_step_end(self, step: str, outcome: str) -> None:
        """``outcome``: ``success``, ``failure`` or ``skipped``."""
        now = self.clock()
        self.steps_finished[step] = outcome
        if outcome == "failure":
            for asset in self.step_assets.get(step, ()):
                if asset in self.assets and not self.assets[asset].complete:
                    self.assets[asset].failed = True
        seconds = now - self.steps_started.get(step, now)
        self.view.step_finished(self, step, outcome, seconds)


_STEP_OUTCOMES = {"STEP_SUCCESS": "success", "STEP_FAILURE": "failure", "STEP_SKIPPED": "skipped"}
"""The step events that end a step, by event type (a ``str`` enum), and the outcome they mean."""

_OUTCOME_WORDS = {"success": "succeeded", "failure": "failed", "skipped": "skipped"}


class PlainProgressView:
    """Plain lines for logs and pipes: steps starting and ending, each asset when it completes,
    and an asset's partial count at most every ``every`` seconds."""

    def __init__(self, stream: IO[str], *, every: float = 10.0) -> None:
        self.stream = stream
        self.every = every
        self._last_line: dict[str, float] = {}

    def _line(self, run: RunProgress, text: str) -> None:
        self.stream.write(f"[{run.elapsed():7.1f}s] {text}\n")
        self.stream.flush()

    def start(self, run: RunProgress) -> None:
        if run.partitioned:
            planned = ", ".join(f"{a} {p.total}" for a, p in run.assets.items())
            self._line(run, f"{run.job_name}: {run.n_steps} steps; partitions planned: {planned}")
        else:
            self._line(run, f"{run.job_name}: {run.n_steps} steps, {len(run.assets)} assets")

    def run_started(self, run: RunProgress) -> None:
        self._line(run, "run started")

    def step_started(self, run: RunProgress, step: str) -> None:
        self._line(run, f"step {step} started")

    def materialized(self, run: RunProgress, asset: str) -> None:
        progress = run.assets[asset]
        now = run.clock()
        if progress.complete:
            if not run.partitioned:
                done = sum(p.complete for p in run.assets.values())
                self._line(
                    run,
                    f"{asset} materialized in {progress.seconds(now):.1f}s "
                    f"({done}/{len(run.assets)} assets)",
                )
            elif progress.done == progress.total:
                self._line(
                    run,
                    f"{asset} {progress.done}/{progress.total} partitions "
                    f"in {progress.seconds(now):.1f}s",
                )
        else:
            last = self._last_line.get(asset, progress.started)
            if last is not None and now - last < self.every:
                return
            self._last_line[asset] = now
            self._line(run, f"{asset} {progress.done}/{progress.total} partitions")

    def step_finished(self, run: RunProgress, step: str, outcome: str, seconds: float) -> None:
        for asset in run.step_assets.get(step, ()):
            progress = run.assets.get(asset)
            if progress is not None and not progress.complete:  # it never completed: say so
                self._line(run, f"{asset} {progress.done}/{progress.total} partitions (incomplete)")
        self._line(
            run,
            f"step {step} {_OUTCOME_WORDS.get(outcome, outcome)} in {seconds:.1f}s "
            f"({len(run.steps_finished)}/{run.n_steps} steps)",
        )

    def close(self, run: RunProgress) -> None:
        self._line(run, f"{run.job_name} ended")


class RichProgressView:
    """Live bars on a terminal (rich, a Dagster dependency): one row for the steps with the ones
    running and the run's elapsed time, then one bar per asset (partitions done / total and the
    asset's elapsed time), or one bar of assets done / total for an unpartitioned run. Each step's
    end is printed above the bars; Dagster's log lines print above them too."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]:<10}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            refresh_per_second=4,
            # prints of the run land above the bars, unless stdout goes elsewhere (a file, a pipe)
            redirect_stdout=sys.stdout.isatty(),
        )
        self.tasks: dict[str, Any] = {}

    def start(self, run: RunProgress) -> None:
        from rich.markup import escape

        self.progress.start()
        self.steps = self.progress.add_task(
            escape(run.job_name),
            total=max(run.n_steps, 1),
            unit="steps",
            status="starting the run",
        )
        if run.partitioned:
            for asset, progress in run.assets.items():
                self.tasks[asset] = self.progress.add_task(
                    escape(asset), total=progress.total, start=False, unit="partitions", status=""
                )
        else:
            self.tasks["*"] = self.progress.add_task(
                "assets", total=max(len(run.assets), 1), unit="assets", status=""
            )

    def run_started(self, run: RunProgress) -> None:
        self._status(run)

    def _status(self, run: RunProgress) -> None:
        running = run.running_steps()
        status = f"running: {', '.join(running)}" if running else ""
        if run.run_started is None and not run.steps_finished:
            status = "starting the run"
        self.progress.update(self.steps, completed=len(run.steps_finished), status=status)

    def step_started(self, run: RunProgress, step: str) -> None:
        self._status(run)
        if run.partitioned:
            for asset in run.step_assets.get(step, ()):
                if asset in self.tasks:
                    self.progress.start_task(self.tasks[asset])

    def materialized(self, run: RunProgress, asset: str) -> None:
        if not run.partitioned:
            done = sum(p.complete for p in run.assets.values())
            self.progress.update(self.tasks["*"], completed=done, status=asset)
            return
        if asset not in self.tasks:
            return
        task = self.tasks[asset]
        self.progress.start_task(task)
        self.progress.update(task, completed=run.assets[asset].done)

    def step_finished(self, run: RunProgress, step: str, outcome: str, seconds: float) -> None:
        from rich.markup import escape

        self._status(run)
        for asset in run.step_assets.get(step, ()):
            if asset in self.tasks and run.assets[asset].failed:
                self.progress.update(self.tasks[asset], status="[red]failed")
                self.progress.stop_task(self.tasks[asset])
        color = {"success": "green", "failure": "red"}.get(outcome, "yellow")
        word = _OUTCOME_WORDS.get(outcome, outcome)
        self.progress.console.print(
            f"step {escape(step)} [{color}]{word}[/{color}] in {seconds:.1f}s"
        )

    def close(self, run: RunProgress) -> None:
        self._status(run)
        self.progress.stop_task(self.steps)
        self.progress.stop()


def planned_totals(job: Any, partition_keys: Sequence[str] | None) -> dict[str, int]:
    """Per asset of ``job``'s selection, the partitions a run over ``partition_keys`` (one key
    per partition, the run's range) materializes: their number, or 1 without partitions."""
    totals: dict[str, int] = {}
    layer = job.asset_layer
    for key in sorted(layer.selected_asset_keys, key=lambda k: k.to_user_string()):
        partitioned = layer.get(key).partitions_def is not None
        n = len(partition_keys) if partitioned and partition_keys is not None else 1
        totals[key.to_user_string()] = n
    return totals


def step_assets(job: Any) -> dict[str, list[str]]:
    """Per step (node) of ``job``, the selected assets it materializes (none for a check step)."""
    layer = job.asset_layer
    out: dict[str, list[str]] = {node.name: [] for node in job.graph.nodes}
    for key in layer.selected_asset_keys:
        node = layer.get(key).assets_def.node_def.name
        out.setdefault(node, []).append(key.to_user_string())
    return {node: sorted(keys) for node, keys in out.items()}


def range_partition_keys(job: Any, first: str, last: str) -> list[str]:
    """The partition keys of ``job`` from ``first`` to ``last`` (a ranged run's partitions)."""
    import dagster as dg

    return list(job.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))


def progress_view(mode: str, stream: IO[str] | None = None) -> ProgressView | None:
    """The display for ``mode``: ``off`` none, ``bars`` rich bars, ``plain`` lines, and ``auto``
    bars when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    if mode == "off":
        return None
    if mode == "auto":
        mode = "bars" if stream.isatty() else "plain"
    if mode == "bars":
        from rich.console import Console

        return RichProgressView(Console(file=stream))
    return PlainProgressView(stream)


def _run_tags(job: Any, defaults: Mapping[str, str], fixed: Mapping[str, str]) -> dict[str, str]:
    """The tags of a CLI run of ``job``: ``defaults`` for the keys the job does not tag itself
    (its own tags, e.g. ``alphadag/kind: train``, are kept), then ``fixed`` (range, process)."""
    own = job.tags or {}
    return {**{k: v for k, v in defaults.items() if k not in own}, **fixed}


RANGED_TAGS = {"alphadag/kind": "backfill"}
"""Default tags of a ranged run (a backfill of its sessions), unless the job sets the key."""

IN_PROCESS_TAGS = {"dagster/max_retries": "0"}
"""Default tags of a run the CLI executes in its own process: the run-retry daemon cannot
re-execute a run that has no code location origin, so it must not announce a retry."""


class Interrupted(KeyboardInterrupt):
    """The CLI was interrupted (SIGINT, SIGTERM, SIGHUP) while ``run_id`` executed."""

    def __init__(self, run_id: str | None, status: str | None) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.status = status


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP act as Ctrl-C (SIGINT) inside the block, in the main thread.

    Each calls the SIGINT handler in force when it arrives: Python's, which raises
    ``KeyboardInterrupt``, or the one Dagster installs while a run executes, which stops the run
    at its next step boundary and records it as failed (Dagster maps SIGTERM itself then). The
    previous handlers are restored at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in previous:
        signal.signal(s, forward)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _end_interrupted_run(instance: Any, run_id: str) -> str | None:
    """After an interrupt: mark run ``run_id`` failed unless it already ended; its status."""
    from alphadag.defs.automation.run_reaper import PID_TAG

    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    if not run.is_finished:
        instance.report_run_failed(
            run,
            f"run {run_id} of {run.job_name} was interrupted: the alphadag CLI "
            f"(pid {run.tags.get(PID_TAG, os.getpid())}) received a stop signal before it ended",
        )
        run = instance.get_run_by_id(run_id)
    return run.status.value


def _execute(
    job: Any,
    *,
    tags: Mapping[str, str] | None,
    run_config: Mapping,
    progress: str,
    partition_keys: Sequence[str] | None,
) -> Any:
    """``job.execute_in_process`` on the current instance, with a progress display unless
    ``progress`` is ``off``. The run is tagged with this process (host, pid: see
    ``alphadag.defs.automation.run_reaper``), so that a run whose process is killed is marked
    failed; an interrupt (SIGINT, SIGTERM, SIGHUP) ends the run as failed and raises
    :class:`Interrupted`."""
    import dagster as dg

    from alphadag.defs.automation.run_reaper import process_tags

    instance = dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())
    view = progress_view(progress)
    tracker = None
    if view is not None:
        tracker = RunProgress(
            job.name,
            planned_totals(job, partition_keys),
            step_assets(job),
            partitioned=partition_keys is not None,
            view=view,
        )
        instance.add_event_listener(run_id, tracker.handle)
        tracker.start()
    try:
        with signals_interrupt():
            result = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                tags={**(tags or {}), **process_tags()},
                run_config=dict(run_config),
                raise_on_error=False,
            )
    except KeyboardInterrupt as err:
        raise Interrupted(run_id, _end_interrupted_run(instance, run_id)) from err
    finally:
        if tracker is not None:
            tracker.close()
    run = instance.get_run_by_id(run_id)
    if run is not None and run.tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION":
        # Dagster caught the interrupt inside a step and failed the run; the CLI stops here too
        raise Interrupted(run_id, run.status.value)
    return result


def _run_config(log_level: str, **extra: Any) -> dict:
    """The run config of a CLI run: the console logger at ``log_level`` and ``extra`` sections."""
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    return {"loggers": {"console": {"config": {"log_level": log_level}}}, **extra}


def _range_tags(keys: Sequence[str] | None) -> dict[str, str]:
    if keys is None:
        return {}
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }


def run_job(
    job_name: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    ops: Mapping | None = None,
    log_level: str = "WARNING",
    progress: str = "off",
) -> dict:
    """Run ``job_name`` once in this process on the current instance, over the sessions from
    ``start`` to ``end`` when it is partitioned (one ranged run), else without a range.

    The job and range are checked first (:class:`CliInputError`, no run created). ``tags`` are
    defaults, as is ``alphadag/kind: backfill`` for a ranged run: a key the job tags itself keeps
    the job's value. ``ops`` is the run config's
    ``ops`` section; ``log_level`` the console logger's level; ``progress`` the display while the
    run executes (``auto``, ``bars``, ``plain`` or ``off``, see :func:`progress_view`).

    Returns a summary: job, run id, success, range (``None`` unpartitioned), seconds, partitions
    materialized per asset, check outcomes and the materializations' metadata merged (``meta``).
    """
    import dagster as dg

    job = resolve_job(job_name)
    keys = check_range(job, start, end)
    started = time.monotonic()
    result = _execute(
        job,
        tags=_run_tags(
            job,
            {**IN_PROCESS_TAGS, **(RANGED_TAGS if keys else {}), **(tags or {})},
            _range_tags(keys),
        ),
        run_config=_run_config(log_level, **({"ops": dict(ops)} if ops else {})),
        progress=progress,
        partition_keys=keys,
    )
    checks: dict[str, bool] = {}
    warnings: set[str] = set()
    for ev in result.get_asset_check_evaluations():
        key = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        checks[key] = checks.get(key, True) and ev.passed
        if ev.severity == dg.AssetCheckSeverity.WARN:
            warnings.add(key)
    mats: dict[str, int] = {}
    meta: dict = {}
    for ev in result.get_asset_materialization_events():
        key = ev.asset_key.to_user_string()
        mats[key] = mats.get(key, 0) + 1
        if keys is None:
            meta.update({k: v.value for k, v in ev.materialization.metadata.items()})
    return {
        "job": job_name,
        "run_id": result.run_id,
        "success": result.success,
        "range": f"{keys[0]} .. {keys[-1]}" if keys else None,
        "seconds": round(time.monotonic() - started, 1),
        "materialized_partitions": mats,
        "checks": checks,
        "warn_checks": sorted(warnings),
        "meta": meta,
    }


def materialize_range(
    job_name: str,
    start: dt.date,
    end: dt.date,
    *,
    log_level: str = "WARNING",
    progress: str = "off",
) -> dict:
    """Run the partitioned job ``job_name`` once over the sessions from ``start`` to ``end`` on
    the current instance (tagged ``alphadag/kind: backfill`` unless the job sets that tag).

    ``log_level`` and ``progress`` as in :func:`run_job`, whose summary it returns.
    """
    return run_job(job_name, start, end, log_level=log_level, progress=progress)


def failed_error_checks(summary: dict) -> list[str]:
    """The checks of a run summary that failed with ERROR severity (WARN ones only warn)."""
    warn = set(summary.get("warn_checks", ()))
    return [k for k, ok in summary["checks"].items() if not ok and k not in warn]


def run_unpartitioned(
    job_name: str,
    *,
    tags: dict | None = None,
    ops: dict | None = None,
    log_level: str = "WARNING",
    progress: str = "off",
) -> dict:
    """Run an unpartitioned job on the current instance; its materializations' metadata merged.

    ``log_level`` and ``progress`` as in :func:`run_job`.
    Returns ``{"run_id", "success", "seconds", **metadata}``.
    """
    summary = run_job(job_name, tags=tags, ops=ops, log_level=log_level, progress=progress)
    return {
        "run_id": summary["run_id"],
        "success": summary["success"],
        **summary["meta"],
        "seconds": summary["seconds"],
    }


def train_model(**run_opts: Any) -> dict:
    """Run ``train_job`` (unpartitioned) on the current instance; the ``return_model`` metadata.

    ``run_opts``: ``log_level`` and ``progress`` of :func:`run_unpartitioned`."""
    return run_unpartitioned("train_job", **run_opts)


DEMO_SERVING_SESSIONS = 30
"""The demo scores the sample's last 30 sessions with the champion, then scores the matured ones."""


def recent_sessions(end: dt.date, n_sessions: int) -> tuple[dt.date, dt.date]:
    """The first and last of the last ``n_sessions`` XNYS sessions up to ``end``."""
    from alphadag.market.calendar import sessions

    if n_sessions < 1:
        raise CliInputError(f"--sessions must be at least 1, got {n_sessions}")
    days = sessions(end - dt.timedelta(days=2 * n_sessions + 10), end)[-n_sessions:]
    if not days:
        raise CliInputError(f"no session up to {end}")
    return days[0], days[-1]


def serve_recent(end: dt.date, n_sessions: int, **run_opts: Any) -> dict:
    """Run ``serving_job`` (predictions + prediction_scores) over the last ``n_sessions`` to ``end``."""
    first, last = recent_sessions(end, n_sessions)
    return materialize_range("serving_job", first, last, **run_opts)


# --- the run queue -----------------------------------------------------------------------------


def default_workspace() -> str:
    """The ``workspace.yaml`` the daemon serves: ``./workspace.yaml`` when there is one, else the
    checkout's (beside ``src/``)."""
    from pathlib import Path

    here = Path("workspace.yaml")
    if here.is_file():
        return str(here.resolve())
    return str(Path(__file__).resolve().parents[2] / "workspace.yaml")


def submit_to_queue(
    job_name: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    ops: Mapping | None = None,
    log_level: str = "WARNING",
    workspace: str | None = None,
) -> dict:
    """Submit a run of ``job_name`` (over ``start``..``end`` when partitioned) to the instance's
    run queue instead of executing it here: ``dagster job launch`` against the daemon's
    ``workspace`` creates the run with its code location origin and submits it to the run
    coordinator (``QueuedRunCoordinator`` in ``dagster.yaml``), so it is ``QUEUED``; the daemon
    launches it under the queue's limits and its code server fails it if its worker process dies.

    The job and range are checked first, as for :func:`run_job`. Returns
    ``{"job", "run_id", "status", "range", "tags"}``; a failed submission raises ``RuntimeError``
    with the output of ``dagster job launch``.
    """
    import dagster as dg

    job = resolve_job(job_name)
    keys = check_range(job, start, end)
    run_tags = _run_tags(job, {**(RANGED_TAGS if keys else {}), **(tags or {})}, _range_tags(keys))
    run_config = _run_config(log_level, **({"ops": dict(ops)} if ops else {}))
    workspace = workspace or default_workspace()
    if not os.path.isfile(workspace):
        raise CliInputError(f"{workspace}: no such workspace file (give --workspace)")
    run_id = str(uuid.uuid4())
    cmd = [
        *(sys.executable, "-m", "dagster", "job", "launch"),
        *("-w", workspace, "-j", job_name, "--run-id", run_id),
        *("--tags", json.dumps(run_tags), "--config-json", json.dumps(run_config)),
    ]
    done = subprocess.run(
        cmd, cwd=os.path.dirname(workspace), capture_output=True, text=True, check=False
    )
    run = dg.DagsterInstance.get().get_run_by_id(run_id)
    if done.returncode != 0 or run is None:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"dagster job launch failed (status {done.returncode}):\n{tail}")
    return {
        "job": job_name,
        "run_id": run_id,
        "status": run.status.value,
        "range": f"{keys[0]} .. {keys[-1]}" if keys else None,
        "tags": dict(run.tags),
    }


def _print_queued(queued: dict) -> None:
    over = f" over {queued['range']}" if queued["range"] else ""
    print(f"\n== {queued['job']}{over}: run {queued['run_id']} submitted, {queued['status']}")
    print(
        "   the daemon launches it within the queue's limits (dagster.yaml: concurrency); "
        "`make dev` runs the daemon and the UI"
    )
    print(f"   follow it: http://127.0.0.1:3000/runs/{queued['run_id']}")


def _print_serving(summary: dict) -> None:
    import polars as pl

    from alphadag import settings
    from alphadag.storage import PartitionStore

    if not summary["success"]:
        return
    store = PartitionStore(settings.data_root())
    first, last = (dt.date.fromisoformat(k) for k in summary["range"].split(" .. "))
    preds = store.read("predictions", [last])
    with pl.Config(tbl_rows=30, tbl_cols=12, tbl_hide_dataframe_shape=True, float_precision=4):
        print(f"\n   predictions for {last} (top 10 by signal; {preds.height} tickers):")
        print(
            preds.sort("signal", descending=True)
            .head(10)
            .select(
                "ticker",
                "y_pred",
                "y_lo",
                "y_hi",
                "signal",
                "vol_forecast",
                "var_95",
                "cvar_95",
                "model_source",
                "model_version",
            )
        )
    sources = sorted(set(preds["model_source"]))
    print(f"   model_source: {', '.join(sources)}   interval: {preds['interval_method'][0]}")
    scores = (
        # partitions written by an older version may lack newer columns: scan fills them with nulls
        store.scan("prediction_scores", first, last).collect().sort("date")
    )
    if scores.height == 0:
        print("   prediction_scores: no prediction has matured yet")
        return
    r = scores.select(
        pl.len().alias("n"),
        pl.col("ic").mean(),
        pl.col("rank_ic").mean(),
        pl.col("hit_rate").mean(),
        pl.col("coverage").mean(),
        pl.col("nominal_coverage").first(),
    ).row(0, named=True)
    print(
        f"   prediction_scores: {r['n']} matured prediction dates  IC {r['ic']:.4f}  "
        f"rank IC {r['rank_ic']:.4f}  hit rate {r['hit_rate']:.3f}  "
        f"interval coverage {r['coverage']:.3f} (nominal {r['nominal_coverage']:.2f})"
    )
    from alphadag.models.ic import ic_summary

    # partitions older than the horizon column have it null
    known = scores["horizon"].drop_nulls() if "horizon" in scores.columns else []
    horizon = int(known[0]) if len(known) else 1
    s = ic_summary(scores["rank_ic"].to_numpy(), horizon)
    served = (
        f"   served rank IC over those dates: {_num(s.mean, '+.4f')}, Newey-West t "
        f"{_num(s.hac_t, '+.2f')} (lag {s.hac_maxlags}), 95% interval "
        f"[{_num(s.ci_lo, '+.4f')}, {_num(s.ci_hi, '+.4f')}] over {s.n_dates} dates"
    )
    print(served)


def backtest_report(start: str, end: dt.date, **run_opts: Any) -> dict:
    """Run ``backtest_job`` over ``start``..``end``: the built-in strategies, the walk-forward
    model signal and buy-and-hold of the S&P 500; the ``backtest_report`` metadata."""
    return run_unpartitioned(
        "backtest_job",
        ops={"backtest_report": {"config": {"start": start, "end": end.isoformat()}}},
        **run_opts,
    )


def _last_bar(ticker: str) -> dt.date | None:
    """The last session with a bar of ``ticker`` in the data root (``None`` without one)."""
    import polars as pl

    from alphadag import settings
    from alphadag.storage import PartitionStore

    bars = PartitionStore(settings.data_root()).scan("bars")
    last = (bars.filter(pl.col("ticker") == ticker).select(pl.col("date").max())).collect()
    return last.item()


def _print_backtest(meta: dict) -> None:
    import polars as pl

    print(
        f"\n== backtest_job: run {meta['run_id']}  success={meta['success']}  "
        f"wall={meta['seconds']}s"
    )
    if not meta["success"]:
        return
    print(
        f"   period {meta['period']}  {meta['tickers']} tickers  model signal: {meta['model_signal']}"
    )
    from alphadag.backtest.analysis import format_analysis

    # the analysis table the report, the Dagster metadata and MLflow hold (one definition each
    # in alphadag.backtest.stats), the columns a reader compares first
    table = pl.read_csv(f"{meta['report_dir']}/analysis.csv")
    cols = [
        c
        for c in (
            "run",
            "total_return_pct",
            "total_return_gross_pct",
            "return_ann_pct",
            "sharpe",
            "excess_return_ann_pct",
            "information_ratio",
            "information_ratio_gross",
            "max_drawdown_pct",
            "turnover",
            "n_trades",
        )
        if c in table.columns
    ]
    with pl.Config(
        tbl_rows=20,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        fmt_str_lengths=60,
        tbl_width_chars=220,
        tbl_cols=20,
    ):
        print(format_analysis(table.select(cols), labels=False))
    print(
        "   (% and % a year; sharpe and IR are ratios; *_gross: before costs; excess vs the "
        "benchmark; turnover in x equity a year; every figure is defined in alphadag.backtest.stats)"
    )
    print(f"   benchmark: {meta['benchmark']}")
    print(f"   report: {meta['report_html']}")


def _num(value, fmt: str) -> str:
    """``value`` formatted, or n/a when it is missing or not finite."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(value, fmt)


def _print_training(meta: dict) -> None:
    print(
        f"\n== train_job: run {meta['run_id']}  success={meta['success']}  wall={meta['seconds']}s"
    )
    if not meta["success"]:
        return
    print(f"   registered {meta['model_uri']} ({meta.get('n_models_tried', '?')} models tried)")
    table = meta.get("oos_rank_ic") or []
    if table:
        h = meta.get("horizon", "h")
        print(
            f"   out-of-sample rank IC (oos_predictions: each date scored by a fit trained before "
            f"it; Newey-West t with lag {h}, 95% block-bootstrap interval):"
        )
        for r in table:
            period = "before test" if r["period"] == "pre_test" else r["period"]
            print(
                f"     {r['who']:<18} {period:<12} {r['dates']:>5} dates  "
                f"rank IC {_num(r['rank_ic'], '+.4f')}  t {_num(r['hac_t'], '+5.2f')}  "
                f"[{_num(r['ci_lo'], '+.4f')}, {_num(r['ci_hi'], '+.4f')}]"
            )
    gate = meta.get("gate") or []
    if gate:
        print(f"   promotion gate (dates before {meta.get('gate_before', 'the test segment')}):")
        for c in gate:
            print(
                f"     vs {c['rival']:<18} gain {c['gain']:+.4f}  se {c['se']:.4f}  "
                f"t {c['t']:+5.2f}  over {c['n_dates']} dates"
            )
    reason = str(meta["reason"])
    print(
        f"   decision: {reason if reason.startswith(meta['decision']) else meta['decision'] + ': ' + reason}"
    )
    champion = meta.get("champion_version") or "none (the momentum baseline serves)"
    print(
        f"   champion: {champion}; trained through {meta.get('champion_trained_through') or '-'}"
        f" (last labelled session {meta.get('last_labelled_session', '-')})"
    )
    print(
        f"   final test segment (the challenger fit on the train segment; scored once, never used "
        f"to choose): rank IC "
        f"{meta['test_rank_ic_mean']:.4f}"
        + "".join(
            f", {k.removesuffix('_test_rank_ic_mean')} {v:.4f}"
            for k, v in sorted(meta.items())
            if k.endswith("_test_rank_ic_mean") and isinstance(v, float) and v == v
        )
    )
    print("   MLflow UI: `make mlflow-ui` -> http://127.0.0.1:5000")


def _print_summary(summary: dict) -> None:
    over = f" over {summary['range']}" if summary["range"] else " (unpartitioned)"
    print(f"\n== {summary['job']}{over}: run {summary['run_id']}")
    print(f"   success={summary['success']}  wall={summary['seconds']}s")
    unit = "partitions" if summary["range"] else "materialization(s)"
    for key, n in sorted(summary["materialized_partitions"].items()):
        print(f"   materialized {key:<22} {n:>6} {unit}")
    warn = set(summary.get("warn_checks", ()))
    for key, passed in sorted(summary["checks"].items()):
        outcome = "PASS" if passed else ("WARN" if key in warn else "FAIL")
        print(f"   check {key:<40} {outcome}")


def _data_summary() -> None:
    import polars as pl

    from alphadag import settings
    from alphadag.storage import PartitionStore

    store = PartitionStore(settings.data_root())
    for dataset in ("raw_bars", "bars", "quarantined_bars", "features", "labels"):
        if not store.sessions(dataset):
            continue
        path = store.root / dataset
        frame = store.scan(dataset)
        stats = frame.select(
            pl.len().alias("rows"),
            pl.col("ticker").n_unique().alias("tickers"),
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
        ).collect()
        r = stats.row(0, named=True)
        print(
            f"   {dataset:<18} {r['rows']:>9} rows  {r['tickers']:>3} tickers  "
            f"{r['first']} .. {r['last']}  ({path})"
        )


CAVEATS = """
What this data cannot show:
   - survivorship: the sample's 20 stocks were chosen in 2022 among companies that were large then,
     so every figure over 2010..2022 is biased upward (names that failed or shrank are absent);
   - the stocks are dividend-adjusted (total return) while ^GSPC is a price index (no dividends):
     excess returns against it are overstated by the index's dividend yield (about 2% a year);
   - out-of-sample rank IC comes with its Newey-West t and interval: an interval that covers 0 is
     no evidence of skill, whatever the sign of the mean."""


def cmd_demo(args: argparse.Namespace) -> int:
    """Materialize everything for the configured history and print what was produced."""
    from alphadag import settings

    env = settings.Settings.from_env()
    start = args.start or env.history_start
    end = args.end or _default_end()
    check_range(resolve_job("daily_data_job"), start, end)  # refused before anything runs
    print(f"alphadag demo: sample universe, sessions {start} .. {end}")
    print(f"   DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}  data={env.data_root}")
    t0 = time.monotonic()
    opts = _run_opts(args)
    summary = materialize_range("daily_data_job", start, end, **opts)
    _print_summary(summary)
    print("\nProduced:")
    _data_summary()
    training = train_model(**opts) if summary["success"] else {"success": False}
    if summary["success"]:
        _print_training(training)
    serving = {"success": False, "checks": {}}
    backtest = {"success": False}
    if training["success"]:
        serving = serve_recent(end, DEMO_SERVING_SESSIONS, **opts)
        _print_summary(serving)
        _print_serving(serving)
        benchmark_end = _last_bar("^GSPC")
        if benchmark_end is not None:  # the sample's S&P 500 series ends in 2018
            print("\n   strategies against the S&P 500 over its last three years in the sample:")
            vs_index = backtest_report(
                (benchmark_end - dt.timedelta(days=3 * 365)).isoformat(), benchmark_end, **opts
            )
            _print_backtest(vs_index)
        print(
            "\n   strategies and the walk-forward model signal over the model's test period "
            "(topk_dropout: the turnover-controlled top 5, the default; model_signal: the daily "
            "top 5, for comparison):"
        )
        backtest = backtest_report(training["segments"]["test_start"], end, **opts)
        _print_backtest(backtest)
    print(CAVEATS)
    print(
        f"\nTotal {time.monotonic() - t0:.1f}s. Open the Dagster UI with `make dev` -> http://127.0.0.1:3000"
    )
    ok = (
        summary["success"]
        and not failed_error_checks(summary)
        and training["success"]
        and serving["success"]
        and not failed_error_checks(serving)
        and backtest["success"]
    )
    return 0 if ok else 1


def cmd_materialize(args: argparse.Namespace) -> int:
    """Run a job over a session range (a partitioned job) or once (an unpartitioned one)."""
    if args.queue:
        return _queue(args, args.job, args.start, args.end)
    summary = run_job(args.job, args.start, args.end, **_run_opts(args))
    _print_summary(summary)
    return 0 if summary["success"] else 1


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``train_job`` and print what the demo prints for it (OOS table, gate, champion)."""
    if args.queue:
        return _queue(args, "train_job")
    meta = train_model(**_run_opts(args))
    _print_training(meta)
    return 0 if meta["success"] else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``serving_job`` over a range (default: the last 30 sessions) and print the batch of its
    last session and the scores of the matured predictions, as the demo does."""
    end = args.end or _default_end()
    start = args.start
    if start is None:
        start, end = recent_sessions(end, args.sessions)
    if args.queue:
        return _queue(args, "serving_job", start, end)
    summary = materialize_range("serving_job", start, end, **_run_opts(args))
    _print_summary(summary)
    _print_serving(summary)
    ok = summary["success"] and not failed_error_checks(summary)
    return 0 if ok else 1


def cmd_backtest_report(args: argparse.Namespace) -> int:
    """Run ``backtest_job`` over a period and print its comparison table, as the demo does."""
    end = args.end or _default_end()
    if args.start > end:
        raise CliInputError(f"period {args.start} .. {end}: --start is after --end")
    ops = {"backtest_report": {"config": {"start": args.start.isoformat(), "end": end.isoformat()}}}
    if args.queue:
        return _queue(args, "backtest_job", ops=ops)
    meta = run_unpartitioned("backtest_job", ops=ops, **_run_opts(args))
    _print_backtest(meta)
    return 0 if meta["success"] else 1


def _queue(
    args: argparse.Namespace,
    job_name: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    **submit: Any,
) -> int:
    queued = submit_to_queue(
        job_name, start, end, log_level=args.log_level, workspace=args.workspace, **submit
    )
    _print_queued(queued)
    return 0


def _run_opts(args: argparse.Namespace) -> dict:
    """``log_level`` and ``progress`` of the runs of a ``demo`` or ``materialize`` command."""
    return {"log_level": args.log_level, "progress": "off" if args.no_progress else "auto"}


def _add_run_options(parser: argparse.ArgumentParser, *, queue: bool = True) -> None:
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="WARNING",
        type=str.upper,
        help="level of Dagster's console logger (stderr) during the runs (default: WARNING)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress display; by default bars per asset (partitions done / total, elapsed) "
        "are drawn on stderr when it is a terminal, plain lines otherwise",
    )
    parser.set_defaults(runs_jobs=True)
    if not queue:
        return
    parser.add_argument(
        "--queue",
        action="store_true",
        help="submit the run to the instance's run queue instead of running it here: the daemon "
        "launches it within the queue's limits (dagster.yaml); prints the run id",
    )
    parser.add_argument(
        "--workspace",
        default=None,
        metavar="YAML",
        help="with --queue: the daemon's workspace file (default: ./workspace.yaml, else the "
        "checkout's)",
    )


def _date(text: str) -> dt.date:
    """An ISO date argument (YYYY-MM-DD)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``alphadag`` command."""
    description = __doc__.splitlines()[0].replace("``", "")  # plain text, no RST
    parser = argparse.ArgumentParser(prog="alphadag", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the whole graph for the configured history")
    demo.add_argument("--start", type=_date, default=None)
    demo.add_argument("--end", type=_date, default=None)
    _add_run_options(demo, queue=False)
    demo.set_defaults(func=cmd_demo)
    mat = sub.add_parser(
        "materialize",
        help="run a job over a range of sessions (or once, when it is not partitioned)",
        description="Run a job of the code location: a partitioned one over --start .. --end "
        "(one ranged run), an unpartitioned one (train_job, backtest_job) without a range.",
    )
    mat.add_argument("--job", default="ingest_job")
    mat.add_argument("--start", type=_date, default=None)
    mat.add_argument("--end", type=_date, default=None)
    _add_run_options(mat)
    mat.set_defaults(func=cmd_materialize)
    train = sub.add_parser(
        "train", help="run train_job; print the out-of-sample table, the gate and the champion"
    )
    _add_run_options(train)
    train.set_defaults(func=cmd_train)
    serve = sub.add_parser(
        "serve",
        help="run serving_job over recent sessions; print the last batch and the matured scores",
    )
    serve.add_argument("--start", type=_date, default=None, help="default: --sessions before --end")
    serve.add_argument("--end", type=_date, default=None, help="default: the sample's last session")
    serve.add_argument("--sessions", type=int, default=DEMO_SERVING_SESSIONS)
    _add_run_options(serve)
    serve.set_defaults(func=cmd_serve)
    report = sub.add_parser(
        "backtest-report",
        help="run backtest_job over a period; print the strategies' comparison and the report",
    )
    report.add_argument("--start", type=_date, required=True)
    report.add_argument(
        "--end", type=_date, default=None, help="default: the sample's last session"
    )
    _add_run_options(report)
    report.set_defaults(func=cmd_backtest_report)
    from alphadag.backtest.cli import register as register_backtest

    register_backtest(sub)
    return parser


def sweep_orphaned_runs() -> None:
    """Mark failed the in-progress CLI runs of this host whose process is gone (see
    ``alphadag.defs.automation.run_reaper``), one line on stderr each."""
    import dagster as dg

    from alphadag.defs.automation.run_reaper import reap_orphaned_runs

    for run in reap_orphaned_runs(dg.DagsterInstance.get(), reaper="the alphadag CLI"):
        print(f"alphadag: {run.message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alphadag`` console script.

    Refused input prints one ``alphadag: error: ...`` line and returns 2 before any run starts;
    an interrupt (Ctrl-C, SIGTERM, SIGHUP) ends the current run as failed and returns 130."""
    args = build_parser().parse_args(argv)
    try:
        with signals_interrupt():
            if getattr(args, "runs_jobs", False):
                sweep_orphaned_runs()
            return int(args.func(args))
    except CliInputError as err:
        print(f"alphadag: error: {err}", file=sys.stderr)
        return INPUT_ERROR_STATUS
    except Interrupted as err:
        print(f"\nalphadag: interrupted; run {err.run_id} ended {err.status}", file=sys.stderr)
        return INTERRUPTED_STATUS
    except KeyboardInterrupt:
        print("\nalphadag: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS


if __name__ == "__main__":
    sys.exit(main())
