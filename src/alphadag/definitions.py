"""The alphadag code location: every Dagster object is discovered under ``alphadag/defs``."""

import ast
import sys
from pathlib import Path
from types import ModuleType

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


def _imports(module: ModuleType) -> set[str]:
    """The module names ``module``'s source imports (``from a.b import c`` counts a.b and a.b.c)."""
    if not module.__file__:
        return set()
    tree = ast.parse(Path(module.__file__).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _forget_stale_defs(current: settings.Settings) -> None:
    """When an imported ``defs`` module was built from other Settings.definition_values than
    ``current``'s, drop every module built from settings (those with a ``BUILT_FROM``) and every
    ``defs`` module that imports one of them, directly or through another.

    Their objects are built when the module is imported and must share one partitions
    definition, so they are rebuilt together, while modules that depend on no such setting
    (the resources) are kept: an object held from them (an IO manager, a resource class) stays
    the one in use.
    """
    imported = {
        name: module
        for name, module in list(sys.modules.items())
        if module is not None and name.startswith(DEFS_PACKAGE + ".")
    }
    built = {name: m.BUILT_FROM for name, m in imported.items() if hasattr(m, "BUILT_FROM")}
    wanted = current.definition_values()
    if all(s.definition_values() == wanted for s in built.values()):
        return
    stale = set(built)
    imports = {name: _imports(module) for name, module in imported.items()}
    grew = True
    while grew:
        importers = {name for name, used in imports.items() if used & stale} - stale
        stale |= importers
        grew = bool(importers)
    for name in stale:
        del sys.modules[name]


@dg.definitions
def defs() -> dg.Definitions:
    """Read the settings, then load the defs folder (assets, checks, jobs, schedules, sensors,
    resources).

    Each call reads and validates the environment (alphadag.settings.load), so a bad variable
    fails the load with a message naming it, and a changed one takes effect at this load: when
    the partitions, schedule, deadline or sensor settings (Settings.definition_values) differ from
    those the imported defs modules were built from, the modules built from them and their
    importers are imported afresh (the resources are kept). No module reads the environment when
    it is imported.
    """
    current = settings.load()
    _forget_stale_defs(current)
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=DEFAULT_EXECUTOR),
    )
