"""Ingestion assets end to end: ``raw_bars`` -> ``bars`` + ``quarantined_bars`` and the checks on ``bars``.

One ranged run of ``ingest_job`` (module fixture) over March 2024 plus the first week of April, on a
five-ticker synthetic source whose coverage ends 2024-03-28 and which carries one fault of every
kind, backs most tests: the files it writes under a temporary data root are read back directly
(``<root>/<asset>/<YYYY>/<YYYY-MM-DD>.parquet``). Smaller runs cover what that one cannot: a
single-partition re-run into the same root, a session the source left empty, corrupt stored data
under the contract checks alone, and a landing file that cannot be parsed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from run_results import checks_by_session as _by_session
from run_results import materializations as _materializations
from run_results import metadata_values as _meta

from alphadag.defs.assets.ingestion import raw_bars
from alphadag.defs.automation.partitions import sessions_partitions
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.market.calendar import sessions
from alphadag.market.schema import BARS_SCHEMA, QUARANTINE_SCHEMA
from alphadag.market.storage import PartitionStore

DATASETS = ("raw_bars", "bars", "quarantined_bars")
RANGE = ("2024-03-01", "2024-04-05")  # Good Friday 2024-03-29 inside; coverage ends 03-28
COVERED = sessions("2024-03-01", "2024-03-28")
BEYOND = sessions("2024-03-29", "2024-04-05")
ALL_SESSIONS = COVERED + BEYOND

FAULTS = (
    "nan:AAA:2024-03-05",
    "negative_price:BBB:2024-03-06",
    "high_lt_low:CCC:2024-03-07",
    "duplicate_row:DDD:2024-03-08",
    "off_calendar_date:EEE:2024-03-11",  # a Monday: the extra row is dated Sunday 03-10
    "spike_10x:AAA:2024-03-14",
)
D = dt.date
# (ticker, date as delivered, partition, first rule broken) of every row that must be quarantined
EXPECTED_QUARANTINE = {
    ("AAA", D(2024, 3, 5), D(2024, 3, 5), "price_finite_positive"),
    ("BBB", D(2024, 3, 6), D(2024, 3, 6), "price_finite_positive"),
    ("CCC", D(2024, 3, 7), D(2024, 3, 7), "high_consistent"),
    ("DDD", D(2024, 3, 8), D(2024, 3, 8), "unique_ticker_date"),
    ("EEE", D(2024, 3, 10), D(2024, 3, 11), "date_is_session"),
    ("AAA", D(2024, 3, 14), D(2024, 3, 14), "max_daily_move"),
}
N_TICKERS = 5
RAW_ROWS = N_TICKERS * len(COVERED) + 2  # plus the duplicate and the off-calendar copy
KEPT_ROWS = N_TICKERS * len(COVERED) - 4  # nan, negative, high<low and the spike are rejected


def _path(root: str, dataset: str, day: dt.date) -> Path:
    return Path(root) / dataset / f"{day:%Y}" / f"{day.isoformat()}.parquet"


def _rel(dataset: str, day: dt.date) -> str:
    return f"{dataset}/{day:%Y}/{day.isoformat()}.parquet"


def _read(root: str, dataset: str, day: dt.date) -> pl.DataFrame:
    return pl.read_parquet(_path(root, dataset, day))


@dataclasses.dataclass(frozen=True)
class FileState:
    data: bytes
    mtime_ns: int
    inode: int


def _snapshot(root: str) -> dict[str, FileState]:
    out = {}
    for path in sorted(Path(root).rglob("*.parquet")):
        st = path.stat()
        out[str(path.relative_to(root))] = FileState(path.read_bytes(), st.st_mtime_ns, st.st_ino)
    return out


@dataclasses.dataclass(frozen=True)
class RangedRun:
    result: dg.ExecuteInProcessResult
    root: str
    files: dict[str, FileState]  # every Parquet file right after the run
    started: dt.datetime
    ended: dt.datetime

    def read(self, dataset: str, day: dt.date) -> pl.DataFrame:
        """A partition as the ranged run wrote it (later re-runs into the root do not show)."""
        return pl.read_parquet(io.BytesIO(self.files[_rel(dataset, day)].data))


@pytest.fixture(scope="module")
def faulty_run(run_ingest, market, tmp_path_factory) -> RangedRun:
    root = str(tmp_path_factory.mktemp("faulty_run"))
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = run_ingest(root, *RANGE, market_data=market(faults=FAULTS))
    ended = dt.datetime.now(dt.UTC)
    return RangedRun(result, root, _snapshot(root), started, ended)


KEYS = [d.isoformat() for d in ALL_SESSIONS]


def test_ranged_run_succeeds_and_blocking_checks_pass(faulty_run):
    """Every check records one evaluation per session of the range, each of that session."""
    result = faulty_run.result
    assert result.success
    checks = _by_session(result)
    assert set(checks) == {
        "bars_pandera_schema",
        "bars_gx_suite",
        "bars_sessions_complete",
        "large_moves",
        "quarantine_share",
    }
    for name, by_session in checks.items():
        assert sorted(by_session) == KEYS, name
    for name in ("bars_pandera_schema", "bars_gx_suite", "bars_sessions_complete"):
        for key, ev in checks[name].items():
            assert ev.passed, (name, key, _meta(ev))
            assert ev.severity == dg.AssetCheckSeverity.ERROR and ev.blocking
    rows = {k: _meta(ev)["rows_checked"] for k, ev in checks["bars_pandera_schema"].items()}
    assert rows == {
        k: faulty_run.read("bars", d).height for k, d in zip(KEYS, ALL_SESSIONS, strict=True)
    }
    assert sum(rows.values()) == KEPT_ROWS
    assert all(_meta(ev)["gx_failed_count"] == 0 for ev in checks["bars_gx_suite"].values())
    for asset in DATASETS:
        partitions = sorted(m.partition for m in _materializations(result, asset))
        assert partitions == [d.isoformat() for d in ALL_SESSIONS], asset


def test_quarantine_holds_exactly_the_faulty_rows(faulty_run):
    frames = [faulty_run.read("quarantined_bars", d) for d in ALL_SESSIONS]
    quarantined = pl.concat(frames)
    assert dict(quarantined.schema) == QUARANTINE_SCHEMA
    got = {
        (r["ticker"], r["date"], r["partition_date"], r["rule"])
        for r in quarantined.iter_rows(named=True)
    }
    assert quarantined.height == len(EXPECTED_QUARANTINE)
    assert got == EXPECTED_QUARANTINE
    for day, frame in zip(ALL_SESSIONS, frames, strict=True):
        # each rejected row sits in the file of the partition it was delivered in
        assert frame["partition_date"].to_list() == [day] * frame.height
    for row in quarantined.iter_rows(named=True):
        assert row["rule"] == row["failed_rules"][0]
        assert row["origin"] == "synthetic:seed=7"
        for part in (row["origin"], row["ticker"], str(row["date"]), row["rule"]):
            assert part in row["reason"]
    negative = quarantined.filter(pl.col("ticker") == "BBB").row(0, named=True)
    assert negative["close"] < 0 and negative["value"].startswith("close=-")
    assert (
        quarantined.filter(pl.col("ticker") == "AAA", pl.col("date") == D(2024, 3, 5))["close"]
        .is_nan()
        .all()
    )


def test_faulty_values_never_reach_bars(faulty_run):
    bars = pl.concat([faulty_run.read("bars", d) for d in ALL_SESSIONS])
    assert dict(bars.schema) == BARS_SCHEMA
    assert bars.height == KEPT_ROWS
    assert bars.select("ticker", "date").is_duplicated().sum() == 0
    assert set(bars["date"].to_list()) == set(COVERED)
    counts = dict(bars.group_by("date").len().iter_rows())
    holes = {D(2024, 3, 5), D(2024, 3, 6), D(2024, 3, 7), D(2024, 3, 14)}
    assert counts == {d: N_TICKERS - (d in holes) for d in COVERED}
    assert bars.filter(pl.col("ticker") == "DDD", pl.col("date") == D(2024, 3, 8)).height == 1
    assert bars.filter(pl.col("ticker") == "EEE", pl.col("date") == D(2024, 3, 11)).height == 1
    assert (bars["close"] > 0).all() and bars["close"].is_finite().all()
    assert (bars["high"] >= bars["low"]).all()


def test_rows_are_conserved_per_partition(faulty_run):
    total = {name: 0 for name in DATASETS}
    for day in ALL_SESSIONS:
        n = {name: faulty_run.read(name, day).height for name in DATASETS}
        assert n["raw_bars"] == n["bars"] + n["quarantined_bars"], day
        for name in DATASETS:
            total[name] += n[name]
    assert total == {
        "raw_bars": RAW_ROWS,
        "bars": KEPT_ROWS,
        "quarantined_bars": len(EXPECTED_QUARANTINE),
    }


def test_warn_checks_reflect_the_faults(faulty_run):
    """quarantine_share fails exactly the sessions with a quarantined row, with their own share."""
    checks = _by_session(faulty_run.result)
    rule = {p.isoformat(): r for _, _, p, r in EXPECTED_QUARANTINE}
    for key, share in checks["quarantine_share"].items():
        assert share.severity == dg.AssetCheckSeverity.WARN
        meta = _meta(share)
        n_in = faulty_run.read("raw_bars", D.fromisoformat(key)).height
        if key in rule:  # 1 of 5 (or of 6, with the duplicate or the off-calendar copy) > 1%
            assert not share.passed, key
            assert meta["share"] == round(1 / n_in, 6) and meta["rows_quarantined"] == 1
            assert meta["by_rule"] == {rule[key]: 1}
        else:
            assert share.passed, key
            assert meta["share"] == 0.0 and meta["by_rule"] == {}
        assert meta["rows_in"] == n_in
    assert {k for k, ev in checks["quarantine_share"].items() if not ev.passed} == set(rule)
    # the 10x spike is beyond the reject band: quarantined, not merely flagged
    for moves in checks["large_moves"].values():
        assert moves.severity == dg.AssetCheckSeverity.WARN
        assert moves.passed and _meta(moves)["n_flagged"] == 0


def test_large_moves_flags_a_spike_kept_by_a_wider_reject_band(run_ingest, market, data_root):
    config = {"ops": {"validated_bars": {"config": {"reject_factor": 20.0}}}}
    result = run_ingest(
        data_root,
        "2024-03-07",
        "2024-03-14",
        market_data=market(faults=["spike_10x:AAA:2024-03-14"]),
        run_config=config,
    )
    assert result.success  # WARN checks never fail a run
    checks = _by_session(result)
    moves = checks["large_moves"]
    assert sorted(moves) == [d.isoformat() for d in sessions("2024-03-07", "2024-03-14")]
    assert [k for k, ev in moves.items() if not ev.passed] == ["2024-03-14"]
    meta = _meta(moves["2024-03-14"])
    assert meta["n_flagged"] == 1
    assert "AAA" in meta["flagged"] and "2024-03-14" in meta["flagged"]
    assert all("flagged" not in _meta(ev) for k, ev in moves.items() if k != "2024-03-14")
    for share in checks["quarantine_share"].values():
        assert share.passed and _meta(share)["share"] == 0.0
    kept = _read(data_root, "bars", D(2024, 3, 14)).filter(pl.col("ticker") == "AAA")
    before = _read(data_root, "bars", D(2024, 3, 13)).filter(pl.col("ticker") == "AAA")
    assert kept["close"][0] / before["close"][0] > 5


def test_materialization_metadata(faulty_run):
    """Each partition's materialization carries its own session's figures (rows, tickers, path
    and bytes of its file), plus what holds for every session of the run (source, fetch time,
    coverage); no run totals."""
    result = faulty_run.result
    for name in DATASETS:
        mats = _materializations(result, name)
        assert sorted(m.partition for m in mats) == KEYS
        for mat in mats:
            meta, day = _meta(mat), D.fromisoformat(mat.partition)
            frame = faulty_run.read(name, day)
            assert meta["rows"] == meta["dagster/row_count"] == frame.height, (name, day)
            assert meta["tickers"] == frame["ticker"].n_unique()
            assert meta["path"] == str(_path(faulty_run.root, name, day))
            assert meta["bytes"] == len(faulty_run.files[_rel(name, day)].data)
            assert not {"sessions", "sessions_in_run", "partitions_written"} & meta.keys()
    for mat in _materializations(result, "raw_bars"):
        meta = _meta(mat)
        assert meta["source"] == "synthetic"
        assert meta["fetch_seconds"] >= 0
        fetched = dt.datetime.fromisoformat(meta["fetched_at"])
        assert faulty_run.started <= fetched <= faulty_run.ended
        assert meta["coverage"] == "2024-01-02 .. 2024-03-28"
        assert meta["beyond_source_coverage"] == (D.fromisoformat(mat.partition) in BEYOND)
    quarantined = {p.isoformat() for _, _, p, _ in EXPECTED_QUARANTINE}
    for mat in _materializations(result, "bars"):
        meta, day = _meta(mat), D.fromisoformat(mat.partition)
        assert meta["rows_in"] == faulty_run.read("raw_bars", day).height
        assert meta["rows_quarantined"] == (mat.partition in quarantined)
    for mat in _materializations(result, "quarantined_bars"):
        meta = _meta(mat)
        assert sum(meta["by_rule"].values()) == meta["rows"] == (mat.partition in quarantined)
    by_day = {m.partition: _meta(m) for m in _materializations(result, "bars")}
    assert len({m["rows"] for m in by_day.values()}) > 1  # the sessions differ
    assert by_day["2024-03-14"]["rows"] == N_TICKERS - 1  # the spike was rejected


@dataclasses.dataclass(frozen=True)
class Rerun:
    day: dt.date
    results: list[dg.ExecuteInProcessResult]
    states: list[dict[str, FileState]]  # files after the ranged run, then after each re-run

    @property
    def own(self) -> set[str]:
        return {_rel(name, self.day) for name in DATASETS}


@pytest.fixture(scope="module")
def rerun(faulty_run, run_ingest, market) -> Rerun:
    """The daily increment, twice: single-partition runs of 2024-03-14 into the ranged run's root.

    2024-03-14 holds the 10x spike, which is judged against the five earlier ``raw_bars``
    partitions the lookback loads, so the partition alone exercises the lookback.
    """
    day = D(2024, 3, 14)
    results, states = [], [faulty_run.files]
    for _ in range(2):
        results.append(
            run_ingest(faulty_run.root, day.isoformat(), market_data=market(faults=FAULTS))
        )
        states.append(_snapshot(faulty_run.root))
    return Rerun(day, results, states)


def test_one_partition_rerun_rewrites_only_its_own_files(rerun):
    for result in rerun.results:
        assert result.success
        for name in DATASETS:
            assert [m.partition for m in _materializations(result, name)] == [rerun.day.isoformat()]
    first = rerun.states[0]
    assert rerun.own <= first.keys()
    for prev, cur in itertools.pairwise(rerun.states):
        assert cur.keys() == first.keys()
        for rel in rerun.own:
            assert cur[rel].inode != prev[rel].inode, f"{rel} was not rewritten"
        for rel in first.keys() - rerun.own:
            assert cur[rel] == first[rel], f"{rel} changed (bytes, mtime_ns or inode)"


def test_single_partition_metadata_counts_that_partition(rerun):
    result = rerun.results[0]
    (raw,) = _materializations(result, "raw_bars")
    assert _meta(raw)["rows"] == N_TICKERS and _meta(raw)["tickers"] == N_TICKERS
    assert _meta(raw)["beyond_source_coverage"] is False
    (bars,) = _materializations(result, "bars")
    assert _meta(bars)["rows"] == _meta(bars)["dagster/row_count"] == N_TICKERS - 1
    (quarantined,) = _materializations(result, "quarantined_bars")
    assert _meta(quarantined)["rows"] == 1


def test_move_reference_is_the_median_of_the_five_previous_closes(faulty_run, rerun):
    """The spike's reference is the median of AAA's five valid closes before 2024-03-14.

    Computed independently from the stored ``raw_bars`` files; checked for the partition inside
    the ranged run and for the partition materialized alone.
    """
    raw = pl.concat([faulty_run.read("raw_bars", d) for d in sessions("2024-03-01", "2024-03-13")])
    closes = raw.filter(pl.col("ticker") == "AAA", pl.col("close").is_finite(), pl.col("close") > 0)
    expected = round(closes.sort("date")["close"].tail(5).median(), 6)
    assert closes.height >= 5
    ranged = faulty_run.read("quarantined_bars", rerun.day).row(0, named=True)["value"]
    alone = pl.read_parquet(io.BytesIO(rerun.states[1][_rel("quarantined_bars", rerun.day)].data))
    for value in (ranged, alone.row(0, named=True)["value"]):
        assert float(value.rsplit("reference=", 1)[1]) == pytest.approx(expected, abs=1e-6), value


def test_partition_alone_is_byte_identical_to_the_partition_in_range(rerun):
    """Same inputs, same bytes: the ranged run, the partition alone, and the partition again."""
    first = rerun.states[0]
    for state in rerun.states[1:]:
        for rel in sorted(rerun.own):
            assert state[rel].data == first[rel].data, f"{rel} differs from the ranged run's"
    alone = pl.read_parquet(io.BytesIO(rerun.states[-1][_rel("quarantined_bars", rerun.day)].data))
    assert alone.select("ticker", "rule").rows() == [("AAA", "max_daily_move")]


def test_holiday_is_not_a_partition(faulty_run):
    keys = set(sessions_partitions.get_partition_keys())
    assert {"2024-01-15", "2024-03-29", "2024-12-25"}.isdisjoint(keys)  # MLK, Good Friday, Xmas
    assert {"2024-01-13", "2024-01-14"}.isdisjoint(keys)  # a weekend
    assert {"2024-01-12", "2024-01-16", "2024-03-28", "2024-04-01"} <= keys
    assert sum(k.startswith("2024-") for k in keys) == 252  # NYSE sessions in 2024
    # a ranged run across Good Friday writes no file for it
    for name in DATASETS:
        assert not _path(faulty_run.root, name, D(2024, 3, 29)).exists()


def test_sessions_beyond_coverage_are_empty_partitions(faulty_run):
    assert faulty_run.result.success
    for day in BEYOND:
        for name in DATASETS:
            assert faulty_run.read(name, day).height == 0, (name, day)
        assert dict(faulty_run.read("bars", day).schema) == BARS_SCHEMA
    complete = _by_session(faulty_run.result)["bars_sessions_complete"]
    assert all(ev.passed for ev in complete.values())
    beyond = {k for k, ev in complete.items() if _meta(ev)["beyond_coverage"]}
    assert beyond == {d.isoformat() for d in BEYOND} and len(beyond) == 5
    assert all(_meta(complete[d.isoformat()])["rows"] == 0 for d in BEYOND)
    assert all(_meta(complete[d.isoformat()])["rows"] > 0 for d in COVERED)


def _vendor_csv(path: Path, days: list[str], base: float) -> None:
    closes = [base + i for i in range(len(days))]
    pl.DataFrame(
        {
            "Date": days,
            "Open": closes,
            "High": [c + 1 for c in closes],
            "Low": [c - 1 for c in closes],
            "Adj Close": closes,
            "Volume": [1000.0] * len(days),
        }
    ).write_csv(path)


def test_empty_session_inside_coverage_fails_the_blocking_check(run_ingest, data_root, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    days = ["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-08"]  # the vendor skipped 01-04
    _vendor_csv(landing / "AAPL.csv", days, 185.0)
    _vendor_csv(landing / "MSFT.csv", days, 370.0)
    market_data = MarketDataResource(
        source="csv", landing_dir=str(landing), csv_column_map={"Adj Close": "close"}
    )
    result = run_ingest(data_root, "2024-01-02", "2024-01-08", market_data=market_data)

    assert not result.success
    checks = _by_session(result)
    complete = checks["bars_sessions_complete"]
    assert sorted(complete) == [*days[:2], "2024-01-04", *days[2:]]
    assert [k for k, ev in complete.items() if not ev.passed] == ["2024-01-04"]
    assert complete["2024-01-04"].severity == dg.AssetCheckSeverity.ERROR
    assert _meta(complete["2024-01-04"])["rows"] == 0
    assert all(_meta(complete[d])["rows"] == 2 for d in days)
    for name in ("bars_pandera_schema", "bars_gx_suite"):
        assert all(ev.passed for ev in checks[name].values()), name
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    error = failures[0].event_specific_data.error
    assert error.cls_name == "DagsterAssetCheckFailedError"
    assert "bars_sessions_complete" in error.message
    # write-audit-publish: the empty session is held back (staged, not published), the others
    # are published
    assert not _path(data_root, "bars", D(2024, 1, 4)).exists()
    staged = _meta(complete["2024-01-04"])["staged_path"]
    assert "/_staging/bars/" in staged and pl.read_parquet(staged).height == 0
    assert _meta(complete["2024-01-04"])["published"] is False
    assert _read(data_root, "bars", D(2024, 1, 5)).height == 2
    assert all(_meta(complete[d])["published"] for d in days)


def test_contract_checks_catch_a_corrupt_staged_partition(data_root, market):
    """The contract audit on a staged partition a validation bug let through: a negative price and
    a duplicate (ticker, date). Both checks fail that session with their cases in the metadata."""
    from alphadag.defs.assets.bars_checks import audit_bars

    day = D(2024, 3, 5)
    corrupt = pl.DataFrame(
        {
            "ticker": ["AAA", "AAA", "BBB"],
            "date": [day] * 3,
            "open": [10.0, 10.0, 20.0],
            "high": [11.0, 11.0, 21.0],
            "low": [9.0, 9.0, 19.0],
            "close": [10.5, 10.5, -20.0],  # a negative price
            "volume": [100.0, 100.0, 200.0],
        },  # and AAA twice: a duplicate (ticker, date)
        schema=BARS_SCHEMA,
    )
    store = PartitionStore(data_root)
    store.stage_many("bars", "run1", {day: corrupt})
    staged = store.read_staged("bars", "run1", [day])
    checks = audit_bars(staged, [day], market().get_source().coverage())
    assert set(checks) == {"bars_pandera_schema", "bars_gx_suite", "bars_sessions_complete"}

    passed, pandera = checks["bars_pandera_schema"][day.isoformat()]
    assert not passed
    assert pandera["rows_checked"] == 3
    assert pandera["failures_by_check"]["close:finite_positive"] == 1
    assert pandera["failures_by_check"]["bars:multiple_fields_uniqueness"] == 2
    assert {"column": "close", "check": "finite_positive", "failure_case": "-20.0", "index": 2} in (
        pandera["failure_cases"]
    )

    passed, gx = checks["bars_gx_suite"][day.isoformat()]
    assert not passed
    assert "expect_column_values_to_be_between(close)" in gx["gx_failed_expectations"]
    assert "expect_compound_columns_to_be_unique(ticker, date)" in gx["gx_failed_expectations"]
    by_rule = {(f["expectation"], tuple(f["columns"])): f for f in gx["gx_failed"]}
    assert by_rule[("expect_column_values_to_be_between", ("close",))]["unexpected_sample"] == [
        -20.0
    ]
    dup = by_rule[("expect_compound_columns_to_be_unique", ("ticker", "date"))]
    assert dup["unexpected_count"] == 2
    assert {"ticker": "AAA", "date": "2024-03-05"} in dup["unexpected_sample"]
    assert checks["bars_sessions_complete"][day.isoformat()][0]  # rows are there
    assert not store.exists("bars", day)  # auditing never publishes


def test_a_failing_session_never_replaces_its_published_bars(run_job, data_root, market):
    """A published session re-ingested when the source's bars are all bad: every row is
    quarantined, the completeness check fails that session and the run stops before features;
    bars and features of that session keep their published files (byte for byte), the staged empty
    file is kept and named, the quarantined rows are kept with reasons, and the next good run
    publishes the session and sweeps the held staged file."""
    day = D(2024, 3, 6)
    tickers = ("AAA", "BBB", "CCC")
    good = market(tickers=tickers)
    first = run_job("daily_job", data_root, "2024-03-01", "2024-03-06", market_data=good)
    assert first.success
    before = {name: _path(data_root, name, day).read_bytes() for name in ("bars", "features")}

    bad = market(tickers=tickers, faults=[f"nan:{t}:{day}" for t in tickers])
    result = run_job("daily_job", data_root, day.isoformat(), market_data=bad)

    assert not result.success
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert failed == ["validated_bars"]
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "features" not in started
    for name in ("bars", "features"):
        assert _path(data_root, name, day).read_bytes() == before[name], name
    complete = _by_session(result)["bars_sessions_complete"][day.isoformat()]
    assert not complete.passed
    staged = _meta(complete)["staged_path"]
    assert pl.read_parquet(staged).height == 0
    quarantined = _read(data_root, "quarantined_bars", day)
    assert sorted(quarantined["ticker"].to_list()) == list(tickers)
    assert set(quarantined["rule"].to_list()) == {"price_finite_positive"}

    again = run_job("ingest_job", data_root, day.isoformat(), market_data=good)
    assert again.success
    assert _path(data_root, "bars", day).read_bytes() == before["bars"]  # same input, same bytes
    assert not Path(staged).exists()
    assert not (Path(data_root) / "_staging").exists()


def _landing_with_a_broken_file(tmp_path: Path) -> tuple[MarketDataResource, Path]:
    landing = tmp_path / "landing"
    landing.mkdir()
    _vendor_csv(landing / "MSFT.csv", ["2024-01-02", "2024-01-03"], 370.0)
    bad = landing / "AAPL.csv"
    bad.write_text("Date,Adj Close\n2024-01-02,185.6\nnot-a-date,186.0\n")
    market_data = MarketDataResource(
        source="csv", landing_dir=str(landing), csv_column_map={"Adj Close": "close"}
    )
    return market_data, bad


def test_a_broken_landing_file_is_set_aside_and_the_good_ones_ingested(
    run_job, data_root, tmp_path
):
    market_data, bad = _landing_with_a_broken_file(tmp_path)
    alerts = AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl"))
    result = run_job(
        "ingest_job",
        data_root,
        "2024-01-02",
        "2024-01-03",
        market_data=market_data,
        resources={"alerts": alerts},
    )

    assert result.success
    step_events = [e.event_type_value for e in result.all_events if e.step_key == "raw_bars"]
    assert "STEP_UP_FOR_RETRY" not in step_events
    for day in (D(2024, 1, 2), D(2024, 1, 3)):
        assert _read(data_root, "bars", day)["ticker"].to_list() == ["MSFT"]
    (raw,) = [m for m in _materializations(result, "raw_bars") if m.partition == "2024-01-02"]
    meta = _meta(raw)
    assert meta["rejected_files"] == 1
    (rejected,) = meta["rejected"]
    assert rejected["path"] == str(bad) and "not-a-date" in rejected["reason"]
    sent = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(a["kind"], a["path"]) for a in sent] == [("landing_file_rejected", str(bad))]
    assert "not-a-date" in sent[0]["message"]
    manifest = bad.parent / "_quarantine" / "manifest.jsonl"
    (entry,) = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert entry["path"] == str(bad) and Path(entry["copy"]).read_bytes() == bad.read_bytes()

    # the same broken file in the next run: recorded once, alerted once
    again = run_job(
        "ingest_job", data_root, "2024-01-03", market_data=market_data, resources={"alerts": alerts}
    )
    assert again.success
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 1
    assert len(manifest.read_text().splitlines()) == 1


def test_raw_bars_attributes_an_off_calendar_row_to_the_next_session(market, tmp_path):
    """Direct invocation: the Sunday copy is delivered in Monday's partition, not dropped."""
    context = dg.build_asset_context(partition_key="2024-03-11")
    out = raw_bars(
        context,
        market_data=market(faults=["off_calendar_date:EEE:2024-03-11"]),
        alerts=AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl")),
    )
    frame = out.value
    assert frame.height == N_TICKERS + 1
    assert frame["partition_date"].unique().to_list() == [D(2024, 3, 11)]
    assert frame.filter(pl.col("date") == D(2024, 3, 10))["ticker"].to_list() == ["EEE"]
    assert out.metadata["source"].value == "synthetic"
