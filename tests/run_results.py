"""Small readers of ``ExecuteInProcessResult`` shared by the asset tests."""

from __future__ import annotations

import dagster as dg


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """The run's check evaluations keyed by check name (each evaluated once: a one-session run,
    or an unpartitioned check; see :func:`checks_by_session` for a ranged run)."""
    evaluations = result.get_asset_check_evaluations()
    by_name = {ev.check_name: ev for ev in evaluations}
    assert len(by_name) == len(evaluations), "a check was evaluated twice in one run"
    return by_name


def checks_by_session(
    result: dg.ExecuteInProcessResult,
) -> dict[str, dict[str | None, dg.AssetCheckEvaluation]]:
    """The run's check evaluations by check name, then session (None for an unpartitioned check);
    each (check, session) evaluated exactly once."""
    out: dict[str, dict[str | None, dg.AssetCheckEvaluation]] = {}
    for ev in result.get_asset_check_evaluations():
        by_session = out.setdefault(ev.check_name, {})
        assert ev.partition not in by_session, f"{ev.check_name} evaluated twice for {ev.partition}"
        by_session[ev.partition] = ev
    return out


def metadata_values(entry) -> dict:
    """Plain values of an event's metadata."""
    return {k: v.value for k, v in entry.metadata.items()}


def materializations(result: dg.ExecuteInProcessResult, asset: str) -> list:
    """The run's materializations of ``asset``."""
    return [
        ev.materialization
        for ev in result.get_asset_materialization_events()
        if ev.materialization.asset_key == dg.AssetKey(asset)
    ]
