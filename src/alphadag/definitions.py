"""The alphadag code location: every Dagster object is discovered under ``alphadag/defs``."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load the ``defs`` folder (assets, checks, jobs, schedules, sensors, resources)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
