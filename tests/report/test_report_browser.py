"""The report opened in headless Chromium: the plotly figures render and the tables are there.

Skips when Debian's `chromium` is not installed (apt-get install -y chromium).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_plots_render_in_chromium(rendered_report, tmp_path):
    done = _chromium(tmp_path, "--dump-dom", rendered_report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # plotly draws each figure into an <svg class="main-svg">; 4 figures (quality, latency, cost, freshness)
    for name in ("quality", "latency", "cost", "freshness"):
        start = dom.index(f'id="fig-{name}"')
        assert 'class="main-svg"' in dom[start:start + 20000], f"figure {name} did not render"
    assert dom.count("js-plotly-plot") >= 4  # the class plotly adds to a div it has drawn into
    assert dom.count('<table class="metrics"') == 4  # quality, efficiency, payback and freshness tables
    assert dom.count('class="qrow"') == 52


def test_the_search_plot_renders_in_chromium(fake_run_dir, tmp_path):
    from report_fake_run import searched_results

    from ragtune.evaluate.run_files import read_predictions, read_results
    from ragtune.report.render import render_html

    page = tmp_path / "searched.html"
    page.write_text(render_html(searched_results(read_results(fake_run_dir)), read_predictions(fake_run_dir)),
                    encoding="utf-8")
    done = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    start = done.stdout.index('id="fig-search_rag"')
    assert 'class="main-svg"' in done.stdout[start:start + 20000]


def test_screenshot_is_taken(rendered_report, tmp_path):
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", rendered_report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a page with charts, not a blank one


def test_drilldown_filter_script_works(rendered_report, tmp_path, fake_run_dir):
    import json

    rows = [json.loads(line) for line in (fake_run_dir / "predictions.jsonl").read_text().splitlines()]
    expected = len({(r["qid"], r["freshness"]) for r in rows if "kestrel" in r["question"].lower()})
    probe = (
        '<script>var f = document.getElementById("drill-filter"); f.value = "Kestrel";'
        ' f.dispatchEvent(new Event("input"));'
        ' document.title = "COUNT:" + document.getElementById("drill-count").textContent;</script></body>'
    )
    page = tmp_path / "probe.html"
    page.write_text(rendered_report.read_text(encoding="utf-8").replace("</body>", probe), encoding="utf-8")
    done = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"<title>COUNT:{expected}</title>" in done.stdout
    assert 0 < expected < 52
