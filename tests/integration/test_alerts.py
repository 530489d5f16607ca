"""Alerts reach the JSON-lines sink: a really failed run, freshness states computed by the real
freshness daemon, and a landing cursor that moved backwards. Every assertion reads the sink file.

The freshness test runs the instance's own ``FreshnessDaemon`` iteration against the code location
(loaded in a gRPC code server, as the daemon does) with the clock frozen at chosen New York times,
so the policy is evaluated by Dagster itself on dates whose exchange calendar is known.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.freshness import FreshnessDaemon

from alphadag.defs.automation.alerts import freshness_alert_sensor, run_failure_alert_sensor
from alphadag.defs.automation.freshness import DAILY_FRESHNESS
from alphadag.defs.automation.landing_sensor import landing_zone_sensor
from alphadag.defs.resources.alerting import AlertSink, read_alerts
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager

NY = ZoneInfo("America/New_York")


@pytest.fixture()
def sink(tmp_path) -> AlertSink:
    return AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl"))


def _alerts(sink: AlertSink, kind: str | None = None) -> list[dict]:
    return [a for a in read_alerts(sink.jsonl_path) if kind is None or a["kind"] == kind]


# -- run failures ----------------------------------------------------------------------------


def test_failed_ranged_run_sends_one_run_failure_alert(defs, sink, tmp_path):
    # A landing file with no date column: set aside whole (one landing_file_rejected alert from
    # raw_bars), so the covered sessions have no bars and the blocking completeness check fails
    # the run.
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "MSFT.csv").write_text("when,close\nyesterday,1.0\n")
    market = MarketDataResource(source="csv", landing_dir=str(landing))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2024-03-04",
                "dagster/asset_partition_range_end": "2024-03-08",
            },
            resources={
                "market_data": market,
                "io_manager": ParquetPartitionIOManager(data_root=str(tmp_path / "data")),
                "alerts": sink,
            },
            raise_on_error=False,
        )
        assert not result.success
        [rejected] = _alerts(sink)
        assert rejected["kind"] == "landing_file_rejected"
        assert rejected["path"] == str(landing / "MSFT.csv")
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"alerts": sink},
        ).for_run_failure()
        run_failure_alert_sensor(context)

    [_, alert] = _alerts(sink)
    assert alert["kind"] == "run_failure"
    assert alert["severity"] == "error"  # no run retry pending
    assert alert["source"] == "run_failure_alert_sensor"
    assert alert["job_name"] == "ingest_job"
    assert alert["run_id"] == result.run_id
    assert alert["partition_range"] == ["2024-03-04", "2024-03-08"]
    assert alert["partition"] is None
    assert alert["error"].startswith("validated_bars: ")
    assert "blocking asset checks failed" in alert["error"]
    assert alert["step_errors"] == [alert["error"]]
    assert alert["will_retry"] is False
    assert result.run_id in alert["message"]


def test_run_failure_sensor_monitors_every_job_of_the_location(defs):
    sensor = defs.get_sensor_def("run_failure_alert_sensor")
    assert sensor is run_failure_alert_sensor
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert "alerts" in sensor.required_resource_keys


# -- freshness -------------------------------------------------------------------------------


def test_bars_and_features_carry_the_daily_freshness_policy(defs):
    graph = defs.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).freshness_policy for key in graph.get_all_asset_keys()
    }
    assert policies["bars"] == DAILY_FRESHNESS
    assert policies["features"] == DAILY_FRESHNESS
    assert policies["predictions"] == DAILY_FRESHNESS
    assert DAILY_FRESHNESS.deadline_cron == "0 22 * * 1-5"
    assert DAILY_FRESHNESS.timezone == "America/New_York"


def test_freshness_failures_become_alerts_at_session_deadlines_only(defs, sink):
    def at(day: str, hhmm: str) -> dt.datetime:
        return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=NY)

    cursor: list[str | None] = [None]

    with dg.instance_for_test() as instance:
        target = ModuleTarget(
            module_name="alphadag.definitions",
            attribute="defs",
            working_directory=None,
            location_name="alphadag",
        )
        with create_test_daemon_workspace_context(target, instance) as workspace:

            def materialize_bars(when: dt.datetime) -> None:
                with freeze_time(when):
                    instance.report_runless_asset_event(dg.AssetMaterialization("bars"))

            def daemon_then_sensor(when: dt.datetime) -> None:
                with freeze_time(when):
                    list(FreshnessDaemon().run_iteration(workspace))
                ctx = dg.build_sensor_context(
                    instance=instance,
                    cursor=cursor[0],
                    definitions=defs,
                    resources={"alerts": sink},
                )
                freshness_alert_sensor.evaluate_tick(ctx)
                cursor[0] = ctx.cursor

            def state(key: str) -> str:
                return instance.get_freshness_state_records([dg.AssetKey(key)])[
                    dg.AssetKey(key)
                ].freshness_state.value

            materialize_bars(at("2024-07-02", "18:40"))  # Tuesday's daily run
            # Thursday 4 July 23:00: the 22:00 deadline passed with no run, but XNYS was shut.
            daemon_then_sensor(at("2024-07-04", "23:00"))
            assert state("bars") == "FAIL"
            assert state("features") == "UNKNOWN"  # never materialized: nothing to judge
            assert _alerts(sink) == []
            # Friday's run makes it fresh again; nothing was alerted, so no recovery alert either.
            materialize_bars(at("2024-07-05", "18:40"))
            daemon_then_sensor(at("2024-07-05", "18:45"))
            assert state("bars") == "PASS"
            assert _alerts(sink) == []
            # Monday's run never came: at Monday 22:00 (a session deadline) bars fail.
            daemon_then_sensor(at("2024-07-08", "22:01"))
            [failed] = _alerts(sink, "freshness")
            assert failed["asset"] == "bars"
            assert failed["state"] == "FAIL"
            assert failed["severity"] == "error"
            assert failed["deadline"] == "2024-07-08"
            assert failed["previous_state"] == "PASS"
            # Tuesday's run: fresh again, one info alert.
            materialize_bars(at("2024-07-09", "18:40"))
            daemon_then_sensor(at("2024-07-09", "18:41"))
            recovered = _alerts(sink, "freshness")[1]
            assert (recovered["asset"], recovered["state"]) == ("bars", "PASS")
            assert recovered["severity"] == "info"
            assert recovered["previous_state"] == "FAIL"
            assert len(_alerts(sink)) == 2
            assert json.loads(cursor[0])["bars"]["state"] == "PASS"


# -- landing cursor rewound ------------------------------------------------------------------


def _vendor_file(path, closes: list[float]) -> None:
    pl.DataFrame({"Date": ["2024-01-11", "2024-01-12"], "Adj Close": closes}).write_csv(path)


def _landing_resources(landing, sink):
    return {
        "market_data": MarketDataResource(
            source="csv",
            landing_dir=str(landing),
            csv_column_map={"Date": "date", "Adj Close": "close"},
        ),
        "alerts": sink,
    }


def _launch(defs, instance, request, resources, data_root) -> None:
    """Execute a requested run as the daemon would: its tags plus its run key tag."""
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance,
        tags={**request.tags, "dagster/run_key": request.run_key},
        resources={
            "market_data": resources["market_data"],
            "io_manager": ParquetPartitionIOManager(data_root=data_root),
        },
    )
    assert result.success


def test_reverted_file_is_relaunched_under_a_new_key_and_alerted(defs, sink, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    resources = _landing_resources(landing, sink)
    data = str(tmp_path / "data")
    with dg.instance_for_test() as instance:

        def tick(cursor):
            ctx = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
            return landing_zone_sensor.evaluate_tick(ctx)

        _vendor_file(landing / "PEP.csv", [170.0, 171.5])
        v1 = tick(None)
        _launch(defs, instance, v1.run_requests[0], resources, data)
        _vendor_file(landing / "PEP.csv", [170.0, 172.0])  # vendor correction
        v2 = tick(v1.cursor)
        _launch(defs, instance, v2.run_requests[0], resources, data)
        assert _alerts(sink) == []

        _vendor_file(landing / "PEP.csv", [170.0, 171.5])  # vendor rolls back to v1
        back = tick(v2.cursor)
        [request] = back.run_requests
        assert request.run_key == f"{v1.run_requests[0].run_key}:rewound:1"
        assert request.tags["dagster/asset_partition_range_start"] == "2024-01-11"
        assert request.tags["dagster/asset_partition_range_end"] == "2024-01-12"
        [alert] = _alerts(sink)
        assert alert["kind"] == "sensor_cursor_rewound"
        assert alert["reason"] == "file_reverted"
        assert alert["files"] == [str(landing / "PEP.csv")]
        assert alert["ranges"] == [["2024-01-11", "2024-01-12"]]
        assert alert["run_keys"] == [request.run_key]
        assert json.loads(back.cursor) == json.loads(v1.cursor)


def test_reset_cursor_holds_runs_and_alerts(defs, sink, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    resources = _landing_resources(landing, sink)
    with dg.instance_for_test() as instance:

        def tick(cursor):
            ctx = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
            return landing_zone_sensor.evaluate_tick(ctx)

        _vendor_file(landing / "PEP.csv", [170.0, 171.5])
        first = tick(None)  # a fresh instance: an empty cursor is a first run, not a reset
        assert len(first.run_requests) == 1
        assert _alerts(sink) == []
        _launch(defs, instance, first.run_requests[0], resources, str(tmp_path / "data"))

        reset = tick(None)  # the cursor was lost (sensor reset) after the sensor launched runs
        assert reset.run_requests == []
        [alert] = _alerts(sink)
        assert alert["kind"] == "sensor_cursor_rewound"
        assert alert["reason"] == "cursor_reset"
        assert alert["severity"] == "error"
        assert alert["held_ranges"] == [["2024-01-11", "2024-01-12"]]
        assert alert["files"] == [str(landing / "PEP.csv")]
        assert json.loads(reset.cursor) == json.loads(first.cursor)
        # From the restored cursor on, the sensor is quiet again.
        assert tick(reset.cursor).run_requests == []
        assert len(_alerts(sink)) == 1


def test_alert_sink_path_comes_from_the_environment(monkeypatch, tmp_path):
    from alphadag.defs.resources.definitions import resources

    monkeypatch.setenv("ALPHADAG_ALERT_LOG", str(tmp_path / "a.jsonl"))
    monkeypatch.delenv("ALPHADAG_ALERT_WEBHOOK_URL", raising=False)
    sink = resources().resources["alerts"]
    assert os.fspath(sink.jsonl_path) == str(tmp_path / "a.jsonl")
    assert sink.webhook_url is None
