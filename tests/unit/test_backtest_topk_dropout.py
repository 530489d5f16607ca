"""``TopkDropout``: the book's invariants (hypothesis), its turnover bound through the engine,
no look-ahead through the predictions, and the daily top k as its ``n_drop=k`` special case."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alphadag.backtest import run_backtest
from alphadag.backtest.strategies import (
    ModelSignal,
    TopkDropout,
    get_strategy,
    topk_dropout_book,
)


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 10))
    scores = draw(
        hnp.arrays(
            np.float64,
            (n, m),
            elements=st.one_of(
                st.floats(-1.0, 1.0, allow_nan=False),
                st.sampled_from([0.0, 0.5, np.nan]),  # ties and unscored tickers
            ),
        )
    )
    k = draw(st.integers(1, m + 1))
    n_drop = draw(st.integers(1, k))
    return scores, k, n_drop, draw(st.integers(1, 6)), draw(st.integers(0, 4))


def _ranks(row: np.ndarray) -> np.ndarray:
    """Ordinal ranks (0 = best), unscored last, ties by column: computed apart from the book."""
    m = row.size
    order = sorted(
        range(m), key=lambda j: (np.isnan(row[j]), -row[j] if row[j] == row[j] else 0, j)
    )
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(m)
    return rank


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_book_invariants(case):
    scores, k, n_drop, rebalance, band = case
    held = topk_dropout_book(scores, k=k, n_drop=n_drop, rebalance=rebalance, band=band)
    n, m = scores.shape
    assert held.shape == (n, m) and held.dtype == bool
    assert (held.sum(axis=1) <= k).all()  # book size <= k
    scored_rows = np.flatnonzero((~np.isnan(scores)).any(axis=1))
    if scored_rows.size == 0:
        assert not held.any()
        return
    first = scored_rows[0]
    assert not held[:first].any()  # nothing before the first score
    before = np.zeros(m, dtype=bool)
    for t in range(first, n):
        now = held[t]
        sold, bought = before & ~now, now & ~before
        if (t - first) % rebalance != 0:
            assert (now == before).all()  # no trades between rebalances
        else:
            rank = _ranks(scores[t])
            vacancies = k - int(before.sum())
            assert sold.sum() <= n_drop  # at most n_drop names leave
            assert bought.sum() <= sold.sum() + vacancies  # and as many enter, plus vacancies
            assert not (bought & np.isnan(scores[t])).any()  # never buy an unscored name
            # a holding ranked within k + band is never sold ...
            assert (rank[sold] >= k + band).all()
            # ... and one that is sold gives way to a better-ranked newcomer
            if sold.any():
                assert rank[bought].min() < rank[sold].max()
            if vacancies == 0:
                assert bought.sum() == sold.sum()  # a full book swaps one for one
        before = now


@settings(max_examples=200, deadline=None)
@given(_cases())
def test_n_drop_k_daily_without_band_is_the_daily_top_k(case):
    scores, k, _, _, _ = case
    # forward-filled down each column as the strategy's predictions are: NaN only before the
    # first score of a ticker (``ModelSignal`` sells a name that loses its score; this does
    # not without a candidate to take its place)
    rows = np.where(np.isnan(scores), 0, np.arange(scores.shape[0])[:, None])
    filled = np.take_along_axis(scores, np.maximum.accumulate(rows, axis=0), axis=0)
    scores = np.where(np.isnan(scores) & ~np.isnan(filled), filled, scores)
    held = topk_dropout_book(scores, k=k, n_drop=k, rebalance=1, band=0)
    for t in range(scores.shape[0]):
        rank = _ranks(scores[t])
        top = (rank < k) & ~np.isnan(scores[t])
        assert (held[t] == top).all() or not (~np.isnan(scores[t])).any()


def _panel(seed: int, tickers: int, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random-walk bars (open and close) and iid random scores."""
    rng = np.random.default_rng(seed)
    days = [dt.date(2010, 1, 4) + dt.timedelta(days=i) for i in range(n)]
    frames, preds = [], []
    for j in range(tickers):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.015, n)))
        open_ = close * np.exp(rng.normal(0.0, 0.003, n))
        t = f"T{j:02d}"
        frames.append(pl.DataFrame({"ticker": t, "date": days, "open": open_, "close": close}))
        preds.append(pl.DataFrame({"date": days, "ticker": t, "y_pred": rng.normal(size=n)}))
    return pl.concat(frames), pl.concat(preds)


def test_signals_match_model_signal_when_it_is_the_daily_top_k():
    bars, preds = _panel(3, tickers=8, n=60)
    preds = preds.filter(pl.col("date") > dt.date(2010, 1, 10))  # unscored warm-up rows
    a = TopkDropout(k=3, n_drop=3, rebalance=1, band=0).signals(bars, preds).sort("date", "ticker")
    b = ModelSignal(k=3).signals(bars, preds).sort("date", "ticker")
    assert a.equals(b)


def test_a_prediction_dated_later_cannot_change_an_earlier_decision():
    bars, preds = _panel(4, tickers=6, n=80)
    cut = dt.date(2010, 2, 10)
    other = preds.with_columns(
        pl.when(pl.col("date") > cut).then(-pl.col("y_pred")).otherwise("y_pred").alias("y_pred")
    )
    strategy = TopkDropout(k=2, n_drop=1, rebalance=3, band=1)
    a = strategy.signals(bars, preds).filter(pl.col("date") <= cut).sort("date", "ticker")
    b = strategy.signals(bars, other).filter(pl.col("date") <= cut).sort("date", "ticker")
    assert a.equals(b)


def test_trades_only_the_day_after_a_rebalance_and_at_most_n_drop_each_way():
    bars, preds = _panel(5, tickers=12, n=300)
    k, n_drop, rebalance = 4, 1, 5
    r = run_backtest(bars, TopkDropout(k=k, n_drop=n_drop, rebalance=rebalance, band=0),
                     predictions=preds, cash=1e6, commission=0.001, sizing="weight",
                     fractional=True)  # fmt: skip
    sessions = bars["date"].unique().sort().to_list()
    fill_days = {sessions[i + 1] for i in range(0, len(sessions) - 1, rebalance)}
    trades = r.trades
    entries = trades.group_by("entry_date").len()
    exits = trades.filter(pl.col("exit_reason") == "signal").group_by("exit_date").len()
    assert set(entries["entry_date"]) <= fill_days
    assert set(exits["exit_date"]) <= fill_days
    build = sessions[1]
    assert entries.filter(pl.col("entry_date") == build)["len"].item() == k
    assert entries.filter(pl.col("entry_date") != build)["len"].max() <= n_drop
    assert exits["len"].max() <= n_drop


@pytest.mark.parametrize(("k", "n_drop", "rebalance"), [(10, 2, 5), (5, 1, 5), (8, 3, 2)])
def test_annual_turnover_is_bounded_by_2_n_drop_over_k_times_rebalances_a_year(
    k, n_drop, rebalance
):
    """Over ten years of iid random scores (band 0: nearly every rebalance swaps n_drop names),
    the turnover of the rebalances (buys and sells after the initial build, the final
    liquidation left out) is at most ``2 n_drop / k`` of equity per rebalance, ``252 /
    rebalance`` rebalances a year, up to the drift of the sold positions from ``1/k``."""
    sessions = 2520
    bars, preds = _panel(6, tickers=30, n=sessions)
    r = run_backtest(bars, TopkDropout(k=k, n_drop=n_drop, rebalance=rebalance, band=0),
                     predictions=preds, cash=1e6, commission=0.0, sizing="weight",
                     fractional=True)  # fmt: skip
    t = r.trades
    first_fill = t["entry_date"].min()
    bought = (
        t.filter(pl.col("entry_date") > first_fill)
        .select((pl.col("size").abs() * pl.col("entry_price")).sum())
        .item()
    )
    sold = (
        t.filter(pl.col("exit_reason") == "signal")
        .select((pl.col("size").abs() * pl.col("exit_price")).sum())
        .item()
    )
    years = sessions / 252
    per_year = (bought + sold) / r.equity["equity"].mean() / years
    bound = 2 * n_drop / k * 252 / rebalance
    assert per_year <= bound * 1.10  # 10%: the drift of a sold position's weight from 1/k
    assert per_year >= bound * 0.6  # random scores do swap: the bound is nearly reached
    # the mean holding period is at least k / n_drop rebalances
    closed = t.filter(pl.col("exit_reason") == "signal")
    held = closed.select((pl.col("exit_date") - pl.col("entry_date")).dt.total_days()).to_series()
    assert held.mean() >= k / n_drop * rebalance * 0.9  # calendar days here = sessions


def test_registered_and_arguments_checked():
    assert get_strategy("topk_dropout") == TopkDropout(k=5, n_drop=1, rebalance=5, band=5)
    assert isinstance(TopkDropout(), ModelSignal)  # sized by weight wherever ModelSignal is
    for bad, fragment in [
        (dict(k=0), "k must"),
        (dict(n_drop=0), "n_drop must"),
        (dict(k=2, n_drop=3), "cannot exceed"),
        (dict(rebalance=0), "rebalance must"),
        (dict(band=-1), "band must"),
        (dict(long_short=True), "long-only"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            TopkDropout(**bad)
    with pytest.raises(ValueError, match="TopkDropout needs a predictions frame"):
        TopkDropout().signals(pl.DataFrame({"ticker": ["A"], "date": [dt.date(2024, 1, 2)]}))


def test_a_missing_bar_on_a_rebalance_day_is_not_a_reason_to_sell():
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    bars = pl.DataFrame(
        [(t, d, 1.0) for t in "ABC" for d in days if not (t == "B" and d == days[2])],
        schema=["ticker", "date", "close"],
        orient="row",
    )
    preds = pl.DataFrame(
        [(d, t, s) for d in days for t, s in zip("ABC", (3.0, 2.0, 1.0), strict=True)],
        schema=["date", "ticker", "y_pred"],
        orient="row",
    )
    s = TopkDropout(k=2, n_drop=1, rebalance=1, band=0).signals(bars, preds)
    held = s.filter(pl.col("signal") > 0).group_by("ticker").len().sort("ticker")
    assert held.rows() == [("A", 4), ("B", 3)]  # B kept through its gap, C never bought
