"""report: the headline per implementation, the machine notes, the reasons said once, the charts
before the tables, stagekit's own build type, and the inputs it could not use."""
import json
import os
import re
from html.parser import HTMLParser

import pytest

from conftest import conformance_fixture, fixture, run_tool

CUDA_DETAIL = "cudaGetDeviceCount returned cudaErrorInsufficientDriver"


class Page(HTMLParser):
    """The order of sections, headings, tables and images of a page, and the headline's rows as
    lists of cell texts."""

    def __init__(self, text):
        super().__init__()
        self.events, self.headline, self.section = [], [], None
        self.row = self.cell = None
        self.tables = 0
        self.feed(text)
        self.headline = [row for row in self.headline if row]  # the header row has no td

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id")
            self.events.append(("section", self.section))
        elif tag in ("table", "img", "h2"):
            self.events.append((tag, self.section))
            self.tables += tag == "table"
        elif tag == "tr" and self.section == "headline" and self.tables == 1:
            self.row = []
            self.headline.append(self.row)
        elif tag == "td" and self.row is not None:
            self.cell = []
        elif tag == "div" and self.cell:  # a Lines item after the first starts a new line
            self.cell.append("\n")

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def first(self, kind, section=None):
        return next(i for i, event in enumerate(self.events)
                    if event[0] == kind and (section is None or event[1] == section))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of every kind of input: stagekit and peer benchmarks, the dist file, the
    reference's conformance results and a vendor's, and charts."""
    root = tmp_path_factory.mktemp("site")
    charts = root / "charts"
    proc = run_tool("plot", fixture("baseline.json"), fixture("peer_pytorch.json"), "--dist",
                    fixture("dist_mpi_np4.json"), "--out", str(charts))
    assert proc.returncode == 0, proc.stderr
    out = root / "report"
    proc = run_tool("report", "--perf", fixture("baseline.json"),
                    "--peer", fixture("peer_pytorch.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--conformance", f"reference={fixture('conformance_results.json')}",
                    "--conformance", conformance_fixture("vendor", "results.json"),
                    "--charts", str(charts), "--out", str(out),
                    "--link", "conformance/side_by_side.html=Implementations side by side")
    assert proc.returncode == 0, proc.stderr
    return out, (out / "index.html").read_text(), (out / "README.md").read_text()


def test_headline_and_charts_come_before_the_tables(report):
    _, html, _ = report
    page = Page(html)
    sections = [e[1] for e in page.events if e[0] == "section"]
    assert sections == ["headline", "charts", "details"]
    first_detail_table = page.first("table", "details")
    assert page.first("table", "headline") < page.first("img") < first_detail_table
    images = [i for i, e in enumerate(page.events) if e[0] == "img"]
    assert len(images) == 4 and all(i < first_detail_table for i in images)


def test_one_headline_row_per_implementation(report):
    _, html, md = report
    rows = Page(html).headline
    assert [r[0].splitlines()[0] for r in rows] == ["reference", "pytorch", "vendor-stager"]
    reference, pytorch, vendor = rows
    # implementation | stager | utils | replication | vs expectations | targets | key ratios
    assert reference[1].splitlines() == ["83% 5 of 6 pass", "1 fail · 3 not supported[1,2]"]
    assert reference[2].splitlines() == ["100% 1 of 1 pass"]
    assert reference[3] == "all 1 not supported[3]"
    # the stage targets (4 PASS, 1 MISS) and the distributed ones of the mpirun fixture (8, 4):
    # all_gather and gather_state_dict (5, 1), broadcast_state_dict (2, 2), replication (1, 1)
    assert reference[5].splitlines() == ["12 PASS · 5 MISS", "1 not measured[1]"]
    assert "2.34× pytorch's throughput" in reference[6]
    assert pytorch[1:5] == ["—"] * 4 and pytorch[5].startswith("4 MISS")
    assert "0.43× stagekit-reference's throughput" in pytorch[6]
    assert vendor[1].splitlines() == ["25% 1 of 4 pass", "1 fail, 1 crash, 1 timeout · 1 waived"]
    assert vendor[4].splitlines()[0] == "1 FIX, 1 REGRESSION, 1 DIFFERENCE"
    assert vendor[5] == vendor[6] == "—"
    assert "| **reference**<br>stagekit-reference 0.1.0 | **83%** 5 of 6 pass<br>" in md


def test_a_repeated_reason_is_said_once(report):
    _, html, md = report
    for text in (html, md):
        assert text.count(CUDA_DETAIL) == 1
        assert text.count("the implementation does not declare capability dtensor") == 1
    assert re.search(r"1\. no usable CUDA device: .*\(2 cases in 1 implementation, 26 benchmarks\)",
                     md)
    assert "| stage/cuda_to_pinned/large/warm | - | - | - | - | 0 | skipped [1] |" in md
    assert '<sup>[<a href="#reason-1">1</a>]</sup>' in html and 'id="reason-1"' in html


def test_stagekit_build_type_and_the_machine_bounds(report):
    _, html, md = report
    assert "stagekit build type Release" in md.splitlines()[2]
    assert re.search(r"\| stagekit build type \| Release \|", md)
    assert re.search(r"\| Google Benchmark library build \| release \|", md)
    assert "| shmem huge pages | never |" in md.replace(" | - |", " |")
    bounds = md[md.index("### Where this machine bounds the numbers"):md.index("### Why some")]
    assert "page-fault bound here" in bounds and "(thp_shmem_enabled = never)" in bounds
    assert "thp_enabled = never" not in bounds  # madvise here
    assert "ranks share cores" in bounds  # 4 ranks on 2 CPUs


def test_tables_and_link(report):
    out, html, md = report
    assert '<a href="conformance/side_by_side.html">Implementations side by side</a>' in html
    assert "[Implementations side by side](conformance/side_by_side.html)" in md
    assert "staged view does not share the staged base" in md
    lines = md.splitlines()
    assert any("stage/cpu_to_pinned/large/warm" in line and "| PASS |" in line for line in lines)
    assert any("stage/cpu_to_pageable/large/cold" in line and "| MISS |" in line for line in lines)
    assert "<link" not in html and "<script" not in html and "<style>" in html
    assert 'src="../charts/throughput.png"' in html and "](../charts/throughput.png)" in md
    assert (out / "../charts/throughput.png").resolve().exists()


def test_unknown_build_type_without_the_recent_context_keys(tmp_path):
    night = sorted(os.listdir(fixture("history_stable")))[0]
    proc = run_tool("report", "--perf", fixture("history_stable", night), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "README.md").read_text()
    assert "stagekit build type unknown" in md
    assert "| stagekit build type | unknown (not recorded by this harness) |" in md
    assert "| shmem huge pages | unknown |" in md and "page-fault bound" not in md


def test_the_implementation_is_named_from_the_context(tmp_path):
    doc = json.loads(open(fixture("baseline.json"), encoding="utf-8").read())
    doc["context"].update(implementation="vendor-stager", implementation_version="2.3")
    perf = tmp_path / "vendor.json"
    perf.write_text(json.dumps(doc))
    proc = run_tool("report", "--perf", str(perf), "--conformance",
                    conformance_fixture("vendor", "results.json"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    rows = Page((tmp_path / "r" / "index.html").read_text()).headline
    assert len(rows) == 1 and rows[0][0] == "vendor-stager\n2.3"
    assert rows[0][-2].startswith("4 PASS · 1 MISS")  # its benchmarks and its cases in one row


def test_report_states_missing_inputs(tmp_path):
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "README.md").read_text()
    assert "No conformance results were given." in md
    assert "No charts directory was given" in md
    proc = run_tool("report", "--perf", fixture("schema_v2.json"), "--conformance",
                    str(tmp_path / "absent.json"), "--out", str(tmp_path / "r2"))
    assert proc.returncode == 0
    md = (tmp_path / "r2" / "README.md").read_text()
    assert 'unsupported stagekit_schema_version "2"' in md and "absent.json: no such file" in md


def test_expected_failures_are_grouped_and_folded(tmp_path):
    reason = "view1: storage sharing: source tensors share storage but staged tensors don't"
    results = [{"id": f"stager.views.cpu.pin{p}_share0", "outcome": "fail", "reason": reason,
                "expected": "fail", "verdict": "ok"} for p in (0, 1)]
    results += [{"id": "stager.caching.cpu.pin0_share0", "outcome": "crash",
                 "reason": "died of signal 11", "expected": "pass", "verdict": "REGRESSION"},
                {"id": "stager.dtype.bfloat16.cpu.pin0_share0", "outcome": "pass", "reason": "",
                 "verdict": "ok"}]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"schema_version": 2, "implementation": {"name": "broken"},
                                "results": results}))
    proc = run_tool("report", "--conformance", f"broken_views={path}", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "r" / "index.html").read_text()
    md = (tmp_path / "r" / "README.md").read_text()
    assert "<details><summary>Expected failures: 2 cases of 1 implementation" in html
    assert md.count(reason) == 1  # the group's reason once, not once per case
    assert f"| broken_views | stager.views (2 cases) | **fail** | {reason} |" in md
    assert "| broken_views | stager.caching.cpu.pin0_share0 | crash | REGRESSION | died of " \
           "signal 11 |" in md
    row = Page(html).headline[0]
    assert row[1].splitlines() == ["25% 1 of 4 pass", "2 fail, 1 crash"]  # one not expected
    assert row[2].splitlines()[0] == "1 REGRESSION"
