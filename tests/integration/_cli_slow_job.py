"""``alphadag.cli.main`` on a one-asset code location whose asset writes a marker file, then sleeps:
``python _cli_slow_job.py MARKER [alphadag arguments...]``. The tests of ``test_cli_runs.py`` start
it as a subprocess and kill it once the marker exists, i.e. while its run is STARTED."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg

SLEEP_S = 120.0


def slow_defs() -> dg.Definitions:
    """``slow_job``: one unpartitioned asset that writes ``sys.argv[1]`` and sleeps."""

    @dg.asset
    def slow() -> None:
        Path(sys.argv[1]).write_text("started")
        time.sleep(SLEEP_S)

    return dg.Definitions(assets=[slow], jobs=[dg.define_asset_job("slow_job", selection=["slow"])])


if __name__ == "__main__":
    import alphadag.definitions

    alphadag.definitions.defs = slow_defs
    from alphadag import cli

    sys.exit(cli.main(sys.argv[2:] or ["materialize", "--job", "slow_job", "--no-progress"]))
