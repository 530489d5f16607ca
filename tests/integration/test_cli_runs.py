"""The ``alphadag`` CLI against a real instance: input refused before any run, the job's tags kept,
runs whose process dies marked failed, and ``--queue``.

Every test points ``DAGSTER_HOME`` at a fresh home holding the repo's ``dagster.yaml``
(``make_home``). Bad input goes through ``alphadag.cli.main`` in this process: one line on stderr,
exit status 2, no traceback and no run in the instance. The process tests start
``_cli_slow_job.py`` (the CLI on a one-asset job that sleeps) as a subprocess, kill it while its run
is STARTED, then run the reaper (``orphaned_run_sensor`` evaluated with ``build_sensor_context``,
or the CLI's start-up sweep): no daemon involved.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from _dagster_procs import alphadag_env, make_home

from alphadag import cli
from alphadag.defs.automation import run_reaper

HERE = Path(__file__).resolve().parent
WEEK = ("2024-03-04", "2024-03-08")  # five sessions
PUBLIC_JOBS = (
    "backtest_job, daily_data_job, daily_job, features_job, ingest_job, serving_job, train_job"
)


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A fresh instance (the repo's dagster.yaml) in ``DAGSTER_HOME``; data under ``tmp_path``."""
    home = make_home(tmp_path)
    env = alphadag_env(home, tmp_path / "data")
    for key in ("DAGSTER_HOME", "ALPHADAG_DATA_ROOT", "ALPHADAG_SOURCE", "ALPHADAG_ALERT_LOG"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("ALPHADAG_MLFLOW_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("ALPHADAG_MLFLOW_ARTIFACTS", str(tmp_path / "mlartifacts"))
    return home


def _runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


# --- input refused before any run -------------------------------------------------------------

SESSIONS = (
    r"ingest_job's sessions run 2010-01-04 \.\. \d{4}-\d\d-\d\d; "
    r"ALPHADAG_HISTORY_START \(now 2010-01-01\) sets the first"
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["materialize", "--job", "nope", "--start", WEEK[0], "--end", WEEK[1]],
            re.escape(f"unknown job 'nope'; valid jobs: {PUBLIC_JOBS}"),
            id="unknown-job",
        ),
        pytest.param(
            ["materialize", "--start", "2099-01-05", "--end", "2099-01-09"],
            rf"range 2099-01-05 \.\. 2099-01-09 ends after the last session [\d-]+ \({SESSIONS}\)",
            id="future-range",
        ),
        pytest.param(
            ["materialize", "--start", "2005-01-03", "--end", "2010-02-05"],
            rf"range 2005-01-03 \.\. 2010-02-05 starts before the first session 2010-01-04 "
            rf"\({SESSIONS}\)",
            id="before-history-start",
        ),
        pytest.param(
            ["materialize", "--job", "train_job", "--start", WEEK[0], "--end", WEEK[1]],
            re.escape(
                "train_job is not partitioned, so a range does not apply to it; "
                "run `alphadag train` (or drop --start/--end)"
            ),
            id="unpartitioned-with-range",
        ),
        pytest.param(
            ["materialize", "--job", "ingest_job"],
            rf"ingest_job runs over a range: give --start and --end \({SESSIONS}\)",
            id="partitioned-without-range",
        ),
        pytest.param(
            ["materialize", "--start", "2024-03-09", "--end", "2024-03-10"],
            re.escape("range 2024-03-09 .. 2024-03-10 holds no session"),
            id="weekend",
        ),
        pytest.param(
            ["materialize", "--start", WEEK[1], "--end", WEEK[0]],
            re.escape(f"range {WEEK[1]} .. {WEEK[0]}: --start is after --end"),
            id="reversed",
        ),
        pytest.param(
            ["demo", "--start", "2005-01-03"],
            r"range 2005-01-03 \.\. [\d-]+ starts before the first session 2010-01-04",
            id="demo-before-history-start",
        ),
        pytest.param(
            ["train", "--queue", "--workspace", "/nonexistent/workspace.yaml"],
            re.escape("/nonexistent/workspace.yaml: no such workspace file"),
            id="queue-without-workspace",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run(home, capsys, argv, message):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert "__ASSET_JOB" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert re.fullmatch(rf"alphadag: error: {message}.*", err.strip()), err
    assert _runs(home) == []


def _tagged_defs() -> dg.Definitions:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def part() -> None: ...

    @dg.asset
    def whole() -> None: ...

    return dg.Definitions(
        assets=[part, whole],
        jobs=[
            dg.define_asset_job("tagged_job", selection=["part"], tags={"alphadag/kind": "mine"}),
            dg.define_asset_job("plain_job", selection=["part"]),
            dg.define_asset_job("whole_job", selection=["whole"], tags={"team": "research"}),
        ],
    )


def test_the_jobs_own_tags_are_kept_and_the_process_is_tagged(home, monkeypatch, capsys):
    monkeypatch.setattr("alphadag.definitions.defs", _tagged_defs)
    dates = ["--start", WEEK[0], "--end", WEEK[1], "--no-progress"]
    assert cli.main(["materialize", "--job", "tagged_job", *dates]) == 0
    assert cli.main(["materialize", "--job", "plain_job", *dates]) == 0
    assert cli.main(["materialize", "--job", "whole_job", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "== whole_job (unpartitioned): run " in out
    assert "whole_job over" not in out  # no range it did not use

    runs = {run.job_name: run.tags for run in _runs(home)}
    assert runs["tagged_job"]["alphadag/kind"] == "mine"  # the job's own tag wins
    assert runs["plain_job"]["alphadag/kind"] == "backfill"  # the CLI's fills the gap
    assert "alphadag/kind" not in runs["whole_job"]
    assert runs["whole_job"]["team"] == "research"
    for name in ("tagged_job", "plain_job"):
        assert runs[name]["dagster/asset_partition_range_start"] == WEEK[0]
        assert runs[name]["dagster/asset_partition_range_end"] == WEEK[1]
    for tags in runs.values():
        assert tags[run_reaper.HOST_TAG] == socket.gethostname()
        assert tags[run_reaper.PID_TAG] == str(os.getpid())
        assert tags["dagster/max_retries"] == "0"  # the retry daemon cannot re-run it


def test_process_alive_tells_a_dead_or_reused_pid():
    tags = run_reaper.process_tags()
    assert run_reaper.process_alive(os.getpid(), tags[run_reaper.PID_START_TAG])
    if tags[run_reaper.PID_START_TAG]:  # /proc is readable: a reused pid is not the run's process
        assert not run_reaper.process_alive(os.getpid(), "1")
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    assert not run_reaper.process_alive(int(done.stdout))


# --- runs whose process dies --------------------------------------------------------------------


def _start_slow_cli(home: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_cli_slow_job.py"), str(marker)],
        env=alphadag_env(home, tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the slow CLI run never started:\n{out}\n{err}")
        time.sleep(0.1)
    return proc, marker


def _failure_message(home: Path, run_id: str) -> str:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
    assert records, "no RUN_FAILURE event"
    return records[-1].event_log_entry.dagster_event.message


@pytest.mark.slow
@pytest.mark.parametrize("reaper", ["sensor", "cli_start_up"])
def test_a_killed_cli_run_is_failed_by_the_reaper(home, tmp_path, capsys, reaper):
    proc, _ = _start_slow_cli(home, tmp_path)
    proc.kill()  # SIGKILL: no handler runs, the run stays STARTED
    proc.communicate()
    [run] = _runs(home)
    assert run.status == dg.DagsterRunStatus.STARTED
    assert run.tags[run_reaper.PID_TAG] == str(proc.pid)

    if reaper == "sensor":
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_reaper.orphaned_run_sensor(dg.build_sensor_context(instance=instance))
            assert isinstance(result, dg.SkipReason)
            assert f"{run.run_id} (pid {proc.pid})" in result.skip_message
            again = run_reaper.orphaned_run_sensor(dg.build_sensor_context(instance=instance))
            assert again.skip_message == "no orphaned CLI run on this host"
    else:
        cli.sweep_orphaned_runs()
        assert f"run {run.run_id} of slow_job was STARTED" in capsys.readouterr().err

    [run] = _runs(home)
    assert run.status == dg.DagsterRunStatus.FAILURE
    message = _failure_message(home, run.run_id)
    assert run.run_id in message
    assert f"pid {proc.pid} on {socket.gethostname()}" in message


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_cli_run_ends_failed_and_the_cli_stops(home, tmp_path, sig):
    proc, _ = _start_slow_cli(home, tmp_path)
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30  # not the asset's 120 s sleep
    assert proc.returncode == cli.INTERRUPTED_STATUS, err
    [run] = _runs(home)
    assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    assert f"alphadag: interrupted; run {run.run_id} ended {run.status.value}" in err


@pytest.mark.slow
def test_queue_submits_a_queued_run_with_the_jobs_tags(home, capsys):
    code = cli.main(["train", "--queue", "--log-level", "INFO"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    [run] = _runs(home)
    assert run.status == dg.DagsterRunStatus.QUEUED
    assert run.job_name == "train_job"
    assert run.tags["alphadag/kind"] == "train"  # dagster.yaml: one training run at a time
    assert run_reaper.PID_TAG not in run.tags  # the daemon's worker runs it, not this process
    assert run.run_config["loggers"]["console"]["config"]["log_level"] == "INFO"
    assert run.remote_job_origin.location_name == "alphadag"  # workspace.yaml's location
    assert f"== train_job: run {run.run_id} submitted, QUEUED" in out
    assert f"http://127.0.0.1:3000/runs/{run.run_id}" in out
