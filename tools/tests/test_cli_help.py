"""Every command of the package answers --help as `python3 -m stagekit_tools.<tool>`, and so does
the fixture generator as a script."""
import os
import subprocess

import pytest

from conftest import PYTHON, ROOT, run_tool, tool_env

COMMANDS = ("catch_table", "check_dist", "check_perf", "compare", "detect", "plot", "readme_cases",
            "report", "side_by_side")


@pytest.mark.parametrize("tool", COMMANDS)
def test_help(tool):
    proc = run_tool(tool, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python3 -m stagekit_tools.{tool}")


def test_fixture_generator_help():
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "tests", "make_fixtures.py"), "--help"],
                          capture_output=True, text=True, env=tool_env(), timeout=60)
    assert proc.returncode == 0 and "usage:" in proc.stdout
