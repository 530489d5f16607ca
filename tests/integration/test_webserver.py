"""The webserver's security posture, as processes: it binds 127.0.0.1 only, and ``--read-only`` refuses
to launch runs.

Two ``dagster-webserver`` processes share one temporary DAGSTER_HOME (the repo's dagster.yaml): a normal
one, which accepts a GraphQL ``launchRun`` (the positive control: the run is queued in the instance),
and a ``--read-only`` one, which answers both launch mutations with ``UnauthorizedError`` and creates
no run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dagster as dg
import psutil
import pytest
from _dagster_procs import Webserver, alphadag_env, make_home, start_webserver, stop_group

pytestmark = pytest.mark.slow

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  %s(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""


def _launch_params(partition: str) -> dict:
    return {
        "selector": {
            "repositoryLocationName": "alphadag",
            "repositoryName": "__repository__",
            "jobName": "ingest_job",
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[Webserver, Webserver, dg.DagsterInstance]]:
    """(normal webserver, read-only webserver, the instance both serve), started side by side."""
    root = tmp_path_factory.mktemp("webserver")
    home = make_home(root)
    env = alphadag_env(home, root / "data")
    normal = start_webserver(env, root / "webserver.log")
    read_only = start_webserver(env, root / "webserver-ro.log", "--read-only")
    try:
        normal.wait_ready()
        read_only.wait_ready()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield normal, read_only, instance
    finally:
        stop_group(normal.proc, read_only.proc)


def _non_loopback_ipv4() -> list[str]:
    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]


@pytest.mark.parametrize("which", ["normal", "read_only"])
def test_listens_only_on_loopback(servers, which):
    server = servers[0] if which == "normal" else servers[1]
    listening = [
        c
        for c in psutil.Process(server.proc.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the webserver process holds no listening socket"
    assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", server.port)}

    # The served port is reachable on loopback ...
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass
    # ... and refused on every other address of this machine.
    for ip in _non_loopback_ipv4():
        with (
            pytest.raises(OSError),
            socket.create_connection((ip, server.port), timeout=5),
        ):
            pass


def test_normal_webserver_launches_a_run(servers):
    normal, _, instance = servers
    out = normal.graphql(LAUNCH % "launchRun", {"params": _launch_params("2024-03-04")})
    result = out["data"]["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", out
    run = instance.get_run_by_id(result["run"]["runId"])
    assert run is not None
    assert run.job_name == "ingest_job"
    assert run.tags["dagster/partition"] == "2024-03-04"


@pytest.mark.parametrize("mutation", ["launchRun", "launchPipelineExecution"])
def test_read_only_webserver_refuses_to_launch(servers, mutation):
    _, read_only, instance = servers
    before = {r.run_id for r in instance.get_runs()}

    out = read_only.graphql(LAUNCH % mutation, {"params": _launch_params("2024-03-05")})

    result = out["data"][mutation]
    assert result["__typename"] == "UnauthorizedError", out
    assert {r.run_id for r in instance.get_runs()} == before
    assert not instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": "2024-03-05"}))


def test_read_only_webserver_reports_no_launch_permission(servers):
    _, read_only, _ = servers
    query = "{ permissions { permission value } }"
    perms = {p["permission"]: p["value"] for p in read_only.graphql(query)["data"]["permissions"]}
    assert perms["launch_pipeline_execution"] is False
    assert perms["launch_pipeline_reexecution"] is False
