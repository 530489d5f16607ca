"""Benchmark: what write-audit-publish costs over a plain atomic write, in one run.

For a full history of bars-sized partitions (``--sessions`` sessions x ``--tickers`` tickers,
random OHLCV, generated once and not timed) this times, best of ``--repeat``, on one local
filesystem:

- ``write_many``: the plain atomic write (temp files, one syncfs, renames), the reference;
- ``wap``: what the IO manager does for an asset with blocking checks: ``stage_many`` (staged
  files, one syncfs), ``read_staged`` (the audit reads every staged file back), ``publish`` (one
  rename per session and one fsync per directory).

It prints seconds per contender and the ratio wap / write_many (the audit's own checks are
excluded: they ran on the stored files before write-audit-publish as well).

    .venv/bin/python bench/wap.py --sessions 3270 --tickers 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from alphadag.market.calendar import sessions
from alphadag.market.storage import PartitionStore


def _frames(n_sessions: int, n_tickers: int) -> dict[dt.date, pl.DataFrame]:
    rng = np.random.default_rng(0)
    days = sessions("2010-01-04", "2030-12-31")[:n_sessions]
    tickers = [f"T{i:03d}" for i in range(n_tickers)]
    out = {}
    for day in days:
        close = rng.lognormal(4, 0.5, n_tickers)
        out[day] = pl.DataFrame(
            {
                "ticker": tickers,
                "date": [day] * n_tickers,
                "open": close * 0.99,
                "high": close * 1.01,
                "low": close * 0.98,
                "close": close,
                "volume": rng.integers(1, 10**7, n_tickers).astype(float),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3270)
    parser.add_argument("--tickers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frames = _frames(args.sessions, args.tickers)
    days = sorted(frames)
    best: dict[str, float] = {}
    for i in range(args.repeat):
        root = Path(tempfile.mkdtemp(prefix="bench_wap_"))
        try:
            store = PartitionStore(root)
            t = time.perf_counter()
            store.write_many("bars", frames)
            plain = time.perf_counter() - t
            t = time.perf_counter()
            store.stage_many("bars", f"run{i}", frames)
            store.read_staged("bars", f"run{i}", days)
            store.publish("bars", f"run{i}", days)
            wap = time.perf_counter() - t
        finally:
            shutil.rmtree(root)
        best["write_many"] = min(best.get("write_many", plain), plain)
        best["wap"] = min(best.get("wap", wap), wap)
    print(f"{args.sessions} sessions x {args.tickers} tickers, best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:<11} {seconds:8.3f} s  {seconds / len(days) * 1e3:6.3f} ms/session")
    print(f"  wap / write_many: {best['wap'] / best['write_many']:.2f}x")


if __name__ == "__main__":
    main()
