"""`alphadag demo` twice on one fresh instance: wall time of each, and what DAGSTER_HOME grows by.

What `make demo` does after `make env`, in temporary directories (a fresh DAGSTER_HOME holding the
repo's dagster.yaml, a fresh data root, MLflow store and alert log), run twice on the same
instance: the second demo re-materializes every session over the first one's history, which is
where Dagster's bookkeeping used to slow it down (1,216 s against 481 s). Prints the wall time of
each demo and of its steps (from the demo's own output), the ratio second / first, and the size of
DAGSTER_HOME after each (event logs, run storage, compute logs) with a breakdown of the index
database by table.

    .venv/bin/python bench/demo.py             # the sample, 2010-01-01 .. 2022-12-28
    .venv/bin/python bench/demo.py --start 2020-01-01 --keep
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _tables(index_db: Path) -> list[tuple[str, float]]:
    con = sqlite3.connect(index_db)
    try:
        rows = con.execute(
            "select name, sum(pgsize) from dbstat group by name order by 2 desc"
        ).fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return []
    finally:
        con.close()
    return [(name, size / 1e6) for name, size in rows[:6]]


def _steps(output: str) -> dict[str, str]:
    found = {}
    for label, pattern in {
        "data (daily_data_job)": r"== daily_data_job over .*?\n\s+success=\w+\s+wall=([\d.]+)s",
        "train_job": r"== train_job: run \S+\s+success=\w+\s+wall=([\d.]+)s",
        "serving_job": r"== serving_job over .*?\n\s+success=\w+\s+wall=([\d.]+)s",
        "total (demo's own)": r"Total ([\d.]+)s",
    }.items():
        m = re.search(pattern, output)
        if m:
            found[label] = m.group(1)
    backtests = re.findall(r"== backtest_job: run \S+\s+success=\w+\s+wall=([\d.]+)s", output)
    if backtests:
        found["backtest_job (each)"] = " + ".join(backtests)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default=None, help="first session (default: the demo's)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="alphadag-demo-bench-"))
    home, data = tmp / "dagster_home", tmp / "alphadag"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHADAG_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        ALPHADAG_DATA_ROOT=str(data / "data"),
        ALPHADAG_MLFLOW_URI=f"sqlite:///{data}/mlflow.db",
        ALPHADAG_MLFLOW_ARTIFACTS=str(data / "mlartifacts"),
        ALPHADAG_ALERT_LOG=str(data / "alerts.jsonl"),
        ALPHADAG_LANDING_DIR=str(data / "landing"),
    )
    cmd = [str(REPO / ".venv" / "bin" / "alphadag"), "demo", "--no-progress"]
    if args.start:
        cmd += ["--start", args.start]
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()}, temp {tmp}")
    walls, sizes = [], [_size(home)]
    try:
        for i in range(args.runs):
            t0 = time.monotonic()
            out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
            walls.append(time.monotonic() - t0)
            sizes.append(_size(home))
            (tmp / f"demo{i + 1}.log").write_text(out.stdout + "\n" + out.stderr)
            print(
                f"\ndemo {i + 1}: exit {out.returncode}, wall {walls[-1]:.1f} s, "
                f"DAGSTER_HOME {sizes[-1] / 1e6:.1f} MB (+{(sizes[-1] - sizes[-2]) / 1e6:.1f} MB)"
            )
            for label, value in _steps(out.stdout).items():
                print(f"   {label:<22} {value} s")
            if out.returncode != 0:
                print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
                args.keep = True
                break
        index = home / "history" / "runs" / "index.db"
        if index.exists():
            print("\nindex.db by table (MB):")
            for name, mb in _tables(index):
                print(f"   {name:<40} {mb:8.1f}")
        if len(walls) >= 2:
            print(f"\nratio second / first demo: {walls[1] / walls[0]:.2f}x")
            growth = [(b - a) / 1e6 for a, b in itertools.pairwise(sizes)]
            print("DAGSTER_HOME growth per demo (MB): " + ", ".join(f"{g:.1f}" for g in growth))
        print(f"load average at end {os.getloadavg()}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
