"""Write the recorded ``yfinance.download`` responses the yfinance source tests replay.

Each recording is ``<name>.csv`` (the frame exactly as ``yfinance.download`` returned it, column
MultiIndex as two header rows) and ``<name>.json`` (the request, column level names, index name and
dtype, every column's dtype, the yfinance log records emitted during the call, and how it was made).
The tests rebuild the frame from both files. Never run by the tests. Three modes::

    python tests/data/yfinance/record.py live        # needs internet: asks Yahoo, the real thing
    python tests/data/yfinance/record.py synthetic   # offline: yfinance's own frame assembly fed
                                                     # with hand-set per-ticker bars (the committed
                                                     # multi_ticker / single_ticker files)
    python tests/data/yfinance/record.py no-network  # run where DNS fails (e.g. `unshare -rn`):
                                                     # records what yfinance returns and logs then

``live`` and ``synthetic`` both write ``multi_ticker`` and ``single_ticker``; ``no-network`` writes
``no_network_first_call`` and ``no_network_later_call`` (two downloads in one process: yfinance
1.7 words the same DNS failure differently once its timezone fallback counter is spent).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import yfinance as yf

HERE = Path(__file__).resolve().parent
TICKERS = ("AAPL", "BRK-B", "^GSPC", "SIVB")  # SIVB: delisted in 2023, Yahoo has no bars
START, END_EXCLUSIVE = "2024-01-02", "2024-01-17"  # ten XNYS sessions (2024-01-15 is a holiday)

# The arguments YFinanceSource.download_kwargs passes (kept in sync by the unit tests).
REQUEST = {
    "start": START,
    "end": END_EXCLUSIVE,
    "interval": "1d",
    "auto_adjust": True,
    "actions": False,
    "group_by": "ticker",
    "progress": False,
    "threads": False,
    "ignore_tz": True,
    "keepna": False,
    "multi_level_index": True,
    "timeout": 10.0,
}

SESSIONS = pd.to_datetime(
    [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
        "2024-01-09",
        "2024-01-10",
        "2024-01-11",
        "2024-01-12",
        "2024-01-16",
    ]
)
# Close prices near the real ones for those sessions, times an auto_adjust-like dividend factor.
CLOSES = {
    "AAPL": (
        [185.64, 184.25, 181.91, 181.18, 185.56, 185.14, 186.19, 185.59, 185.92, 183.63],
        0.98902,
        (58e6, 82e6),
    ),
    "BRK-B": (
        [362.46, 360.33, 362.50, 364.41, 366.03, 363.64, 366.19, 366.22, 368.48, 369.93],
        1.0,
        (2.8e6, 4.6e6),
    ),
    "^GSPC": (
        [4742.83, 4704.81, 4688.68, 4697.24, 4763.54, 4756.50, 4783.45, 4780.24, 4783.83, 4765.98],
        1.0,
        (3.3e9, 4.4e9),
    ),
}
DELISTED = "SIVB"


def synthetic_history(ticker: str) -> pd.DataFrame:
    """One ticker as ``PriceHistory.history(auto_adjust=True, actions=False)`` returns it."""
    closes, factor, (vol_lo, vol_hi) = CLOSES[ticker]
    rng = np.random.default_rng(sum(map(ord, ticker)))
    close = np.array(closes) * factor
    prev = np.concatenate([[close[0] * (1 - 0.004)], close[:-1]])
    open_ = prev * (1 + rng.normal(0, 0.004, len(close)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, len(close))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, len(close))))
    volume = rng.integers(int(vol_lo), int(vol_hi), len(close)).astype(np.int64)
    index = pd.DatetimeIndex(SESSIONS.as_unit("s")).tz_localize("America/New_York")
    frame = pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}, index=index
    )
    frame.index.name = "Date"
    return frame


@contextlib.contextmanager
def yfinance_log() -> Iterator[list[list[object]]]:
    """Collect yfinance's WARNING+ records and the DEBUG url / response code lines."""
    records: list[list[object]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if record.levelno >= logging.WARNING or message.startswith(("url=", "response code=")):
                records.append([record.levelname, message])

    logger = logging.getLogger("yfinance")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def synthetic_yahoo() -> Iterator[None]:
    """Replace only the network-facing parts; yfinance's download() assembles the frame itself."""
    from yfinance.base import TickerBase
    from yfinance.scrapers.history import PriceHistory
    from yfinance.utils import empty_df, get_yf_logger

    def fake_tz(self: TickerBase, timeout: float) -> str | None:
        return None if self.ticker == DELISTED else "America/New_York"

    def fake_history(self: PriceHistory, *args: object, **kwargs: object) -> pd.DataFrame:
        if self.ticker == DELISTED:  # what PriceHistory.history does when the timezone is missing
            self._last_error = "possibly delisted; no timezone found"
            get_yf_logger().error(f"${self.ticker}: possibly delisted; no timezone found")
            return empty_df()
        return synthetic_history(self.ticker)

    with (
        mock.patch.object(TickerBase, "_get_ticker_tz", fake_tz),
        mock.patch.object(PriceHistory, "history", fake_history),
    ):
        yield


def write(name: str, frame: pd.DataFrame, tickers: list[str], log: list, produced: str) -> None:
    meta = {
        "produced": produced,
        "recorded_on": dt.date.today().isoformat(),
        "yfinance_version": yf.__version__,
        "pandas_version": pd.__version__,
        "request": {"tickers": " ".join(tickers), **REQUEST},
        "column_names": list(frame.columns.names),
        "index_name": frame.index.name,
        "index_dtype": str(frame.index.dtype),
        "dtypes": {"|".join(map(str, col)): str(dtype) for col, dtype in frame.dtypes.items()},
        "log": log,
    }
    frame.to_csv(HERE / f"{name}.csv")
    (HERE / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {name}: {frame.shape[0]} rows x {frame.shape[1]} columns, {len(log)} log records")


def download(tickers: list[str]) -> tuple[pd.DataFrame, list]:
    with yfinance_log() as log:
        frame = yf.download(" ".join(tickers), **REQUEST)
    return frame, log


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["live", "synthetic", "no-network"])
    mode = parser.parse_args(argv).mode
    if mode == "no-network":
        for name in ("no_network_first_call", "no_network_later_call"):
            frame, log = download(list(TICKERS))
            write(name, frame, list(TICKERS), log, "no-network: real yfinance, DNS failing")
        return
    context = synthetic_yahoo() if mode == "synthetic" else contextlib.nullcontext()
    produced = (
        "synthetic: yfinance's download() assembly over hand-set per-ticker bars (record.py)"
        if mode == "synthetic"
        else "live: Yahoo Finance via yfinance.download"
    )
    with context:
        for name, tickers in (("multi_ticker", list(TICKERS)), ("single_ticker", ["AAPL"])):
            frame, log = download(tickers)
            write(name, frame, tickers, log, produced)


if __name__ == "__main__":
    main(sys.argv[1:])
