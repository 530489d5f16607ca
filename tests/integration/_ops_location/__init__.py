"""Helpers of the operations tests: instance homes (SQLite or a fresh PostgreSQL database), a
``dagster-daemon run`` child process over a test code location, and polling.

The code locations next to this file are tiny on purpose (``queue_defs`` imports dagster only), so
a run worker starts in about a second and twenty of them fit in the test budget on two cores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg2
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database ``alphadag_it_<random>`` on db ``test``'s server, dropped after."""
    name = f"alphadag_it_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(dbname="test", **PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pg_env(db: str) -> dict[str, str]:
    """The variables deploy/postgres/dagster.yaml reads its connection from."""
    return {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_DB": db,
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
    }


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def make_home(root: Path, *, postgres: bool = False, overrides: Mapping[str, Any] = ()) -> Path:
    """A DAGSTER_HOME holding the repo's dagster.yaml (or deploy/postgres's), with ``overrides``
    merged in (e.g. ``{"concurrency": {"runs": {"max_concurrent_runs": 2}}}``)."""
    home = root / ("pg_home" if postgres else "home")
    home.mkdir(parents=True)
    source = REPO / "deploy" / ("postgres" if postgres else "local") / "dagster.yaml"
    config = _merge(yaml.safe_load(source.read_text()), dict(overrides or {}))
    # the SQLite event log's ``base_dir`` (default $DAGSTER_HOME) is this home, whatever DAGSTER_HOME
    # the test process has: its in-process instance must read what the daemon's runs wrote
    # (``make test`` exports the repo's own DAGSTER_HOME; a bare ``pytest`` may have none)
    for section in config.values():
        cfg = section.get("config") if isinstance(section, dict) else None
        if isinstance(cfg, dict) and section.get("class") == "SqliteBatchEventLogStorage":
            cfg["base_dir"] = str(home)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


def workspace_for(root: Path, module_file: str, location: str) -> Path:
    """A workspace.yaml loading one code location file from this folder."""
    path = root / f"workspace_{location}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_file": {
                            "relative_path": str(HERE / module_file),
                            "working_directory": str(REPO),
                            "location_name": location,
                        }
                    }
                ]
            }
        )
    )
    return path


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """A child process in its own process group, with its combined output in ``log``."""

    proc: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL anything of it still alive (code servers included)."""
        try:
            family = [psutil.Process(self.proc.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(family, timeout=20)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def start(argv: list[str], env: Mapping[str, str], log: Path) -> Proc:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(proc, log)


def start_daemon(workspace: Path, env: Mapping[str, str], log: Path) -> Proc:
    """``dagster-daemon run -w workspace`` (scheduler, sensors, run queue, monitoring, retries)."""
    return start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, log)


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
