"""The market-data resource: which source feeds ``raw_bars``, chosen by configuration.

``source`` is one of ``sample`` (offline default), ``synthetic``, ``csv`` (a landing directory of
vendor files) or ``yfinance`` (needs internet). Each maps to a pure class in
``alphadag.market.sources``; this resource only builds it from config.
"""

import datetime as dt
from typing import Literal

import dagster as dg
from pydantic import Field

from alphadag.market.sources.base import BarSource
from alphadag.settings import DEFAULT_LANDING_DIR


class MarketDataResource(dg.ConfigurableResource):
    """Configuration of the market-data source (the classes in alphadag.market.sources)."""

    source: Literal["sample", "synthetic", "csv", "yfinance"] = "sample"
    tickers: list[str] = Field(
        default_factory=list, description="synthetic / yfinance tickers (empty: source default)"
    )
    synthetic_n_tickers: int = Field(20, description="synthetic: tickers when none are listed")
    synthetic_seed: int = 7
    synthetic_start: str = "2000-01-03"
    synthetic_end: str = "2026-12-31"
    synthetic_faults: list[str] = Field(
        default_factory=list,
        description="synthetic: injected faults as 'kind:TICKER:YYYY-MM-DD' (kinds: nan, "
        "negative_price, high_lt_low, duplicate_row, off_calendar_date, spike_10x)",
    )
    landing_dir: str = Field(DEFAULT_LANDING_DIR, description="csv: landing directory or URL")
    csv_pattern: str = "*"
    csv_column_map: dict[str, str] = Field(
        default_factory=dict, description="csv: vendor column -> contract column"
    )
    csv_date_format: str | None = None

    def get_source(self) -> BarSource:
        """Build the configured source."""
        if self.source == "sample":
            from alphadag.market.sources.sample import SampleSource

            return SampleSource()
        if self.source == "synthetic":
            from alphadag.market.sources.synthetic import Fault, SyntheticSource

            faults = []
            for spec in self.synthetic_faults:
                kind, _, rest = spec.partition(":")
                ticker, _, day = rest.rpartition(":")
                if not (kind and ticker and day):
                    raise ValueError(
                        f"synthetic fault {spec!r} must look like kind:TICKER:YYYY-MM-DD"
                    )
                faults.append(Fault(kind, ticker, dt.date.fromisoformat(day)))  # type: ignore[arg-type]
            return SyntheticSource(
                tickers=tuple(self.tickers) or None,
                n_tickers=self.synthetic_n_tickers,
                start=dt.date.fromisoformat(self.synthetic_start),
                end=dt.date.fromisoformat(self.synthetic_end),
                seed=self.synthetic_seed,
                faults=tuple(faults),
            )
        if self.source == "csv":
            from alphadag.market.sources.csv_landing import CsvLandingSource

            return CsvLandingSource(
                directory=self.landing_dir,
                pattern=self.csv_pattern,
                column_map=dict(self.csv_column_map),
                date_format=self.csv_date_format,
            )
        from alphadag.market.sources.yfinance_source import YFinanceSource

        if not self.tickers:
            raise ValueError("the yfinance source needs `tickers` (e.g. ['AAPL', 'MSFT'])")
        return YFinanceSource(tickers=tuple(self.tickers))
