"""detect: lasting steps are flagged; noise, spikes and improvements are not."""
from stagekit_tools import detect
from conftest import fixture, run_tool
from stagekit_tools.history import load_history

STEPPED = "stage/cpu_to_pinned/large/warm"


def findings(kind):
    runs, problems = load_history(fixture(f"history_{kind}"))
    assert problems == [] and len(runs) == 10
    return detect.detect(runs), runs


def test_nights_are_ordered_by_date_not_file_name():
    runs, _ = load_history(fixture("history_step"))
    dates = [run.date for run in runs]
    assert dates == sorted(dates)
    assert [r.path for r in runs] != sorted(r.path for r in runs)


def test_stable_noise_flags_nothing():
    found, _ = findings("stable")
    assert found["regressions"] == [] and found["speedups"] == []


def test_lasting_step_is_flagged_at_its_first_night():
    found, runs = findings("step")
    assert [r["benchmark"] for r in found["regressions"]] == [STEPPED]
    step = found["regressions"][0]
    assert step["first_night"] == runs[6].date and step["git_sha"] == runs[6].git_sha
    assert step["nights"] == 4 and 0.15 < step["change"] < 0.25


def test_single_night_spike_is_not_a_step():
    found, _ = findings("spike")
    assert found["regressions"] == []


def test_improvement_is_informational():
    found, _ = findings("improvement")
    assert found["regressions"] == []
    assert [r["benchmark"] for r in found["speedups"]] == [STEPPED]


def test_find_step_rules():
    base = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    assert detect.find_step(base + [1.2, 1.21, 1.19]) == 6
    assert detect.find_step(base + [1.2, 1.21]) is None             # too few nights after
    assert detect.find_step(base + [1.2, 1.0, 1.2, 1.2]) is None     # interrupted by a good night
    assert detect.find_step([1.2, 1.2] + [1.0] * 6) is None          # old step, now back
    assert detect.find_step(base + [0.8] * 3, direction=-1) == 6


def test_cli_exit_codes(tmp_path):
    assert run_tool("detect", fixture("history_stable")).returncode == 0
    assert run_tool("detect", fixture("history_spike")).returncode == 0
    proc = run_tool("detect", fixture("history_improvement"))
    assert proc.returncode == 0 and "lasting speedups (informational): 1" in proc.stdout
    proc = run_tool("detect", fixture("history_step"))
    assert proc.returncode == 1
    flagged = [line for line in proc.stdout.splitlines() if line.startswith(STEPPED)]
    assert len(flagged) == 1 and "2026-11-07" in flagged[0]


def test_bad_input_exits_2_and_names_the_file(tmp_path):
    proc = run_tool("detect", str(tmp_path))
    assert proc.returncode == 2 and "no *.json result files" in proc.stderr
    (tmp_path / "night1.json").write_text("{truncated")
    proc = run_tool("detect", str(tmp_path))
    assert proc.returncode == 2 and "night1.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert run_tool("detect", str(tmp_path / "absent")).returncode == 2
