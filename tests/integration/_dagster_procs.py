"""Dagster processes for the integration tests: a webserver (or ``dagster dev``) on a free loopback port
against a temporary ``DAGSTER_HOME`` holding the repo's ``dagster.yaml``, started as a child process in
its own process group and killed with that group at teardown (the code server it spawns included).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 240.0  # loading the code location takes tens of seconds on a loaded 2-core box


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_home(root: Path) -> Path:
    """A fresh DAGSTER_HOME with the repo's dagster.yaml (what ``make dagster-home`` does).

    Its SQLite storages are created here, once: processes started side by side on an empty home
    (two webservers, two Celery workers) would race to stamp their schema versions.
    """
    import dagster as dg

    home = root / "dagster_home"
    home.mkdir(parents=True)
    install_instance_yaml(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
    return home


def install_instance_yaml(
    home: Path, source: Path = REPO / "deploy" / "local" / "dagster.yaml"
) -> None:
    """Copy an instance config into ``home``, with the SQLite event log's ``base_dir`` (default
    $DAGSTER_HOME) set to ``home`` itself, so an in-process ``DagsterInstance.from_config(home)``
    writes there whatever DAGSTER_HOME the test process has (``make test`` exports the repo's)."""
    import yaml

    config = yaml.safe_load(source.read_text())
    for section in config.values():
        cfg = section.get("config") if isinstance(section, dict) else None
        if isinstance(cfg, dict) and section.get("class") == "SqliteBatchEventLogStorage":
            cfg["base_dir"] = str(home)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def alphadag_env(home: Path, data_root: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: temp instance, temp data, synthetic source, no telemetry."""
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "ALPHADAG_DATA_ROOT": str(data_root),
            "ALPHADAG_SOURCE": "synthetic",
            "ALPHADAG_ALERT_LOG": str(data_root.parent / "alerts.jsonl"),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Webserver:
    """A running webserver: its process, URL and log file."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Mapping | None = None) -> dict:
        """POST a GraphQL document; the decoded response (``data`` / ``errors``)."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def wait_ready(self) -> None:
        """Block until the server answers and the code location is loaded, or fail with its log."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        query = """{ workspaceOrError { ... on Workspace { locationEntries {
            name loadStatus
            locationOrLoadError { __typename ... on PythonError { message } }
        } } } }"""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webserver exited with {self.proc.returncode}:\n{self.tail()}")
            entries = None
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError, KeyError):
                entries = self.graphql(query)["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                for e in entries:
                    loaded = e["locationOrLoadError"] or {}
                    if loaded.get("__typename") != "RepositoryLocation":
                        raise RuntimeError(f"code location {e['name']} failed to load: {loaded}")
                return
            time.sleep(0.5)
        raise RuntimeError(f"webserver not ready after {STARTUP_TIMEOUT_S}s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def stop_group(*procs: subprocess.Popen) -> None:
    """SIGTERM the process groups we started, SIGKILL whatever is left (children included)."""
    family: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(proc.pid)
            family += [root, *root.children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=20)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def start_webserver(
    env: Mapping[str, str], log: Path, *extra_args: str, command: Sequence[str] | None = None
) -> Webserver:
    """Start ``dagster-webserver -h 127.0.0.1 -p <free port> -w workspace.yaml`` (not yet ready).

    ``command`` replaces the executable part (``["dagster", "dev"]`` for what ``make dev`` runs).
    """
    port = free_port()
    argv = [
        *(command or [str(BIN / "dagster-webserver")]),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "workspace.yaml",
        *extra_args,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown kills the code server too
        )
    return Webserver(proc=proc, port=port, log=log)


@contextlib.contextmanager
def running_webserver(
    env: Mapping[str, str], log: Path, *extra_args: str, command: Sequence[str] | None = None
) -> Iterator[Webserver]:
    """A ready webserver for the duration of the block, stopped (group-killed) afterwards."""
    server = start_webserver(env, log, *extra_args, command=command)
    try:
        server.wait_ready()
        yield server
    finally:
        stop_group(server.proc)
