"""raw_bars retries transient source failures (RetryPolicy: exponential backoff + jitter) and
fails at once, without retry, on permanent ones. The flaky source stands in for yfinance, which
needs the internet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from alphadag.defs.assets.ingestion import raw_bars, source_fetch_retry
from alphadag.defs.resources.alerting import AlertSink
from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.market.schema import conform_raw
from alphadag.market.sources.base import Coverage
from alphadag.market.sources.errors import PermanentSourceError, TransientSourceError


@dataclass
class FlakySource:
    """Fails ``failures`` times with ``error`` and then delivers one bar per day; records calls."""

    error: type[Exception]
    failures: int
    calls: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    name: str = "flaky"

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        self.calls.append((start, end))
        if len(self.calls) <= self.failures:
            raise self.error("yfinance", ["AAPL"], start, end, "connection reset")
        return conform_raw(
            pl.DataFrame({"ticker": ["AAPL"], "date": [end], "close": [190.0]}), origin="flaky"
        )

    def coverage(self) -> Coverage:
        return Coverage(None, None)


class FlakyMarketData(MarketDataResource):
    """The market-data resource with its source swapped for a shared FlakySource."""

    def get_source(self):
        return SOURCE[0]


SOURCE: list[FlakySource] = []


def _run(tmp_path, source: FlakySource):
    SOURCE[:] = [source]
    return dg.materialize(
        [raw_bars],
        partition_key="2024-01-10",
        resources={
            "market_data": FlakyMarketData(),
            "io_manager": ParquetPartitionIOManager(data_root=str(tmp_path)),
            "alerts": AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl")),
        },
        raise_on_error=False,
    )


def test_policy_is_exponential_with_jitter():
    assert source_fetch_retry.backoff == dg.Backoff.EXPONENTIAL
    assert source_fetch_retry.jitter == dg.Jitter.PLUS_MINUS
    assert source_fetch_retry.max_retries >= 2


def test_transient_error_is_retried_until_success(tmp_path):
    source = FlakySource(TransientSourceError, failures=1)
    result = _run(tmp_path, source)
    assert result.success
    assert len(source.calls) == 2  # one failure, one retry
    restarts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert len(restarts) == 1
    written = pl.read_parquet(tmp_path / "raw_bars" / "2024" / "2024-01-10.parquet")
    assert written["close"].to_list() == [190.0]


def test_permanent_error_fails_without_retry(tmp_path):
    source = FlakySource(PermanentSourceError, failures=5)
    result = _run(tmp_path, source)
    assert not result.success
    assert len(source.calls) == 1
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "connection reset" in failure.step_failure_data.error.to_string()
    assert not (tmp_path / "raw_bars" / "2024" / "2024-01-10.parquet").exists()


def test_a_configuration_error_fails_at_once_naming_the_range(tmp_path):
    result = dg.materialize(
        [raw_bars],
        partition_key="2024-01-10",
        resources={
            # an invalid ticker in ALPHADAG_TICKERS: a configuration error, never transient
            "market_data": MarketDataResource(source="yfinance", tickers=["AAPL", "bad ticker!"]),
            "io_manager": ParquetPartitionIOManager(data_root=str(tmp_path)),
            "alerts": AlertSink(jsonl_path=str(tmp_path / "alerts.jsonl")),
        },
        raise_on_error=False,
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "raw_bars 2024-01-10..2024-01-10 (yfinance source)" in message
    assert "ticker 'bad ticker!' is not allowed" in message
