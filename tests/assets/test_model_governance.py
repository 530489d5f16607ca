"""Model governance through ``train_job``, the public path: the gate needs out-of-sample evidence.

Two small synthetic markets (ten tickers, 320 sessions of 2023-2024) are written to a data root
(bars, features, labels per session); ``train_job`` (training_set -> oos_predictions -> return_model) then runs
against a fresh MLflow store for each:

- **null market**: random walks with one drift for every ticker, nothing learnable. The gate
  refuses the first challenger (it cannot beat the baselines out of sample), no ``champion``
  alias is set and serving keeps the momentum baseline.
- **signal market**: the synthetic source's ``signal`` option (the last five daily shocks
  persist, so trailing returns predict the next sessions). The gate promotes, ``champion`` points
  at the refit on every labelled row and its ``trained_through`` is within one refit interval of
  the last labelled session. The market is first written up to ``CUT``; after the rest of its
  sessions arrive, a retrain of the same spec is refused (it cannot beat itself) and the
  champion is refreshed: its own spec refitted through the new last labelled session.

The market resource below adds the synthetic ``drift`` and ``signal`` options to the project's
``MarketDataResource`` (which does not expose them).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from run_results import checks_by_name as _checks
from run_results import materializations as _materializations
from run_results import metadata_values as _meta

from alphadag.defs.assets.features import LABEL_HORIZONS
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.features import compute_features, compute_labels
from alphadag.market.calendar import sessions
from alphadag.market.sources.base import BarSource
from alphadag.market.storage import PartitionStore

TICKERS = tuple(f"T{i:02d}" for i in range(10))
RANGE = ("2023-09-01", "2024-12-06")
CUT = dt.date(2024, 10, 31)  # the signal market is written up to here first, then extended
MODEL = "alphadag-returns"
WALK_FORWARD = {"refit_every": 40, "min_train_sessions": 60}
TRAIN_CONFIG = {
    "ops": {
        "training_set": {"config": {"horizon": 5}},
        "oos_predictions": {"config": WALK_FORWARD},
        "return_model": {"config": {**WALK_FORWARD, "cv_folds": 0}},
    }
}


class SyntheticMarket(MarketDataResource):
    """``MarketDataResource`` with the synthetic source's ``drift`` and ``signal`` options."""

    drift: float = 0.05
    signal: float = 0.0

    def get_source(self) -> BarSource:
        from alphadag.market.sources.synthetic import SyntheticSource

        return SyntheticSource(
            tickers=tuple(self.tickers),
            start=dt.date.fromisoformat(self.synthetic_start),
            end=dt.date.fromisoformat(self.synthetic_end),
            seed=self.synthetic_seed,
            drift=self.drift,
            signal=self.signal,
        )


def _market(signal: float) -> SyntheticMarket:
    return SyntheticMarket(
        source="synthetic",
        tickers=list(TICKERS),
        synthetic_start=RANGE[0],
        synthetic_end=RANGE[1],
        synthetic_seed=11,
        signal=signal,
    )


def _ingested(tmp_path_factory, signal: float, through: dt.date | None = None) -> str:
    root = str(tmp_path_factory.mktemp(f"governance_{signal}"))
    _write(root, signal, through)
    return root


def _write(root: str, signal: float, through: dt.date | None = None) -> None:
    """Bars, features and labels of the market (up to ``through``) as ``daily_data_job`` writes
    them.

    The pure functions the assets call, written per session by the partition store: the
    ingestion path has its own tests, and a 320-session ranged run of it would take minutes.
    """
    raw = _market(signal).get_source().fetch(*map(dt.date.fromisoformat, RANGE))
    bars = raw.select("ticker", "date", "open", "high", "low", "close", "volume")
    if through is not None:
        bars = bars.filter(pl.col("date") <= through)
    store = PartitionStore(root)
    tables = {
        "bars": bars,
        "features": compute_features(bars),
        "labels": compute_labels(bars, horizons=LABEL_HORIZONS),
    }
    for name, table in tables.items():
        parts = table.sort("date", "ticker").partition_by("date", as_dict=True)
        store.write_many(name, {day: part for (day,), part in parts.items()})


@pytest.fixture(scope="module")
def null_root(tmp_path_factory) -> str:
    return _ingested(tmp_path_factory, 0.0)


@pytest.fixture(scope="module")
def signal_root(tmp_path_factory) -> str:
    return _ingested(tmp_path_factory, 0.3, through=CUT)


def _store(tmp_path) -> MlflowResource:
    return MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "art")
    )


def _train(run_job, root: str, store: MlflowResource) -> dict:
    result = run_job("train_job", root, None, run_config=TRAIN_CONFIG, resources={"mlflow": store})
    assert result.success
    assert _checks(result)["return_model_reloads"].passed
    (mat,) = _materializations(result, "return_model")
    return _meta(mat)


def _aliases(store: MlflowResource) -> dict[str, int]:
    from alphadag.models.registry import versions_by_alias

    return versions_by_alias(store.client(), MODEL)


def _gate(meta: dict) -> dict[str, dict]:
    return {c["rival"]: c for c in meta["gate"]}


def test_null_market_the_gate_refuses_and_the_baseline_keeps_serving(run_job, null_root, tmp_path):
    store = _store(tmp_path)
    meta = _train(run_job, null_root, store)
    gate = _gate(meta)
    print(
        "null market gate:",
        {k: (v["gain"], v["se"], v["t"], v["n_dates"]) for k, v in gate.items()},
    )
    assert meta["decision"] == "refused"
    assert "no champion, the baseline keeps serving" in meta["reason"]
    assert set(gate) == {"baseline_momentum", "baseline_reversal"}
    assert not all(c["passed"] for c in gate.values())
    assert meta["n_models_tried"] == 1 and meta["champion_trained_through"] == ""
    assert _aliases(store) == {"challenger": 1}
    # the gate's numbers are in MLflow too, and the test segment was never compared
    run = store.client().get_run(meta["mlflow_run_id"]).data
    assert run.metrics["gate/n_models_tried"] == 1.0
    assert run.metrics["gate/baseline_momentum/n_dates"] == gate["baseline_momentum"]["n_dates"]
    assert run.params["gate/decision"] == "refused"
    assert run.tags["alphadag.n_models_tried"] == "1"
    assert meta["gate_before"] == meta["segments"]["test_start"]
    # the evaluation figures read the same oos_predictions series: model and baselines, before
    # and in the test segment, each with its Newey-West t and interval; the pre-test model mean is
    # the challenger's side of the gate
    table = {(r["who"], r["period"]): r for r in meta["oos_rank_ic"]}
    assert {w for w, _ in table} == {"model", "baseline_momentum", "baseline_reversal"}
    assert {p for _, p in table} == {"pre_test", "test"}
    pre = table[("model", "pre_test")]
    assert pre["rank_ic"] == pytest.approx(gate["baseline_momentum"]["challenger_rank_ic"])
    assert pre["ci_lo"] <= pre["rank_ic"] <= pre["ci_hi"]
    assert run.metrics["oos/model/pre_test/rank_ic_mean"] == pytest.approx(pre["rank_ic"])
    # serving: no champion alias, so the momentum baseline scores the last session
    last = sessions(*RANGE)[-1].isoformat()
    served = run_job("serving_job", null_root, last, resources={"mlflow": store})
    assert served.success
    preds = PartitionStore(null_root).read("predictions", [dt.date.fromisoformat(last)])
    assert set(preds["model_source"]) == {"baseline"}


def test_signal_market_the_gate_promotes_a_fresh_refit(run_job, signal_root, tmp_path):
    store = _store(tmp_path)
    meta = _train(run_job, signal_root, store)
    gate = _gate(meta)
    print(
        "signal market gate:",
        {k: (v["gain"], v["se"], v["t"], v["n_dates"]) for k, v in gate.items()},
    )
    assert meta["decision"] == "promoted", meta["reason"]
    assert meta["seeds"].startswith("deterministic (ridge)")  # one fit, no seed spread
    assert all(c["passed"] and c["gain"] > 2 * c["se"] for c in gate.values())
    # champion is the refit on every labelled row; challenger keeps its own version
    aliases = _aliases(store)
    assert aliases == {"challenger": 1, "champion": 2}
    client = store.client()
    refit = client.get_model_version(MODEL, "2")
    assert refit.tags["alphadag.kind"] == "refit" and refit.tags["alphadag.refit_of"] == "1"
    training = PartitionStore(signal_root).read_table("training_set")
    last_labelled = training["label_end_date"].max()
    through = dt.date.fromisoformat(refit.tags["alphadag.trained_through"])
    days = sessions(*RANGE)
    assert through == last_labelled
    assert meta["champion_trained_through"] == through.isoformat()
    assert meta["last_labelled_session"] == last_labelled.isoformat()
    assert days.index(last_labelled) - days.index(through) <= WALK_FORWARD["refit_every"]
    challenger = client.get_model_version(MODEL, "1")
    assert challenger.tags["alphadag.promotion.decision"] == "promoted"
    assert challenger.tags["alphadag.trained_through"] < meta["segments"]["valid_start"]
    # the out-of-sample series: every date scored by a fit trained strictly before it
    oos = PartitionStore(signal_root).read_table("oos_predictions")
    assert (oos["fit_trained_through"] < oos["date"]).all()
    assert oos.filter(pl.col("segment") == "test").height > 0

    # more sessions arrive; the same spec is retrained. The champion (the refit) is re-scored
    # from its logged spec: the same spec cannot beat itself by k standard errors, so the
    # challenger is refused, and the champion's own spec is refitted through the new data
    _write(signal_root, 0.3)
    again = _train(run_job, signal_root, store)
    assert again["decision"] == "refused" and "champion" in _gate(again)
    assert again["reason"].startswith("champion refreshed (spec unchanged), challenger refused: ")
    assert again["champion_refreshed"] is True
    assert again["n_models_tried"] == 2  # the refit is not a trial
    assert _aliases(store) == {"challenger": 3, "champion": 4, "previous": 2}
    fresh = client.get_model_version(MODEL, "4")
    assert fresh.tags["alphadag.kind"] == "refit" and fresh.tags["alphadag.refit_of"] == "2"
    assert "champion refreshed" in fresh.tags["alphadag.refresh_reason"]
    new_last = PartitionStore(signal_root).read_table("training_set")["label_end_date"].max()
    assert new_last > last_labelled
    assert fresh.tags["alphadag.trained_through"] == new_last.isoformat()
    assert again["champion_trained_through"] == again["last_labelled_session"]
    assert again["last_labelled_session"] == new_last.isoformat()
    assert again["champion_version"] == 4 and again["previous_champion_version"] == 2
    challenger_run = client.get_run(again["mlflow_run_id"]).data
    assert challenger_run.tags["alphadag.gate.outcome"] == again["reason"]
    assert client.get_run(fresh.run_id).data.params["family"] == "ridge"

    # another spec: the champion's series is recomputed from its logged spec on the same rows
    other = {**WALK_FORWARD, "family": "hgb", "params": {"max_iter": 20}}
    config = {
        "ops": {
            **TRAIN_CONFIG["ops"],
            "oos_predictions": {"config": other},
            "return_model": {"config": {**other, "cv_folds": 0}},
        }
    }
    result = run_job("train_job", signal_root, None, run_config=config, resources={"mlflow": store})
    assert result.success
    third_meta = _meta(_materializations(result, "return_model")[0])
    third = _gate(third_meta)
    # hgb has randomness: valid / test rank IC as mean +- std over three seeds
    assert third_meta["seeds"] == "0,1,2"
    assert third_meta["test_rank_ic_seed_std"] >= 0
    metrics = client.get_run(third_meta["mlflow_run_id"]).data.metrics
    assert metrics["seeds/test/rank_ic_mean"] == pytest.approx(third_meta["test_rank_ic_seed_mean"])
    assert "seeds/valid/rank_ic_std" in metrics
    assert third["champion"]["n_dates"] == third["baseline_momentum"]["n_dates"]
    assert third["champion"]["rival_rank_ic"] == pytest.approx(
        _gate(again)["baseline_momentum"]["challenger_rank_ic"]
    )


def test_lineage_train_job_and_predictions(defs):
    selected = defs.resolve_job_def("train_job").asset_layer.selected_asset_keys
    assert dg.AssetKey("oos_predictions") in selected
    graph = defs.resolve_asset_graph()
    # predictions is scored by the model return_model promotes; the gate and the backtest read
    # the out-of-sample series as inputs
    assert dg.AssetKey("return_model") in graph.get(dg.AssetKey("predictions")).parent_keys
    for child in ("return_model", "backtest_report"):
        assert dg.AssetKey("oos_predictions") in graph.get(dg.AssetKey(child)).parent_keys
    assert graph.get(dg.AssetKey("oos_predictions")).parent_keys == {dg.AssetKey("training_set")}
