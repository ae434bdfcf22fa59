"""compare: verdicts, noise, MISSING, low confidence, errors, schema problems, exit codes."""
import json

from stagekit_tools import compare
from conftest import fixture, run_tool
from stagekit_tools.perf_frame import load_run

STEPPED = "stage/cpu_to_pinned/large/warm"


def verdicts(a, b, **kw):
    result = compare.compare_runs(load_run(fixture(a)), load_run(fixture(b)), **kw)
    return {row["benchmark"]: row for row in result["rows"]}, result


def test_injected_regression_is_slower_and_only_that():
    rows, result = verdicts("baseline.json", "regression.json")
    assert rows[STEPPED]["verdict"] == "SLOWER"
    assert rows[STEPPED]["p_value"] < 0.05 and 0.15 < rows[STEPPED]["change"] < 0.25
    others = {n: r["verdict"] for n, r in rows.items() if n != STEPPED}
    assert set(others.values()) <= {"SAME", "SKIPPED"}
    assert rows["stage/cuda_to_pinned/large/warm"]["verdict"] == "SKIPPED"
    assert result["geomean"]["benchmarks"] == 11   # 4 limits + 7 stage benchmarks measured


def test_pure_noise_is_all_same():
    rows, _ = verdicts("baseline.json", "noise.json")
    assert {r["verdict"] for r in rows.values()} == {"SAME", "SKIPPED"}


def test_min_effect_guards_tiny_significant_changes():
    rows, _ = verdicts("baseline.json", "regression.json", min_effect=0.5)
    assert rows[STEPPED]["verdict"] == "SAME"


def test_missing_benchmark_is_reported():
    rows, _ = verdicts("baseline.json", "missing.json")
    assert rows["stage/cpu_to_shared/transformer/warm"]["verdict"] == "MISSING (only in A)"
    rows, _ = verdicts("missing.json", "baseline.json")
    assert rows["stage/cpu_to_shared/transformer/warm"]["verdict"] == "MISSING (only in B)"


def test_few_repetitions_fall_back_to_threshold_with_low_confidence():
    rows, _ = verdicts("baseline.json", "single_rep.json")
    assert rows[STEPPED]["verdict"] == "SLOWER" and rows[STEPPED]["confidence"] == "low"
    assert rows[STEPPED]["p_value"] is None
    assert rows["stage/cpu_to_pageable/large/warm"]["verdict"] == "SAME"


def test_cli_table_exit_codes_and_json(tmp_path):
    out = tmp_path / "cmp.json"
    proc = run_tool("compare", fixture("baseline.json"), fixture("regression.json"),
                    "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("#") and any(line.startswith("geomean") for line in lines)
    assert any(line.startswith(STEPPED) and line.rstrip().endswith("SLOWER") for line in lines)
    data = json.loads(out.read_text())
    assert data["counts"]["SLOWER"] == 1
    proc = run_tool("compare", fixture("baseline.json"), fixture("regression.json"),
                    "--fail-on-slower")
    assert proc.returncode == 1
    proc = run_tool("compare", fixture("baseline.json"), fixture("noise.json"),
                    "--fail-on-slower")
    assert proc.returncode == 0, proc.stdout


def test_errors_are_prominent_and_fail_with_flag():
    proc = run_tool("compare", fixture("baseline.json"), fixture("wrong_result.json"),
                    "--fail-on-slower")
    assert proc.returncode == 1
    assert "# ERROR stage/cpu_to_pageable/large/warm: B: wrong result" in proc.stdout
    assert "wrong result" in proc.stderr


def test_schema_change_is_a_clear_message_not_a_traceback():
    for name, message in (("schema_v2.json", 'unsupported stagekit_schema_version "2"'),
                          ("no_benchmarks.json", "'benchmarks' is missing")):
        proc = run_tool("compare", fixture("baseline.json"), fixture(name))
        assert proc.returncode == 2
        assert message in proc.stderr and name in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
