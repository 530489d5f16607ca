"""Scale-out on dagster-celery: ``daily_data_job``'s steps executed by two Celery workers on the local Redis.

Two ``dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml`` processes listen on
one queue private to this test (solo pool, one reserved task each), sharing a temporary DAGSTER_HOME with
the test, which orchestrates a ranged run of the job (``tests/integration/_celery_location``) with the
executor block of ``deploy/celery/celery.yaml``. The run must succeed with every step executed by a
worker process (its ``Executing steps ... in celery worker`` engine event and its step events' pid),
both workers must have taken steps, and the sessions' partitions must be on disk.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import psutil
import pytest
import yaml
from _dagster_procs import BIN, REPO, make_home, stop_group

pytestmark = pytest.mark.slow

CELERY_YAML = REPO / "deploy" / "celery" / "celery.yaml"
SESSIONS = ["2024-03-05", "2024-03-06", "2024-03-07"]
TICKERS = "AAA,BBB,CCC"
WORKER_READY_TIMEOUT_S = 180.0


@dataclass
class Worker:
    name: str  # the Celery node name, ``<name>@<host>``
    proc: subprocess.Popen
    log: Path

    def pids(self) -> set[int]:
        """The ``dagster-celery`` wrapper and the ``celery worker`` process it runs."""
        root = psutil.Process(self.proc.pid)
        return {root.pid, *(p.pid for p in root.children(recursive=True))}


@pytest.fixture()
def celery_config() -> dict:
    config = yaml.safe_load(CELERY_YAML.read_text())
    broker = config["execution"]["config"]["broker"]
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.ping()
    except redis.ConnectionError as err:
        pytest.fail(f"Redis is not up at {broker} (`.ci/run` starts it): {err}")
    finally:
        client.close()
    return config


@pytest.fixture()
def setup(tmp_path, monkeypatch, celery_config) -> Iterator[tuple[dict, list[Worker], Path, Path]]:
    """(run config, two ready workers, DAGSTER_HOME, data root); workers and queue removed after."""
    home = make_home(tmp_path)
    data_root = tmp_path / "data"
    queue = f"alphadag-it-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ALPHADAG_DATA_ROOT": str(data_root),
        "ALPHADAG_SOURCE": "synthetic",
        "ALPHADAG_TICKERS": TICKERS,
        "ALPHADAG_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `celery` for dagster-celery
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    # the orchestrating side (this process) loads the job with the same environment as the workers
    for key in ("DAGSTER_HOME", "ALPHADAG_DATA_ROOT", "ALPHADAG_TICKERS", "ALPHADAG_SOURCE"):
        monkeypatch.setenv(key, env[key])

    worker_yaml = tmp_path / "celery-worker.yaml"
    worker_yaml.write_text(CELERY_YAML.read_text())
    workers: list[Worker] = []
    try:
        for i in (1, 2):
            name = f"{queue}-w{i}"
            log = tmp_path / f"worker{i}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [
                        str(BIN / "dagster-celery"),
                        *("worker", "start", "-A", "dagster_celery.app"),
                        *("-y", str(worker_yaml), "-q", queue, "-n", name, "-l", "INFO"),
                        *("-i", "_celery_location.warm"),
                        *("--", "--pool", "solo", "--without-gossip", "--without-mingle"),
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            workers.append(Worker(f"{name}@{socket.gethostname()}", proc, log))
        _wait_for_workers(celery_config["execution"]["config"]["broker"], workers)

        run_config = copy.deepcopy(celery_config)
        run_config["execution"]["config"]["config_source"]["task_default_queue"] = queue
        run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
        yield run_config, workers, home, data_root
    finally:
        stop_group(*(w.proc for w in workers))
        import redis

        client = redis.Redis.from_url(celery_config["execution"]["config"]["broker"])
        client.delete(queue)
        client.close()


def _wait_for_workers(broker: str, workers: list[Worker]) -> None:
    from celery import Celery

    app = Celery(broker=broker)
    wanted = {w.name for w in workers}
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    seen: set[str] = set()
    try:
        while time.monotonic() < deadline:
            for w in workers:
                if w.proc.poll() is not None:
                    pytest.fail(f"worker {w.name} exited:\n{w.log.read_text(errors='replace')}")
            replies = app.control.ping(destination=sorted(wanted), timeout=1.0)
            seen = {name for reply in replies for name in reply}
            if seen == wanted:
                return
        logs = "\n".join(w.log.read_text(errors="replace")[-3000:] for w in workers)
        pytest.fail(f"workers not ready: {sorted(wanted - seen)}\n{logs}")
    finally:
        app.close()


def test_daily_data_job_steps_run_on_two_celery_workers(setup):
    from _celery_location.jobs import daily_data_job_on_celery

    run_config, workers, home, data_root = setup
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.execute_job(
            dg.reconstructable(daily_data_job_on_celery),
            instance=instance,
            run_config=run_config,
            tags={
                "dagster/asset_partition_range_start": SESSIONS[0],
                "dagster/asset_partition_range_end": SESSIONS[-1],
            },
        )
        assert result.success
        run_id = result.run_id
        records = instance.all_logs(run_id)

    events = [r.dagster_event for r in records if r.dagster_event]
    step_keys = {e.step_key for e in events if e.event_type_value == "STEP_START"}
    assert {"raw_bars", "validated_bars", "features", "labels"} <= step_keys
    assert {e.step_key for e in events if e.event_type_value == "STEP_SUCCESS"} == step_keys

    # every step was handed to a worker, and both workers took some
    worker_of_step = {
        e.step_key: e.engine_event_data.metadata["Celery worker"].value
        for e in events
        if e.event_type_value == "ENGINE_EVENT"
        and e.engine_event_data
        and "Celery worker" in e.engine_event_data.metadata
    }
    assert set(worker_of_step) == step_keys
    assert set(worker_of_step.values()) == {w.name for w in workers}

    # the step events were emitted by the worker processes, never by this (orchestrating) process
    worker_pids = {w.name: w.pids() for w in workers}
    step_pids = {
        r.dagster_event.step_key: r.dagster_event.pid
        for r in records
        if r.dagster_event and r.dagster_event.event_type_value == "STEP_START"
    }
    assert os.getpid() not in step_pids.values()
    for step, pid in step_pids.items():
        assert pid in worker_pids[worker_of_step[step]], (step, pid, worker_pids)

    # and the partitions of the range are on disk, one file per session and asset
    for asset in ("raw_bars", "bars", "features", "labels"):
        for day in SESSIONS:
            path = data_root / asset / day[:4] / f"{day}.parquet"
            assert path.exists(), path
            frame = pl.read_parquet(path)
            assert sorted(frame["ticker"].unique()) == TICKERS.split(",")
            assert frame["date"].cast(pl.Utf8).unique().to_list() == [day]
