"""Shared test setup: fixture paths and a runner for the tools' commands.

The package is imported from this checkout: pytest.ini puts tools/ on the import path. A command
runs in this process through its `main(argv)` (an interpreter per command would spend most of the
run importing pandas and matplotlib); `python3 -m stagekit_tools.<tool>` itself, with PYTHONPATH set
to this checkout, is what test_cli_help and the tests that need another environment run.
"""
import contextlib
import importlib
import io
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tools/
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def fixture(*parts):
    """A fixture of the benchmark tools (tests/fixtures/perf/...)."""
    return os.path.join(FIXTURES, "perf", *parts)


def conformance_fixture(*parts):
    """A fixture of the conformance tools (tests/fixtures/conformance/...)."""
    return os.path.join(FIXTURES, "conformance", *parts)


def tool_env(env=None):
    """The environment a tool runs in: this checkout's package first on the import path."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_tool(tool, *args, env=None):
    """Run the command `python3 -m stagekit_tools.<tool> ARGS`; returns a CompletedProcess with its
    exit status and output. With `env`, in an interpreter of its own with that environment."""
    command = [PYTHON, "-m", f"stagekit_tools.{tool}", *args]
    if env is not None:
        return subprocess.run(command, capture_output=True, text=True, env=tool_env(env),
                              timeout=120)
    module = importlib.import_module(f"stagekit_tools.{tool}")
    if not hasattr(module, "main"):  # a package run through its __main__ (report)
        module = importlib.import_module(f"stagekit_tools.{tool}.__main__")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = module.main(list(args))
        except SystemExit as e:  # argparse errors and explicit exits, as the interpreter does
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return subprocess.CompletedProcess(command, status or 0, out.getvalue(), err.getvalue())


def plotted_dist_chart(tmp_path, stem, also=()):
    """Runs plot on the baseline and the mpi dist fixture, drawing chart `stem` (and those named
    in `also`), checks that `stem` was written as PNG and SVG and named on stdout, and returns its
    SVG's text."""
    only = [arg for name in (stem, *also) for arg in ("--only", name)]
    proc = run_tool("plot", fixture("baseline.json"), "--dist", fixture("dist_mpi_np4.json"),
                    *only, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for ext in ("png", "svg"):
        path = tmp_path / f"{stem}.{ext}"
        assert path.stat().st_size > 1000 and str(path) in proc.stdout.split()
    return (tmp_path / f"{stem}.svg").read_text()


def dist_report(tmp_path):
    """Draws the charts of the baseline and the mpi dist fixture, then writes the report with them
    (both tools must succeed); returns the report directory."""
    charts = tmp_path / "charts"
    assert run_tool("plot", fixture("baseline.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--out", str(charts)).returncode == 0
    out = tmp_path / "report"
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--dist",
                    fixture("dist_mpi_np4.json"), "--charts", str(charts), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def fx():
    return fixture
