"""Benchmark: the polars feature set against TA-Lib per ticker and against pandas, in one run.

For each panel size (``TICKERSxSESSIONS``, synthetic GBM bars from
:class:`alphadag.market.sources.synthetic.SyntheticSource`, generated once and not timed) this
times, each contender in its own fresh Python process so that its peak memory is its own:

- ``polars full``: :func:`alphadag.features.compute_features`, every column of
  ``FEATURE_COLUMNS`` (the library entry point, input validation included);
- ``polars talib13``: a polars plan for just the 13 ``TALIB_COLUMNS``, built from the same
  :mod:`alphadag.features.indicators` stages (the library has no TA-Lib-only entry point);
- ``talib loop``: what a user writes to get the same 13 columns from TA-Lib: sort by
  ``(ticker, date)``, slice each ticker's numpy arrays, call ``SMA/EMA/RSI/MACD/BBANDS/ATR``,
  and reassemble one polars frame (NaN warm-up turned into null, as the library returns);
- ``talib calls``: the TA-Lib C calls alone on arrays split beforehand (no sort, split or
  reassembly): the floor no per-ticker loop can beat, shown for context;
- ``pandas full``: the pandas code a user would write for the *whole* feature set, with the
  vectorised idioms (``groupby().rolling/ewm/shift/diff/cumsum``, ``groupby("date").rank``), not
  per-group lambdas, so pandas gets its fast paths. EMAs and Wilder averages are
  ``ewm(adjust=False)`` without TA-Lib's SMA seed: the values converge to the library's after
  the warm-up (the agreement line printed for each size shows by how much), which is enough
  for a speed reference.

Each worker reports the best of ``--repeat`` runs, its RSS before the timed work (interpreter,
imports, the panel and the contender's input) and its peak RSS during the timed runs (the
kernel's high-water mark, reset after the setup). The table gives seconds, rows/s, the ratio
to polars on the same columns (contender seconds / polars seconds, so > 1 means polars is
faster), then the issue's three targets: polars at least as fast as the TA-Lib loop on the
TA-Lib columns, at least 5x faster than pandas on the full set, and a peak RSS under 3 GiB on
2.5M rows.

Caveats: timings come from a shared 2-core machine (the load average is printed before and
after), so expect run-to-run noise of 10-20%. Polars runs on its thread pool (size printed),
TA-Lib and pandas on one core. No BLAS is involved (rolling windows, recursions and ranks are
not linear algebra), so ``OPENBLAS_CORETYPE`` and BLAS thread settings do not matter here.

Usage::

    .venv/bin/python bench/features.py                      # 20x2500 and 500x5000, best of 3
    .venv/bin/python bench/features.py --sizes 100x1000 --repeat 5
    .venv/bin/python bench/features.py --smoke              # tiny and quick, for CI-like checks
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alphadag.features import FEATURE_COLUMNS, TALIB_COLUMNS, XS_RANK_SIGNALS, compute_features
from alphadag.features import indicators as ind

MEMORY_TARGET_MIB = 3 * 1024  # "peak RSS under 3 GB", read as 3 GiB
MEMORY_TARGET_ROWS = 2_500_000
PANDAS_TARGET = 5.0  # polars must be this many times faster than pandas on the full set
AGREEMENT_WARMUP = 300  # rows per ticker skipped before comparing pandas (unseeded EWMs)
TALIB_TOLERANCE = 1e-9  # the TA-Lib loop must equal the polars TA-Lib columns to this

_SQRT_252 = math.sqrt(252.0)


# --------------------------------------------------------------------------------------------
# the panel


def make_panel(n_tickers: int, n_sessions: int, *, seed: int = 7) -> pl.DataFrame:
    """``n_tickers`` x ``n_sessions`` synthetic bars (XNYS sessions from 1990), date-major rows.

    >>> make_panel(2, 3).select("ticker", "date").rows()[:2]
    [('SYN000', datetime.date(1990, 1, 2)), ('SYN001', datetime.date(1990, 1, 2))]
    """
    if n_tickers < 1 or n_sessions < 1:
        raise ValueError(
            f"a panel needs at least 1 ticker and 1 session, got {n_tickers}x{n_sessions}"
        )
    from alphadag.market.calendar import sessions  # pandas-based: kept out of the workers
    from alphadag.market.sources.synthetic import SyntheticSource

    days = sessions("1990-01-01", "2030-12-31")[:n_sessions]
    if len(days) < n_sessions:
        raise ValueError(f"the calendar has only {len(days)} sessions, asked for {n_sessions}")
    source = SyntheticSource(n_tickers=n_tickers, start=days[0], end=days[-1], seed=seed)
    return source.fetch(days[0], days[-1]).drop("origin")


# --------------------------------------------------------------------------------------------
# contenders: each is (setup, run); setup is untimed and returns run's argument


def polars_talib13(bars: pl.DataFrame) -> pl.DataFrame:
    """The 13 TA-Lib columns as one polars plan from the library's indicator stages."""
    inputs = bars.lazy().select(
        "ticker", "date", *[pl.col(c).cast(pl.Float64) for c in ("high", "low", "close")]
    )
    stages = ind.parallel(
        ind.sma("close", 10, out="sma_10"),
        ind.sma("close", 20, out="sma_20"),
        ind.sma("close", 50, out="sma_50"),
        ind.ema("close", 12, out="ema_12"),
        ind.ema("close", 26, out="ema_26"),
        ind.rsi("close", 14, out="rsi_14"),
        ind.macd("close", 12, 26, 9, out=("macd", "macd_signal", "macd_hist")),
        ind.bbands("close", 20, 2.0, out=("bb_upper_20", "bb_mid_20", "bb_lower_20")),
        ind.atr("high", "low", "close", 14, out="atr_14"),
    )
    plan = ind.run(ind.prepare(inputs), stages)
    return plan.select("ticker", "date", *TALIB_COLUMNS).collect()


def _talib_ticker(c: np.ndarray, h: np.ndarray, lo: np.ndarray) -> list[np.ndarray]:
    """The 13 TA-Lib columns of one ticker, in ``TALIB_COLUMNS`` order."""
    import talib

    macd = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    bands = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    return [
        talib.SMA(c, 10),
        talib.SMA(c, 20),
        talib.SMA(c, 50),
        talib.EMA(c, 12),
        talib.EMA(c, 26),
        talib.RSI(c, 14),
        *macd,
        *bands,
        talib.ATR(h, lo, c, 14),
    ]


def talib_loop(bars: pl.DataFrame) -> pl.DataFrame:
    """The TA-Lib columns the way a user gets them: sort, split per ticker, call, reassemble."""
    ordered = bars.sort("ticker", "date")
    close, high, low = (ordered[c].cast(pl.Float64).to_numpy() for c in ("close", "high", "low"))
    lengths = ordered.group_by("ticker", maintain_order=True).len()["len"].to_numpy()
    ends = np.cumsum(lengths)
    out = {name: np.empty(ordered.height) for name in TALIB_COLUMNS}
    for start, end in zip(ends - lengths, ends, strict=True):
        values = _talib_ticker(close[start:end], high[start:end], low[start:end])
        for name, column in zip(TALIB_COLUMNS, values, strict=True):
            out[name][start:end] = column
    return ordered.select("ticker", "date").with_columns(
        pl.Series(name, column, nan_to_null=True) for name, column in out.items()
    )


def _split_arrays(bars: pl.DataFrame) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    ordered = bars.sort("ticker", "date")
    return [
        tuple(g[c].to_numpy() for c in ("close", "high", "low"))
        for _, g in ordered.group_by("ticker", maintain_order=True)
    ]


def talib_calls(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """Only the TA-Lib calls, on arrays already split by ticker."""
    for close, high, low in groups:
        _talib_ticker(close, high, low)
    return len(groups)


def _to_pandas(bars: pl.DataFrame) -> Any:
    return bars.to_pandas()


def pandas_features(bars: Any) -> Any:
    """The full feature set in idiomatic pandas (a speed reference, approximate seeding)."""
    import pandas as pd

    df = bars.sort_values(["ticker", "date"], ignore_index=True)
    key = df["ticker"]
    close, high, low, volume = df["close"], df["high"], df["low"], df["volume"]

    def by(s: pd.Series) -> Any:
        return s.groupby(key, sort=False)

    def rolling(s: pd.Series, n: int, how: str, **kwargs: Any) -> pd.Series:
        return getattr(by(s).rolling(n), how)(**kwargs).droplevel(0)

    def ewm(s: pd.Series, min_periods: int, **kwargs: Any) -> pd.Series:
        return by(s).ewm(adjust=False, min_periods=min_periods, **kwargs).mean().droplevel(0)

    f: dict[str, pd.Series] = {}
    for n in (10, 20, 50):
        f[f"sma_{n}"] = rolling(close, n, "mean")
    for n in (12, 26):
        f[f"ema_{n}"] = ewm(close, n, span=n)
    # RSI: Wilder's averages are an EWM with alpha = 1/14
    change = by(close).diff()
    avg_gain = ewm(change.clip(lower=0.0), 14, alpha=1 / 14)
    avg_loss = ewm((-change).clip(lower=0.0), 14, alpha=1 / 14)
    f["rsi_14"] = 100.0 * avg_gain / (avg_gain + avg_loss)
    macd = f["ema_12"] - f["ema_26"]
    signal = ewm(macd, 9, span=9)
    f["macd"], f["macd_signal"], f["macd_hist"] = macd, signal, macd - signal
    std_20 = rolling(close, 20, "std", ddof=0)
    f["bb_upper_20"] = f["sma_20"] + 2.0 * std_20
    f["bb_mid_20"] = f["sma_20"]
    f["bb_lower_20"] = f["sma_20"] - 2.0 * std_20
    prev_close = by(close).shift(1)  # the previous session of the same ticker
    true_range = pd.concat(
        [high - low, (high - prev_close).abs(), (low - prev_close).abs()], axis=1
    ).max(axis=1)
    f["atr_14"] = ewm(true_range, 14, alpha=1 / 14)
    step = np.sign(change).fillna(0.0) * volume
    step = step.mask(by(close).cumcount() == 0, volume)  # TA-Lib starts OBV at the first volume
    f["obv"] = by(step).cumsum()
    lowest, highest = rolling(low, 14, "min"), rolling(high, 14, "max")
    fast_k = 100.0 * (close - lowest) / (highest - lowest)
    f["stoch_k"] = rolling(fast_k, 3, "mean")
    f["stoch_d"] = rolling(f["stoch_k"], 3, "mean")
    log_close = np.log(close)
    for n in (5, 20, 60):
        past = by(close).shift(n)  # n sessions earlier, same ticker: no look-ahead
        f[f"roc_{n}"] = close / past - 1.0
        f[f"mom_{n}"] = close - past
    for n in (1, 5, 20):
        f[f"logret_{n}"] = by(log_close).diff(n)
    for n in (20, 60):
        f[f"rvol_{n}"] = rolling(f["logret_1"], n, "std") * _SQRT_252
    f["zscore_20"] = (close - f["sma_20"]) / std_20
    f["volume_z_20"] = (volume - rolling(volume, 20, "mean")) / rolling(volume, 20, "std", ddof=0)
    f["dist_52w_high"] = close / rolling(close, 252, "max") - 1.0
    f["dist_52w_low"] = close / rolling(close, 252, "min") - 1.0
    out = pd.DataFrame({"ticker": key, "date": df["date"], **f})
    ranks = out.groupby("date")[list(XS_RANK_SIGNALS)].rank(pct=True)
    for signal in XS_RANK_SIGNALS:
        out[f"xs_rank_{signal}"] = ranks[signal]
    return out[["ticker", "date", *FEATURE_COLUMNS]]


@dataclass(frozen=True)
class Contender:
    """A timed function, its untimed setup, and the polars contender it is compared with."""

    label: str
    columns: str  # "full" or "talib13": what it computes
    reference: str  # the polars contender of the same columns
    setup: Callable[[pl.DataFrame], Any]
    run: Callable[[Any], Any]


CONTENDERS: dict[str, Contender] = {
    "polars-full": Contender(
        "polars compute_features", "full", "polars-full", lambda b: b, compute_features
    ),
    "pandas-full": Contender(
        "pandas groupby/rolling/ewm", "full", "polars-full", _to_pandas, pandas_features
    ),
    "polars-talib13": Contender(
        "polars TA-Lib plan", "talib13", "polars-talib13", lambda b: b, polars_talib13
    ),
    "talib-loop": Contender(
        "TA-Lib loop (split+concat)", "talib13", "polars-talib13", lambda b: b, talib_loop
    ),
    "talib-calls": Contender(
        "TA-Lib C calls only (floor)", "talib13", "polars-talib13", _split_arrays, talib_calls
    ),
}


# --------------------------------------------------------------------------------------------
# the worker: one contender in a fresh process


def _status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} (this benchmark needs Linux)")
    return int(match.group(1)) / 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def worker(name: str, panel_path: str, repeat: int) -> dict[str, Any]:
    """Time one contender on the panel in this (fresh) process; its numbers as a dict.

    TA-Lib (which imports pandas) and pandas are imported only by the workers that use them,
    before the baseline is read, so a polars worker's memory carries neither.
    """
    contender = CONTENDERS[name]
    if name.startswith("talib"):
        import talib  # noqa: F401
    bars = pl.read_parquet(panel_path)
    rows = bars.height
    data = contender.setup(bars)
    del bars  # the pandas worker keeps only its pandas copy
    baseline = _status_mib("VmRSS")
    reset = _reset_peak()
    best = math.inf
    shape: tuple[int, ...] = ()
    for _ in range(repeat):
        start = time.perf_counter()
        result = contender.run(data)
        best = min(best, time.perf_counter() - start)
        shape = getattr(result, "shape", ())
        del result  # free the output before the next run: the peak holds one output
    return {
        "name": name,
        "rows": rows,
        "seconds": best,
        "out_columns": shape[1] - 2 if len(shape) == 2 else None,
        "baseline_mib": baseline,
        "peak_mib": _status_mib("VmHWM"),
        "peak_reset": reset,
        "threads": pl.thread_pool_size(),
    }


def run_worker(name: str, panel_path: Path, repeat: int) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter and return its JSON report."""
    command = [sys.executable, __file__, "--worker", name, "--panel", str(panel_path)]
    command += ["--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# agreement (untimed): the contenders compute the same thing


def _scaled_diff(ours: pl.DataFrame, theirs: pl.DataFrame, columns: tuple[str, ...]) -> dict:
    """Per column: max |ours - theirs| / std(ours) over rows where both have a value."""
    joined = ours.join(theirs, on=["ticker", "date"], suffix="_ref")
    diffs = {}
    for c in columns:
        both = joined.select(c, f"{c}_ref").drop_nulls().fill_nan(None).drop_nulls()
        a, b = both[c].to_numpy(), both[f"{c}_ref"].to_numpy()
        scale = float(np.std(a)) or 1.0
        diffs[c] = float(np.max(np.abs(a - b)) / scale) if len(a) else 0.0
    return diffs


def agreement(bars: pl.DataFrame) -> tuple[float, tuple[str, float]]:
    """TA-Lib loop vs polars (max relative difference, exact expected) and the worst pandas
    column vs polars after :data:`AGREEMENT_WARMUP` rows, on at most 20 tickers x 1,000 days.
    """
    tickers = bars["ticker"].unique().sort()[:20]
    days = bars["date"].unique().sort()[:1000]
    sample = bars.filter(
        pl.col("ticker").is_in(tickers.implode()), pl.col("date").is_in(days.implode())
    )
    ours = compute_features(sample)
    theirs = talib_loop(sample)
    joined = ours.join(theirs, on=["ticker", "date"], suffix="_ref")
    talib_rel = 0.0
    for c in TALIB_COLUMNS:
        a, b = joined[c], joined[f"{c}_ref"]
        if not a.is_null().equals(b.is_null()):
            return math.inf, ("", math.nan)
        rel = ((a - b).abs() / b.abs().clip(lower_bound=1e-12)).max()
        talib_rel = max(talib_rel, float(rel or 0.0))
    reference = pl.from_pandas(pandas_features(_to_pandas(sample)))
    reference = reference.with_columns(pl.col("date").cast(pl.Date))
    late = ours.filter(pl.int_range(pl.len()).over("ticker", order_by="date") >= AGREEMENT_WARMUP)
    diffs = _scaled_diff(late, reference, FEATURE_COLUMNS)
    worst = max(diffs.items(), key=lambda item: item[1])
    return talib_rel, worst


# --------------------------------------------------------------------------------------------
# the report


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", part)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"a size is TICKERSxSESSIONS like 500x5000, got {part!r}"
            )
        sizes.append((int(match.group(1)), int(match.group(2))))
    return sizes


def _machine() -> list[str]:
    import pandas as pd
    import talib

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, usable cores={affinity}, "
        f"load average {load}",
        f"polars {pl.__version__} thread_pool_size()={pl.thread_pool_size()} "
        f"(POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'unset')}); "
        f"pandas {pd.__version__}, numpy {np.__version__}, TA-Lib {talib.__version__} "
        f"(pandas and TA-Lib single-threaded); Python {platform.python_version()}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_parse_sizes, default=_parse_sizes("20x2500,500x5000"))
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--smoke", action="store_true", help="one tiny size, one run")
    parser.add_argument("--worker", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--panel", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.worker:
        print(json.dumps(worker(args.worker, args.panel, args.repeat)))
        return 0
    sizes, repeat = (_parse_sizes("5x400"), 1) if args.smoke else (args.sizes, args.repeat)

    began = time.perf_counter()
    print("\n".join(_machine()), flush=True)
    results: list[dict[str, Any]] = []
    failed_agreement = False
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        for n_tickers, n_sessions in sizes:
            size = f"{n_tickers}x{n_sessions}"
            bars = make_panel(n_tickers, n_sessions)
            path = Path(tmp) / f"{size}.parquet"
            bars.write_parquet(path)
            talib_rel, (worst_col, worst) = agreement(bars)
            failed_agreement |= not talib_rel <= TALIB_TOLERANCE
            print(
                f"{size}: {bars.height:,} rows; agreement on <= 20 tickers x 1,000 sessions: "
                f"TA-Lib loop vs polars max rel diff {talib_rel:.1e}; pandas vs polars after "
                f"{AGREEMENT_WARMUP} rows worst {worst_col} {worst:.1e} (|diff| / column std)",
                flush=True,
            )
            del bars
            for name in CONTENDERS:
                report = run_worker(name, path, repeat)
                report["size"] = size
                results.append(report)
                print(f"  {name}: {report['seconds']:.3f} s", file=sys.stderr, flush=True)

    print_table(results, repeat)
    print_verdicts(results)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total wall time {time.perf_counter() - began:.1f} s; load average at end {load}")
    if failed_agreement:
        print(f"FAILED: the TA-Lib loop differs from polars by more than {TALIB_TOLERANCE:g}")
        return 1
    return 0


def _by(results: list[dict[str, Any]], size: str, name: str) -> dict[str, Any]:
    return next(r for r in results if r["size"] == size and r["name"] == name)


def print_table(results: list[dict[str, Any]], repeat: int) -> None:
    header = (
        f"{'size':>9} {'rows':>10}  {'contender':<28} {'cols':>4} {'best s':>8} "
        f"{'rows/s':>11} {'x polars':>8} {'base MiB':>8} {'peak MiB':>8}"
    )
    print(f"\nbest of {repeat}; 'x polars' = seconds / seconds of polars on the same columns")
    print(header)
    print("-" * len(header))
    for r in results:
        contender = CONTENDERS[r["name"]]
        ratio = r["seconds"] / _by(results, r["size"], contender.reference)["seconds"]
        cols = "13" if contender.columns == "talib13" else str(len(FEATURE_COLUMNS))
        print(
            f"{r['size']:>9} {r['rows']:>10,}  {contender.label:<28} {cols:>4} "
            f"{r['seconds']:>8.3f} {r['rows'] / r['seconds']:>11,.0f} {ratio:>8.2f} "
            f"{r['baseline_mib']:>8.0f} {r['peak_mib']:>8.0f}"
        )
    if not all(r["peak_reset"] for r in results):
        print("note: the peak-RSS mark could not be reset: peaks include the setup")


def print_verdicts(results: list[dict[str, Any]]) -> None:
    print("\ntargets:")
    for size in dict.fromkeys(r["size"] for r in results):
        plan, loop = (_by(results, size, n)["seconds"] for n in ("polars-talib13", "talib-loop"))
        full, pandas = (_by(results, size, n)["seconds"] for n in ("polars-full", "pandas-full"))
        met = "met" if plan <= loop else "NOT met"
        print(
            f"  {size}: TA-Lib columns, polars {plan:.3f} s vs TA-Lib loop {loop:.3f} s "
            f"({loop / plan:.2f}x, target >= 1x): {met}"
        )
        met = "met" if pandas / full >= PANDAS_TARGET else "NOT met"
        print(
            f"  {size}: full set, polars {full:.3f} s vs pandas {pandas:.3f} s "
            f"({pandas / full:.2f}x, target >= {PANDAS_TARGET:g}x): {met}"
        )
    big = [r for r in results if r["name"] == "polars-full" and r["rows"] >= MEMORY_TARGET_ROWS]
    if not big:
        print(f"  peak RSS: not measured (no size with >= {MEMORY_TARGET_ROWS:,} rows)")
    for r in big:
        met = "met" if r["peak_mib"] < MEMORY_TARGET_MIB else "NOT met"
        print(
            f"  {r['size']}: peak RSS of the polars full-set process {r['peak_mib']:.0f} MiB "
            f"(baseline {r['baseline_mib']:.0f} MiB, target < {MEMORY_TARGET_MIB} MiB): {met}"
        )


if __name__ == "__main__":
    sys.exit(main())
