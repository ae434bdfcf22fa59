"""The report as a browser shows it: headless Chromium parses index.html (--dump-dom) and renders
it (--screenshot); the headline and the charts come before the tables in the parsed page, every
implementation has its headline row, and every chart image loads."""
import os
import shutil
import subprocess

import pytest

from conftest import conformance_fixture, fixture, run_tool
from test_report import Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed here (ci/install-deps.sh installs "
                             "Debian's chromium; the report is then checked in it)")


def chromium(tmp_path, *args):
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    assert run_tool("plot", fixture("baseline.json"), fixture("peer_pytorch.json"), "--dist",
                    fixture("dist_mpi_np4.json"), "--out", str(out / "charts")).returncode == 0
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--peer",
                    fixture("peer_pytorch.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--conformance", f"reference={fixture('conformance_results.json')}",
                    "--conformance", conformance_fixture("vendor", "results.json"),
                    "--charts", str(out / "charts"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_parsed_page_leads_with_the_headline_and_charts(site, tmp_path):
    proc = chromium(tmp_path, "--dump-dom", f"file://{site / 'index.html'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = Page(proc.stdout)
    assert [e[1] for e in page.events if e[0] == "section"] == ["headline", "charts", "details"]
    assert page.first("table", "headline") < page.first("img", "charts") \
        < page.first("table", "details")
    assert [row[0].splitlines()[0] for row in page.headline] == ["reference", "pytorch",
                                                                 "vendor-stager"]


def test_charts_load_and_the_page_renders(site, tmp_path):
    # naturalWidth is 0 for an image the browser could not load
    probe = site / "probe.html"
    probe.write_text((site / "index.html").read_text().replace(
        "</body>", "<script>window.onload = function () { document.body.dataset.loaded = "
        "Array.from(document.images).map(i => i.naturalWidth > 0).join(','); };</script></body>"))
    proc = chromium(tmp_path, "--dump-dom", "--virtual-time-budget=5000", f"file://{probe}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-loaded="true,true,true,true"' in proc.stdout
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400",
                    f"file://{site / 'index.html'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.path.getsize(shot) > 50_000
