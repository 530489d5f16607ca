"""The out-of-sample table (alphadag.models.oos.oos_ic_table) on a hand-made walk-forward series,
and what the demo prints from it."""

import datetime as dt

import numpy as np
import polars as pl

from alphadag import cli
from alphadag.cli import CAVEATS, _print_training
from alphadag.models.oos import oos_ic_metrics, oos_ic_table


def _series() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(60):
        day = dt.date(2021, 1, 4) + dt.timedelta(days=i)
        y = rng.normal(size=8)
        for j in range(8):
            rows.append(
                {
                    "date": day,
                    "ticker": f"T{j}",
                    "segment": "test" if i >= 40 else "train",
                    "horizon": 5,
                    "y_true": y[j],
                    "y_pred": 2.0 * y[j] + 1.0,  # a perfect ranking: rank IC 1 on every date
                    "baseline_momentum": -y[j],  # perfectly wrong: rank IC -1
                }
            )
    return pl.DataFrame(rows)


def test_oos_table_reports_each_model_per_period_with_its_uncertainty(tmp_path):
    table = {(r["who"], r["period"]): r for r in oos_ic_table(_series())}
    assert set(table) == {
        ("model", "pre_test"),
        ("baseline_momentum", "pre_test"),
        ("model", "test"),
        ("baseline_momentum", "test"),
    }
    assert table[("model", "pre_test")]["dates"] == 40
    assert table[("model", "test")]["dates"] == 20
    for period in ("pre_test", "test"):
        model, base = table[("model", period)], table[("baseline_momentum", period)]
        assert abs(model["rank_ic"] - 1.0) < 1e-12
        assert abs(base["rank_ic"] + 1.0) < 1e-12
        assert model["ci_lo"] <= model["rank_ic"] <= model["ci_hi"]


def test_the_demo_states_what_the_sample_cannot_show():
    assert "survivorship" in CAVEATS
    assert "price index" in CAVEATS


def test_oos_metrics_are_flat_and_the_demo_prints_the_table(capsys):
    table = oos_ic_table(_series())
    metrics = oos_ic_metrics(table)
    assert metrics["oos/model/pre_test/rank_ic_mean"] == table[0]["rank_ic"]
    assert all(k.startswith("oos/") for k in metrics)
    meta = {
        "run_id": "r",
        "success": True,
        "seconds": 1.0,
        "model_uri": "models:/m/1",
        "n_models_tried": 1,
        "horizon": 5,
        "oos_rank_ic": table,
        "gate": [{"rival": "baseline_momentum", "gain": 2.0, "se": 0.1, "t": 20.0, "n_dates": 40}],
        "decision": "promoted",
        "reason": "promoted: beats every rival",
        "champion_version": 2,
        "champion_trained_through": "2021-03-04",
        "last_labelled_session": "2021-03-04",
        "test_rank_ic_mean": 0.5,
    }
    _print_training(meta)
    out = capsys.readouterr().out
    assert "model              before test     40 dates  rank IC +1.0000" in out
    assert "vs baseline_momentum  gain +2.0000" in out
    assert "decision: promoted: beats every rival" in out
    assert "champion: 2; trained through 2021-03-04 (last labelled session 2021-03-04)" in out


def _meta(table) -> dict:
    return {
        "run_id": "r",
        "success": True,
        "seconds": 1.0,
        "model_uri": "models:/m/1",
        "n_models_tried": 1,
        "horizon": 5,
        "oos_rank_ic": table,
        "gate": [],
        "decision": "refused",
        "reason": "refused: no gain",
        "champion_version": None,
        "last_labelled_session": "2021-03-04",
        "test_rank_ic_mean": 0.1,
    }


def test_train_serve_and_backtest_report_print_what_the_demo_prints(monkeypatch, capsys):
    """The stage subcommands call the demo's own runs and printers (faked here: no instance)."""
    monkeypatch.setattr(cli, "sweep_orphaned_runs", lambda: None)
    meta = _meta(oos_ic_table(_series()))
    monkeypatch.setattr(cli, "train_model", lambda **opts: meta)
    assert cli.main(["train", "--no-progress"]) == 0
    out = capsys.readouterr().out
    _print_training(meta)
    assert out == capsys.readouterr().out
    monkeypatch.setattr(cli, "train_model", lambda **opts: {**meta, "success": False})
    assert cli.main(["train"]) == 1

    calls = []

    def materialize_range(job, start, end, **opts):
        calls.append((job, start, end, opts))
        return {"job": job, "run_id": "s", "success": False, "range": f"{start} .. {end}",
                "seconds": 0.1, "materialized_partitions": {}, "checks": {}}  # fmt: skip

    monkeypatch.setattr(cli, "materialize_range", materialize_range)
    assert cli.main(["serve", "--end", "2022-12-28", "--no-progress"]) == 1
    (job, start, end, opts), *_ = calls
    assert (job, end) == ("serving_job", dt.date(2022, 12, 28))
    assert start == dt.date(2022, 11, 15)  # 30 sessions: Thanksgiving and 26 Dec are none
    assert opts == {"log_level": "WARNING", "progress": "off"}
    assert "== serving_job over 2022-11-15 .. 2022-12-28: run s" in capsys.readouterr().out

    ran = []
    monkeypatch.setattr(cli, "run_unpartitioned", lambda job, **kw: ran.append((job, kw)) or {
        "run_id": "b", "success": False, "seconds": 0.1})  # fmt: skip
    assert cli.main(["backtest-report", "--start", "2021-01-19", "--end", "2022-12-28"]) == 1
    [(job, kw)] = ran
    assert job == "backtest_job"
    assert kw["ops"] == {
        "backtest_report": {"config": {"start": "2021-01-19", "end": "2022-12-28"}}
    }
    assert "== backtest_job: run b  success=False" in capsys.readouterr().out
