"""Shared test setup: import path of the tools, fixture paths and a CLI runner."""
import os
import subprocess
import sys

import pytest

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TOOLS, "tests", "fixtures")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
sys.path.insert(0, TOOLS)
sys.dont_write_bytecode = True


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def run_tool(script, *args, env=None):
    """Run perf/tools/<script> with /usr/bin/python3; returns the CompletedProcess."""
    return subprocess.run([PYTHON, os.path.join(TOOLS, script), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def plotted_dist_chart(tmp_path, stem):
    """Runs plot.py on the baseline and the mpi dist fixture, checks that chart `stem` was written
    as PNG and SVG and named on stdout, and returns the SVG's text."""
    proc = run_tool("plot.py", fixture("baseline.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for ext in ("png", "svg"):
        path = tmp_path / f"{stem}.{ext}"
        assert path.stat().st_size > 1000 and str(path) in proc.stdout.split()
    return (tmp_path / f"{stem}.svg").read_text()


def dist_report(tmp_path):
    """Draws the charts of the baseline and the mpi dist fixture, then writes the report with them
    (both tools must succeed); returns the report directory."""
    charts = tmp_path / "charts"
    assert run_tool("plot.py", fixture("baseline.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--out", str(charts)).returncode == 0
    out = tmp_path / "report"
    proc = run_tool("report.py", "--perf", fixture("baseline.json"), "--dist",
                    fixture("dist_mpi_np4.json"), "--charts", str(charts), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def fx():
    return fixture
