"""Great Expectations 1.x suite for the validated ``bars`` table of one or many trading sessions.

:func:`bars_expectation_suite` builds the suite for a set of sessions (tickers match the allow-list
pattern, dates are among the sessions, OHLC finite and > 0, volume finite and >= 0, high/low bracket
open and close where both are present, ``(ticker, date)`` unique, a minimum row count), and
:func:`run_bars_suite` runs it on a polars frame and condenses the result into a :class:`GxReport`
whose :meth:`GxReport.to_metadata` is plain JSON for Dagster metadata.

GX is driven through one ephemeral (in-memory) data context per process with a pandas data source,
a dataframe asset and a whole-dataframe batch definition, created on first use and reused.
Importing ``great_expectations`` costs several seconds, so it is imported lazily and importing this
module stays cheap. Analytics are switched off in the context config (and
``GX_ANALYTICS_ENABLED`` defaults to ``false``), no data docs site or temporary directory is
created, progress bars are disabled and GX's INFO/DEBUG logging is muted unless the application
configured the ``great_expectations`` logger.

The frame is handed to GX with pyarrow-backed pandas dtypes. That matters: with numpy dtypes a
polars null and a NaN both become ``NaN``, pandas counts ``NaN`` as missing and GX skips missing
values, so a NaN price would pass every value rule; and ``pl.Date`` would become ``datetime64``,
which never equals the ``datetime.date`` values of the session set, so every row would fail.
With arrow dtypes nulls stay nulls (ignored by the value rules, as GX does), NaN is a value that
fails ``> 0``, inf fails the finite upper bound, and dates stay dates.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from alphadag.market.bars_rules import (
    KEY,
    REQUIRED,
    VALUE_RULES,
    Bounds,
    Ordered,
)
from alphadag.market.schema import BARS_SCHEMA
from alphadag.market.tickers import TICKER_PATTERN

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
    from great_expectations.core.batch_definition import BatchDefinition

# GX 1.x releases that ship usage analytics consult this variable; the installed 1.24 has no
# analytics code left, and the context config below disables them regardless. ``setdefault``
# leaves an explicit user choice alone.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SUITE_NAME = "bars"
"""Name of the suite built by :func:`bars_expectation_suite`."""

SAMPLE_SIZE = 10
"""At most this many offending values are reported per failed expectation."""

_DATASOURCE_NAME = "alphadag_bars"
_ASSET_NAME = "bars"
_BATCH_DEFINITION_NAME = "whole_dataframe"
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}

# One lock per process: the batch definition (and the execution engine behind it, which caches the
# last batch under a fixed id) is shared, so concurrent validations in threads must not interleave.
_VALIDATION_LOCK = threading.Lock()


@dataclass(frozen=True)
class GxReport:
    """The outcome of running the bars suite on one frame.

    Attributes
    ----------
    success:
        True when every expectation passed.
    evaluated:
        Number of expectations run.
    failed:
        One dict per failed expectation, in suite order, with ``expectation`` (the GX type, e.g.
        ``"expect_column_values_to_be_between"``), ``columns`` (list of column names, empty for
        table-level expectations), ``unexpected_count`` (int, ``None`` for table-level ones),
        ``unexpected_sample`` (up to :data:`SAMPLE_SIZE` offending values in row order as plain
        Python: dates as ISO strings, pairs as ``[a, b]`` lists, compound keys as dicts, NaN and
        infinities as the strings ``"NaN"``, ``"inf"``, ``"-inf"``; for the table-level row
        count, ``[observed row count]``), ``observed_value`` (the row count for the table-level
        rule, else ``None``) and ``exception`` (GX's message when the expectation raised, else
        ``None``).
    statistics:
        GX's suite statistics: ``evaluated_expectations``, ``successful_expectations``,
        ``unsuccessful_expectations``, ``success_percent``.
    """

    success: bool
    evaluated: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values (``json.dumps(..., allow_nan=False)`` works) for Dagster metadata.

        >>> report = GxReport(success=True, evaluated=3, failed=[], statistics={})
        >>> report.to_metadata()["gx_success"], report.to_metadata()["gx_failed_count"]
        (True, 0)
        """
        return {
            "gx_success": self.success,
            "gx_evaluated": self.evaluated,
            "gx_failed_count": len(self.failed),
            "gx_failed_expectations": [
                f"{f['expectation']}({', '.join(f['columns'])})" for f in self.failed
            ],
            "gx_failed": [_plain(f) for f in self.failed],
            "gx_statistics": _plain(self.statistics),
        }


def bars_expectation_suite(sessions: list[dt.date], *, min_rows: int = 1) -> gx.ExpectationSuite:
    """Build the GX expectation suite for ``bars`` rows of ``sessions``.

    Parameters
    ----------
    sessions:
        The trading sessions the frame may contain (one partition or a range); duplicates are
        ignored. An empty list means no row is allowed (each one fails the date-in-set rule).
    min_rows:
        Minimum row count: 1 when the source should have data for every session, 0 when an empty
        frame is acceptable (for example a source that has no data for these sessions).

    Expectations, in order: row count >= ``min_rows``; ``ticker`` not null and matching
    :data:`alphadag.market.tickers.TICKER_PATTERN` with no whitespace (GX searches rather than
    full-matches, so a trailing newline would otherwise pass); ``date`` not null and in
    ``sessions``;
    ``close`` not null; each of open/high/low/close in ``(0, MAX_PRICE]`` and volume in
    ``[0, MAX_VOLUME]`` (built from :data:`alphadag.market.bars_rules.VALUE_RULES`) (nulls are skipped, as GX does for value rules; NaN and inf fail);
    ``high >= open``, ``high >= close``, ``open >= low``, ``close >= low`` on rows where both
    values are present; ``(ticker, date)`` unique.

    The date rule compares against ``datetime.date`` values, which matches a pyarrow-backed
    ``date32`` column (what :func:`run_bars_suite` passes) or an object column of dates; it does
    not match a numpy ``datetime64`` column.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    if isinstance(sessions, (str, bytes)) or not hasattr(sessions, "__iter__"):
        raise ValueError(
            f"sessions must be a list of datetime.date, got {type(sessions).__name__}: {sessions!r}"
        )
    bad = [s for s in sessions if not isinstance(s, dt.date) or isinstance(s, dt.datetime)]
    if bad:
        raise ValueError(
            f"sessions must be datetime.date values (not datetimes or strings); offending: "
            f"{bad[:5]!r}. Convert with datetime.date.fromisoformat(...) or .date()."
        )
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 0:
        raise ValueError(
            f"min_rows must be a non-negative int (1 when every session should have data, "
            f"0 otherwise), got {min_rows!r}"
        )
    session_set = sorted(set(sessions))

    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
        gxe.ExpectColumnValuesToNotBeNull(column="ticker"),
        gxe.ExpectColumnValuesToMatchRegex(column="ticker", regex=TICKER_PATTERN.pattern),
        # GX's pandas regex rule is ``astype(str).str.contains``: a ``re.search`` whose ``$`` also
        # matches before a trailing newline, so "AAPL\n" would pass; the pattern allows no
        # whitespace, so rejecting any restores ``fullmatch`` semantics.
        gxe.ExpectColumnValuesToNotMatchRegex(column="ticker", regex=r"\s"),
        gxe.ExpectColumnValuesToNotBeNull(column="date"),
        gxe.ExpectColumnValuesToBeInSet(column="date", value_set=session_set),
        # the value rules of the contract (alphadag.market.bars_rules), as the validator and
        # pandera check them; GX has no finiteness test, so a finite upper bound stands for it
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in REQUIRED),
        *(
            gxe.ExpectColumnValuesToBeBetween(
                column=c,
                min_value=r.lower,
                max_value=r.gx_max,
                strict_min=not r.inclusive,
            )
            for r in VALUE_RULES
            if isinstance(r, Bounds)
            for c in r.columns
        ),
        *(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
            )
            for r in VALUE_RULES
            if isinstance(r, Ordered)
            for a, b in r.pairs()
        ),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)),
    ]
    # The constructor, unlike ``add_expectation``, needs no active data context (which would cost
    # a context build just to describe the suite).
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def run_bars_suite(bars: pl.DataFrame, sessions: list[dt.date], min_rows: int) -> GxReport:
    """Validate ``bars`` with :func:`bars_expectation_suite` and return a :class:`GxReport`.

    ``bars`` must have the ``bars`` contract columns (extra columns are ignored): ``ticker`` a
    string, ``date`` a ``pl.Date``, the value columns numeric (cast to Float64); all-null
    (``pl.Null``) columns are accepted. Anything else raises :class:`ValueError`. Validations in
    one process are serialised (the GX batch definition is shared) and the frame is released
    from GX's batch cache afterwards.
    """
    if not isinstance(bars, pl.DataFrame):
        raise ValueError(
            f"bars must be a polars DataFrame, got {type(bars).__name__}; collect a LazyFrame first"
        )
    suite = bars_expectation_suite(sessions, min_rows=min_rows)
    frame = _to_pandas(bars)
    with _VALIDATION_LOCK:
        batch_definition = _batch_definition()
        try:
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(suite, result_format=_RESULT_FORMAT)
        finally:
            _release_batches(batch_definition)
    order = {_key(e.configuration): i for i, e in enumerate(suite.expectations)}
    failed = sorted(
        (_failure(r) for r in result.results if not r.success),
        key=lambda f: order.get((f["expectation"], tuple(f["columns"])), len(order)),
    )
    statistics = _plain(dict(result.statistics))
    return GxReport(
        success=bool(result.success),
        evaluated=int(statistics.get("evaluated_expectations", len(result.results))),
        failed=failed,
        statistics=statistics,
    )


def _to_pandas(bars: pl.DataFrame) -> pd.DataFrame:
    """Cast to the contract dtypes and convert with pyarrow-backed dtypes (see module docstring)."""
    missing = [c for c in BARS_SCHEMA if c not in bars.columns]
    if missing:
        raise ValueError(
            f"bars lacks contract column(s) {missing}; has {bars.columns}. "
            f"Expected {list(BARS_SCHEMA)} (see alphadag.market.schema.BARS_SCHEMA)."
        )
    exprs: list[pl.Expr] = []
    for name, target in BARS_SCHEMA.items():
        dtype = bars.schema[name]
        if dtype == target:
            exprs.append(pl.col(name))
            continue
        if name == "ticker":
            ok = dtype in (pl.Null, pl.Categorical) or isinstance(dtype, pl.Enum)
        elif name == "date":
            ok = dtype == pl.Null
        else:
            ok = dtype == pl.Null or dtype.is_numeric()
        if not ok:
            raise ValueError(
                f"bars column {name!r} has dtype {dtype}, expected {target}"
                + (
                    "; cast session datetimes with pl.col('date').dt.date() first"
                    if name == "date"
                    else ""
                )
            )
        exprs.append(pl.col(name).cast(target))
    return bars.select(exprs).to_pandas(use_pyarrow_extension_array=True)


@cache
def _batch_definition() -> BatchDefinition:
    """The process-wide ephemeral context's whole-dataframe batch definition (built once)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    datasource = context.data_sources.add_pandas(_DATASOURCE_NAME)
    asset = datasource.add_dataframe_asset(_ASSET_NAME)
    return asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION_NAME)


def _release_batches(batch_definition: BatchDefinition) -> None:
    """Drop the validated frame from the shared execution engine's batch cache."""
    engine = batch_definition.data_asset.datasource.get_execution_engine()
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()


def _columns(kwargs: Mapping[str, Any]) -> list[str]:
    """The column(s) an expectation's kwargs name, empty for a table-level expectation."""
    if "column_list" in kwargs:
        return [str(c) for c in kwargs["column_list"]]
    if "column_A" in kwargs:
        return [str(kwargs["column_A"]), str(kwargs["column_B"])]
    if "column" in kwargs:
        return [str(kwargs["column"])]
    return []


def _key(config: Any) -> tuple[str, tuple[str, ...]]:
    """(type, columns): unique per expectation in the bars suite; used to keep suite order."""
    return str(config.type), tuple(_columns(config.kwargs))


def _failure(result: Any) -> dict[str, Any]:
    """Condense one failed ExpectationValidationResult into a plain dict."""
    config = result.expectation_config
    columns = _columns(config.kwargs)
    details = result.result or {}
    count = details.get("unexpected_count")
    observed = _plain(details.get("observed_value"))
    if "partial_unexpected_list" in details:
        sample = [_plain(v) for v in (details["partial_unexpected_list"] or [])[:SAMPLE_SIZE]]
    else:  # table-level (row count): the offending value is the observed one
        sample = [] if observed is None else [observed]
    return {
        "expectation": str(config.type),
        "columns": columns,
        "unexpected_count": None if count is None else int(count),
        "unexpected_sample": sample,
        "observed_value": observed,
        "exception": _exception_message(result.exception_info),
    }


def _exception_message(info: Any) -> str | None:
    """GX's exception message, whether ``exception_info`` is flat or keyed by metric."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    messages = [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, Mapping) and v.get("raised_exception")
    ]
    return "; ".join(messages) or None


def _plain(value: Any) -> Any:
    """Convert GX/pandas/numpy/pyarrow values into strict-JSON-able plain Python.

    >>> _plain({"d": dt.date(2024, 1, 2), "x": (float("nan"), 1.5), "n": None})
    {'d': '2024-01-02', 'x': ['NaN', 1.5], 'n': None}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if isinstance(value, (dt.date, dt.time)):  # datetime and pd.Timestamp included
        if value != value:  # pd.NaT
            return None
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    for unwrap in ("as_py", "item"):  # pyarrow scalars, numpy scalars
        method = getattr(value, unwrap, None)
        if callable(method):
            try:
                return _plain(method())
            except (TypeError, ValueError):
                break
    if _is_missing(value):
        return None
    return str(value)


def _is_missing(value: Any) -> bool:
    """True for pandas' NA/NaT sentinels (without importing pandas eagerly)."""
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
