"""plot.py writes PNG and SVG charts; report.py writes index.html and README.md."""
import os

import pytest

from conftest import fixture, run_tool

CHARTS = ("throughput", "ratio_to_limit", "history")


@pytest.fixture(scope="module")
def charts(tmp_path_factory):
    out = tmp_path_factory.mktemp("charts")
    proc = run_tool("plot.py", fixture("baseline.json"), fixture("peer_pytorch.json"),
                    "--out", str(out), "--history", fixture("history_step"))
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout.split()


def test_plot_writes_png_and_svg(charts):
    out, printed = charts
    for stem in CHARTS:
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.stat().st_size > 1000 and svg.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:2000]
        assert str(png) in printed and str(svg) in printed


def test_plot_rejects_bad_input(tmp_path):
    proc = run_tool("plot.py", fixture("schema_v2.json"), "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and "stagekit_schema_version" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_report_contents(charts, tmp_path):
    out = tmp_path / "site" / "report"
    proc = run_tool("report.py", "--perf", fixture("baseline.json"),
                    "--peer", fixture("peer_pytorch.json"),
                    "--conformance", fixture("conformance_results.json"),
                    "--charts", str(charts[0]), "--out", str(out),
                    "--link", "conformance/side_by_side.html=Implementations side by side")
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text()
    md = (out / "README.md").read_text()
    assert '<a href="conformance/side_by_side.html">Implementations side by side</a>' in html
    assert "[Implementations side by side](conformance/side_by_side.html)" in md
    for text in (html, md):
        assert "5 pass, 1 fail, 3 not_supported" in text
        assert "staged view does not share the staged base" in text
        assert "the implementation does not declare capability dtensor" in text
        assert "PASS" in text and "MISS" in text
        assert "not measured: no usable CUDA device" in text
    md_lines = md.splitlines()
    assert any("stage/cpu_to_pinned/large/warm" in l and "| PASS |" in l for l in md_lines)
    assert any("stage/cpu_to_pageable/large/cold" in l and "| MISS |" in l for l in md_lines)
    assert "<link" not in html and "<script" not in html and "<style>" in html
    rel = os.path.relpath(charts[0] / "throughput.png", out)
    assert f'src="{rel}"' in html and f"]({rel})" in md
    assert (out / rel).resolve().exists()


def test_report_states_missing_inputs(tmp_path):
    proc = run_tool("report.py", "--perf", fixture("baseline.json"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "README.md").read_text()
    assert "No conformance results were given." in md
    assert "No peer result file was given." in md
    assert "No charts directory was given" in md
    proc = run_tool("report.py", "--perf", fixture("schema_v2.json"), "--conformance",
                    str(tmp_path / "absent.json"), "--out", str(tmp_path / "r2"))
    assert proc.returncode == 0
    md = (tmp_path / "r2" / "README.md").read_text()
    assert 'unsupported stagekit_schema_version "2"' in md and "absent.json: no such file" in md
