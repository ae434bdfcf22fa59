"""The committed fixtures are exactly what make_fixtures.py writes."""
import filecmp
import os

import make_fixtures
from conftest import FIXTURES


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def test_generator_reproduces_committed_fixtures(tmp_path):
    make_fixtures.write_all(str(tmp_path))
    assert _files(tmp_path) == _files(FIXTURES)
    for name in _files(FIXTURES):
        assert filecmp.cmp(os.path.join(tmp_path, name), os.path.join(FIXTURES, name),
                           shallow=False), f"{name} differs: rerun tests/make_fixtures.py"
