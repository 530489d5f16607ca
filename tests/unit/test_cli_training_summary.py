"""The demo's out-of-sample table (alphadag.cli.oos_ic_table) on a hand-made walk-forward series."""

import datetime as dt

import numpy as np
import polars as pl

from alphadag.cli import CAVEATS, oos_ic_table


def _series(tmp_path) -> str:
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
    path = tmp_path / "oos.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return str(path)


def test_oos_table_reports_each_model_per_period_with_its_uncertainty(tmp_path):
    table = {(r["who"], r["period"]): r for r in oos_ic_table(_series(tmp_path))}
    assert set(table) == {
        ("model", "before test"),
        ("baseline_momentum", "before test"),
        ("model", "test"),
        ("baseline_momentum", "test"),
    }
    assert table[("model", "before test")]["dates"] == 40
    assert table[("model", "test")]["dates"] == 20
    for period in ("before test", "test"):
        model, base = table[("model", period)], table[("baseline_momentum", period)]
        assert abs(model["rank_ic"] - 1.0) < 1e-12
        assert abs(base["rank_ic"] + 1.0) < 1e-12
        assert model["ci_lo"] <= model["rank_ic"] <= model["ci_hi"]


def test_the_demo_states_what_the_sample_cannot_show():
    assert "survivorship" in CAVEATS
    assert "price index" in CAVEATS
