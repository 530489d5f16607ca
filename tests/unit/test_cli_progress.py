"""The progress display of ``alphadag materialize`` / ``demo`` (``alphadag.cli``) without a run:
the tracker fed events by hand on a fake clock, both views, the planned totals of a small job, and
the ``--log-level`` / ``--no-progress`` options."""

from __future__ import annotations

import io
from types import SimpleNamespace

import dagster as dg
import pytest
from rich.console import Console

from alphadag import cli


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plain_run(
    totals: dict[str, int],
    steps: dict[str, list[str]],
    *,
    partitioned: bool = True,
    every: float = 10.0,
) -> tuple[cli.RunProgress, FakeClock, io.StringIO]:
    clock, out = FakeClock(), io.StringIO()
    run = cli.RunProgress(
        "demo_job",
        totals,
        steps,
        partitioned=partitioned,
        view=cli.PlainProgressView(out, every=every),
        clock=clock,
    )
    run.start()
    return run, clock, out


def _lines(out: io.StringIO) -> list[str]:
    """The lines written, without their ``[   12.3s]`` prefix."""
    return [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]


def _event(kind: str, *, step: str | None = None, asset: str | None = None) -> SimpleNamespace:
    """An ``EventLogEntry`` as the instance hands it to listeners (the attributes read)."""
    return SimpleNamespace(
        dagster_event=SimpleNamespace(
            event_type=dg.DagsterEventType(kind),
            step_key=step,
            asset_key=dg.AssetKey(asset) if asset else None,
        )
    )


def test_plain_lines_name_every_asset_done_with_its_partitions_and_seconds():
    run, clock, out = _plain_run(
        {"raw_bars": 3, "bars": 3, "quarantined_bars": 3},
        {"raw_bars": ["raw_bars"], "validated_bars": ["bars", "quarantined_bars"], "check": []},
    )
    run.on_run_start()
    run.on_step_start("raw_bars")
    for _ in range(3):
        clock.now += 1.0
        run.on_materialization("raw_bars")
    run.on_step_end("raw_bars", "success")
    run.on_step_start("validated_bars")
    clock.now += 2.0
    for _ in range(3):
        run.on_materialization("bars")
        run.on_materialization("quarantined_bars")
    run.on_step_end("validated_bars", "success")
    run.on_step_start("check")
    run.on_step_end("check", "success")
    run.close()

    assert _lines(out) == [
        "demo_job: 3 steps; partitions planned: raw_bars 3, bars 3, quarantined_bars 3",
        "run started",
        "step raw_bars started",
        "raw_bars 3/3 partitions in 3.0s",
        "step raw_bars succeeded in 3.0s (1/3 steps)",
        "step validated_bars started",
        "bars 3/3 partitions in 2.0s",
        "quarantined_bars 3/3 partitions in 2.0s",
        "step validated_bars succeeded in 2.0s (2/3 steps)",
        "step check started",
        "step check succeeded in 0.0s (3/3 steps)",
        "demo_job ended",
    ]
    assert out.getvalue().splitlines()[3].startswith("[    3.0s] ")
    assert {a: (p.done, p.total) for a, p in run.assets.items()} == {
        "raw_bars": (3, 3),
        "bars": (3, 3),
        "quarantined_bars": (3, 3),
    }


def test_plain_partial_counts_at_most_every_interval():
    run, clock, out = _plain_run({"features": 100}, {"features": ["features"]}, every=10.0)
    run.on_step_start("features")
    for _ in range(99):  # one materialization a second
        clock.now += 1.0
        run.on_materialization("features")
    partial = [line for line in _lines(out) if line.startswith("features ")]
    assert partial == [f"features {n}/100 partitions" for n in range(10, 100, 10)]
    clock.now += 1.0
    run.on_materialization("features")
    assert _lines(out)[-1] == "features 100/100 partitions in 100.0s"


def test_plain_failed_step_reports_its_incomplete_assets():
    run, clock, out = _plain_run({"features": 5, "labels": 5}, {"features": ["features"]})
    run.on_step_start("features")
    run.on_materialization("features")
    clock.now += 1.5
    run.on_step_end("features", "failure")
    assert _lines(out)[-2:] == [
        "features 1/5 partitions (incomplete)",
        "step features failed in 1.5s (1/1 steps)",
    ]
    assert run.assets["features"].failed
    assert not run.assets["labels"].failed


def test_plain_unpartitioned_counts_assets():
    run, clock, out = _plain_run(
        {"training_set": 1, "return_model": 1},
        {"training_set": ["training_set"], "return_model": ["return_model"]},
        partitioned=False,
    )
    for asset in ("training_set", "return_model"):
        run.on_step_start(asset)
        clock.now += 4.0
        run.on_materialization(asset)
        run.on_step_end(asset, "success")
    lines = _lines(out)
    assert lines[0] == "demo_job: 2 steps, 2 assets"
    assert "training_set materialized in 4.0s (1/2 assets)" in lines
    assert "return_model materialized in 4.0s (2/2 assets)" in lines


def test_handle_decodes_the_stored_events_and_ignores_the_rest():
    run, _, _ = _plain_run({"raw_bars": 2}, {"raw_bars": ["raw_bars"]})
    run.handle(SimpleNamespace(dagster_event=None))  # a plain log message
    run.handle(_event("PIPELINE_START"))  # DagsterEventType.RUN_START's stored value
    run.handle(_event("STEP_START", step="raw_bars"))
    run.handle(_event("ASSET_MATERIALIZATION", step="raw_bars", asset="raw_bars"))
    run.handle(_event("ASSET_MATERIALIZATION", step="raw_bars", asset="raw_bars"))
    run.handle(_event("STEP_OUTPUT", step="raw_bars"))
    run.handle(_event("STEP_SUCCESS", step="raw_bars"))
    assert run.assets["raw_bars"].done == 2
    assert run.steps_finished == {"raw_bars": "success"}
    assert run.running_steps() == []
    assert run.run_started is not None


def test_a_broken_view_never_fails_the_run(capsys):
    class Broken:
        def start(self, run):
            pass

        def step_started(self, run, step):
            raise RuntimeError("terminal gone")

        materialized = step_finished = step_started

        def close(self, run):
            raise AssertionError("a broken view is not closed")

    run = cli.RunProgress("j", {"a": 1}, {"a": ["a"]}, partitioned=True, view=Broken())
    run.start()
    run.handle(_event("STEP_START", step="a"))  # raises inside: swallowed, display stopped
    run.handle(_event("ASSET_MATERIALIZATION", asset="a"))  # ignored from then on
    run.close()
    assert "progress display stopped" in capsys.readouterr().err
    assert run.assets["a"].done == 0


def test_rich_view_ends_with_a_bar_per_asset_at_its_total():
    out = io.StringIO()
    view = cli.RichProgressView(Console(file=out, width=120))
    run = cli.RunProgress(
        "ingest_job",
        {"raw_bars": 4, "bars": 4, "quarantined_bars": 4},
        {"raw_bars": ["raw_bars"], "validated_bars": ["bars", "quarantined_bars"]},
        partitioned=True,
        view=view,
    )
    run.start()
    for step, assets in run.step_assets.items():
        run.on_step_start(step)
        for asset in assets:
            for _ in range(4):
                run.on_materialization(asset)
        run.on_step_end(step, "success")
    run.close()
    text = out.getvalue()
    assert "step raw_bars succeeded" in text
    assert "step validated_bars succeeded" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "2/2 steps" in rows["ingest_job"]
    for asset in ("raw_bars", "bars", "quarantined_bars"):
        assert "4/4 partitions" in rows[asset]


def test_rich_view_unpartitioned_shows_assets_done_and_a_failure():
    out = io.StringIO()
    run = cli.RunProgress(
        "train_job",
        {"training_set": 1, "return_model": 1},
        {"training_set": ["training_set"], "return_model": ["return_model"]},
        partitioned=False,
        view=cli.RichProgressView(Console(file=out, width=120)),
    )
    run.start()
    run.on_step_start("training_set")
    run.on_materialization("training_set")
    run.on_step_end("training_set", "success")
    run.on_step_start("return_model")
    run.on_step_end("return_model", "failure")
    run.close()
    text = out.getvalue()
    assert "step return_model failed" in text
    assert any(line.startswith("assets") and "1/2 assets" in line for line in text.splitlines())


def _small_job() -> dg.JobDefinition:
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily)
    def first() -> None: ...

    @dg.multi_asset(
        specs=[dg.AssetSpec("second", deps=["first"]), dg.AssetSpec("third", deps=["first"])],
        partitions_def=daily,
    )
    def pair(): ...

    @dg.asset_check(asset="second")
    def second_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    job = dg.define_asset_job("small_job", selection=["first", "second", "third"])
    defs = dg.Definitions(assets=[first, pair], asset_checks=[second_ok], jobs=[job])
    return defs.resolve_job_def("small_job")


def test_planned_totals_and_step_assets_of_a_job():
    job = _small_job()
    keys = cli.range_partition_keys(job, "2024-01-03", "2024-01-07")
    assert keys == ["2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-07"]
    assert cli.planned_totals(job, keys) == {"first": 5, "second": 5, "third": 5}
    assert cli.planned_totals(job, None) == {"first": 1, "second": 1, "third": 1}
    steps = cli.step_assets(job)
    assert steps["first"] == ["first"]
    assert steps["pair"] == ["second", "third"]
    assert sorted(a for assets in steps.values() for a in assets) == ["first", "second", "third"]


@pytest.mark.parametrize("command", ["materialize", "demo"])
def test_log_level_and_no_progress_options(command):
    parser = cli.build_parser()
    dates = ["--start", "2024-01-02", "--end", "2024-01-05"]
    args = parser.parse_args([command, *dates])
    assert args.log_level == "WARNING"
    assert cli._run_opts(args) == {"log_level": "WARNING", "progress": "auto"}
    args = parser.parse_args([command, *dates, "--log-level", "debug", "--no-progress"])
    assert cli._run_opts(args) == {"log_level": "DEBUG", "progress": "off"}
    with pytest.raises(SystemExit):
        parser.parse_args([command, *dates, "--log-level", "LOUD"])


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    assert "`" not in capsys.readouterr().out
    for command in ("materialize", "demo"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([command, "--help"])
        text = capsys.readouterr().out
        assert "--log-level {DEBUG,INFO,WARNING,ERROR,CRITICAL}" in text
        assert "--no-progress" in text
        assert "`" not in text


def test_run_config_carries_the_log_level():
    assert cli._run_config("ERROR") == {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    ops = {"backtest_report": {"config": {"start": "2024-01-02"}}}
    assert cli._run_config("INFO", ops=ops)["ops"] == ops
    with pytest.raises(ValueError, match="log level"):
        cli._run_config("LOUD")


def test_progress_view_modes():
    pipe = io.StringIO()  # not a terminal
    assert cli.progress_view("off", pipe) is None
    assert isinstance(cli.progress_view("auto", pipe), cli.PlainProgressView)
    assert isinstance(cli.progress_view("plain", pipe), cli.PlainProgressView)
    assert isinstance(cli.progress_view("bars", pipe), cli.RichProgressView)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(cli.progress_view("auto", Terminal()), cli.RichProgressView)
