"""The committed fixtures are exactly what make_fixtures.py writes."""
import filecmp
import os

import make_fixtures
from conftest import fixture


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def test_generator_reproduces_committed_fixtures(tmp_path):
    make_fixtures.write_all(str(tmp_path))
    assert _files(tmp_path) == _files(fixture())
    for name in _files(fixture()):
        assert filecmp.cmp(os.path.join(tmp_path, name), fixture(name),
                           shallow=False), f"{name} differs: rerun tools/tests/make_fixtures.py"
