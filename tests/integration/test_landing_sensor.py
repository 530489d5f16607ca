"""The landing-zone sensor, ticked against a real landing directory and a real (temp) instance."""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg
import polars as pl
import pytest

from alphadag.defs.automation.landing_sensor import landing_zone_sensor
from alphadag.defs.resources.alerting import AlertSink, read_alerts
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.storage import PartitionStore


def _vendor_file(path: str, dates: list[str], closes: list[float]) -> None:
    pl.DataFrame({"Date": dates, "Adj Close": closes}).write_csv(path)


@pytest.fixture()
def landing(tmp_path):
    d = tmp_path / "landing"
    d.mkdir()
    return d


def _tick(instance, resources, cursor=None):
    sink = AlertSink(jsonl_path=os.path.join(instance.root_directory, "alerts.jsonl"))
    ctx = dg.build_sensor_context(
        instance=instance, resources={"alerts": sink, **resources}, cursor=cursor
    )
    return landing_zone_sensor.evaluate_tick(ctx)


def _ranges(result) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ]


def test_new_same_and_changed_file(landing):
    resources = {
        "market_data": MarketDataResource(
            source="csv",
            landing_dir=str(landing),
            csv_column_map={"Date": "date", "Adj Close": "close"},
        )
    }
    # 2024-01-13/14 is a weekend and 2024-01-15 MLK day: the partitions are 01-12 and 01-16.
    _vendor_file(str(landing / "MSFT.csv"), ["2024-01-11", "2024-01-12", "2024-01-16"], [1, 2, 3])
    with dg.instance_for_test() as instance:
        first = _tick(instance, resources)
        assert _ranges(first) == [("2024-01-11", "2024-01-16")]
        cursor = json.loads(first.cursor)
        assert list(cursor) == [str(landing / "MSFT.csv")]

        again = _tick(instance, resources, first.cursor)
        assert again.run_requests == []
        assert "no new or changed files" in again.skip_message

        # A corrected vendor file: same path, new content -> a new run with a new run key.
        _vendor_file(
            str(landing / "MSFT.csv"), ["2024-01-11", "2024-01-12", "2024-01-16"], [1, 2, 4]
        )
        changed = _tick(instance, resources, first.cursor)
        assert _ranges(changed) == [("2024-01-11", "2024-01-16")]
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key

        # A per-day file for one session touches only that partition; the old file is not re-run.
        _vendor_file(str(landing / "AAPL.csv"), ["2024-02-01"], [10])
        daily = _tick(instance, resources, changed.cursor)
        assert _ranges(daily) == [("2024-02-01", "2024-02-01")]


def test_weekend_row_and_gaps_split_into_exact_ranges(landing):
    resources = {
        "market_data": MarketDataResource(
            source="csv", landing_dir=str(landing), csv_column_map={"Adj Close": "close"}
        )
    }
    # Saturday 2024-03-02 lands in Monday 03-04's partition; 03-08 is separate from 03-04/05.
    _vendor_file(str(landing / "KO.csv"), ["2024-03-02", "2024-03-05", "2024-03-08"], [1, 2, 3])
    with dg.instance_for_test() as instance:
        result = _tick(instance, resources)
    assert _ranges(result) == [("2024-03-04", "2024-03-05"), ("2024-03-08", "2024-03-08")]


def test_missing_directory_skips(tmp_path):
    resources = {
        "market_data": MarketDataResource(source="csv", landing_dir=str(tmp_path / "absent"))
    }
    with dg.instance_for_test() as instance:
        result = _tick(instance, resources)
    assert result.run_requests == []
    assert "landing directory unavailable" in result.skip_message


def test_requested_run_ingests_the_file(landing, tmp_path):
    """The run the sensor asks for, executed, writes exactly the touched partitions."""
    market = MarketDataResource(
        source="csv", landing_dir=str(landing), csv_column_map={"Adj Close": "close"}
    )
    _vendor_file(str(landing / "PEP.csv"), ["2024-01-11", "2024-01-12"], [170.0, 171.5])
    data_root = str(tmp_path / "data")
    from alphadag.definitions import defs

    with dg.instance_for_test() as instance:
        request = _tick(instance, {"market_data": market}).run_requests[0]
        job = defs().resolve_job_def("ingest_job")
        result = job.execute_in_process(
            instance=instance,
            tags=request.tags,
            resources={
                "market_data": market,
                "io_manager": ParquetPartitionIOManager(data_root=data_root),
            },
        )
    assert result.success
    bars_dir = os.path.join(data_root, "bars", "2024")
    assert sorted(os.listdir(bars_dir)) == ["2024-01-11.parquet", "2024-01-12.parquet"]
    import datetime as dt

    bars = PartitionStore(data_root).read("bars", [dt.date(2024, 1, 11), dt.date(2024, 1, 12)])
    assert bars["ticker"].to_list() == ["PEP", "PEP"]
    assert bars["close"].to_list() == [170.0, 171.5]


# ---------------------------------------------------------------------------------------------
# broken files: skipped past, alerted once per content, retried when they change

BROKEN_FILES = {
    "empty": ("NVDA.csv", b""),
    "html": (
        "NVDA.csv",
        b"<!DOCTYPE html>\n<html><body>502 Bad Gateway, retry later</body></html>\n",
    ),
    "cut_mid_line": ("NVDA.csv", b"Date,Adj Close\n2024-01-11,1\n2024-01-1"),
    "truncated_parquet": ("NVDA.parquet", None),
}


def _broken(kind: str, tmp_path) -> tuple[str, bytes]:
    name, data = BROKEN_FILES[kind]
    if data is None:
        whole = tmp_path / "whole.parquet"
        pl.DataFrame({"Date": ["2024-01-11"], "Adj Close": [1.0]}).write_parquet(whole)
        data = whole.read_bytes()[:40]
    return name, data


def _alerts(instance) -> list[dict]:
    return read_alerts(os.path.join(instance.root_directory, "alerts.jsonl"))


@pytest.mark.parametrize("kind", list(BROKEN_FILES))
def test_a_broken_file_is_skipped_alerted_once_and_retried_when_it_changes(landing, tmp_path, kind):
    resources = {
        "market_data": MarketDataResource(
            source="csv",
            landing_dir=str(landing),
            csv_column_map={"Date": "date", "Adj Close": "close"},
        )
    }
    name, data = _broken(kind, tmp_path)
    bad = landing / name
    bad.write_bytes(data)
    _vendor_file(str(landing / "MSFT.csv"), ["2024-01-11", "2024-01-12"], [1, 2])
    _vendor_file(str(landing / "ZZZ.csv"), ["2024-02-01"], [3])
    with dg.instance_for_test() as instance:
        first = _tick(instance, resources)
        # the good files are launched; the broken one (between them in path order) stops nothing
        assert _ranges(first) == [("2024-01-11", "2024-01-12"), ("2024-02-01", "2024-02-01")]
        cursor = json.loads(first.cursor)
        assert cursor[str(bad)] == hashlib.sha256(data).hexdigest()
        (alert,) = _alerts(instance)
        assert alert["kind"] == "landing_file_rejected"
        assert alert["severity"] == "error"
        assert alert["path"] == str(bad)
        assert alert["fingerprint"] == hashlib.sha256(data).hexdigest()
        assert name in alert["reason"]
        manifest = [
            json.loads(line) for line in (landing / "_quarantine" / "manifest.jsonl").open()
        ]
        assert [(m["path"], m["fingerprint"]) for m in manifest] == [
            (str(bad), hashlib.sha256(data).hexdigest())
        ]

        # next tick: nothing new, no second alert
        again = _tick(instance, resources, first.cursor)
        assert again.run_requests == []
        assert "no new or changed files" in again.skip_message
        assert len(_alerts(instance)) == 1

        # the vendor uploads another broken version: judged again, alerted again, nothing run
        bad.write_bytes(data + b"\n<!-- 2 -->" if bad.suffix == ".csv" else data[:20])
        still = _tick(instance, resources, first.cursor)
        assert still.run_requests == []
        assert "1 new or changed landing file(s) rejected" in still.skip_message
        assert [a["path"] for a in _alerts(instance)] == [str(bad), str(bad)]
        assert json.loads(still.cursor)[str(bad)] == hashlib.sha256(bad.read_bytes()).hexdigest()

        # fixed: the file is ingested for exactly the sessions it touches, no further alert
        bad.unlink()
        fixed = landing / "NVDA.csv"
        _vendor_file(str(fixed), ["2024-01-16"], [5])
        retried = _tick(instance, resources, still.cursor)
        assert _ranges(retried) == [("2024-01-16", "2024-01-16")]
        assert len(_alerts(instance)) == 2


def test_only_broken_changes_advance_the_cursor_without_runs(landing):
    resources = {"market_data": MarketDataResource(source="csv", landing_dir=str(landing))}
    (landing / "AAA.csv").write_text("")
    with dg.instance_for_test() as instance:
        result = _tick(instance, resources)
        assert result.run_requests == []
        assert list(json.loads(result.cursor)) == [str(landing / "AAA.csv")]
        assert _tick(instance, resources, result.cursor).skip_message.startswith("no new")
        assert len(_alerts(instance)) == 1


def test_an_old_cursor_keeps_working(landing):
    """A cursor written before broken files were handled ({path: sha256}) is read as before."""
    resources = {
        "market_data": MarketDataResource(
            source="csv", landing_dir=str(landing), csv_column_map={"Adj Close": "close"}
        )
    }
    _vendor_file(str(landing / "KO.csv"), ["2024-03-05"], [1])
    old = json.dumps({str(landing / "KO.csv"): "0" * 64, str(landing / "gone.csv"): "1" * 64})
    with dg.instance_for_test() as instance:
        result = _tick(instance, resources, old)
    assert _ranges(result) == [("2024-03-05", "2024-03-05")]
    assert json.loads(result.cursor)[str(landing / "gone.csv")] == "1" * 64
