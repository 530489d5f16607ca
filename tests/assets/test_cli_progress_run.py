"""``alphadag materialize`` with its progress display on real runs, through ``alphadag.cli.main``.

Each test points ``DAGSTER_HOME`` at an empty temporary instance and the data root at a temporary
directory. One ranged run of ``ingest_job`` over a week of a three-ticker synthetic source shows the
plain (non-terminal) lines: every asset reaches its partitions, the chosen ``--log-level`` is in the
stored run config, the summary is printed on stdout as before. Small in-memory jobs cover the
unpartitioned path (``run_unpartitioned``), a failing step and ``--no-progress``.
"""

from __future__ import annotations

import re

import dagster as dg
import pytest

from alphadag import cli

WEEK = ("2024-03-04", "2024-03-08")  # five sessions


@pytest.fixture()
def home(tmp_path, monkeypatch) -> str:
    """An empty instance in ``DAGSTER_HOME`` and the CLI's resources under ``tmp_path``."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "DAGSTER_HOME": str(home),
        "ALPHADAG_DATA_ROOT": str(tmp_path / "data"),
        "ALPHADAG_SOURCE": "synthetic",
        "ALPHADAG_TICKERS": "AAA,BBB,CCC",
        "ALPHADAG_ALERT_LOG": str(tmp_path / "alerts.jsonl"),
        "ALPHADAG_MLFLOW_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "ALPHADAG_MLFLOW_ARTIFACTS": str(tmp_path / "mlartifacts"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return str(home)


def _stored_log_level(run_id: str) -> str:
    run = dg.DagsterInstance.get().get_run_by_id(run_id)
    assert run is not None
    return run.run_config["loggers"]["console"]["config"]["log_level"]


def _run_id(stdout: str) -> str:
    match = re.search(r"run ([0-9a-f-]{36})", stdout)
    assert match, stdout
    return match.group(1)


def _progress_lines(stderr: str) -> list[str]:
    """The plain progress lines (``[   12.3s] text``), without their time prefix."""
    return [m.group(1) for m in re.finditer(r"^\[ *\d+\.\d+s\] (.*)$", stderr, re.MULTILINE)]


def test_ranged_run_prints_each_asset_done_and_the_summary(home, capsys):
    dates = ["--start", WEEK[0], "--end", WEEK[1]]
    code = cli.main(["materialize", "--job", "ingest_job", *dates, "--log-level", "INFO"])
    out, err = capsys.readouterr()
    assert code == 0, out + err

    lines = _progress_lines(err)  # captured stderr is no terminal: plain lines, no bars
    assert lines[0] == (
        "ingest_job: 2 steps; partitions planned: bars 5, quarantined_bars 5, raw_bars 5"
    )
    for asset in ("raw_bars", "bars", "quarantined_bars"):
        assert [line for line in lines if line.startswith(f"{asset} 5/5 partitions in ")], lines
    for step in ("raw_bars", "validated_bars"):
        assert f"step {step} started" in lines
        assert any(line.startswith(f"step {step} succeeded in ") for line in lines)
    assert any(line.endswith("(2/2 steps)") for line in lines)  # the checks run in validated_bars
    assert lines[1] == "run started"
    assert lines[-1] == "ingest_job ended"
    assert " - INFO - " in err  # the console logger at the chosen level

    # the summary on stdout, exactly as without progress
    assert f"== ingest_job over {WEEK[0]} .. {WEEK[1]}: run " in out
    assert "success=True" in out
    for asset in ("raw_bars", "bars", "quarantined_bars"):
        assert re.search(rf"materialized {asset} +5 partitions", out), out
    assert "[" not in out  # no progress on stdout
    assert _stored_log_level(_run_id(out)) == "INFO"


def _small_defs(*, fail: bool = False) -> dg.Definitions:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def first() -> None: ...

    @dg.multi_asset(
        specs=[dg.AssetSpec("second", deps=["first"]), dg.AssetSpec("third", deps=["first"])],
        partitions_def=daily,
    )
    def pair():
        if fail:
            raise RuntimeError("pair broke")
        yield dg.MaterializeResult(asset_key="second")
        yield dg.MaterializeResult(asset_key="third")

    @dg.asset
    def model() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"score": 0.5})

    @dg.asset(deps=[model])
    def report() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"pages": 3})

    return dg.Definitions(
        assets=[first, pair, model, report],
        jobs=[
            dg.define_asset_job("small_job", selection=["first", "second", "third"]),
            dg.define_asset_job("unpartitioned_job", selection=["model", "report"]),
        ],
    )


def test_unpartitioned_run_counts_assets_and_takes_the_log_level(home, monkeypatch, capsys):
    monkeypatch.setattr("alphadag.definitions.defs", _small_defs)
    meta = cli.run_unpartitioned("unpartitioned_job", log_level="ERROR", progress="plain")
    err = capsys.readouterr().err
    assert meta["success"]
    assert (meta["score"], meta["pages"]) == (0.5, 3)
    lines = _progress_lines(err)
    assert lines[0] == "unpartitioned_job: 2 steps, 2 assets"
    assert any(re.fullmatch(r"model materialized in [\d.]+s \(1/2 assets\)", x) for x in lines)
    assert any(re.fullmatch(r"report materialized in [\d.]+s \(2/2 assets\)", x) for x in lines)
    assert _stored_log_level(meta["run_id"]) == "ERROR"


def test_failed_ranged_step_shows_incomplete_assets(home, monkeypatch, capsys):
    monkeypatch.setattr("alphadag.definitions.defs", lambda: _small_defs(fail=True))
    code = cli.main(["materialize", "--job", "small_job", "--start", WEEK[0], "--end", WEEK[1]])
    out, err = capsys.readouterr()
    assert code == 1
    lines = _progress_lines(err)
    assert lines[0] == "small_job: 2 steps; partitions planned: first 5, second 5, third 5"
    assert any(line.startswith("first 5/5 partitions in ") for line in lines)
    assert "second 0/5 partitions (incomplete)" in lines
    assert "third 0/5 partitions (incomplete)" in lines
    assert any(line.startswith("step pair failed in ") for line in lines)
    assert "success=False" in out
    assert re.search(r"materialized first +5 partitions", out)


def test_no_progress_prints_only_the_summary(home, monkeypatch, capsys):
    monkeypatch.setattr("alphadag.definitions.defs", _small_defs)
    dates = ["--start", WEEK[0], "--end", WEEK[1]]
    code = cli.main(
        ["materialize", "--job", "small_job", *dates, "--no-progress", "--log-level=CRITICAL"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert _progress_lines(err) == []
    assert "== small_job over 2024-03-04 .. 2024-03-08: run " in out
    for asset in ("first", "second", "third"):
        assert re.search(rf"materialized {asset} +5 partitions", out), out
    assert _stored_log_level(_run_id(out)) == "CRITICAL"
