"""check_perf: a failed benchmark (an error other than not_supported, a wrong counter) fails it;
a skipped one does not; an unusable file is exit 2. And the kernel settings as /sys shows them."""
import json

from conftest import fixture, run_tool
from stagekit_tools.bench_file import kernel_setting


def test_clean_file_passes_and_skipped_benchmarks_are_not_failures():
    proc = run_tool("check_perf", fixture("baseline.json"))  # has not_supported CUDA entries
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_errors_and_wrong_counters_fail(tmp_path):
    proc = run_tool("check_perf", fixture("baseline.json"), fixture("wrong_result.json"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "perf error: stage/cpu_to_pageable/large/warm: wrong result: 3 of 64 tensors differ "
        "(first: tensor_7 at byte 4096)"]  # once, not once per repetition
    doc = json.loads(open(fixture("single_rep.json"), encoding="utf-8").read())
    entry = next(e for e in doc["benchmarks"] if e["name"].startswith("stage/"))
    entry["wrong"] = 2
    path = tmp_path / "wrong_counter.json"
    path.write_text(json.dumps(doc))
    proc = run_tool("check_perf", str(path))
    assert proc.returncode == 1
    assert "the verification counted wrong=2" in proc.stderr


def test_unusable_file_is_exit_2():
    proc = run_tool("check_perf", fixture("schema_v2.json"))
    assert proc.returncode == 2 and 'unsupported stagekit_schema_version "2"' in proc.stderr


def test_kernel_setting():
    assert kernel_setting("always [madvise] never") == "madvise"
    assert kernel_setting("always within_size advise [never] deny force") == "never"
    assert kernel_setting("never") == "never"
    assert kernel_setting(None) is None and kernel_setting(" ") is None
