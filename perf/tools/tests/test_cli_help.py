"""Every tool runs from its shebang and answers --help."""
import os
import subprocess

import pytest

from conftest import TOOLS


@pytest.mark.parametrize("script", ["compare.py", "detect.py", "plot.py", "report.py",
                                    "check_dist.py", "peer_torch.py", "tests/make_fixtures.py"])
def test_help(script):
    path = os.path.join(TOOLS, script)
    assert os.access(path, os.X_OK), f"{script} is not executable"
    with open(path, encoding="utf-8") as handle:
        assert handle.readline().strip() == "#!/usr/bin/python3"
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage:" in proc.stdout
