"""Metrics against hand computations with numpy and scipy, and the naive baselines."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from alphadag.models import (
    BASELINES,
    METRIC_NAMES,
    evaluate_predictions,
    flatten_metrics,
    ic_metrics,
    naive_baseline_predictions,
)

D0 = dt.date(2024, 1, 2)


def _newey_west(xs: list[float], horizon: int) -> tuple[float, float, float]:
    """Newey-West (Bartlett, lag max(horizon, 1) capped at n - 1) se, t and p of the mean."""
    x = np.asarray(xs, dtype=float)
    n = x.size
    if n < 2:
        return math.nan, math.nan, math.nan
    lags = min(max(horizon, 1), n - 1)
    e = x - x.mean()
    lrv = e @ e / n + sum(
        2 * (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / n for k in range(1, lags + 1)
    )
    se = math.sqrt(max(lrv, 0.0) / n)
    t = x.mean() / se if se > 0 else math.nan
    return se, t, 2 * stats.norm.sf(abs(t))


def expected_metrics(frame: pl.DataFrame, horizon: int = 1) -> dict[str, float]:
    """The definitions, written out with scipy per date and numpy over rows."""
    ics, rics = [], []
    for _date, part in frame.sort("date").group_by("date", maintain_order=True):
        t = part["y_true"].to_numpy()
        p = part["y_pred"].to_numpy()
        if len(t) < 3 or len(set(t)) == 1 or len(set(p)) == 1:  # constant: undefined
            continue
        ics.append(stats.pearsonr(t, p).statistic)
        rics.append(stats.spearmanr(t, p).statistic)
    t = frame["y_true"].to_numpy()
    p = frame["y_pred"].to_numpy()
    hits = [np.sign(a) == np.sign(b) for a, b in zip(t, p, strict=True) if a != 0]
    out = {
        "rmse": math.sqrt(sum((a - b) ** 2 for a, b in zip(t, p, strict=True)) / len(t)),
        "mae": sum(abs(a - b) for a, b in zip(t, p, strict=True)) / len(t),
        "directional_accuracy": sum(hits) / len(hits) if hits else math.nan,
        "n_dates": float(frame["date"].n_unique()),
        "n_ic_dates": float(len(ics)),
        "n_rows": float(len(t)),
    }
    for name, xs in (("ic", ics), ("rank_ic", rics)):
        mean = float(np.mean(xs)) if xs else math.nan
        std = float(np.std(xs, ddof=1)) if len(xs) > 1 else math.nan
        out[f"{name}_mean"] = mean
        out[f"{name}_std"] = std
        out[f"{name}ir"] = mean / std if std > 0 else math.nan  # icir, rank_icir
        se, t, p = _newey_west(xs, horizon)
        out[f"{name}_hac_se"], out[f"{name}_hac_t"], out[f"{name}_hac_p"] = se, t, p
    return out


def assert_metrics_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(METRIC_NAMES)
    for k in want:
        std = {"icir": "ic_std", "rank_icir": "rank_ic_std"}.get(k)
        if k.endswith(("_hac_t", "_hac_p")):
            std = k.removesuffix("_hac_t").removesuffix("_hac_p") + "_std"
        if std and (math.isnan(want[std]) or want[std] < 1e-9):
            continue  # mean / ~0: the ratio is rounding noise in any implementation
        if k.endswith("_hac_se") and want[k.removesuffix("_hac_se") + "_std"] < 1e-9:
            continue
        if math.isnan(want[k]):
            assert math.isnan(got[k]), (k, got[k])
        else:
            assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    for name in ("ic", "rank_ic"):  # the bootstrap interval: seeded, brackets the mean
        lo, hi, mean = got[f"{name}_ci_lo"], got[f"{name}_ci_hi"], got[f"{name}_mean"]
        if want["n_ic_dates"] < 2:
            assert math.isnan(lo) and math.isnan(hi)
        else:
            assert lo <= mean + 1e-12 and mean - 1e-12 <= hi, (name, lo, mean, hi)


@pytest.fixture(scope="module")
def scored() -> pl.DataFrame:
    """Ten dates x 8 tickers with ties, plus a 2-ticker date and a constant-forecast date."""
    rng = np.random.default_rng(1)
    rows = []
    for d in range(10):
        date = D0 + dt.timedelta(days=d)
        t = np.round(rng.standard_normal(8) * 0.02, 3)
        p = np.round(0.5 * t + rng.standard_normal(8) * 0.02, 2)  # rounding makes ties
        rows += [
            (date, f"T{i}", float(a), float(b)) for i, (a, b) in enumerate(zip(t, p, strict=True))
        ]
    rows += [
        (D0 + dt.timedelta(days=20), "T0", 0.01, 0.02),
        (D0 + dt.timedelta(days=20), "T1", -0.01, 0.0),
    ]
    rows += [(D0 + dt.timedelta(days=21), f"T{i}", 0.01 * i - 0.02, 0.005) for i in range(5)]
    rows += [(D0 + dt.timedelta(days=22), "T0", 0.0, 0.01)]
    return pl.DataFrame(rows, schema=["date", "ticker", "y_true", "y_pred"], orient="row")


@pytest.mark.parametrize("horizon", [1, 5])
def test_ic_metrics_match_scipy_per_date(scored: pl.DataFrame, horizon: int) -> None:
    got = ic_metrics(scored, horizon=horizon)
    want = expected_metrics(scored, horizon)
    assert want["n_ic_dates"] == 10.0  # the 2-ticker, the constant and the 1-row dates are skipped
    assert got["n_dates"] == 13.0
    assert_metrics_close(got, want)


def test_ic_metrics_on_a_hand_sized_frame() -> None:
    f = pl.DataFrame(
        {
            "date": [D0] * 3 + [D0 + dt.timedelta(days=1)] * 3,
            "y_true": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
            "y_pred": [1.0, 2.0, 4.0, 3.0, 2.0, 1.0],
        }
    )
    m = ic_metrics(f)
    r1 = np.corrcoef([1, 2, 3], [1, 2, 4])[0, 1]
    assert m["ic_mean"] == pytest.approx((r1 - 1.0) / 2)
    assert m["rank_ic_mean"] == pytest.approx(0.0)
    assert m["rank_ic_std"] == pytest.approx(math.sqrt(2.0))
    assert m["rank_icir"] == pytest.approx(0.0)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0 + 4) / 6))
    assert m["mae"] == pytest.approx((1 + 2 + 0 + 2) / 6)
    assert m["directional_accuracy"] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(-100, 100),  # thousandths: ties and zeros are common, subnormals are not
            st.integers(-100, 100),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_ic_metrics_property_vs_scipy(data: list[tuple[int, int, int]]) -> None:
    f = pl.DataFrame(
        [(D0 + dt.timedelta(days=d), t / 1000, p / 1000) for d, t, p in data],
        schema=["date", "y_true", "y_pred"],
        orient="row",
    )
    assert_metrics_close(ic_metrics(f), expected_metrics(f))


def test_ic_metrics_custom_column_names_and_errors() -> None:
    f = pl.DataFrame({"day": [D0] * 3, "y": [0.1, 0.2, 0.3], "p": [0.3, 0.2, 0.1]})
    assert ic_metrics(f, date="day", y_true="y", y_pred="p")["ic_mean"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="lacks column"):
        ic_metrics(f)
    with pytest.raises(ValueError, match="non-finite"):
        ic_metrics(
            f.with_columns(pl.lit(None, dtype=pl.Float64).alias("p")),
            date="day",
            y_true="y",
            y_pred="p",
        )
    with pytest.raises(ValueError, match="empty"):
        ic_metrics(f.clear(), date="day", y_true="y", y_pred="p")


def test_naive_baselines_use_only_features_known_at_t() -> None:
    f = pl.DataFrame({"logret_20": [0.04, -0.02, None], "fwd_ret_5d": [0.1, 0.2, 0.3]})
    out = naive_baseline_predictions(f, horizon=5)
    assert out["baseline_zero"].to_list() == [0.0, 0.0, 0.0]
    assert out["baseline_momentum"].to_list() == pytest.approx([0.01, -0.005, 0.0])
    with pytest.raises(ValueError, match="logret_20"):
        naive_baseline_predictions(f.drop("logret_20"), horizon=5)


def test_evaluate_predictions_scores_model_and_both_baselines(scored: pl.DataFrame) -> None:
    f = scored.with_columns((pl.col("y_pred") * 20).alias("logret_20")).rename(
        {"y_true": "fwd_ret_5d"}
    )
    pred = np.asarray(f["y_pred"].to_numpy())
    out = evaluate_predictions(f, pred, label="fwd_ret_5d", horizon=5)
    assert list(out) == ["model", *BASELINES]
    # momentum baseline = logret_20 * 5 / 20 = 5 * y_pred: same ranks, so identical ICs
    assert out["baseline_momentum"]["ic_mean"] == pytest.approx(out["model"]["ic_mean"])
    # the zero forecast is constant: no IC, and no direction
    assert math.isnan(out["baseline_zero"]["ic_mean"])
    assert out["baseline_zero"]["directional_accuracy"] == 0.0
    t = f["fwd_ret_5d"].to_numpy()
    assert out["baseline_zero"]["rmse"] == pytest.approx(math.sqrt(np.mean(t**2)))
    flat = flatten_metrics(out, prefix="valid_")
    assert flat["valid_model_rmse"] == out["model"]["rmse"]
    assert len(flat) == 3 * len(METRIC_NAMES)
    with pytest.raises(ValueError, match="values for"):
        evaluate_predictions(f, pred[:-1], label="fwd_ret_5d", horizon=5)
