"""The Dagster UI in a real browser: Playwright driving Debian's chromium (headless) against the webserver
``make dev`` serves (``dagster-webserver -h 127.0.0.1 -p PORT -w workspace.yaml`` on a DAGSTER_HOME with the
repo's dagster.yaml; the daemon ``make dev`` also starts is left out, so no sensor changes what is shown).

Before the browser opens, one ranged run of ``daily_data_job`` writes five sessions of the synthetic
source into that instance (what ``alphadag materialize --job daily_data_job`` does, run in this
process, whose code is already imported), and ``backtest_job`` materializes ``backtest_report`` over
them (its charts are PNGs inside markdown metadata). Each test saves a screenshot under
``test-artifacts/ui/`` (gitignored; ``ALPHADAG_TEST_ARTIFACTS`` moves it). Assertions use what a user
reads (text, titles, roles) and Playwright's auto-waiting ``expect``, never sleeps.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from _dagster_procs import (
    REPO,
    Webserver,
    alphadag_env,
    make_home,
    start_webserver,
    stop_group,
)

from alphadag.defs.resources.market_data import MarketDataResource
from alphadag.defs.resources.mlflow_resource import MlflowResource
from alphadag.defs.resources.storage import ParquetPartitionIOManager
from alphadag.models.oos import OOS_SCHEMA

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TICKERS = ["AAA", "BBB", "CCC"]
SESSIONS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
NOT_MATERIALIZED = "2024-03-11"  # a session of the same partitions definition outside the range
EXPECT_TIMEOUT_MS = 60_000  # first renders of a cold UI on a loaded 2-core box


@dataclass
class UI:
    server: Webserver
    instance: dg.DagsterInstance
    run_id: str
    artifacts: Path


def _artifacts_dir() -> Path:
    root = Path(os.environ.get("ALPHADAG_TEST_ARTIFACTS", REPO / "test-artifacts"))
    out = root / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def ui(tmp_path_factory, defs) -> Iterator[UI]:
    root = tmp_path_factory.mktemp("ui")
    home = make_home(root)
    env = alphadag_env(
        home,
        root / "data",
        ALPHADAG_HISTORY_START="2024-01-02",
        ALPHADAG_TICKERS=",".join(TICKERS),
    )
    server = start_webserver(env, root / "webserver.log")  # loads while the runs below execute
    try:
        data = ParquetPartitionIOManager(data_root=str(root / "data"))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            # what `alphadag materialize --job daily_data_job --start .. --end ..` does: one ranged
            # run on the instance, here in this process (its code is already imported)
            daily = defs.resolve_job_def("daily_data_job").execute_in_process(
                instance=instance,
                resources={
                    "io_manager": data,
                    "market_data": MarketDataResource(source="synthetic", tickers=TICKERS),
                },
                tags={
                    "dagster/asset_partition_range_start": SESSIONS[0],
                    "dagster/asset_partition_range_end": SESSIONS[-1],
                },
            )
            assert daily.success
            # no training on five sessions: an empty out-of-sample series (the model signal is
            # omitted), then backtest_report over those sessions (as the launchpad would)
            data.store.write_table("oos_predictions", pl.DataFrame(schema=OOS_SCHEMA))
            report = defs.resolve_job_def("backtest_job").execute_in_process(
                instance=instance,
                resources={
                    "io_manager": data,
                    "mlflow": MlflowResource(
                        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                        artifact_location=str(root / "mlartifacts"),
                    ),
                },
            )
            assert report.success
        server.wait_ready()
        # the first-visit "join the community" dialog would cover the page: mark it seen
        assert server.graphql("mutation { setNuxSeen }")["data"]["setNuxSeen"] is True
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(job_name="daily_data_job"))
            assert len(runs) == 1 and runs[0].is_success
            yield UI(server, instance, runs[0].run_id, _artifacts_dir())
    finally:
        stop_group(server.proc)


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `.ci/run` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser, ui):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=ui.server.url)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def _group_names(defs: dg.Definitions) -> set[str]:
    return {spec.group_name for spec in defs.resolve_all_asset_specs() if spec.group_name}


def test_asset_graph_shows_every_asset_group(page, ui, defs):
    from playwright.sync_api import expect

    groups = _group_names(defs)
    assert {"ingestion", "features", "modeling"} <= groups

    page.goto("/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    for group in sorted(groups):
        # the sidebar's group entry (its title is the full name) ...
        expect(page.get_by_title(group, exact=True)).to_be_visible()
        # ... and the group's node on the graph canvas
        expect(page.locator(f'[data-tooltip="{group}"]')).to_be_visible()
    expect(page.get_by_text(re.compile(r"fetching statuses"))).to_have_count(0)
    page.screenshot(path=ui.artifacts / "asset_graph.png", full_page=True)


def test_partitioned_asset_shows_its_materialized_partitions(page, ui):
    from playwright.sync_api import expect

    page.goto("/assets/bars?view=partitions")
    expect(page.get_by_text(f"Materialized ({len(SESSIONS)})", exact=True)).to_be_visible()
    expect(page.get_by_text("Failed (0)", exact=True)).to_be_visible()

    # hide the missing ones: exactly the materialized sessions remain in the list
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()
    expect(page.get_by_text(f"{len(SESSIONS)} Partitions Selected", exact=True)).to_be_visible()
    for day in SESSIONS:
        expect(page.get_by_title(day, exact=True)).to_be_visible()
    expect(page.get_by_title(NOT_MATERIALIZED, exact=True)).to_have_count(0)

    # one partition's detail names the run that wrote it
    page.get_by_title(SESSIONS[2], exact=True).click()
    expect(page.get_by_role("button", name="View all historical events (1)")).to_be_visible()
    expect(page.get_by_role("link", name=ui.run_id[:8])).to_be_visible()
    page.screenshot(path=ui.artifacts / "bars_partitions.png", full_page=True)


def test_asset_metadata_view_renders_the_materialization_metadata(page, ui):
    """The latest materialization (the range's last session) shows that session's own figures."""
    from playwright.sync_api import expect

    event = ui.instance.get_latest_materialization_event(dg.AssetKey("bars"))
    assert event is not None
    assert event.asset_materialization.partition == SESSIONS[-1]
    metadata = event.asset_materialization.metadata
    assert metadata["path"].value.endswith(f"{SESSIONS[-1]}.parquet")
    shown = {k: str(metadata[k].value) for k in ("rows", "tickers", "rows_in")}
    assert shown == {"rows": "3", "tickers": "3", "rows_in": "3"}  # one session, three tickers

    page.goto("/assets/bars")
    table = page.locator("table").filter(has=page.get_by_text("rows_quarantined", exact=True))
    for key, value in shown.items():
        row = table.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
        expect(row.get_by_role("cell", name=value, exact=True)).to_be_visible()
    page.screenshot(path=ui.artifacts / "bars_metadata.png", full_page=True)


def _png_size(markdown: str) -> tuple[int, int]:
    """Width and height from the IHDR chunk of the data-URI PNG inside a markdown image."""
    payload = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown)
    assert payload, markdown[:200]
    head = base64.b64decode(payload.group(1)[:64])
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.parametrize(
    ("key", "alt"), [("equity_chart", "equity"), ("drawdown_chart", "drawdown")]
)
def test_backtest_report_chart_renders_in_the_asset_metadata(page, ui, key, alt):
    from playwright.sync_api import expect

    event = ui.instance.get_latest_materialization_event(dg.AssetKey("backtest_report"))
    assert event is not None
    recorded = _png_size(event.asset_materialization.metadata[key].value)

    page.goto("/assets/backtest_report")
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").filter(has_text=key)
    chart = dialog.get_by_role("img", name=alt)
    expect(chart).to_be_visible()
    # the browser decoded the very PNG the run recorded (a broken image has no natural size)
    shown = chart.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert tuple(shown) == recorded
    assert min(chart.bounding_box()["width"], chart.bounding_box()["height"]) > 100
    page.screenshot(path=ui.artifacts / f"backtest_report_{key}.png")


def test_bars_check_partitions_tab_shows_every_session_passed(page, ui):
    """The ranged run recorded one evaluation per session: the check's Partitions tab shows
    each of them passed, none planned or skipped."""
    from playwright.sync_api import expect

    key = dg.AssetCheckKey(dg.AssetKey("bars"), "bars_gx_suite")
    records = ui.instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
    statuses = {r.partition: r.status.value for r in records if r.run_id == ui.run_id}
    assert statuses == dict.fromkeys(SESSIONS, "SUCCEEDED")

    page.goto("/assets/bars?view=checks&checkDetail=bars_gx_suite")
    # the check's own tabs (the asset's tab bar above has a "Partitions" tab too)
    check_tabs = page.get_by_role("tablist").filter(
        has=page.get_by_role("tab", name="Execution history")
    )
    check_tabs.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text(f"Passed ({len(SESSIONS)})", exact=True)).to_be_visible()
    for status in ("Failed", "Execution Failed", "In Progress", "Skipped"):
        expect(page.get_by_text(f"{status} (0)", exact=True)).to_be_visible()
    # hide the never-checked sessions: exactly the run's sessions remain, each passed
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()
    expect(page.get_by_text(f"{len(SESSIONS)} Partitions Selected", exact=True)).to_be_visible()
    for day in SESSIONS:
        expect(page.get_by_title(day, exact=True)).to_be_visible()
    expect(page.get_by_title(NOT_MATERIALIZED, exact=True)).to_have_count(0)
    page.screenshot(path=ui.artifacts / "bars_check_partitions.png", full_page=True)
