"""The alphadag code location: every Dagster object is discovered under ``alphadag/defs``."""

import sys
from pathlib import Path

import dagster as dg

from alphadag import settings

DEFAULT_EXECUTOR_CONFIG = {
    "start_method": {"forkserver": {"preload_modules": ["alphadag.preload"]}}
}
DEFAULT_EXECUTOR = dg.multiprocess_executor.configured(
    DEFAULT_EXECUTOR_CONFIG, name="multiprocess_forkserver"
)
"""Executor of ad-hoc asset selections (the UI's Materialize button): steps may run in parallel,
and each forks from a server that imported the code once. Named jobs set their own executor
(alphadag.defs.automation.jobs)."""

DEFS_PACKAGE = "alphadag.defs"


def _forget_stale_defs(current: settings.Settings) -> list[str]:
    """Drop the imported ``defs`` modules when any was built from other settings than
    ``current`` (their ``BUILT_FROM``), so the next import builds them all from ``current``;
    returns the names dropped. Asset, check and job objects are built when their module is
    imported and must share one partitions definition, so they are rebuilt together or not at
    all."""
    imported = {
        name: module
        for name, module in list(sys.modules.items())
        if name == DEFS_PACKAGE or name.startswith(DEFS_PACKAGE + ".")
    }
    stale = any(getattr(m, "BUILT_FROM", current) != current for m in imported.values())
    if not stale:
        return []
    for name in imported:
        del sys.modules[name]
    return sorted(imported)


@dg.definitions
def defs() -> dg.Definitions:
    """Read the settings, then load the defs folder (assets, checks, jobs, schedules, sensors,
    resources).

    Each call reads and validates the environment (alphadag.settings.load), so a bad variable
    fails the load with a message naming it, and a changed one takes effect at this load: when
    the settings differ from those the imported defs modules were built from, the folder is
    imported afresh. No module reads the environment when it is imported.
    """
    current = settings.load()
    _forget_stale_defs(current)
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=DEFAULT_EXECUTOR),
    )
