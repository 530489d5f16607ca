"""Benchmark: a one-session ``daily_job`` via ``dg launch`` after a backfill and a training run.

Issue 12's target: a one-session ``daily_job`` for 500 synthetic tickers via
``dg launch --job daily_job --partition D`` completes in < 30 s after a backfill and a training
run. Everything happens in one temporary directory (never the repo's ``.dagster_home`` or
``.alphadag``), in child processes that all get the same environment:

- ``DAGSTER_HOME``: a fresh directory holding the repo's ``dagster.yaml`` (its event log's
  ``base_dir`` reads ``DAGSTER_HOME``); ``ALPHADAG_DATA_ROOT``, ``ALPHADAG_MLFLOW_URI``
  (``sqlite:///<tmp>/mlflow.db``), ``ALPHADAG_MLFLOW_ARTIFACTS`` and ``ALPHADAG_ALERT_LOG`` in
  the same directory; ``ALPHADAG_SOURCE=synthetic`` with ``ALPHADAG_TICKERS`` = ``SYN000``,
  ``SYN001``, ... (``--tickers`` names, the synthetic source's own naming, which matches
  ``alphadag.market.tickers.TICKER_PATTERN``); ``ALPHADAG_HISTORY_START`` = the first backfilled
  session. Inherited ``DAGSTER_*`` and ``ALPHADAG_*`` variables are dropped; ``VIRTUAL_ENV`` is
  this interpreter's environment (the project's venv: dg checks it).
- Bytecode: the children write and read ``.pyc`` files under ``<tmp>/pycache``
  (``PYTHONPYCACHEPREFIX``, ``PYTHONDONTWRITEBYTECODE`` unset), filled by the backfill and the
  training run, so the measured launches load bytecode as from an installed environment, whatever
  state the venv is in. Where the shell sets ``PYTHONDONTWRITEBYTECODE=1`` and the venv was
  installed without ``.pyc`` files, every launch and every step process of the multiprocess
  executor compiles some 6,000 modules from source: ``--no-pycache`` keeps the shell's setting
  (the ``bytecode`` line says whether the venv holds bytecode).
- D is the latest XNYS session that is a partition today (the partitions end at today's UTC
  date) and that the synthetic source covers (``MarketDataResource.synthetic_end``).
- Backfill: ``alphadag materialize --job daily_data_job --start S --end D-1 --no-progress`` over
  the ``--sessions`` sessions before D (one ranged run, in process, on the instance).
- Train: ``dg launch --job train_job`` from the repo root (dg finds the project through
  pyproject's ``[tool.dg]``). The report prints the ``model_source`` of D's predictions:
  ``champion`` means the daily run served the trained model, not the baseline fallback.
- Measured: ``dg launch --job daily_job --partition D`` (every job runs on
  ``in_process_executor``), wall time of the subprocess on a monotonic clock: Python start,
  dg, loading the code location, the run.
- Reference, same run, same instance and data: the same job on Dagster's default
  ``multiprocess_executor`` (spawn, one fresh Python per step: what every job ran on before the
  switch), as ``daily_job_multiprocess`` in a code location module this bench writes to the
  temporary directory (``alphadag.definitions.defs()`` plus a copy of ``daily_job``: same
  selection, partitions, tags and config), launched with
  ``dg launch -m <module> -d <tmp>/code --job daily_job_multiprocess --partition D`` after the
  in-process run. It runs the *same* session D again rather than D+1: the inputs (bars up to D,
  the champion model, the files it replaces) are identical, so both runs do the same data work
  and differ only in the executor; D+1 would read one more session and need a partition that
  may not exist yet. Both runs find the page cache and the bytecode cache warm (the backfill and
  training just read the same files and modules). ``--repeat N`` alternates the pair N times.

From the run's events, read back with ``DagsterInstance.from_config(DAGSTER_HOME)``:
``run s`` (RUN_START to RUN_SUCCESS), ``steps s`` (sum over steps of STEP_START to STEP_SUCCESS)
and ``overhead s`` = wall - steps: interpreter and import start-up, code location load, run
bookkeeping and, with the multiprocess executor, each step's own Python start-up (a step's
STEP_START is stored after its process has imported the code). The multiprocess executor may run
two steps at once (features and labels), so ``busy s`` (the time at least one step ran) is printed
too and ``idle s`` = wall - busy. A per-step table follows. Ratios are multiprocess / in-process
(> 1: in-process faster). No assertion: a benchmark, not a test. CPU heavy; the machine is shared,
so the load average is printed before each measured launch and at the end.

History length (``--sessions``, default 300): the smallest that trains and serves as in
production. ``predictions`` of D reads the 300 bars partitions before D
(``RISK_LOOKBACK_SESSIONS``: the 250-return VaR/CVaR window plus the EWMA seed), so with 300
backfilled sessions its risk figures are computed on a full window, not from a short history
(fewer than 60 returns gives nulls, fewer than 100 a parametric VaR). Training on 300 sessions:
``training_set``'s segments (horizon 5, 15% valid, 15% test, two 5-session embargoes) are 200 /
45 / 45 sessions, and the 3 walk-forward CV folds inside train get 50 sessions each, well past
the features' 60-session warm-up and the labels' 20-session horizon. ``features`` of D reads every
bars partition from the first session, so its cost grows with ``--sessions``.

Measured on the 2-core dev machine (2026-12-06, D = 2026-12-04, 500 tickers, 300 sessions,
load average 4-5 from other engineers' tests; backfill 44 s, training 24 s)::

    executor                wall s   run s  steps s  overhead s  busy s  idle s  status
    in_process                28.5    16.5     15.9        12.5    15.9    12.5  SUCCESS
    multiprocess (spawn)      89.6    80.7     18.1        71.4    17.8    71.8  SUCCESS
    ratio multiprocess / in_process: wall 3.15x, run 4.89x, steps 1.14x, overhead 5.70x

A second run minutes later (``--no-pycache``, the venv by then held bytecode, load ~5) gave
26.3 s and 65.6 s (2.50x): expect 10-30% noise here. With no bytecode anywhere (the venv without
``.pyc``, ``PYTHONDONTWRITEBYTECODE=1``), 20 tickers and 120 sessions at load 5-6 took 51.5 s
in process (27 s of it outside the run itself) and 270.5 s multiprocess.

Usage::

    .venv/bin/python bench/daily_run.py                     # 500 tickers, 300 sessions
    .venv/bin/python bench/daily_run.py --tickers 20 --sessions 120 --keep
    .venv/bin/python bench/daily_run.py --repeat 2          # in-process / multiprocess twice
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0
IN_PROCESS_JOB = "daily_job"
REFERENCE_JOB = "daily_job_multiprocess"
REFERENCE_MODULE = "bench_daily_multiprocess"
TIMEOUT = 3600

_REFERENCE_SOURCE = f'''\
"""Written by bench/daily_run.py: alphadag's code location plus {REFERENCE_JOB}, a copy of
daily_job on Dagster's default multiprocess executor (spawn: one fresh Python per step)."""

import dagster as dg

import alphadag.definitions as location


def _build() -> dg.Definitions:
    base = location.defs()  # reads the settings the defs modules are built from
    from alphadag.defs.automation import jobs

    daily = jobs.daily_job
    reference = dg.define_asset_job(
        "{REFERENCE_JOB}",
        selection=daily.selection,
        partitions_def=daily.partitions_def,
        config=daily.config,
        tags=daily.tags,
        run_tags=daily.run_tags,
        description=daily.description,
        executor_def=dg.multiprocess_executor,
    )
    return dg.Definitions.merge(base, dg.Definitions(jobs=[reference]))


defs = _build()
'''


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _tool(name: str) -> str:
    """``name`` next to this interpreter (the project's venv), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found next to {sys.executable} or on PATH")
    return found


def pick_sessions(n_sessions: int) -> tuple[list[dt.date], dt.date]:
    """The ``n_sessions`` sessions to backfill and D, the session after them.

    D is the latest session that is a partition now (``sessions_partitions`` ends at today's
    UTC date) and inside the synthetic source's coverage.
    """
    from alphadag.defs.resources.market_data import MarketDataResource
    from alphadag.market.calendar import sessions

    coverage_end = dt.date.fromisoformat(MarketDataResource.model_fields["synthetic_end"].default)
    last = min(dt.datetime.now(dt.UTC).date(), coverage_end)
    span = dt.timedelta(days=int(n_sessions * 1.6) + 30)  # 252 sessions a year, holidays
    days = sessions(last - span, last)
    if len(days) < n_sessions + 1:
        raise SystemExit(f"the calendar has only {len(days)} sessions up to {last}")
    return days[-n_sessions - 1 : -1], days[-1]


def bytecode_facts() -> str:
    """Whether this environment writes bytecode and whether the venv holds any."""
    import dagster

    cached = (Path(dagster.__file__).parent / "__pycache__").is_dir()
    return (
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')}, "
        f"dagster/__pycache__ {'present' if cached else 'absent'} in the venv"
    )


def child_env(
    tmp: Path, n_tickers: int, history_start: dt.date, *, pycache: bool = True
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "ALPHADAG_"))}
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    width = max(3, len(str(n_tickers - 1)))  # SyntheticSource's own names: SYN000, SYN001, ...
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": sys.prefix,
            "DAGSTER_HOME": str(tmp / "dagster_home"),
            "ALPHADAG_DATA_ROOT": str(tmp / "data"),
            "ALPHADAG_MLFLOW_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "ALPHADAG_MLFLOW_ARTIFACTS": str(tmp / "mlartifacts"),
            "ALPHADAG_ALERT_LOG": str(tmp / "alerts.jsonl"),
            "ALPHADAG_SOURCE": "synthetic",
            "ALPHADAG_TICKERS": ",".join(f"SYN{i:0{width}d}" for i in range(n_tickers)),
            "ALPHADAG_HISTORY_START": history_start.isoformat(),
        }
    )
    return env


def launch(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> float:
    """Run ``cmd`` from the repo root; its wall seconds. Output goes to ``logs/<name>.log``."""
    log = logs / f"{name}.log"
    with log.open("w") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        t0 = time.monotonic()
        done = subprocess.run(
            cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=TIMEOUT
        )
        wall = time.monotonic() - t0
    if done.returncode != 0:
        tail = log.read_text()[-4000:]
        raise RuntimeError(f"{name} exited {done.returncode} after {wall:.1f} s ({log}):\n{tail}")
    return wall


@dataclass
class RunTimes:
    """What one run's stored events say: its status, duration and each step's interval."""

    run_id: str
    status: str
    run_seconds: float
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def steps_sum(self) -> float:
        return sum(end - start for start, end in self.steps.values())

    @property
    def busy(self) -> float:
        """Seconds during which at least one step ran (the union of the step intervals)."""
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.steps.values()):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


def read_runs(home: Path, job_name: str) -> list[RunTimes]:
    """The runs of ``job_name`` on the instance in ``home``, oldest first, from their events."""
    import dagster as dg
    from dagster import DagsterEventType as T

    os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml's base_dir reads it
    kinds = {
        T.RUN_START,
        T.RUN_SUCCESS,
        T.RUN_FAILURE,
        T.STEP_START,
        T.STEP_SUCCESS,
        T.STEP_FAILURE,
    }
    out = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in reversed(instance.get_runs(filters=dg.RunsFilter(job_name=job_name))):
            started: dict[str, float] = {}
            times = RunTimes(run.run_id, run.status.value, float("nan"))
            run_start = None
            for entry in instance.all_logs(run.run_id, of_type=kinds):
                kind, ts = entry.dagster_event.event_type, entry.timestamp
                if kind == T.RUN_START:
                    run_start = ts
                elif kind in (T.RUN_SUCCESS, T.RUN_FAILURE) and run_start is not None:
                    times.run_seconds = ts - run_start
                elif kind == T.STEP_START:
                    started[entry.step_key] = ts
                elif kind in (T.STEP_SUCCESS, T.STEP_FAILURE) and entry.step_key in started:
                    times.steps[entry.step_key] = (started[entry.step_key], ts)
                    if kind == T.STEP_FAILURE:
                        error = entry.dagster_event.step_failure_data.error
                        times.failures.append(f"{entry.step_key}: {error.message.strip()}")
            out.append(times)
    return out


def served_by(data_root: Path, day: dt.date) -> str:
    """Rows and model sources of the ``predictions`` file of ``day``."""
    import polars as pl

    files = glob.glob(str(data_root / "predictions" / "**" / f"{day}.parquet"), recursive=True)
    if not files:
        return f"no predictions file for {day}"
    preds = pl.read_parquet(files)
    sources = ", ".join(sorted(set(preds["model_source"]))) or "-"
    return f"{preds.height} rows, {preds['ticker'].n_unique()} tickers, model_source {sources}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].replace("``", ""))
    parser.add_argument("--tickers", type=int, default=500, help="synthetic tickers (500)")
    parser.add_argument(
        "--sessions", type=int, default=300, help="sessions backfilled before D (300)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="measured pairs, alternating (1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--no-pycache",
        action="store_true",
        help="children inherit this shell's bytecode setting instead of a bytecode cache in the "
        "temporary directory",
    )
    args = parser.parse_args(argv)
    if args.tickers < 1 or args.sessions < 1 or args.repeat < 1:
        parser.error("--tickers, --sessions and --repeat must be positive")

    began = time.monotonic()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, usable cores={affinity}, "
        f"load average {_load()} (before starting); Python {platform.python_version()}",
        flush=True,
    )
    bytecode = "inherited (--no-pycache)" if args.no_pycache else "cache under <tmp>/pycache"
    print(f"bytecode: {bytecode}; this shell: {bytecode_facts()}", flush=True)
    history, day = pick_sessions(args.sessions)
    tmp = Path(tempfile.mkdtemp(prefix="alphadag-bench-daily-"))
    home, logs, code = tmp / "dagster_home", tmp / "logs", tmp / "code"
    for d in (home, logs, code):
        d.mkdir()
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    (code / f"{REFERENCE_MODULE}.py").write_text(_REFERENCE_SOURCE)
    env = child_env(tmp, args.tickers, history[0], pycache=not args.no_pycache)
    dg_bin, alphadag_bin = _tool("dg"), _tool("alphadag")
    print(
        f"{args.tickers} synthetic tickers; backfill {len(history)} sessions "
        f"{history[0]} .. {history[-1]}; D = {day}; temporary directory {tmp}",
        flush=True,
    )
    try:
        backfill = [
            alphadag_bin,
            *("materialize", "--job", "daily_data_job"),
            *("--start", history[0].isoformat(), "--end", history[-1].isoformat()),
            "--no-progress",
        ]
        wall = launch("backfill", backfill, env, logs)
        print(f"backfill (daily_data_job, {len(history)} sessions): {wall:.1f} s", flush=True)
        wall = launch("train", [dg_bin, "launch", "--job", "train_job"], env, logs)
        print(f"train (dg launch --job train_job): {wall:.1f} s", flush=True)

        measured: list[tuple[str, float, str]] = []  # (job, wall, load before)
        partition = ["--partition", day.isoformat()]
        pointer = ["-m", REFERENCE_MODULE, "-d", str(code)]  # the module written above
        for i in range(args.repeat):
            for job, cmd in (
                (IN_PROCESS_JOB, [dg_bin, "launch", "--job", IN_PROCESS_JOB, *partition]),
                (REFERENCE_JOB, [dg_bin, "launch", *pointer, "--job", REFERENCE_JOB, *partition]),
            ):
                load = _load()
                wall = launch(f"{job}_{i + 1}", cmd, env, logs)
                measured.append((job, wall, load))
                print(f"  {job} {day}: {wall:.1f} s (load before {load})", flush=True)

        train_runs = read_runs(home, "train_job")
        runs = {job: read_runs(home, job) for job in (IN_PROCESS_JOB, REFERENCE_JOB)}
        report(measured, runs, train_runs, day, tmp / "data", args.repeat)
    except BaseException:
        print(f"failed: kept {tmp} (DAGSTER_HOME {home}, logs {logs})", file=sys.stderr)
        raise
    if args.keep:
        print(f"kept {tmp} (DAGSTER_HOME {home}, logs {logs})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"total wall time {time.monotonic() - began:.1f} s; load average at end {_load()}")
    return 0


def report(
    measured: list[tuple[str, float, str]],
    runs: dict[str, list[RunTimes]],
    train_runs: list[RunTimes],
    day: dt.date,
    data_root: Path,
    repeat: int,
) -> None:
    train = train_runs[-1] if train_runs else None
    print(f"\ntrain_job run: {train.status if train else 'not found'}")
    print(f"predictions of {day}: {served_by(data_root, day)}")
    labels = {IN_PROCESS_JOB: "in_process", REFERENCE_JOB: "multiprocess (spawn)"}
    seen: dict[str, int] = {}
    rows: list[tuple[str, float, RunTimes]] = []
    for job, wall, _load_before in measured:
        k = seen.get(job, 0)
        seen[job] = k + 1
        rows.append((job, wall, runs[job][k]))

    header = (
        f"{'executor':<22}{'wall s':>8}{'run s':>8}{'steps s':>9}{'overhead s':>12}"
        f"{'busy s':>8}{'idle s':>8}  {'load before':<16}{'status'}"
    )
    print(f"\none-session daily_job, partition {day} (overhead = wall - steps, idle = wall - busy)")
    print(header)
    print("-" * len(header))
    for (job, wall, t), (_, _, load) in zip(rows, measured, strict=True):
        print(
            f"{labels[job]:<22}{wall:>8.1f}{t.run_seconds:>8.1f}{t.steps_sum:>9.1f}"
            f"{wall - t.steps_sum:>12.1f}{t.busy:>8.1f}{wall - t.busy:>8.1f}  {load:<16}{t.status}"
        )
        for failure in t.failures:
            print(f"    FAILED {failure[:500]}")

    def mean(job: str, what) -> float:
        values = [what(w, t) for j, w, t in rows if j == job]
        return sum(values) / len(values)

    print(f"\nratio multiprocess / in_process{' (means)' if repeat > 1 else ''}:")
    for name, what in (
        ("wall", lambda w, t: w),
        ("run", lambda w, t: t.run_seconds),
        ("steps", lambda w, t: t.steps_sum),
        ("overhead", lambda w, t: w - t.steps_sum),
    ):
        ours, ref = mean(IN_PROCESS_JOB, what), mean(REFERENCE_JOB, what)
        print(f"   {name:<9} {ref:7.1f} s / {ours:7.1f} s = {ref / ours:5.2f}x")

    steps = sorted({s for _, _, t in rows for s in t.steps}, key=lambda s: _first_start(rows, s))
    print("\nper step, seconds (STEP_START to STEP_SUCCESS; first pair):")
    firsts = {job: runs[job][0] for job in (IN_PROCESS_JOB, REFERENCE_JOB) if runs[job]}
    print(f"   {'step':<28}{'in_process':>12}{'multiprocess':>14}")
    for step in steps:
        cells = []
        for job in (IN_PROCESS_JOB, REFERENCE_JOB):
            span = firsts[job].steps.get(step) if job in firsts else None
            cells.append(f"{span[1] - span[0]:.2f}" if span else "-")
        print(f"   {step:<28}{cells[0]:>12}{cells[1]:>14}")

    walls = [w for j, w, _ in rows if j == IN_PROCESS_JOB]
    ok = all(t.status == "SUCCESS" for _, _, t in rows)
    verdict = "met" if ok and max(walls) < TARGET_SECONDS else "NOT met"
    print(
        f"\ntarget: dg launch --job daily_job --partition {day} < {TARGET_SECONDS:.0f} s: "
        f"{', '.join(f'{w:.1f}' for w in walls)} s: {verdict}"
    )


def _first_start(rows: list[tuple[str, float, RunTimes]], step: str) -> float:
    for _, _, t in rows:
        if step in t.steps:
            return t.steps[step][0] - min(s for s, _ in t.steps.values())
    return float("inf")


if __name__ == "__main__":
    sys.exit(main())
