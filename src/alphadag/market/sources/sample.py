"""The offline sample universe bundled with installed packages (the default source).

- 20 US large caps, daily adjusted close 1990-01-02 .. 2022-12-28, from skfolio's S&P 500 dataset
  (the file ``skfolio.datasets.load_sp500_dataset`` reads, BSD-3-Clause), shipped with alphadag in
  ``market/sources/data/`` (426 KB; provenance and licence in its README) so that the sample
  needs no skfolio, cvxpy or clarabel installed; open, high, low and volume are null for them.
- The S&P 500 (``^GSPC``) and NASDAQ Composite (``^IXIC``) daily OHLCV 1999-01-04 .. 2018-12-31 from
  the datasets bundled in ``arch`` (``arch.data.sp500``, ``arch.data.nasdaq``).

Nothing is downloaded. The coverage ends with the stocks' last date: later sessions are empty by
design. The panel is loaded once per process and sliced per request.
"""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import polars as pl

from alphadag.market.schema import conform_raw
from alphadag.market.sources.base import Coverage

STOCKS_ORIGIN = "skfolio:sp500_dataset"
INDICES = {"^GSPC": "arch.data.sp500", "^IXIC": "arch.data.nasdaq"}
SAMPLE_COVERAGE = Coverage(dt.date(1990, 1, 2), dt.date(2022, 12, 28))


STOCKS_FILE = Path(__file__).parent / "data" / "sp500_dataset.csv.gz"
"""The stock closes: skfolio 1.12.2's ``datasets/data/sp500_dataset.csv.gz``, byte for byte."""


def _stocks_file() -> Path:
    if not STOCKS_FILE.is_file():
        raise FileNotFoundError(
            f"the sample source needs {STOCKS_FILE}, which ships with alphadag and is missing: "
            "reinstall alphadag (pip install --force-reinstall alphadag, or make env)"
        )
    return STOCKS_FILE


def _stocks() -> pl.DataFrame:
    # the same parse as skfolio.datasets.load_sp500_dataset (tests/unit/test_ingest.py compares)
    with gzip.open(_stocks_file(), mode="rt", encoding="utf-8") as text:
        wide = pd.read_csv(text, sep=",", index_col=0)
    wide.index = pd.to_datetime(wide.index, format="%Y-%m-%d")
    long = (
        wide.rename_axis("date")
        .reset_index()
        .melt(id_vars="date", var_name="ticker", value_name="close")
    )
    frame = pl.from_pandas(long).with_columns(origin=pl.lit(STOCKS_ORIGIN))
    return conform_raw(frame)


def _index(ticker: str, module: str) -> pl.DataFrame:
    import importlib

    data: pd.DataFrame = importlib.import_module(module).load()
    data = data.rename(columns=str.lower).rename_axis("date").reset_index()
    frame = pl.from_pandas(data[["date", "open", "high", "low", "close", "volume"]])
    return conform_raw(frame.with_columns(ticker=pl.lit(ticker), origin=pl.lit(module)))


@lru_cache(maxsize=1)
def sample_panel() -> pl.DataFrame:
    """The whole sample panel in the raw schema, sorted by date then ticker (cached)."""
    frames = [_stocks(), *(_index(t, m) for t, m in INDICES.items())]
    return pl.concat(frames).sort("date", "ticker")


@dataclass(frozen=True)
class SampleSource:
    """The bundled offline sample: 20 large caps (close only) and two indices (OHLCV).

    >>> bars = SampleSource().fetch(dt.date(2018, 12, 31), dt.date(2018, 12, 31))
    >>> bars.height, bars.filter(pl.col("ticker") == "^GSPC")["open"].is_null().any()
    (22, False)
    """

    name: str = "sample"

    def fetch(self, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Raw bars with ``start <= date <= end``."""
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        return sample_panel().filter(pl.col("date").is_between(start, end))

    def coverage(self) -> Coverage:
        """1990-01-02 to 2022-12-28, the stocks' coverage."""
        return SAMPLE_COVERAGE

    def tickers(self) -> list[str]:
        """The sample's tickers."""
        return sorted(sample_panel()["ticker"].unique().to_list())
