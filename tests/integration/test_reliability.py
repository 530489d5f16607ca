"""Reliability under faults and load, on a real ``dagster-daemon`` over loopback only.

(a) A run worker killed with SIGKILL in the middle of writing a ranged run: the run is failed, the
    run-retry daemon re-executes it, and every partition is whole and written once, by the retry.
(b) Twenty runs queued at once with ``max_concurrent_runs: 2``, on SQLite and on PostgreSQL: all
    succeed, never more than two are in progress (sampled while they run, and from their start/end
    times), every run but the first two waited in the queue while both slots were busy (the
    limit, not a lack of work, held them back), and "database is locked" appears nowhere.
(c) A session scheduled again after a daemon restart runs once: a scheduler killed right after
    creating the session's run leaves its tick open; the restarted daemon resumes the tick and the
    run key (the session) finds the run instead of adding one.

The instance config is the repo's dagster.yaml (deploy/postgres's for PostgreSQL) with only the
limits under test changed; the code locations are the tiny ones in ``_ops_location``. Each test
prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from _ops_location import (
    HERE,
    child_env,
    make_home,
    pg_database,
    pg_env,
    running,
    start,
    start_daemon,
    wait_for,
    workspace_for,
)

pytestmark = pytest.mark.slow

FAST_QUEUE = {"run_coordinator": {"config": {"dequeue_interval_seconds": 1}}}
TICK_LEAD_S = 30
QUEUE_RUNS = 12  # six dequeue rounds at two slots: the queue stays full for most of the test
IN_PROGRESS = {
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of ``[start, end]`` intervals that hold at one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    live = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        live += step
        peak = max(peak, live)
    return peak


def _alive_or_fail(daemon) -> None:
    if not daemon.alive():
        raise RuntimeError(f"dagster-daemon exited:\n{daemon.text()[-4000:]}")


# -- (a) kill -9 of a run worker -------------------------------------------------------------


def test_killed_run_worker_fails_retries_and_leaves_whole_partitions(tmp_path):
    started = time.monotonic()
    home = make_home(tmp_path, overrides=FAST_QUEUE)
    data = tmp_path / "data"
    env = child_env(home, OPS_CRASH_DIR=str(tmp_path), OPS_DATA_ROOT=str(data))
    workspace = workspace_for(tmp_path, "crash_defs.py", "ops_crash")
    marker = tmp_path / "worker.pid"
    with contextlib.ExitStack() as stack:
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        daemon = stack.enter_context(running(start_daemon(workspace, env, tmp_path / "daemon.log")))

        def parked():
            _alive_or_fail(daemon)
            if marker.exists():
                return True
            ended = [r for r in instance.get_runs() if r.is_finished]
            # a write path that no longer goes through PausingStore would end the run instead
            assert not ended, f"run {ended[0].status} without reaching the crash point"
            return False

        wait_for("the run worker to park mid-write", parked, 180)
        pid = int(marker.read_text())
        [first] = instance.get_runs()
        assert first.status == dg.DagsterRunStatus.STARTED
        written = sorted(p.name for p in (data / "crash_table" / "2024").iterdir())
        assert written == ["2024-01-02.parquet"]  # one of three partitions written, then parked
        os.kill(pid, signal.SIGKILL)

        def retried():
            _alive_or_fail(daemon)
            runs = instance.get_runs()
            retry = [r for r in runs if r.tags.get("dagster/parent_run_id") == first.run_id]
            return retry[0] if retry and retry[0].is_finished else None

        retry = wait_for("the retry run to finish", retried, 180)
        daemon.stop()
        _check_crash_outcome(instance, first, retry, data)
    print(f"wall {time.monotonic() - started:.0f}s")


def _check_crash_outcome(instance, first, retry, data: Path) -> None:
    original = instance.get_run_by_id(first.run_id)
    assert original.status == dg.DagsterRunStatus.FAILURE
    crash_messages = [
        e.message
        for e in instance.all_logs(first.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if "Run execution process" in (e.message or "")
    ]
    assert crash_messages, "no engine event explains the crash"
    assert "SIGKILL" in crash_messages[0] or "-9" in crash_messages[0]
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    assert retry.tags["dagster/retry_number"] == "1"
    assert retry.tags["dagster/asset_partition_range_start"] == "2024-01-02"
    assert retry.tags["dagster/asset_partition_range_end"] == "2024-01-04"
    assert len(instance.get_runs()) == 2  # one crash, one retry, nothing more

    # Whole partitions, each written once, by the retry; no temp file left behind.
    files = sorted(p.name for p in (data / "crash_table" / "2024").iterdir())
    assert files == ["2024-01-02.parquet", "2024-01-03.parquet", "2024-01-04.parquet"]
    for name in files:
        part = pl.read_parquet(data / "crash_table" / "2024" / name)
        assert part.height == 3
        assert part["ticker"].to_list() == ["AAA", "BBB", "CCC"]
        assert part["date"].n_unique() == 1
        assert part["run_id"].unique().to_list() == [retry.run_id]
    mats = instance.fetch_materializations(dg.AssetKey("crash_table"), limit=100).records
    assert sorted((m.run_id, m.partition_key) for m in mats) == [
        (retry.run_id, "2024-01-02"),
        (retry.run_id, "2024-01-03"),
        (retry.run_id, "2024-01-04"),
    ]
    print(f"\n[reliability a] crash detected: {crash_messages[0]!r}; retries: 1; ", end="")


# -- (b) twelve queued runs, two at a time --------------------------------------------------


@pytest.mark.parametrize(
    "storage", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_queued_runs_never_exceed_two_at_a_time(storage, tmp_path, monkeypatch):
    """QUEUE_RUNS runs queued at once behind ``max_concurrent_runs: 2``: the queue stays full for
    most of the test (all but the first two runs wait behind two runs in progress), so the limit is
    what holds them back at every dequeue, and it is never exceeded."""
    started = time.monotonic()
    n_runs, limit = QUEUE_RUNS, 2
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        if storage == "postgres":
            extra = pg_env(stack.enter_context(pg_database()))
            for key, value in extra.items():
                monkeypatch.setenv(key, value)
        home = make_home(
            tmp_path,
            postgres=storage == "postgres",
            overrides={**FAST_QUEUE, "concurrency": {"runs": {"max_concurrent_runs": limit}}},
        )
        env = child_env(home, OPS_QUEUE_RUNS=str(n_runs), **extra)
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == limit
        log = tmp_path / "daemon.log"
        daemon = stack.enter_context(
            running(start_daemon(workspace_for(tmp_path, "queue_defs.py", "ops_queue"), env, log))
        )
        peak_sampled, samples = 0, 0
        waiting_samples, full_samples = 0, 0  # samples with runs queued; of those, slots all busy
        waited_behind_full: set[str] = set()  # runs seen queued while `limit` were in progress
        deadline = time.monotonic() + 900
        while True:
            _alive_or_fail(daemon)
            runs = instance.get_runs()  # one query: one consistent snapshot of every status
            in_progress = sum(r.status in IN_PROGRESS for r in runs)
            queued = [r.run_id for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
            peak_sampled = max(peak_sampled, in_progress)
            samples += 1
            if queued:
                waiting_samples += 1
                if in_progress == limit:
                    full_samples += 1
                    waited_behind_full.update(queued)
            if len(runs) == n_runs and all(r.is_finished for r in runs):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(r.is_finished for r in runs)}/{len(runs)} runs done")
            time.sleep(0.2)
        records = instance.get_run_records()
        logs = {r.dagster_run.run_id: instance.all_logs(r.dagster_run.run_id) for r in records}
        daemon_log = daemon.text()

    statuses = {r.dagster_run.status for r in records}
    assert statuses == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(r.dagster_run.tags["n"] for r in records) == [f"{i:03d}" for i in range(n_runs)]
    overlap = _max_overlap([(r.start_time, r.end_time) for r in records])
    assert peak_sampled <= limit
    assert overlap <= limit
    assert max(peak_sampled, overlap) == limit  # both slots were used, never a third
    # saturation: every run but the first `limit` waited in the queue while the slots were full
    assert len(waited_behind_full) >= n_runs - limit, (len(waited_behind_full), n_runs)
    locked = [
        e.message
        for events in logs.values()
        for e in events
        if "database is locked" in (e.message or "")
    ]
    assert locked == []
    assert "database is locked" not in daemon_log
    materialized = sum(
        1
        for events in logs.values()
        for e in events
        if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    )
    assert materialized == n_runs
    print(
        f"\n[reliability b/{storage}] {n_runs} runs SUCCESS; max in progress sampled "
        f"{peak_sampled} ({samples} samples), max overlap of start/end {overlap}; "
        f"{len(waited_behind_full)} runs waited behind {limit} in progress; slots full in "
        f"{full_samples}/{waiting_samples} samples while runs were queued; "
        f"wall {time.monotonic() - started:.0f}s"
    )


# -- (c) a session scheduled twice runs once -------------------------------------------------


def test_session_scheduled_again_after_daemon_restart_runs_once(tmp_path):
    """A scheduler killed right after creating a session's run (tick left STARTED) is replaced by a
    real ``dagster-daemon``, which resumes that tick: the run key finds the run, none is added."""
    started = time.monotonic()
    home = make_home(tmp_path, overrides=FAST_QUEUE)
    env = child_env(home)
    workspace = workspace_for(tmp_path, "schedule_defs.py", "ops_schedule")
    # A tick a little ahead: the crashed scheduler evaluates it under a frozen clock, and the real
    # daemon must be up during that minute (a schedule without partitions does not catch up, it
    # only evaluates the latest tick), so it resumes that very tick when the minute comes. The
    # crashed scheduler picks the tick once its code location is loaded, the first whole minute
    # at least TICK_LEAD_S ahead: the restarted daemon then has from its crash to the end of that
    # minute (over TICK_LEAD_S + 60 s) to start, and nobody waits for a fixed margin.
    tick_file = tmp_path / "tick.txt"
    crashed = start(
        [
            sys.executable,
            str(HERE / "crashing_scheduler.py"),
            str(workspace),
            str(tick_file),
            str(TICK_LEAD_S),
        ],
        env,
        tmp_path / "crashed.log",
    )
    try:
        crashed.proc.wait(timeout=240)
    finally:
        crashed.stop()  # its orphaned code server too
    assert crashed.proc.returncode == -signal.SIGKILL, crashed.text()[-3000:]
    tick = dt.datetime.fromisoformat(tick_file.read_text())
    session = tick.strftime("%Y-%m-%dT%H:%M")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [state] = [
            s
            for s in instance.all_instigator_state()
            if s.instigator_name == "minutely_session_schedule"
        ]

        def tick_of_session():
            found = [
                t
                for t in instance.get_ticks(state.instigator_origin_id, state.selector_id)
                if t.timestamp == tick.timestamp()
            ]
            return found[0] if found else None

        assert tick_of_session().status.value == "STARTED"  # the crash left it open
        [orphan] = instance.get_runs()
        assert orphan.tags["dagster/run_key"] == session
        assert orphan.status == dg.DagsterRunStatus.NOT_STARTED

        log = tmp_path / "daemon.log"
        with running(start_daemon(workspace, env, log)) as daemon:

            def resumed():
                _alive_or_fail(daemon)
                t = tick_of_session()
                run = instance.get_run_by_id(orphan.run_id)
                return t if t.status.value != "STARTED" and run.is_finished else None

            done = wait_for("the restarted daemon to resume the tick", resumed, 420)
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/run_key") == session]
        final = instance.get_run_by_id(orphan.run_id)
        other_sessions = sorted(
            r.tags["dagster/run_key"] for r in instance.get_runs() if r.run_id != orphan.run_id
        )

    assert done.status.value == "SUCCESS"
    assert done.run_ids == [orphan.run_id]
    assert [r.run_id for r in runs] == [orphan.run_id]  # the session ran once
    assert final.status == dg.DagsterRunStatus.SUCCESS
    assert "Resuming previously interrupted schedule execution" in daemon.text()
    assert session not in other_sessions  # later minutes are later "sessions", one run each
    assert len(other_sessions) == len(set(other_sessions))
    print(
        f"\n[reliability c] session {session}: 1 run after a SIGKILL mid-tick and a restart "
        f"(later sessions: {len(other_sessions)}); wall {time.monotonic() - started:.0f}s"
    )


def test_max_overlap_counts_intervals():
    assert _max_overlap([(0, 2), (1, 3), (2, 4)]) == 2  # an end and a start at 2 do not overlap
    assert _max_overlap([(0, 5), (1, 2), (1.5, 3)]) == 3
