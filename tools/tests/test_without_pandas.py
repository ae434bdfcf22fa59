"""Reading results files and rendering pages needs only the standard library: with pandas, numpy,
scipy and matplotlib made unimportable (None in sys.modules), the readers, the renderer and the
commands built on them still work."""
import subprocess

from conftest import PYTHON, conformance_fixture, fixture, tool_env

BLOCKED = ("pandas", "numpy", "scipy", "matplotlib")
STDLIB_MODULES = ("bench_file", "case_ids", "check_dist", "check_perf", "conformance",
                  "gbench_json", "jsonfile", "markers", "names", "readme_cases", "render",
                  "side_by_side", "catch_table", "targets")


def run_blocked(code):
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BLOCKED)
    return subprocess.run([PYTHON, "-c", prelude + code], capture_output=True, text=True,
                          env=tool_env(), timeout=120)


def test_the_block_works():
    proc = run_blocked("import pandas\n")
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_readers_and_renderer_import_and_run(tmp_path):
    code = "".join(f"import stagekit_tools.{m}\n" for m in STDLIB_MODULES) + f"""
from stagekit_tools import bench_file, conformance, render
doc = conformance.load_conformance({conformance_fixture('vendor', 'results.json')!r})
bench = bench_file.load({fixture('wrong_result.json')!r})
blocks = [("h1", "t"), ("table", ["a"], [[render.Span("x", cls="good")]])]
assert '<td class="good"><span class="good">x</span></td>' in render.render_html(blocks, "t")
print(conformance.implementation_name(doc), len(bench_file.errors(bench)))
for m in {BLOCKED!r}:
    assert sys.modules[m] is None, m
"""
    proc = run_blocked(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["vendor-stager", "1"]


def test_side_by_side_and_check_perf_run(tmp_path):
    page = tmp_path / "page.html"
    proc = run_blocked("from stagekit_tools import side_by_side\n"
                       f"sys.exit(side_by_side.main(['--out', {str(page)!r}, "
                       f"{conformance_fixture('reference', 'results.json')!r}]))\n")
    assert proc.returncode == 0, proc.stderr
    assert "stager.views.cpu.pin1_share0" in page.read_text()
    proc = run_blocked("from stagekit_tools import check_perf\n"
                       f"sys.exit(check_perf.main([{fixture('wrong_result.json')!r}]))\n")
    assert proc.returncode == 1
    assert "perf error: stage/cpu_to_pageable/large/warm: wrong result: 3 of 64" in proc.stderr
