"""The backtest HTML report in a real browser: Playwright driving Debian's chromium (headless) on a
``file://`` URL, as a user opens the file a run wrote or downloaded from MLflow.

A 12-run ``sma_cross`` grid (fast x slow = 3 x 4) over ten years of five synthetic tickers, with
buy-and-hold on a synthetic ``^GSPC`` as the benchmark, is written once by ``write_report``. The
page must render every interactive figure from the file alone (plotly.js inline: every request the
page makes is ``file:`` or ``data:``), mark the best run, show a parameter heatmap of the grid and
the trades of the best run on the price chart, and stay a readable height (the matplotlib page it
replaced was ~21,000 px tall for such a grid over 20 years). The screenshot goes to
``test-artifacts/report/`` (gitignored; ``ALPHADAG_TEST_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _dagster_procs import REPO

from alphadag.backtest import run_backtest, strategies
from alphadag.backtest.report import strategy_label, write_report
from alphadag.market.calendar import sessions

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
FAST, SLOW = (5, 10, 20), (50, 100, 150, 200)
MAX_HEIGHT_PX = 4_000  # the 12-run page measured 2,896 px at 1400 px wide over 20 years


def _bars(tickers, seed: int) -> pl.DataFrame:
    days = sessions("2014-01-02", "2023-12-29")
    rng = np.random.default_rng(seed)
    frames = []
    for t in tickers:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, len(days))))
        opens = close * np.exp(rng.normal(0.0, 0.003, len(days)))
        frames.append(pl.DataFrame({"ticker": t, "date": days, "open": opens, "close": close}))
    return pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    bars, index = _bars(["AAA", "BBB", "CCC", "DDD", "EEE"], 1), _bars(["^GSPC"], 2)
    kw = {"cash": 1e6, "commission": 0.001, "sizing": "equal_weight"}
    results = {
        strategy_label("sma_cross", {"fast": f, "slow": s}): run_backtest(
            bars, strategies.SmaCross(fast=f, slow=s), **kw
        )
        for f in FAST
        for s in SLOW
    }
    bench = run_backtest(index, strategies.BuyAndHold(), cash=1e6, commission=0.001)
    out = tmp_path_factory.mktemp("report")
    files = write_report(results, out, benchmark=bench, benchmark_name="^GSPC", bars=bars)
    return files, results


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


def _artifacts() -> Path:
    root = Path(os.environ.get("ALPHADAG_TEST_ARTIFACTS", REPO / "test-artifacts"))
    out = root / "report"
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_report_renders_offline_with_interactive_charts(browser, report):
    from playwright.sync_api import expect

    files, results = report
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(files.html.as_uri(), wait_until="load")
        for div in ("equity-chart", "heatmap", "price-chart"):
            expect(page.locator(f"#{div} .main-svg").first).to_be_visible(timeout=60_000)

        # nothing but the file itself (and data: URIs) was requested: no CDN, no font, no beacon
        assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests
        assert errors == []

        # the best run by Sharpe heads the table, marked, and is the run the charts show
        sharpe = {name: r.stats.sharpe for name, r in results.items()}
        best = max(sharpe, key=lambda n: sharpe[n])
        assert files.best == best
        first = page.locator("#analysis tbody tr").first
        expect(first).to_have_class("best")
        expect(first.locator(".star")).to_be_visible()
        expect(first.locator("td").first).to_contain_text(best)
        expect(page.locator("#best")).to_have_text(best)

        # the parameter heatmap: Sharpe over the 3 x 4 grid, cell by cell
        heat = page.evaluate(
            "() => { const d = document.getElementById('heatmap').data[0];"
            " return {type: d.type, x: d.x, y: d.y, z: d.z}; }"
        )
        assert heat["type"] == "heatmap"
        assert heat["x"] == [str(v) for v in FAST] or heat["x"] == [str(v) for v in SLOW]
        x_is_slow = heat["x"] == [str(v) for v in SLOW]
        for i, yv in enumerate(heat["y"]):
            for j, xv in enumerate(heat["x"]):
                f, s = (int(yv), int(xv)) if x_is_slow else (int(xv), int(yv))
                expected = sharpe[strategy_label("sma_cross", {"fast": f, "slow": s})]
                assert heat["z"][i][j] == pytest.approx(expected, rel=1e-9)

        # the price chart: the best run's most traded ticker, its entries and exits as markers
        trades = results[best].trades
        top = trades.group_by("ticker").len().sort(["len", "ticker"], descending=[True, False])
        ticker, n = top.row(0)
        shown = page.evaluate(
            "() => document.getElementById('price-chart').data"
            ".filter(t => t.visible === true && String(t.meta).startsWith('trades:'))"
            ".map(t => [t.meta, t.x.length])"
        )
        assert shown == [["trades:entry", n], ["trades:exit", n]]
        expect(page.locator("#price-chart .gtitle")).to_contain_text(f"{ticker}: price and")
        # the select box switches to the next ticker (plotly's dropdown, no hand-written JS)
        second, n2 = top.row(1)
        page.locator("#price-chart .updatemenu-header").click()
        menu = page.locator("#price-chart .updatemenu-dropdown-button")
        menu.filter(has_text=f"{second} ({n2} trades)").click()
        expect(page.locator("#price-chart .gtitle")).to_contain_text(f"{second}: price")

        # the equity chart holds the best run, its peak and the benchmark (other runs a click away)
        names = page.evaluate(
            "() => document.getElementById('equity-chart').data.map(t => [t.name, t.visible])"
        )
        visible = [name for name, v in names if v is not False and v != "legendonly"]
        assert visible[:3] == [best, "peak", f"drawdown {best}"]
        assert "^GSPC (benchmark)" in visible
        assert sum(v == "legendonly" for _, v in names) == len(results) - 1

        # one run's monthly table (ten years, ten rows), the trade list capped with a note
        expect(page.locator("#monthly tbody tr")).to_have_count(10)
        expect(page.locator("#trades-note")).to_contain_text(f"of {trades.height} trades")

        height = page.evaluate("document.body.scrollHeight")
        assert height < MAX_HEIGHT_PX, height
        page.screenshot(path=_artifacts() / "report.png", full_page=True)
    finally:
        context.close()
