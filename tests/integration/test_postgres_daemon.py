"""The production instance (deploy/postgres/dagster.yaml) with real services: ``dagster-webserver``
and ``dagster-daemon`` as child processes of this test, against a fresh PostgreSQL database.

Two runs are submitted through the webserver's GraphQL API; both enter the run queue and the
daemon's queued run coordinator launches them. The daily data job for one session succeeds and its
run, queue events and materializations are read straight from PostgreSQL's tables; a run whose
validation config is invalid fails, is not retried (a step failure), and the daemon's
``run_failure_alert_sensor`` writes its alert to the JSON-lines sink.
"""

from __future__ import annotations

import shutil

import dagster as dg
import psycopg2
import pytest
from _dagster_procs import running_webserver
from _ops_location import PG, REPO, child_env, pg_database, pg_env, running, start_daemon, wait_for

from alphadag.defs.resources.alerting import read_alerts

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def _params(job: str, partition: str, run_config: dict | None = None) -> dict:
    return {
        "selector": {
            "repositoryLocationName": "alphadag",
            "repositoryName": "__repository__",
            "jobName": job,
        },
        # no executor config: the jobs run their steps in the run worker (in_process_executor)
        "runConfigData": dict(run_config or {}),
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }


def _query(db: str, sql: str, args: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(dbname=db, **PG)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def test_daemon_launches_queued_runs_into_postgres(tmp_path, monkeypatch):
    alerts = tmp_path / "alerts.jsonl"
    with pg_database() as db:
        home = tmp_path / "home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
        for key, value in pg_env(db).items():
            monkeypatch.setenv(key, value)
        env = child_env(
            home,
            **pg_env(db),
            ALPHADAG_SOURCE="synthetic",
            ALPHADAG_TICKERS="AAA,BBB",
            ALPHADAG_HISTORY_START="2024-01-02",
            ALPHADAG_DATA_ROOT=str(tmp_path / "data"),
            ALPHADAG_ALERT_LOG=str(alerts),
        )
        workspace = REPO / "workspace.yaml"
        with (
            dg.DagsterInstance.from_config(str(home)) as instance,
            running(start_daemon(workspace, env, tmp_path / "daemon.log")) as daemon,
            running_webserver(env, tmp_path / "webserver.log") as web,
        ):
            # the failure sensor must have ticked once (its cursor starts at its first tick)
            def sensor_ticked():
                assert daemon.alive(), daemon.text()[-3000:]
                states = [
                    s
                    for s in instance.all_instigator_state()
                    if s.instigator_name == "run_failure_alert_sensor"
                ]
                return states and instance.get_ticks(
                    states[0].instigator_origin_id, states[0].selector_id
                )

            wait_for("run_failure_alert_sensor's first tick", sensor_ticked, 240)
            assert daemon.alive(), daemon.text()[-3000:]
            ok = web.graphql(LAUNCH, {"params": _params("daily_data_job", "2024-03-05")})
            bad = web.graphql(
                LAUNCH,
                {
                    "params": _params(
                        "ingest_job",
                        "2024-03-06",
                        {"ops": {"validated_bars": {"config": {"flag_move": -1.0}}}},
                    )
                },
            )
            ok_run = ok["data"]["launchRun"]["run"]
            bad_run = bad["data"]["launchRun"]["run"]
            assert ok_run["status"] == "QUEUED" and bad_run["status"] == "QUEUED"

            def finished():
                rows = dict(_query(db, "SELECT run_id, status FROM runs"))
                done = {"SUCCESS", "FAILURE", "CANCELED"}
                if {rows.get(ok_run["runId"]), rows.get(bad_run["runId"])} <= done:
                    return rows
                assert daemon.alive(), daemon.text()[-3000:]
                return None

            statuses = wait_for("both runs to finish", finished, 600)
            wait_for(
                "the run_failure alert",
                lambda: [a for a in read_alerts(alerts) if a["kind"] == "run_failure"],
                120,
            )

        assert statuses[ok_run["runId"]] == "SUCCESS", daemon.text()[-3000:]
        assert statuses[bad_run["runId"]] == "FAILURE"
        assert len(statuses) == 2  # the step failure was not retried
        # Through the queue: enqueued, then launched (STARTING) by the daemon.
        kinds = {
            row[0]
            for row in _query(
                db,
                "SELECT dagster_event_type FROM event_logs WHERE run_id = %s",
                (ok_run["runId"],),
            )
        }
        assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_SUCCESS"} <= kinds
        mats = _query(
            db,
            "SELECT asset_key, partition FROM event_logs WHERE run_id = %s "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY asset_key",
            (ok_run["runId"],),
        )
        assert [(k.strip('[]"'), p) for k, p in mats] == [
            ("bars", "2024-03-05"),
            ("features", "2024-03-05"),
            ("labels", "2024-03-05"),
            ("quarantined_bars", "2024-03-05"),
            ("raw_bars", "2024-03-05"),
        ]
        assert _query(db, "SELECT count(*) FROM daemon_heartbeats")[0][0] > 0
        [alert] = [a for a in read_alerts(alerts) if a["kind"] == "run_failure"]
        assert alert["run_id"] == bad_run["runId"]
        assert alert["job_name"] == "ingest_job"
        assert alert["partition"] == "2024-03-06"
        assert alert["will_retry"] is False
        assert alert["severity"] == "error"
        assert "flag_move" in alert["error"]
        assert (tmp_path / "data" / "features" / "2024" / "2024-03-05.parquet").exists()
