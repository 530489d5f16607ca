"""What the Dagster UI (1.13) shows of ``backtest_report`` without a click, in a real browser.

The webserver, the instance with a materialized ``backtest_report`` and the chromium page are
test_ui_browser.py's fixtures (imported: this module starts its own webserver). Dagster's asset page
renders a markdown metadata value in place only when it is shorter than 1,000 characters (longer
ones sit behind "[Show Markdown]", ui-core's ``MetadataEntry.tsx``), and sanitises images to
``http(s)``/``data`` sources; a table value always renders in place, each value as its
``toString()``. So the best run's figures and its equity and drawdown sparklines (SVG ``data:``
URIs) must be visible at once, the comparison table's numbers rounded, and the full PNG charts one
click away.
"""

from __future__ import annotations

import re

import dagster as dg
import pytest
from test_ui_browser import browser, page, ui  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def _metadata_row(pg, key: str):
    return pg.get_by_role("row").filter(has=pg.get_by_text(key, exact=True))


def test_backtest_report_figures_and_sparklines_show_without_a_click(page, ui):  # noqa: F811
    from playwright.sync_api import expect

    event = ui.instance.get_latest_materialization_event(dg.AssetKey("backtest_report"))
    assert event is not None
    metadata = event.asset_materialization.metadata
    best = metadata["best_run"].value.split("**")[1]

    page.goto("/assets/backtest_report")
    expect(_metadata_row(page, "best_run").get_by_text(best, exact=True)).to_be_visible()
    for key in ("equity_vs_benchmark", "drawdown"):
        row = _metadata_row(page, key)
        chart = row.get_by_role("img", name=key)
        expect(chart).to_be_visible()  # in place: no "[Show Markdown]" in this row
        expect(row.get_by_text("[Show Markdown]")).to_have_count(0)
        size = chart.evaluate("i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])")
        assert size == [320, 70]
    # the full-size PNGs are longer than 1,000 characters: one click away
    expect(_metadata_row(page, "equity_chart").get_by_text("[Show Markdown]")).to_be_visible()

    # the analysis and comparison tables in place, their figures rounded (at most three
    # decimals); each found by a column only it has, innermost tables only
    for column in ("information_ratio_gross", "equity_final"):
        table = page.locator("table:not(:has(table))").filter(
            has=page.get_by_text(column, exact=True)
        )
        expect(table).to_have_count(1)
        expect(table.get_by_role("cell", name=best, exact=True)).to_be_visible()
        cells = table.locator("tbody td").all_inner_texts()
        numbers = [c for c in cells if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", c)]
        assert numbers and all(len(c.partition(".")[2]) <= 3 for c in numbers), numbers
    page.screenshot(path=ui.artifacts / "backtest_report_inline.png", full_page=True)
