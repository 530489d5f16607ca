"""Unit tests for the raw-bar validation rules: kept, quarantined and flagged rows."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphadag.market.calendar import sessions
from alphadag.market.contracts import check_bars
from alphadag.market.ingest import attribute_partitions, fetch_partitions
from alphadag.market.schema import BARS_SCHEMA, QUARANTINE_SCHEMA, RAW_BARS_SCHEMA, conform_raw
from alphadag.market.sources.synthetic import Fault, SyntheticSource, random_faults
from alphadag.market.validation import (
    REJECT_RULES,
    RULE_NAMES,
    MoveBounds,
    ValidationResult,
    validate,
)

RAW_SCHEMA = {**RAW_BARS_SCHEMA, "partition_date": pl.Date()}
DAYS = sessions("2022-11-01", "2022-12-30")
D = dt.date(2022, 12, 27)  # a Tuesday after the Christmas holiday
HISTORY_DAYS = [d for d in DAYS if d < D][-6:]
ORIGIN = "vendor/file-2022-12-27.csv"
NAN = float("nan")


def row(
    ticker: str = "AAA",
    date: dt.date | None = D,
    *,
    open: float | None = 100.0,
    high: float | None = 101.0,
    low: float | None = 99.0,
    close: float | None = 100.5,
    volume: float | None = 1000.0,
    origin: str | None = ORIGIN,
    partition_date: dt.date | None = None,
    parse_errors: str | None = None,
) -> dict:
    return {
        "ticker": ticker,
        "date": date,
        "open": open,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "origin": origin,
        "parse_errors": parse_errors,
        "partition_date": partition_date if partition_date is not None else date,
    }


def close_only(ticker: str, date: dt.date, close: float | None, **kw) -> dict:
    return row(ticker, date, open=None, high=None, low=None, close=close, volume=None, **kw)


def raw(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def history(ticker: str = "AAA", close: float = 100.0) -> pl.DataFrame:
    """Six clean earlier sessions at a constant close: a move reference of exactly ``close``."""
    return raw(
        [
            row(ticker, d, open=close, high=close, low=close, close=close, origin="hist")
            for d in HISTORY_DAYS
        ]
    )


def series(closes: list[float | None], ticker: str = "AAA") -> pl.DataFrame:
    """Close-only bars of one ticker on consecutive sessions, each row's origin naming its index."""
    return raw([close_only(ticker, DAYS[i], c, origin=f"row{i}") for i, c in enumerate(closes)])


# ---------------------------------------------------------------------------------------------
# one test per rule


RULE_CASES = {
    "ticker_canonical": (row(ticker="AA PL"), "ticker=AA PL"),
    "date_is_session": (row(date=dt.date(2022, 12, 25), partition_date=D), "date=2022-12-25"),
    "non_numeric": (
        row(volume=None, parse_errors="volume='12abc' is not a number"),
        "volume='12abc' is not a number",
    ),
    "close_present": (row(close=None), "close=null"),
    "price_finite_positive": (row(open=0.0, high=None, low=None), "open=0.0"),
    "high_consistent": (
        row(open=100.0, high=99.0, low=98.0, close=99.5),
        "high=99.0 open=100.0 close=99.5",
    ),
    "low_consistent": (
        row(open=100.0, high=101.0, low=100.5, close=100.2),
        "low=100.5 open=100.0 close=100.2",
    ),
    "volume_valid": (row(volume=-1.0), "volume=-1.0"),
    "unique_ticker_date": (row(ticker="aaa", close=100.7), "ticker=aaa date=2022-12-27"),
    "max_daily_move": (row(open=None, high=None, low=None, close=1000.0), None),
}


def test_every_rule_has_a_case() -> None:
    assert set(RULE_CASES) == set(RULE_NAMES)
    assert len(RULE_NAMES) == len(set(RULE_NAMES)) == len(REJECT_RULES)


@pytest.mark.parametrize("rule", list(RULE_CASES))
def test_each_rule_quarantines_with_rule_value_and_reason(rule: str) -> None:
    bad, value = RULE_CASES[rule]
    clean = row(ticker="AAA")  # the first (kept) row of the duplicate pair for unique_ticker_date
    rows = [clean, bad] if rule == "unique_ticker_date" else [bad]
    res = validate(raw(rows), partition_dates=[D], history=history())
    assert res.quarantined.height == 1
    q = res.quarantined.row(0, named=True)
    assert q["rule"] == rule
    assert q["failed_rules"] == [rule]
    expected_value = "close=1000.0 reference=100.0" if rule == "max_daily_move" else value
    assert q["value"] == expected_value
    assert q["partition_date"] == D
    reason = q["reason"]
    assert ORIGIN in reason
    assert bad["ticker"] in reason
    assert bad["date"].isoformat() in reason
    assert rule in reason
    assert res.kept.height == len(rows) - 1
    assert res.quarantined.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert res.counts_by_rule() == {name: int(name == rule) for name in RULE_NAMES}


def test_a_row_breaking_several_rules_lists_them_all_in_rule_order() -> None:
    bad = row(ticker="AAA", open=-1.0, high=99.0, low=101.0, close=100.0, volume=-5.0)
    res = validate(raw([bad]), partition_dates=[D], history=history())
    q = res.quarantined.row(0, named=True)
    assert q["failed_rules"] == [
        "price_finite_positive",
        "high_consistent",
        "low_consistent",
        "volume_valid",
    ]
    assert q["rule"] == "price_finite_positive"
    assert q["value"] == "open=-1.0"


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"close": NAN}, "price_finite_positive"),
        ({"close": math.inf}, "price_finite_positive"),
        ({"high": -math.inf}, "price_finite_positive"),
        ({"low": NAN}, "price_finite_positive"),
        ({"close": -100.0}, "price_finite_positive"),
        ({"volume": NAN}, "volume_valid"),
        ({"volume": math.inf}, "volume_valid"),
        ({"date": None}, "date_is_session"),
    ],
)
def test_non_finite_and_missing_values_are_caught(changes: dict, rule: str) -> None:
    bad = {**row(), **changes}
    res = validate(raw([bad]), partition_dates=[D], history=history())
    assert res.kept.height == 0
    assert res.quarantined["rule"].to_list() == [rule]


def vendor_rows(**columns: list[str]) -> pl.DataFrame:
    """Text rows as a CSV vendor delivers them, conformed and attributed to session ``D``."""
    n = len(next(iter(columns.values())))
    text = {"ticker": ["AAA"] * n, "date": [D.isoformat()] * n, **columns}
    conformed = conform_raw(pl.DataFrame(text), origin=ORIGIN)
    return conformed.with_columns(partition_date=pl.lit(D))


@pytest.mark.parametrize(
    ("column", "text", "others"),
    [
        ("volume", "12abc", {"close": "100.5"}),
        ("open", "ten", {"close": "100.5"}),
        ("close", "abc", {}),
    ],
)
def test_text_in_a_value_column_is_quarantined_with_the_vendors_text(
    column: str, text: str, others: dict[str, str]
) -> None:
    res = validate(vendor_rows(**{column: [text], **others}), partition_dates=[D])
    assert res.kept.height == 0
    q = res.quarantined.row(0, named=True)
    assert q["rule"] == "non_numeric"
    assert q["value"] == f"{column}='{text}' is not a number"
    assert q["reason"] == (
        f"{ORIGIN}: ticker AAA date 2022-12-27 broke rule non_numeric "
        f"({column}='{text}' is not a number)"
    )
    assert q["parse_errors"] == f"{column}='{text}' is not a number"


def test_text_in_close_also_fails_close_present_but_reports_the_text_first() -> None:
    res = validate(vendor_rows(close=["abc"]), partition_dates=[D])
    assert res.quarantined["failed_rules"].to_list() == [["non_numeric", "close_present"]]


def test_every_unparsed_value_of_a_row_is_named() -> None:
    res = validate(vendor_rows(open=["ten"], close=["1"], volume=["12abc"]), partition_dates=[D])
    assert res.quarantined["value"].to_list() == [
        "open='ten' is not a number; volume='12abc' is not a number"
    ]


def test_numbers_blanks_and_null_markers_in_text_columns_are_kept() -> None:
    res = validate(
        vendor_rows(
            open=[" 100 ", "N/A", ""],
            close=["100.5", "100.5", "100.5"],
            volume=["1e3", "-", "null"],
        ),
        partition_dates=[D],
    )
    assert res.quarantined["rule"].to_list() == ["unique_ticker_date"] * 2  # same ticker and date
    assert res.kept.select("open", "volume").rows() == [(100.0, 1000.0)]


def test_raw_bars_stored_before_parse_errors_existed_still_validate() -> None:
    legacy = raw([row(), row("BBB", close=None)]).drop("parse_errors")
    res = validate(legacy, partition_dates=[D], history=history().drop("parse_errors"))
    assert res.kept["ticker"].to_list() == ["AAA"]
    assert res.quarantined.select("rule", "parse_errors").rows() == [("close_present", None)]


def test_reason_survives_null_origin_and_ticker() -> None:
    bad = row(ticker=None, origin=None)
    res = validate(raw([bad]), partition_dates=[D])
    q = res.quarantined.row(0, named=True)
    assert q["rule"] == "ticker_canonical"
    assert "unknown origin" in q["reason"]
    assert "ticker_canonical" in q["reason"]
    assert D.isoformat() in q["reason"]


def test_clean_rows_are_kept_with_canonical_tickers_sorted_by_date_then_ticker() -> None:
    d0 = HISTORY_DAYS[-1]
    rows = [row("msft", D), row("brk.b", D), row("AAPL", d0), row("brk/b", d0)]
    res = validate(raw(rows), partition_dates=[d0, D])
    assert res.quarantined.height == 0
    assert res.kept.schema == pl.Schema(BARS_SCHEMA)
    assert res.kept.select("date", "ticker").rows() == [
        (d0, "AAPL"),
        (d0, "BRK-B"),
        (D, "BRK-B"),
        (D, "MSFT"),
    ]


def test_close_only_rows_pass() -> None:
    rows = [close_only("AAA", D, 100.0), close_only("^GSPC", D, 3800.0)]
    res = validate(raw(rows), partition_dates=[D], history=history())
    assert res.quarantined.height == 0
    assert res.kept.rows() == [
        ("AAA", D, None, None, None, 100.0, None),
        ("^GSPC", D, None, None, None, 3800.0, None),
    ]
    assert check_bars(res.kept, [D]).success


def test_duplicates_keep_the_first_and_quarantine_later_ones() -> None:
    rows = [
        close_only("AAA", D, 100.0, origin="first"),
        close_only("BBB", D, 50.0, origin="other"),
        close_only("aaa", D, 101.0, origin="second"),
        close_only("AAA", D, 102.0, origin="third"),
    ]
    res = validate(raw(rows), partition_dates=[D], history=history())
    assert res.kept.filter(pl.col("ticker") == "AAA")["close"].to_list() == [100.0]
    assert res.kept.filter(pl.col("ticker") == "BBB")["close"].to_list() == [50.0]
    assert res.quarantined["origin"].to_list() == ["second", "third"]
    assert res.quarantined["rule"].to_list() == ["unique_ticker_date"] * 2


def test_a_rejected_first_row_does_not_protect_its_duplicate() -> None:
    # uniqueness is by delivery order: the second row is a duplicate even if the first is bad
    rows = [close_only("AAA", D, None, origin="first"), close_only("AAA", D, 100.0, origin="again")]
    res = validate(raw(rows), partition_dates=[D], history=history())
    assert res.kept.height == 0
    assert dict(res.quarantined.select("origin", "rule").rows()) == {
        "first": "close_present",
        "again": "unique_ticker_date",
    }


# ---------------------------------------------------------------------------------------------
# the move rule


def test_a_10x_spike_is_rejected_but_the_following_normal_bar_is_kept() -> None:
    closes = [100.0, 101.0, 99.0, 100.0, 102.0, 100.0, 1000.0, 101.0, 100.0]
    res = validate(series(closes), partition_dates=DAYS[: len(closes)])
    assert res.quarantined["origin"].to_list() == ["row6"]
    assert res.quarantined["rule"].to_list() == ["max_daily_move"]
    assert res.kept["close"].to_list() == [c for c in closes if c != 1000.0]


def test_a_crash_to_a_tenth_is_rejected_too() -> None:
    closes = [100.0] * 6 + [10.0, 100.0]
    res = validate(series(closes), partition_dates=DAYS[: len(closes)])
    assert res.quarantined["origin"].to_list() == ["row6"]


def test_a_52pct_move_is_kept_and_flagged() -> None:
    res = validate(raw([close_only("AAA", D, 152.0)]), partition_dates=[D], history=history())
    assert res.quarantined.height == 0
    assert res.kept["close"].to_list() == [152.0]
    assert res.flagged.height == 1
    f = res.flagged.row(0, named=True)
    assert (f["ticker"], f["date"], f["close"], f["reference_close"]) == ("AAA", D, 152.0, 100.0)
    assert f["move"] == pytest.approx(0.52)
    assert f["origin"] == ORIGIN


def test_moves_inside_the_flag_band_are_neither_flagged_nor_rejected() -> None:
    res = validate(raw([close_only("AAA", D, 140.0)]), partition_dates=[D], history=history())
    assert res.kept.height == 1
    assert res.flagged.height == 0


def test_move_bounds_are_configurable_and_validated() -> None:
    one = raw([close_only("AAA", D, 250.0)])
    assert validate(one, partition_dates=[D], history=history()).kept.height == 1
    tight = validate(one, partition_dates=[D], history=history(), bounds=MoveBounds(0.1, 2.0))
    assert tight.quarantined["rule"].to_list() == ["max_daily_move"]
    with pytest.raises(ValueError, match="reject_factor"):
        MoveBounds(reject_factor=1.0)
    with pytest.raises(ValueError, match="flag_move"):
        MoveBounds(flag_move=0.0)


def test_the_reject_band_is_symmetric_in_log_space() -> None:
    # exactly 4x and exactly 1/4 are kept (the bound is inclusive); a hair beyond is rejected
    closes = {"UP": 400.0, "DOWN": 25.0, "UPX": 400.5, "DOWNX": 24.9}
    hist = pl.concat([history(t) for t in closes])
    rows = [close_only(t, D, c) for t, c in closes.items()]
    res = validate(raw(rows), partition_dates=[D], history=hist)
    assert sorted(res.kept["ticker"].to_list()) == ["DOWN", "UP"]
    assert sorted(res.quarantined["ticker"].to_list()) == ["DOWNX", "UPX"]


def test_the_first_bar_of_a_ticker_has_no_reference_and_is_kept() -> None:
    res = validate(raw([close_only("NEW", D, 1e6)]), partition_dates=[D], history=history())
    assert res.kept["ticker"].to_list() == ["NEW"]
    assert res.flagged.height == 0


def test_a_10x_jump_on_the_second_bar_is_rejected() -> None:
    # The docstring: the reference is the median of the previous (up to) five valid closes, so
    # the second bar's reference is the first bar's close.
    res = validate(series([100.0, 1000.0]), partition_dates=DAYS[:2])
    assert res.quarantined["origin"].to_list() == ["row1"]
    assert res.quarantined["rule"].to_list() == ["max_daily_move"]


def test_the_reference_is_the_median_of_the_five_previous_valid_closes() -> None:
    # previous five closes before 400 are 110..150 (median 130); 100 is six bars back
    closes = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0, 400.0]
    res = validate(series(closes), partition_dates=DAYS[: len(closes)])
    flagged = res.flagged.filter(pl.col("close") == 400.0)
    assert flagged["reference_close"].to_list() == [130.0]


def test_the_reference_skips_invalid_closes() -> None:
    # NaN, negative and missing closes are no reference: the spike is still measured against 100
    closes = [100.0] * 5 + [NAN, -3.0, None, 1000.0]
    res = validate(series(closes), partition_dates=DAYS[: len(closes)])
    q = dict(res.quarantined.select("origin", "rule").rows())
    assert q == {
        "row5": "price_finite_positive",
        "row6": "price_finite_positive",
        "row7": "close_present",
        "row8": "max_daily_move",
    }


def test_history_is_a_reference_only_and_never_returned() -> None:
    hist = pl.concat(
        [
            history("AAA"),
            # bad history rows (including a later partition_date, which is ignored) never appear
            raw([close_only("AAA", HISTORY_DAYS[0], None, origin="hist-bad")]),
            raw([close_only("ZZZ", D, 5.0, origin="hist-same-day")]),
        ]
    )
    current = raw([close_only("AAA", D, 1000.0), close_only("AAA ", D, 100.0)])
    res = validate(current, partition_dates=[D], history=hist)
    assert res.kept.height + res.quarantined.height == current.height
    assert set(res.kept["date"].to_list()) <= {D}
    assert res.quarantined["partition_date"].to_list() == [D, D]
    assert "hist" not in "".join(res.quarantined["origin"].to_list())
    assert "ZZZ" not in res.kept["ticker"].to_list()
    # the history did serve as the reference: the spike was measured against 100
    assert res.quarantined["value"].to_list()[0] == "close=1000.0 reference=100.0"


def test_validate_rejects_wrong_schema_and_stray_partitions() -> None:
    good = raw([row()])
    with pytest.raises(ValueError, match="schema"):
        validate(good.drop("origin"), partition_dates=[D])
    with pytest.raises(ValueError, match="partition"):
        validate(good, partition_dates=[HISTORY_DAYS[-1]])


def test_empty_input_gives_empty_results() -> None:
    res = validate(raw([]), partition_dates=[D], history=history())
    assert (res.kept.height, res.quarantined.height, res.flagged.height) == (0, 0, 0)
    assert res.kept.schema == pl.Schema(BARS_SCHEMA)
    assert res.quarantined.schema == pl.Schema(QUARANTINE_SCHEMA)


# ---------------------------------------------------------------------------------------------
# properties

CLOSE = st.one_of(
    st.floats(min_value=50.0, max_value=150.0),
    st.sampled_from([1000.0, 5.0, 0.0, -1.0, NAN, math.inf, None]),
)


def _status(res: ValidationResult) -> tuple[dict[str, str | None], set[str]]:
    """Each input row (by its unique origin) -> first failed rule or None; flagged origins."""
    out: dict[str, str | None] = dict(res.quarantined.select("origin", "rule").rows())
    return out, set(res.flagged["origin"].to_list())


@settings(max_examples=100, deadline=None)
@given(
    closes=st.lists(st.tuples(CLOSE, CLOSE), min_size=2, max_size=20),
    cutoff=st.integers(min_value=0, max_value=18),
    later=st.lists(st.tuples(CLOSE, CLOSE), max_size=20),
)
def test_changing_later_rows_never_changes_earlier_decisions(
    closes: list[tuple], cutoff: int, later: list[tuple]
) -> None:
    cutoff = min(cutoff, len(closes) - 1)

    def frame(pairs: list[tuple]) -> pl.DataFrame:
        rows = []
        for i, (a, b) in enumerate(pairs):
            rows.append(close_only("AAA", DAYS[i], a, origin=f"A{i}"))
            rows.append(close_only("BBB", DAYS[i], b, origin=f"B{i}"))
        return raw(rows)

    base = frame(closes)
    changed = frame(closes[: cutoff + 1] + later)  # later rows replaced, removed or added
    n = max(len(closes), cutoff + 1 + len(later))
    res_a = validate(base, partition_dates=DAYS[:n])
    res_b = validate(changed, partition_dates=DAYS[:n])
    early = {f"{t}{i}" for i in range(cutoff + 1) for t in "AB"}
    q_a, f_a = _status(res_a)
    q_b, f_b = _status(res_b)
    assert {k: v for k, v in q_a.items() if k in early} == {
        k: v for k, v in q_b.items() if k in early
    }
    assert f_a & early == f_b & early
    assert res_a.kept.height + res_a.quarantined.height == base.height
    assert res_b.kept.height + res_b.quarantined.height == changed.height


SYN_START, SYN_END = dt.date(2023, 1, 3), dt.date(2023, 3, 31)
SYN_TICKERS = ["AAA", "BBB", "CCC"]


@pytest.fixture(scope="session")
def syn_sessions() -> list[dt.date]:
    return sessions(SYN_START, SYN_END)


EXPECTED_RULES = {
    "nan": {"price_finite_positive", "close_present"},
    "negative_price": {"price_finite_positive", "close_present"},
    "high_lt_low": {"high_consistent", "low_consistent"},
    "duplicate_row": {"unique_ticker_date"},
    "off_calendar_date": {"date_is_session"},
    "spike_10x": {"max_daily_move"},
}


def _faulty(seed: int, n: int, days: list[dt.date]) -> tuple[SyntheticSource, tuple[Fault, ...]]:
    # Faults start after six sessions, so every damaged bar has a move reference.
    faults = random_faults(n, seed=seed, tickers=SYN_TICKERS, sessions=days[6:])
    src = SyntheticSource(
        tickers=SYN_TICKERS, start=SYN_START, end=SYN_END, seed=seed, faults=faults
    )
    return src, faults


def _as_raw(kept: pl.DataFrame) -> pl.DataFrame:
    return kept.with_columns(
        origin=pl.lit("revalidated"),
        parse_errors=pl.lit(None, pl.String),
        partition_date=pl.col("date"),
    ).select(list(RAW_SCHEMA))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), n=st.integers(min_value=0, max_value=10))
def test_injected_faults_are_quarantined_and_rows_conserved(
    syn_sessions: list[dt.date], seed: int, n: int
) -> None:
    src, faults = _faulty(seed, n, syn_sessions)
    raw_bars = fetch_partitions(src, syn_sessions)
    res = validate(raw_bars, partition_dates=syn_sessions)

    assert raw_bars.height == res.kept.height + res.quarantined.height
    assert check_bars(res.kept, syn_sessions).success
    kept_keys = set(res.kept.select("ticker", "date").rows())
    failed: dict[tuple[str, dt.date], list[set[str]]] = {}
    for t, d, rules in res.quarantined.select("ticker", "date", "failed_rules").rows():
        failed.setdefault((t, d), []).append(set(rules))
    for fault in faults:
        key = (fault.ticker, fault.extra_row_date())
        hits = [rules for rules in failed.get(key, []) if rules & EXPECTED_RULES[fault.kind]]
        assert hits, f"{fault} not quarantined with {EXPECTED_RULES[fault.kind]}: {failed.get(key)}"
        if fault.kind not in ("duplicate_row", "off_calendar_date"):
            assert key not in kept_keys, f"{fault}: the damaged bar was kept"
    # a quarantined row with no fault on its (ticker, date) would be a false positive
    faulted = {(f.ticker, f.extra_row_date()) for f in faults}
    spiked = {(f.ticker, f.date) for f in faults if f.kind == "spike_10x"}
    for key, rule_sets in failed.items():
        if key not in faulted:
            # only the move rule may catch a clean bar, and only right after a spike of its ticker
            assert all(rules == {"max_daily_move"} for rules in rule_sets), (key, rule_sets)
            assert any(t == key[0] and d < key[1] for t, d in spiked), (key, rule_sets)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), n=st.integers(min_value=0, max_value=10))
def test_validate_is_idempotent_on_its_kept_bars(
    syn_sessions: list[dt.date], seed: int, n: int
) -> None:
    src, _ = _faulty(seed, n, syn_sessions)
    first = validate(fetch_partitions(src, syn_sessions), partition_dates=syn_sessions)
    again = validate(_as_raw(first.kept), partition_dates=syn_sessions)
    assert again.quarantined.height == 0, again.quarantined["reason"].to_list()
    assert again.kept.equals(first.kept)


def test_attributed_source_output_validates_per_partition(syn_sessions: list[dt.date]) -> None:
    # the same faults validated one partition at a time (with history) as over the whole range
    days = syn_sessions
    faults = (
        Fault("spike_10x", "AAA", days[10]),
        Fault("off_calendar_date", "BBB", days[12]),
        Fault("duplicate_row", "CCC", days[11]),
        Fault("nan", "AAA", days[12]),
    )
    src = SyntheticSource(tickers=SYN_TICKERS, start=SYN_START, end=SYN_END, seed=3, faults=faults)
    whole = attribute_partitions(src.fetch(SYN_START, days[14]), days[:15])
    res_all = validate(whole, partition_dates=days[:15])
    kept, quarantined = [], []
    for i in range(15):
        part = whole.filter(pl.col("partition_date") == days[i])
        hist = whole.filter(pl.col("partition_date") < days[i])
        res = validate(part, partition_dates=[days[i]], history=hist)
        kept.append(res.kept)
        quarantined.append(res.quarantined)
    assert pl.concat(kept).equals(res_all.kept)
    q = pl.concat(quarantined)
    assert q.sort("origin", "ticker", "date", "close").equals(
        res_all.quarantined.sort("origin", "ticker", "date", "close")
    )
    assert sorted(res_all.quarantined["rule"].to_list()) == sorted(
        ["max_daily_move", "date_is_session", "unique_ticker_date", "price_finite_positive"]
    )
