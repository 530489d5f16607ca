"""Validation of raw bars: split each partition into kept ``bars`` and ``quarantined_bars``.

The rules are data (:data:`REJECT_RULES`), evaluated as vectorised polars expressions over a whole
range of partitions at once; the value rules (``close_present`` to ``volume_valid``) are built from
:data:`alphadag.market.bars_rules.VALUE_RULES`, the list the pandera schema and the GX suite are
built from too. A raw row is kept only if it breaks no rule; otherwise it is quarantined
with the first rule it broke, the offending value, every rule it broke and a message naming its
origin (file or dataset), ticker, date and rule. Rows are conserved: ``len(raw) == len(kept) +
len(quarantined)`` for every input (a hypothesis property in the tests).

Rules, in the order they are reported:

==========================  ===========================================================================
``ticker_canonical``        the ticker canonicalises (:func:`alphadag.market.tickers.canonical_ticker`)
``date_is_session``         the row's date is the session of the partition it was delivered in
``non_numeric``             every value column delivered a number (``parse_errors`` is null); the
                            value is the vendor's text, e.g. ``volume='12abc' is not a number``
``close_present``           close is not null (every source delivers close)
``price_finite_positive``   open, high, low, close finite and > 0 where present
``high_consistent``         high >= max(open, close) where present
``low_consistent``          low <= min(open, close) where present
``volume_valid``            volume finite and >= 0 where present
``unique_ticker_date``      one row per (ticker, date); later duplicates are rejected
``max_daily_move``          |ln(close / reference)| <= ln(reject_factor) (default 4x, i.e. +300%/-75%)
==========================  ===========================================================================

The *reference* close is the median of the ticker's previous (up to) five closes from rows that
pass the row-local rules (every rule but duplicates and the move rule), not just the previous one, so a single bad print (a 10x spike) is rejected without also rejecting the correct bar
after it. Moves beyond ``flag_move`` (default 50%) but inside the reject band are real more often than
not (AMD rose 52% on 2016-04-22): they are kept and *flagged* (``ValidationResult.flagged``) for a WARN check.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from alphadag.market.bars_rules import REQUIRED, VALUE_RULES, Bounds, Ordered, violated
from alphadag.market.schema import PRICE_COLUMNS, QUARANTINE_SCHEMA, RAW_BARS_SCHEMA
from alphadag.market.tickers import try_canonical_ticker

REFERENCE_WINDOW = 5
"""How many previous valid closes the move reference (their median) uses."""


@dataclass(frozen=True)
class MoveBounds:
    """Bounds on a bar's close relative to its reference close.

    ``flag_move``: relative move beyond which a kept bar is flagged (0.5 = 50%).
    ``reject_factor``: close/reference ratio beyond which (either way) the bar is rejected.
    """

    flag_move: float = 0.5
    reject_factor: float = 4.0

    def __post_init__(self) -> None:
        if not self.flag_move > 0:
            raise ValueError(f"flag_move must be > 0, got {self.flag_move}")
        if not self.reject_factor > 1:
            raise ValueError(f"reject_factor must be > 1, got {self.reject_factor}")


@dataclass(frozen=True)
class Rule:
    """A rejection rule: ``violated()`` is a boolean expression, true where a row breaks it.

    ``value()`` gives the offending value as a string for the quarantine table.
    """

    name: str
    description: str
    violated: Callable[[MoveBounds], pl.Expr]
    value: Callable[[], pl.Expr]


def _fmt(*cols: str) -> pl.Expr:
    parts: list[pl.Expr] = []
    for i, col in enumerate(cols):
        if i:
            parts.append(pl.lit(" "))
        parts.append(pl.lit(f"{col}="))
        parts.append(pl.col(col).cast(pl.String).fill_null("null"))
    return pl.concat_str(parts)


def _value_rule(rule: Bounds | Ordered) -> Rule:
    """The rejection rule of a contract value rule; its value names the offending column(s)."""
    if isinstance(rule, Ordered):
        return Rule(
            rule.name,
            f"{rule.column} must be {rule.op} {' and '.join(rule.others)} where both are present",
            lambda b: violated(rule),
            lambda: _fmt(rule.column, *rule.others),
        )

    def first_bad() -> pl.Expr:
        return pl.coalesce(
            [pl.when(violated(rule, c)).then(_fmt(c)) for c in rule.columns]
            + [pl.lit(None, pl.String)]
        )

    sign = ">=" if rule.inclusive else ">"
    return Rule(
        rule.name,
        f"{', '.join(rule.columns)} must be finite and {sign} {rule.lower:g} where present",
        lambda b: violated(rule),
        first_bad,
    )


REJECT_RULES: tuple[Rule, ...] = (
    Rule(
        "ticker_canonical",
        "ticker must canonicalise to the allow-list pattern",
        lambda b: pl.col("_canonical").is_null(),
        lambda: _fmt("ticker"),
    ),
    Rule(
        "date_is_session",
        "date must be the session of the partition the row was delivered in",
        lambda b: pl.col("date").is_null() | (pl.col("date") != pl.col("partition_date")),
        lambda: _fmt("date"),
    ),
    Rule(
        "non_numeric",
        "open, high, low, close and volume must be numbers or empty, not text",
        lambda b: pl.col("parse_errors").is_not_null(),
        lambda: pl.col("parse_errors"),
    ),
    *(
        Rule(
            f"{c}_present",
            f"{c} must be present",
            lambda b, c=c: pl.col(c).is_null(),
            lambda c=c: _fmt(c),
        )
        for c in REQUIRED
    ),
    # the value rules of the contract (alphadag.market.bars_rules), as pandera and GX check them
    *(_value_rule(r) for r in VALUE_RULES),
    Rule(
        "unique_ticker_date",
        "one row per (ticker, date): a later duplicate is rejected",
        lambda b: pl.col("_dup_rank") > 0,
        lambda: _fmt("ticker", "date"),
    ),
    Rule(
        "max_daily_move",
        "close must stay within reject_factor of the median of the previous 5 valid closes",
        lambda b: (pl.col("close") / pl.col("_ref")).log().abs() > math.log(b.reject_factor),
        lambda: pl.format(
            "close={} reference={}", pl.col("close"), pl.col("_ref").round(6).cast(pl.String)
        ),
    ),
)
RULE_NAMES = tuple(r.name for r in REJECT_RULES)
ROW_LOCAL_RULES = tuple(n for n in RULE_NAMES if n not in ("unique_ticker_date", "max_daily_move"))
"""Rules decided by a row alone (everything but duplicates and the move rule)."""


@dataclass(frozen=True)
class ValidationResult:
    """Kept bars (the ``bars`` contract, sorted by date then ticker) and quarantined raw rows."""

    kept: pl.DataFrame
    quarantined: pl.DataFrame
    flagged: pl.DataFrame

    def counts_by_rule(self) -> dict[str, int]:
        """Quarantined rows per first-failed rule, all rules listed (zeros included)."""
        counts = dict.fromkeys(RULE_NAMES, 0)
        for rule, n in self.quarantined.group_by("rule").len().iter_rows():
            counts[rule] = n
        return counts


def _canonical_map(tickers: pl.Series) -> pl.DataFrame:
    uniques = tickers.unique().to_list()
    return pl.DataFrame(
        {"ticker": uniques, "_canonical": [try_canonical_ticker(t) for t in uniques]},
        schema={"ticker": pl.String, "_canonical": pl.String},
    )


def _with_parse_errors(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with a null ``parse_errors`` column after ``origin`` if it has none.

    ``raw_bars`` partitions written before the column existed hold none; they read as "every value
    parsed", which is what their (already cast) values say.
    """
    if "parse_errors" in frame.columns:
        return frame
    columns = [*frame.columns]
    at = columns.index("origin") + 1 if "origin" in columns else len(columns)
    columns.insert(at, "parse_errors")
    return frame.with_columns(parse_errors=pl.lit(None, pl.String)).select(columns)


def validate(
    raw: pl.DataFrame,
    *,
    partition_dates: list[dt.date],
    history: pl.DataFrame | None = None,
    bounds: MoveBounds = MoveBounds(),
) -> ValidationResult:
    """Split raw bars delivered for ``partition_dates`` into kept, quarantined and flagged rows.

    Parameters
    ----------
    raw:
        ``raw_bars`` rows (:data:`RAW_BARS_SCHEMA` plus ``partition_date``) for the partitions
        being validated; a frame without ``parse_errors`` (partitions stored before it existed)
        is read as having none.
    partition_dates:
        The sessions whose partitions ``raw`` holds; a row whose ``partition_date`` is not one of
        them is a caller error.
    history:
        Earlier ``raw_bars`` rows (same schema) used only as the move reference (the lookback);
        never validated nor returned.
    bounds:
        The flag and reject bounds of the move rule.

    >>> import datetime as dt
    >>> d = dt.date(2022, 12, 27)
    >>> raw = pl.DataFrame({"ticker": ["aapl", "MSFT"], "date": [d, d], "open": [None, 1.0],
    ...     "high": [None, 0.5], "low": [None, 0.9], "close": [130.0, 1.0], "volume": [None, 5.0],
    ...     "origin": ["x", "x"], "partition_date": [d, d]}, schema_overrides=RAW_BARS_SCHEMA)
    >>> res = validate(raw, partition_dates=[d])
    >>> res.kept["ticker"].to_list(), res.quarantined["rule"].to_list()
    (['AAPL'], ['high_consistent'])
    """
    raw = _with_parse_errors(raw)
    expected = {**RAW_BARS_SCHEMA, "partition_date": pl.Date()}
    if dict(raw.schema) != expected:
        raise ValueError(f"raw bars must have schema {expected}, got {dict(raw.schema)}")
    stray = raw.filter(~pl.col("partition_date").is_in(partition_dates))
    if stray.height:
        raise ValueError(
            f"{stray.height} raw row(s) belong to partitions outside {partition_dates[:1]}..: "
            f"first {stray.row(0, named=True)}"
        )
    n_in = raw.height
    hist = (
        _with_parse_errors(history).filter(pl.col("partition_date") < min(partition_dates))
        if history is not None and partition_dates
        else raw.clear()
    )
    both = pl.concat(
        [hist.with_columns(_current=pl.lit(False)), raw.with_columns(_current=pl.lit(True))]
    ).with_row_index("_row")
    both = both.join(_canonical_map(both["ticker"]), on="ticker", how="left")
    # Row-local rules first: a row that breaks one of them never serves as a move reference.
    row_local = [r for r in REJECT_RULES if r.name in ROW_LOCAL_RULES]
    both = both.with_columns(
        _row_ok=~pl.any_horizontal([r.violated(bounds).fill_null(False) for r in row_local])
    )
    # Reference close: median of the ticker's previous REFERENCE_WINDOW row-valid closes, strictly
    # before this row's date (one close per date): the rolling median at `_ref_date` includes that
    # date, and the as-of join below looks it up from `date - 1 day`, so it never looks ahead.
    ref_base = (
        both.filter(pl.col("_row_ok") & pl.col("date").is_not_null())
        .group_by("_canonical", "date")
        .agg(pl.col("close").first())
        .sort("_canonical", "date")
        .with_columns(
            _ref=pl.col("close").rolling_median(REFERENCE_WINDOW, min_samples=1).over("_canonical")
        )
        .select("_canonical", pl.col("date").alias("_ref_date"), "_ref")
    )
    cur = (
        both.filter(pl.col("_current"))
        .sort("_row")
        .with_columns(
            _dup_rank=pl.when(pl.col("_canonical").is_not_null())
            .then(pl.int_range(pl.len()).over("_canonical", "date"))
            .otherwise(0)
        )
    )
    # As-of join: the reference from the latest earlier date with one (strictly before `date`).
    cur = (
        cur.with_columns(_lookup=pl.col("date") - pl.duration(days=1))
        .sort("_lookup")
        .join_asof(
            ref_base.sort("_ref_date"),
            left_on="_lookup",
            right_on="_ref_date",
            by="_canonical",
            strategy="backward",
            check_sortedness=False,  # sorted globally by `_lookup`, hence within each ticker
        )
        .sort("_row")
    )
    flags = [r.violated(bounds).fill_null(False).alias(f"_v_{r.name}") for r in REJECT_RULES]
    cur = cur.with_columns(flags)
    vcols = [f"_v_{r.name}" for r in REJECT_RULES]
    bad = pl.any_horizontal(vcols)
    failed_rules = pl.concat_list(
        [pl.when(pl.col(f"_v_{r.name}")).then(pl.lit(r.name)) for r in REJECT_RULES]
    ).list.drop_nulls()
    first_rule = pl.coalesce(
        [pl.when(pl.col(f"_v_{r.name}")).then(pl.lit(r.name)) for r in REJECT_RULES]
    )
    first_value = pl.coalesce(
        [pl.when(pl.col(f"_v_{r.name}")).then(r.value()) for r in REJECT_RULES]
    )
    quarantined = (
        cur.filter(bad)
        .with_columns(rule=first_rule, value=first_value, failed_rules=failed_rules)
        .with_columns(
            reason=pl.format(
                "{}: ticker {} date {} broke rule {} ({})",
                pl.col("origin").fill_null("unknown origin"),
                pl.col("ticker").fill_null("null"),
                pl.col("date").cast(pl.String).fill_null("null"),
                pl.col("rule"),
                pl.col("value").fill_null("null"),
            )
        )
        .select(list(QUARANTINE_SCHEMA))
        .cast(QUARANTINE_SCHEMA)
    )
    kept_rows = cur.filter(~bad)
    flagged = (
        kept_rows.filter((pl.col("close") / pl.col("_ref") - 1).abs() > bounds.flag_move)
        .select(
            pl.col("_canonical").alias("ticker"),
            "date",
            "close",
            pl.col("_ref").alias("reference_close"),
            (pl.col("close") / pl.col("_ref") - 1).alias("move"),
            "origin",
        )
        .sort("date", "ticker")
    )
    kept = (
        kept_rows.with_columns(ticker=pl.col("_canonical"))
        .select("ticker", "date", *PRICE_COLUMNS, "volume")
        .sort("date", "ticker")
    )
    if kept.height + quarantined.height != n_in:  # pragma: no cover - guarded by property tests
        raise RuntimeError(
            f"row conservation broken: {n_in} in, {kept.height} kept, {quarantined.height} out"
        )
    return ValidationResult(kept=kept, quarantined=quarantined, flagged=flagged)
