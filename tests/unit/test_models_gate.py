"""The promotion gate: paired HAC test on out-of-sample per-date rank-IC differences."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from alphadag.models.gate import compare, flat_numbers, gate
from alphadag.models.ic import daily_ic, ic_difference

D0 = dt.date(2020, 1, 1)
BASELINES = ("baseline_momentum", "baseline_reversal")


def _series(n_dates: int, skill: float, seed: int = 0, n_tickers: int = 12) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_dates):
        y = rng.normal(size=n_tickers)
        pred = skill * y + rng.normal(size=n_tickers)
        for t in range(n_tickers):
            rows.append((D0 + dt.timedelta(days=i), f"T{t}", y[t], pred[t], *rng.normal(size=2)))
    return pl.DataFrame(
        rows, schema=["date", "ticker", "y_true", "y_pred", *BASELINES], orient="row"
    )


def test_a_skilled_challenger_is_promoted_and_a_skill_free_one_is_not() -> None:
    before = D0 + dt.timedelta(days=150)
    good = gate(_series(200, 1.0), baselines=BASELINES, champion=None, before=before, horizon=5,
                margin=0.0)  # fmt: skip
    assert good.promoted and good.reason.startswith("promoted (no champion): ")
    assert [c.rival for c in good.comparisons] == list(BASELINES)
    assert all(c.n_dates == 150 and c.lag == 5 and c.gain > 2 * c.se for c in good.comparisons)
    null = gate(_series(200, 0.0), baselines=BASELINES, champion=None, before=before, horizon=5,
                margin=0.0)  # fmt: skip
    assert not null.promoted
    assert null.reason.endswith("no champion, the baseline keeps serving")


def test_the_gate_never_reads_the_test_segment() -> None:
    series = _series(200, 1.0)
    before = D0 + dt.timedelta(days=150)
    # anything after `before` (the test segment) cannot change the decision or its numbers
    spoiled = series.with_columns(
        pl.when(pl.col("date") >= before)
        .then(-pl.col("y_true"))
        .otherwise(pl.col("y_pred"))
        .alias("y_pred")
    )
    a = gate(series, baselines=BASELINES, champion=None, before=before, horizon=5, margin=0.0)
    b = gate(spoiled, baselines=BASELINES, champion=None, before=before, horizon=5, margin=0.0)
    assert a == b


def test_the_champion_must_be_beaten_by_k_standard_errors_and_the_margin() -> None:
    series = _series(200, 1.0)
    before = D0 + dt.timedelta(days=200)
    same = gate(series, baselines=BASELINES, champion=series, before=before, horizon=5, margin=0.0)
    assert not same.promoted  # a tie: gain 0 is not above the margin
    champ = same.comparisons[0]
    assert champ.rival == "champion" and champ.gain == 0.0 and "margin" in champ.reason
    weaker = _series(200, 0.2, seed=1).select("date", "ticker", "y_pred")
    beat = gate(series, baselines=BASELINES, champion=weaker, before=before, horizon=5, margin=0.0)
    assert beat.promoted and beat.reason.startswith("promoted: vs champion")
    high_bar = gate(series, baselines=BASELINES, champion=weaker, before=before, horizon=5,
                    margin=0.0, k=1e3)  # fmt: skip
    assert not high_bar.promoted and "x se" in high_bar.reason
    numbers = flat_numbers(beat)
    assert numbers["gate/promoted"] == 1.0 and numbers["gate/champion/beats"] == 1.0
    assert set(numbers) >= {f"gate/{r}/{k}" for r in ("champion", *BASELINES)
                            for k in ("gain", "se", "t", "n_dates")}  # fmt: skip


def test_compare_uses_the_one_ic_implementation() -> None:
    series = _series(60, 0.5)
    c = compare(series, "baseline_momentum", horizon=3, margin=0.0, k=2.0)
    d = ic_difference(daily_ic(series), daily_ic(series, y_pred="baseline_momentum"), 3)
    assert (c.gain, c.se, c.t, c.n_dates) == (d.gain, d.se, d.t, d.n)
    with pytest.raises(ValueError, match="promotion_k"):
        compare(series, "baseline_momentum", horizon=3, margin=0.0, k=-1.0)
    with pytest.raises(ValueError, match="promotion_margin"):
        compare(series, "baseline_momentum", horizon=3, margin=float("nan"), k=2.0)
