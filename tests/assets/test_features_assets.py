"""Feature and label assets end to end: ``bars`` -> ``features`` (blocking checks) and ``labels``.

One ranged run of ``daily_data_job`` (module fixture) over the first 60 sessions of 2024 on the
five-ticker synthetic source backs every test: the Parquet files it writes under a temporary data
root are snapshotted right after the run (``<root>/<asset>/<YYYY>/<YYYY-MM-DD>.parquet``). Later
runs are single-partition runs of ``features_job``, the daily increment: one into the ranged run's
root (the partition alone must be byte-identical to the partition in the range), and others into
fresh copies of the snapshot whose later ``bars`` are altered (features of an earlier session must
not move) or extended (labels of the last session fill in).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from run_results import checks_by_name as _checks
from run_results import checks_by_session as _by_session
from run_results import materializations as _materializations
from run_results import metadata_values as _meta

from alphadag.features import FEATURE_COLUMNS, compute_features
from alphadag.market.calendar import sessions
from alphadag.market.schema import BARS_SCHEMA
from alphadag.market.storage import PartitionStore

D = dt.date
TICKERS = ("AAA", "BBB", "CCC", "DDD", "EEE")  # conftest's synthetic source
RANGE = ("2024-01-02", "2024-03-27")
SESSIONS = sessions(*RANGE)
N_TICKERS = len(TICKERS)
LATE = D(2024, 3, 25)  # re-materialized alone into the ranged run's root
CUT = D(2024, 3, 20)  # the bars after it are altered, its features must not move
LAST = SESSIONS[-1]  # labels of the last session look past the range
FOLLOWING = ("2024-03-28", "2024-04-05")  # Good Friday 03-29 inside: 03-28, 04-01 .. 04-05
LABEL_COLUMNS = ["fwd_ret_1d", "fwd_ret_5d", "fwd_ret_20d"]
PRICES = ("open", "high", "low", "close")


def _rel(dataset: str, day: dt.date) -> str:
    return f"{dataset}/{day:%Y}/{day.isoformat()}.parquet"


def _path(root: str, dataset: str, day: dt.date) -> Path:
    return Path(root) / _rel(dataset, day)


def _snapshot(root: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*.parquet"))}


def _frame(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


@dataclasses.dataclass(frozen=True)
class RangedRun:
    result: dg.ExecuteInProcessResult
    root: str
    files: dict[str, bytes]  # every Parquet file right after the run

    def read(self, dataset: str, day: dt.date) -> pl.DataFrame:
        """A partition as the ranged run wrote it (later re-runs into the root do not show)."""
        return _frame(self.files[_rel(dataset, day)])

    def bars_through(self, day: dt.date) -> pl.DataFrame:
        return pl.concat([self.read("bars", d) for d in SESSIONS if d <= day])

    def restore(self, root: Path) -> str:
        """A fresh data root holding exactly the files of the ranged run."""
        for rel, data in self.files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return str(root)


@pytest.fixture(scope="module")
def ranged(run_job, tmp_path_factory) -> RangedRun:
    root = str(tmp_path_factory.mktemp("features_ranged"))
    result = run_job("daily_data_job", root, *RANGE)
    return RangedRun(result, root, _snapshot(root))


def test_ranged_run_succeeds_and_blocking_checks_pass(ranged):
    result = ranged.result
    assert result.success
    checks = _by_session(result)
    # the contract is evaluated per session, the look-ahead audit once for the run
    assert sorted(checks["features_contract"]) == [d.isoformat() for d in SESSIONS]
    (audit_ev,) = checks["features_no_lookahead"].values()
    assert audit_ev.partition is None
    for name in ("features_contract", "features_no_lookahead"):
        for ev in checks[name].values():
            assert ev.passed, (name, _meta(ev))
            assert ev.severity == dg.AssetCheckSeverity.ERROR
            assert ev.asset_key == dg.AssetKey("features")
    for ev in checks["features_contract"].values():
        assert _meta(ev)["rows_checked"] == N_TICKERS
        assert _meta(ev)["n_failure_cases"] == 0
    audit = _meta(audit_ev)
    assert audit["violations"] == 0 and audit["violating_columns"] == "none"
    assert audit["cuts_checked"] == 6  # FeaturesConfig.audit_cuts
    assert len(audit["tickers_audited"].split(", ")) == 3  # FeaturesConfig.audit_tickers
    for asset in ("features", "labels"):
        partitions = sorted(m.partition for m in _materializations(result, asset))
        assert partitions == [d.isoformat() for d in SESSIONS], asset
        for day in SESSIONS:
            assert _path(ranged.root, asset, day).is_file(), (asset, day)
            assert ranged.read(asset, day).height == N_TICKERS, (asset, day)
    # each session's materialization: its own rows and the bars history a run of it alone reads
    for mat in _materializations(result, "features"):
        meta, day = _meta(mat), D.fromisoformat(mat.partition)
        assert meta["rows"] == ranged.read("features", day).height
        assert meta["path"].endswith(f"{day.isoformat()}.parquet")
        assert meta["history_rows_read"] == N_TICKERS * (SESSIONS.index(day) + 1)


def test_features_columns_and_no_label_column(ranged):
    for day in SESSIONS:
        frame = ranged.read("features", day)
        assert frame.columns == ["ticker", "date", *FEATURE_COLUMNS], day
        assert not [c for c in frame.columns if c.startswith("fwd_ret_")]
        assert all(frame.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)
        assert frame["ticker"].to_list() == sorted(TICKERS)
        assert frame["date"].to_list() == [day] * N_TICKERS
        # null during warm-up, never NaN or inf
        assert (
            frame.select(pl.any_horizontal(pl.col(FEATURE_COLUMNS).is_infinite())).sum().item() == 0
        )
        assert frame.select(pl.any_horizontal(pl.col(FEATURE_COLUMNS).is_nan())).sum().item() == 0
        labels = ranged.read("labels", day)
        assert labels.columns == ["ticker", "date", *LABEL_COLUMNS]
        assert labels.select("ticker", "date").equals(frame.select("ticker", "date"))


def test_ranged_features_equal_features_of_the_whole_history(ranged):
    stored = pl.concat([ranged.read("features", d) for d in SESSIONS])
    expected = compute_features(ranged.bars_through(LAST)).sort("date", "ticker")
    assert stored.equals(expected)
    # warm-up over 60 sessions: sma_50 starts at the 50th session, roc_60 never within the range
    assert stored.filter(pl.col("date") == SESSIONS[48])["sma_50"].is_null().all()
    assert stored.filter(pl.col("date") == SESSIONS[49])["sma_50"].is_not_null().all()
    assert stored["roc_60"].is_null().all() and stored["dist_52w_high"].is_null().all()


@dataclasses.dataclass(frozen=True)
class Alone:
    result: dg.ExecuteInProcessResult
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def alone(ranged, run_job) -> Alone:
    """The daily increment: ``features_job`` for LATE alone, into the ranged run's root."""
    result = run_job("features_job", ranged.root, LATE.isoformat())
    return Alone(result, _snapshot(ranged.root))


def test_partition_alone_is_byte_identical_to_the_partition_in_range(ranged, alone):
    result = alone.result
    assert result.success
    checks = _checks(result)
    assert checks["features_contract"].passed and checks["features_no_lookahead"].passed
    for asset in ("features", "labels"):
        assert [m.partition for m in _materializations(result, asset)] == [LATE.isoformat()]
        rel = _rel(asset, LATE)
        assert alone.files[rel] == ranged.files[rel], f"{rel} differs from the ranged run's"
    (mat,) = _materializations(result, "features")
    meta = _meta(mat)
    assert meta["rows"] == N_TICKERS and "sessions_in_run" not in meta
    # the lookback read every bars partition up to LATE and none after it
    assert meta["history_rows_read"] == N_TICKERS * (SESSIONS.index(LATE) + 1)
    assert _materializations(result, "bars") == []  # features_job never touches bars


def test_partition_alone_equals_compute_features_of_the_history(ranged, alone):
    stored = _frame(alone.files[_rel("features", LATE)])
    expected = (
        compute_features(ranged.bars_through(LATE))
        .filter(pl.col("date") == LATE)
        .sort("date", "ticker")
    )
    assert expected.height == N_TICKERS
    assert stored.equals(expected)
    assert stored["sma_50"].is_not_null().all()  # past warm-up: the equality is not of nulls


def test_every_session_computed_alone_equals_the_range(ranged):
    """What a one-session run computes (the bars up to t, then t's rows), for every session of
    the range, equals the ranged run's partition: no feature value may depend on how many
    sessions follow t in the input."""
    bars = ranged.bars_through(LAST)
    differing = {}
    for day in SESSIONS:
        alone = compute_features(bars.filter(pl.col("date") <= day)).filter(pl.col("date") == day)
        stored = ranged.read("features", day)
        cols = [c for c in FEATURE_COLUMNS if not alone[c].equals(stored[c])]
        if cols:
            differing[day.isoformat()] = cols
    assert differing == {}


def _alter(frame: pl.DataFrame, factor: float) -> pl.DataFrame:
    """Scale prices by ``factor`` and volume by 3 (every bars rule still holds)."""
    return frame.with_columns(*[pl.col(c) * factor for c in PRICES], pl.col("volume") * 3.0).cast(
        BARS_SCHEMA
    )


def test_altering_later_bars_does_not_move_earlier_features(ranged, run_job, tmp_path):
    root = ranged.restore(tmp_path / "data")
    store = PartitionStore(root)
    later = [d for d in SESSIONS if d > CUT]
    for k, day in enumerate(later):
        frame = _alter(ranged.read("bars", day), 1.5 + 0.1 * k)
        if k == 0:
            frame = frame.filter(pl.col("ticker") != "BBB")  # and one row gone
        store.write("bars", day, frame)
    beyond = D(2024, 3, 28)  # a session after the range gets bars too
    store.write("bars", beyond, _alter(ranged.read("bars", LAST), 3.0).with_columns(date=beyond))
    # the alteration is visible to the features of the sessions after CUT
    altered = compute_features(store.read("bars", [d for d in SESSIONS if d <= later[0]]))
    assert not altered.filter(pl.col("date") == later[0]).equals(
        ranged.read("features", later[0]).sort("ticker", "date")
    )

    result = run_job("features_job", root, CUT.isoformat())

    assert result.success
    assert _checks(result)["features_no_lookahead"].passed
    rel = _rel("features", CUT)
    assert _path(root, "features", CUT).read_bytes() == ranged.files[rel]
    (mat,) = _materializations(result, "features")
    assert _meta(mat)["history_rows_read"] == N_TICKERS * (SESSIONS.index(CUT) + 1)
    # labels do look ahead (that is what they are): the same run moved them
    labels = pl.read_parquet(_path(root, "labels", CUT))
    assert not labels.equals(ranged.read("labels", CUT))


def _by_hand(bars: pl.DataFrame, start: dt.date, end: dt.date) -> dict[str, float]:
    """ln(close[end] / close[start]) per ticker, one row at a time."""
    close = {(r["ticker"], r["date"]): r["close"] for r in bars.iter_rows(named=True)}
    return {t: math.log(close[(t, end)] / close[(t, start)]) for t in TICKERS}


def test_labels_of_the_last_session_fill_in_when_later_bars_arrive(
    ranged, run_job, run_ingest, market, tmp_path
):
    before = ranged.read("labels", LAST)
    assert before.select(LABEL_COLUMNS).null_count().row(0) == (N_TICKERS,) * 3
    # one session earlier, the 1-day label already exists and is ln(close[t+1] / close[t])
    prev = ranged.read("labels", SESSIONS[-2])
    expected_prev = _by_hand(ranged.bars_through(LAST), SESSIONS[-2], LAST)
    assert dict(prev.select("ticker", "fwd_ret_1d").iter_rows()) == pytest.approx(
        expected_prev, rel=1e-12, abs=1e-15
    )
    assert prev["fwd_ret_5d"].is_null().all()

    root = ranged.restore(tmp_path / "data")
    ingest = run_ingest(root, *FOLLOWING, market_data=market(end="2024-04-30"))
    assert ingest.success
    result = run_job("features_job", root, LAST.isoformat())
    assert result.success

    following = sessions(*FOLLOWING)
    bars = pl.concat(
        [pl.read_parquet(_path(root, "bars", d)) for d in [LAST, *following]], how="vertical"
    )
    after = pl.read_parquet(_path(root, "labels", LAST))
    assert after["ticker"].to_list() == sorted(TICKERS)
    one = dict(after.select("ticker", "fwd_ret_1d").iter_rows())
    assert one == pytest.approx(_by_hand(bars, LAST, following[0]), rel=1e-12, abs=1e-15)
    five = dict(after.select("ticker", "fwd_ret_5d").iter_rows())
    assert five == pytest.approx(_by_hand(bars, LAST, following[4]), rel=1e-12, abs=1e-15)
    assert after["fwd_ret_20d"].is_null().all()  # t+20 is still in the future
    # the features of LAST did not move although bars after it now exist
    assert _path(root, "features", LAST).read_bytes() == ranged.files[_rel("features", LAST)]
