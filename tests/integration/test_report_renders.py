"""The demo's HTML report opened in headless Chromium, as a person would open it from the run folder.

What: a report rendered from seeded data (stationary windows, then a shift with breaches and an alarm, accuracy with
intervals), written to a file. Wait: Chromium loads it (no network). Assert: no console errors, the script ran,
every chart is there with its SVG, nothing refers outside the file, and a screenshot is written; a page with a
script error is caught by the same check. Cleanup: the tmp folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.browser import open_page
from devstack.report_html import CHARTS, DriftPoint, ReportData, WindowRow, render

pytestmark = pytest.mark.integration

WINDOW = 20
START = 1_800_000_000


def seeded_report() -> ReportData:
    windows = []
    for i in range(10):
        shifted = i >= 6
        drift = {
            metric: DriftPoint(
                value=(8.0 if shifted else 0.4 + 0.05 * i) if metric != "token_psi" else (0.6 if shifted else 0.02),
                threshold=2.0 if metric != "token_psi" else 0.2,
                breach=shifted,
                alarm=i >= 7,
            )
            for metric in ("label_chi2", "length_ks", "oov_rate", "token_psi")
        }
        windows.append(
            WindowRow(
                START + i * WINDOW,
                labels={"t:0": 60 - 40 * shifted, "t:1": 40 + 40 * shifted},
                drift=drift,
                accuracy=(0.82 - 0.1 * shifted, 0.75 - 0.1 * shifted, 0.88 - 0.1 * shifted, 40),
            )
        )
    return ReportData(
        title="Feedback loop demo",
        counts=[("realtime", 600, 600), ("streaming", 300, 300), ("batch", 3000, 3000)],
        freshness_s=[0.4 + (i % 17) * 0.1 for i in range(200)],
        windows=windows,
        window_s=WINDOW,
        shift_start=START + 6 * WINDOW,
        summary=["shift began 10:00:00, first alarm in the window of 10:00:20"],
        generated_at=START + 10 * WINDOW,
    )


def test_the_report_renders_every_chart_without_script_errors(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    text = render(seeded_report())
    report.write_text(text)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text), "the report must not load anything from outside"
    page = open_page(report, screenshot=tmp_path / "report.png")
    assert page.console_errors == []
    assert f'data-charts="{len(CHARTS)}"' in page.dom, "the inline script ran and counted every chart"
    for chart in CHARTS:
        figure = re.search(rf'<figure class="chart" id="{chart}">(.*?)</figure>', page.dom, re.S)
        assert figure and "<svg" in figure.group(1), f"chart {chart} is missing or empty"
        assert f'href="#{chart}"' in page.dom, f"chart {chart} is not in the contents"
    assert page.dom.count("<circle") >= 40 + 10  # drift points of 4 metrics x 10 windows, accuracy points
    assert page.screenshot is not None and page.screenshot.stat().st_size > 20_000


def test_a_script_error_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    page = open_page(broken)
    assert len(page.console_errors) == 1 and "undefinedFunction is not defined" in page.console_errors[0]
