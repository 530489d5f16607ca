"""The bars contract's value rules are one list: the validator, pandera and GX agree on each."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from alphadag.market.bars_rules import VALUE_RULES, Bounds, Ordered
from alphadag.market.contracts import check_bars
from alphadag.market.gx_suite import bars_expectation_suite, run_bars_suite
from alphadag.market.schema import BARS_SCHEMA
from alphadag.market.validation import RULE_NAMES, validate

D = dt.date(2024, 1, 2)
GOOD = {"ticker": "AAPL", "date": D, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
        "volume": 100.0}  # fmt: skip


def _breaking(rule: Bounds | Ordered) -> list[dict]:
    """Bars that break ``rule`` (and possibly others)."""
    if isinstance(rule, Bounds):
        bad = [rule.lower - 1.0, math.inf, math.nan] + ([] if rule.inclusive else [rule.lower])
        return [{**GOOD, c: v} for c in rule.columns for v in bad]
    others = [GOOD[o] for o in rule.others]
    return [{**GOOD, rule.column: min(others) - 1 if rule.op == ">=" else max(others) + 1}]


@pytest.mark.parametrize("rule", VALUE_RULES, ids=lambda r: r.name)
def test_every_checker_rejects_what_a_rule_forbids(rule):
    assert rule.name in RULE_NAMES
    for row in _breaking(rule):
        bars = pl.DataFrame([row], schema=BARS_SCHEMA)
        raw = bars.with_columns(
            origin=pl.lit("t"), parse_errors=pl.lit(None, pl.String), partition_date=pl.lit(D)
        )
        res = validate(raw, partition_dates=[D])
        assert rule.name in res.quarantined["failed_rules"][0], row
        assert not check_bars(bars, [D]).success, row
        assert not run_bars_suite(bars, [D], min_rows=1).success, row


def test_the_good_bar_passes_all_three_and_the_suite_follows_the_list():
    bars = pl.DataFrame([GOOD], schema=BARS_SCHEMA)
    assert check_bars(bars, [D]).success and run_bars_suite(bars, [D], min_rows=1).success
    between = [
        e.configuration.kwargs["column"]
        for e in bars_expectation_suite([D]).expectations
        if e.configuration.type == "expect_column_values_to_be_between"
    ]
    assert between == [c for r in VALUE_RULES if isinstance(r, Bounds) for c in r.columns]
