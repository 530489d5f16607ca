"""Scheduling of the slow (process) tests when the whole suite runs on xdist workers.

``make test`` runs every test in one ``pytest -n 2 --dist loadfile --no-loadscope-reorder``: each
file goes to one worker (its module fixtures, a webserver or a materialized instance, are built
once), in collection order. This hook moves the files holding ``slow`` tests to the front (their
order otherwise unchanged): the longest units start first and the short fast ones fill in behind
them on both workers, instead of one worker finishing alone with a four-minute file.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    if slow_files:
        items.sort(key=lambda item: item.path not in slow_files)  # stable: order kept otherwise
