"""The alphadag code location: every Dagster object is discovered under ``alphadag/defs``."""

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


@dg.definitions
def defs() -> dg.Definitions:
    """Load the ``defs`` folder (assets, checks, jobs, schedules, sensors, resources).

    The settings are read and validated first (:func:`alphadag.settings.current`), so a bad
    variable fails the load with a message naming it, and the module-level partitions, freshness
    policy and schedule imported below are built from this read.
    """
    settings.current()
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=DEFAULT_EXECUTOR),
    )
