"""The code location loads, and its graph is what we think it is.

The snapshot below is literal on purpose: adding, renaming or removing an asset, a check, a job, a
schedule or a sensor fails this test until the snapshot is updated in the same change.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dagster as dg

from alphadag.defs.automation.partitions import sessions_partitions
from alphadag.market.calendar import sessions

PROJECT_ROOT = Path(__file__).resolve().parents[1]

ASSET_KEYS = [
    "backtest_report",
    "bars",
    "features",
    "labels",
    "oos_predictions",
    "prediction_scores",
    "predictions",
    "quarantined_bars",
    "raw_bars",
    "return_model",
    "training_set",
    "var_backtest",
]
ASSET_CHECK_KEYS = [
    "bars:bars_gx_suite",
    "bars:bars_pandera_schema",
    "bars:bars_sessions_complete",
    "bars:large_moves",
    "bars:quarantine_share",
    "features:features_contract",
    "features:features_no_lookahead",
    "predictions:predictions_contract",
    "predictions:predictions_feature_drift",
    "predictions:predictions_model_source",
    "return_model:return_model_reloads",
    "var_backtest:var_backtest_passes",
]
JOB_NAMES = [
    "backtest_job",
    "daily_data_job",
    "daily_job",
    "features_job",
    "ingest_job",
    "serving_job",
    "train_job",
]
JOB_ASSETS = {
    "backtest_job": ["backtest_report"],
    "daily_data_job": ["bars", "features", "labels", "quarantined_bars", "raw_bars"],
    "daily_job": [
        "bars",
        "features",
        "labels",
        "prediction_scores",
        "predictions",
        "quarantined_bars",
        "raw_bars",
        "var_backtest",
    ],
    "features_job": ["features", "labels"],
    "ingest_job": ["bars", "quarantined_bars", "raw_bars"],
    "serving_job": ["prediction_scores", "predictions", "var_backtest"],
    "train_job": ["oos_predictions", "return_model", "training_set"],
}
SCHEDULE_NAMES = ["daily_schedule", "train_job_weekly_schedule"]
SENSOR_NAMES = [
    "champion_change_sensor",
    "freshness_alert_sensor",
    "landing_zone_sensor",
    "orphaned_run_sensor",
    "run_failure_alert_sensor",
]
BLOCKING_CHECKS = [
    "bars:bars_gx_suite",
    "bars:bars_pandera_schema",
    "bars:bars_sessions_complete",
    "features:features_contract",
    "features:features_no_lookahead",
    "predictions:predictions_contract",
    "return_model:return_model_reloads",
]


def test_defs_load(defs):
    assert isinstance(defs, dg.Definitions)
    defs.resolve_all_job_defs()  # every job resolves against the graph and the resources


def test_snapshot_of_the_graph(defs):
    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == ASSET_KEYS
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    assert checks == ASSET_CHECK_KEYS
    jobs = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    assert jobs == JOB_NAMES
    for name, assets in JOB_ASSETS.items():
        selected = defs.resolve_job_def(name).asset_layer.selected_asset_keys
        assert sorted(k.to_user_string() for k in selected) == assets, name
    assert sorted(s.name for s in defs.schedules or []) == SCHEDULE_NAMES
    assert sorted(s.name for s in defs.sensors or []) == SENSOR_NAMES


def test_blocking_checks(defs):
    graph = defs.resolve_asset_graph()
    blocking = sorted(
        f"{k.asset_key.to_user_string()}:{k.name}"
        for k in graph.asset_check_keys
        if graph.get_check_spec(k).blocking
    )
    assert blocking == BLOCKING_CHECKS


def test_every_asset_has_a_group_and_a_description(defs):
    specs = list(defs.resolve_all_asset_specs())
    assert specs
    for spec in specs:
        key = spec.key.to_user_string()
        assert spec.group_name and spec.group_name != "default", key
        assert spec.description and spec.description.strip(), key


def test_partitioned_assets_use_the_xnys_sessions(defs):
    specs = [s for s in defs.resolve_all_asset_specs() if s.partitions_def is not None]
    assert {s.key.to_user_string() for s in specs} == {
        "raw_bars",
        "bars",
        "quarantined_bars",
        "features",
        "labels",
        "predictions",
        "prediction_scores",
        "var_backtest",
    }
    for spec in specs:
        assert spec.partitions_def == sessions_partitions, spec.key
    graph = defs.resolve_asset_graph()
    for key in graph.asset_check_keys:
        check_partitions = graph.get_check_spec(key).partitions_def
        assert check_partitions is None or check_partitions == sessions_partitions, key
    for job in ("ingest_job", "features_job", "daily_data_job"):
        assert defs.resolve_job_def(job).partitions_def == sessions_partitions, job
    # the partitions are exactly the exchange's sessions: weekends and holidays excluded
    keys_2024 = [k for k in sessions_partitions.get_partition_keys() if k.startswith("2024-")]
    assert keys_2024 == [d.isoformat() for d in sessions("2024-01-01", "2024-12-31")]
    assert len(keys_2024) == 252


def test_dg_check_defs_passes(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    venv = PROJECT_ROOT / ".venv"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "yes",
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [str(venv / "bin" / "dg"), "check", "defs"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


def test_train_job_is_held_to_one_training_at_a_time(defs):
    """dagster.yaml limits runs tagged ``alphadag/kind: train`` to one: train_job must carry it."""
    import yaml

    limits = yaml.safe_load((PROJECT_ROOT / "deploy" / "local" / "dagster.yaml").read_text())[
        "concurrency"
    ]["runs"]
    limit = [rule for rule in limits["tag_concurrency_limits"] if rule["key"] == "alphadag/kind"]
    assert limit == [{"key": "alphadag/kind", "value": "train", "limit": 1}]
    assert defs.resolve_job_def("train_job").tags.get("alphadag/kind") == "train"


def test_named_jobs_run_in_one_process_and_ad_hoc_selections_fork_preloaded(defs):
    """Every job is a chain: one process pays the imports once. Ad-hoc selections keep parallel
    steps, each forked from a forkserver that imported the code location first."""
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        assert job.executor_def.name == "in_process", job.name
    implicit = defs.resolve_implicit_global_asset_job_def()
    assert implicit.executor_def.name == "multiprocess_forkserver"
    from alphadag.definitions import DEFAULT_EXECUTOR_CONFIG

    assert DEFAULT_EXECUTOR_CONFIG["start_method"] == {
        "forkserver": {"preload_modules": ["alphadag.preload"]}
    }
