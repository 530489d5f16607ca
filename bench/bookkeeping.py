"""Dagster bookkeeping per partition: Dagster's stock SQLite event log vs alphadag's batched one.

A trivial two-asset daily-partitioned job (``a`` -> ``b``, a blocking partitioned check on ``a``,
single-run backfill policy, in-process executor, an IO manager that keeps nothing) runs once
over N partitions on a fresh instance in a temporary DAGSTER_HOME. The data work is nothing, so
the wall time is Dagster's own bookkeeping: planned events, materializations, check rows. Each
configuration runs in its own Python process (the batch size is read from the environment).

Prints wall seconds, ms per partition-asset, the ratio stock / alphadag at the same N, and the
index database's size. No assertion: a benchmark, not a test.

    .venv/bin/python bench/bookkeeping.py                 # 300, 1000, 3000 partitions
    .venv/bin/python bench/bookkeeping.py --sizes 300 1000 --stock-max 1000
    .venv/bin/python bench/bookkeeping.py --postgres      # also on PostgreSQL (127.0.0.1:5432)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

_CHILD = r"""
import datetime as dt, json, os, sys, time
import dagster as dg

n = int(sys.argv[1])
days = [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(n)]
parts = dg.DailyPartitionsDefinition(start_date="2000-01-03", end_date=(days[-1] + dt.timedelta(days=1)).isoformat())

class Nothing(dg.IOManager):
    def handle_output(self, context, obj):
        pass
    def load_input(self, context):
        return None

policy = dg.BackfillPolicy.single_run()

@dg.asset(partitions_def=parts, backfill_policy=policy)
def a(context):
    return None

@dg.asset_check(asset=a, blocking=True, partitions_def=parts)
def a_ok(context):
    return dg.AssetCheckResult(passed=True)

@dg.asset(partitions_def=parts, backfill_policy=policy, deps=[a])
def b(context):
    return None

job = dg.define_asset_job("j", selection=[a, b], partitions_def=parts, executor_def=dg.in_process_executor)
defs = dg.Definitions(assets=[a, b], asset_checks=[a_ok], jobs=[job], resources={"io_manager": Nothing()})
instance = dg.DagsterInstance.get()
t0 = time.perf_counter()
result = defs.resolve_job_def("j").execute_in_process(
    instance=instance,
    tags={"dagster/asset_partition_range_start": days[0].isoformat(),
          "dagster/asset_partition_range_end": days[-1].isoformat()},
)
wall = time.perf_counter() - t0
mats = len(result.get_asset_materialization_events())
home = os.environ["DAGSTER_HOME"]
index = os.path.join(home, "history", "runs", "index.db")
index_bytes = os.path.getsize(index) if os.path.exists(index) else None
print(json.dumps({"wall": wall, "materializations": mats, "success": result.success,
                  "index_bytes": index_bytes}))
"""

_STOCK_YAML = "telemetry:\n  enabled: false\n"
_ALPHADAG_YAML = textwrap.dedent(
    """\
    telemetry:
      enabled: false
    event_log_storage:
      module: alphadag.instance_storage
      class: SqliteBatchEventLogStorage
      config:
        base_dir:
          env: DAGSTER_HOME
    """
)


def _pg_yaml(db: str, cls: str | None) -> str:
    conn = textwrap.indent(
        textwrap.dedent(
            f"""\
            postgres_db:
              hostname: 127.0.0.1
              port: 5432
              db_name: {db}
              username: postgres
              password: ""
              scheme: postgresql+psycopg2
            """
        ),
        "    ",
    )
    event_log = (
        f"event_log_storage:\n  module: alphadag.instance_storage\n  class: {cls}\n  config:\n{conn}"
        if cls
        else f"event_log_storage:\n  module: dagster_postgres.event_log\n  class: PostgresEventLogStorage\n  config:\n{conn}"
    )
    runs = f"run_storage:\n  module: dagster_postgres.run_storage\n  class: PostgresRunStorage\n  config:\n{conn}"
    schedules = f"schedule_storage:\n  module: dagster_postgres.schedule_storage\n  class: PostgresScheduleStorage\n  config:\n{conn}"
    return f"telemetry:\n  enabled: false\n{runs}{event_log}{schedules}"


def _fresh_pg_db(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def run_one(yaml_text: str, n: int, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="alphadag-bench-") as home:
        with open(os.path.join(home, "dagster.yaml"), "w") as fh:
            fh.write(yaml_text)
        child_env = {k: v for k, v in os.environ.items() if k != "DAGSTER_EVENT_BATCH_SIZE"}
        child_env.update({"DAGSTER_HOME": home, **env})
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(n)],
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"bench child failed for n={n}:\n{out.stderr[-3000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["process_wall"] = time.perf_counter() - t0
        return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000])
    parser.add_argument(
        "--stock-max",
        type=int,
        default=3000,
        help="largest N run on the stock storage (it is slow: about 150 s at 1,000)",
    )
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    args = parser.parse_args(argv)

    configs: list[tuple[str, str, dict[str, str], int]] = [
        ("sqlite stock", _STOCK_YAML, {}, args.stock_max),
        ("sqlite alphadag", _ALPHADAG_YAML, {}, max(args.sizes)),
    ]
    if args.postgres:
        configs += [
            ("postgres stock", "pg:", {}, args.stock_max),
            ("postgres alphadag", "pg:PostgresBatchEventLogStorage", {}, max(args.sizes)),
        ]
    print(f"{'storage':<20}{'N':>6}{'wall s':>9}{'ms/partition-asset':>20}{'index MB':>10}")
    results: dict[tuple[str, int], float] = {}
    for n in args.sizes:
        for name, yaml_text, env, limit in configs:
            if n > limit:
                print(f"{name:<20}{n:>6}{'skipped (--stock-max)':>29}")
                continue
            if yaml_text.startswith("pg:"):
                db = "alphadag_bench"
                _fresh_pg_db(db)
                cls = yaml_text[3:] or None
                yaml_text = _pg_yaml(db, cls)
            res = run_one(yaml_text, n, env)
            per = 1000 * res["wall"] / (2 * n)
            results[(name, n)] = per
            size = f"{res['index_bytes'] / 1e6:.1f}" if res["index_bytes"] else "-"
            print(f"{name:<20}{n:>6}{res['wall']:>9.2f}{per:>20.2f}{size:>10}", flush=True)
    print("\nratio stock / alphadag (ms per partition-asset, same N):")
    for backend in ("sqlite", "postgres"):
        for n in args.sizes:
            s, a = results.get((f"{backend} stock", n)), results.get((f"{backend} alphadag", n))
            if s and a:
                print(f"   {backend:<9} N={n:<6} {s / a:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
