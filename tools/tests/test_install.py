"""The package installs with Debian's Python and no package index: pip into a virtual environment
that sees Debian's site packages (pyproject.toml says how), and its stagekit-* scripts run."""
import os
import shutil
import subprocess

import pytest

from conftest import PYTHON, ROOT, conformance_fixture

VENV_READY = subprocess.run([PYTHON, "-c", "import ensurepip, setuptools"],
                            capture_output=True).returncode == 0


@pytest.mark.skipif(not VENV_READY, reason="python3-venv or python3-setuptools is not installed "
                                           "(ci/install-deps.sh installs both)")
def test_pip_install_into_a_venv(tmp_path):
    # install from a copy, so the build leaves nothing in the checkout
    source = tmp_path / "src"
    skipped = shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT, source, ignore=skipped)
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--no-build-isolation", "--no-index", "--no-deps", str(source)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = tmp_path / "page.html"
    proc = subprocess.run([str(venv / "bin" / "stagekit-side-by-side"), "--out", str(page),
                           conformance_fixture("reference", "results.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "stager.views.cpu.pin1_share0" in page.read_text()
    proc = subprocess.run([str(venv / "bin" / "stagekit-report"), "--help"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: stagekit-report")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import stagekit_tools; print(stagekit_tools.__file__)"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.stdout.startswith(str(venv))
