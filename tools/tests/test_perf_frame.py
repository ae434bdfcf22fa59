"""Loader: validation messages, name normalisation, unit normalisation, skipped vs error."""
import json
import math

import pytest

from conftest import fixture
from stagekit_tools import names, stats
from stagekit_tools.bench_file import PerfFileError
from stagekit_tools.perf_frame import load_run


def test_baseline_frame_columns_and_kinds():
    run = load_run(fixture("baseline.json"))
    assert run.warnings == []
    required = {"benchmark", "kind", "src", "dst", "layout", "mode", "repetition_index",
                "real_time_s", "bytes_per_second", "ratio_to_limit", "overhead_ns_per_tensor",
                "error", "skipped_reason", "implementation", "date", "git_sha"}
    assert required <= set(run.frame.columns)
    frame = run.frame
    row = frame[frame["benchmark"] == "stage/cpu_to_pinned_shared/views/warm"].iloc[0]
    assert (row["kind"], row["src"], row["dst"], row["layout"], row["mode"]) == (
        "stage", "cpu", "pinned_shared", "views", "warm")
    assert set(frame[frame["benchmark"].str.startswith("limit/")]["kind"]) == {"limit"}
    assert not frame["benchmark"].str.endswith(("/real_time", "/manual_time")).any()
    assert len(frame[frame["benchmark"] == "stage/cpu_to_pinned/large/warm"]) == 9  # no aggregates
    assert 0.010 < row["real_time_s"] < 0.015  # 12.5 ms in the file, normalised to seconds


def test_skipped_is_not_an_error():
    summary = stats.summarize(load_run(fixture("baseline.json")).frame)
    cuda = summary.loc["stage/cuda_to_pinned/large/warm"]
    assert cuda["status"] == "skipped" and cuda["error"] is None
    assert cuda["skipped_reason"].startswith("no usable CUDA device")


def test_wrong_result_is_an_error():
    summary = stats.summarize(load_run(fixture("wrong_result.json")).frame)
    assert summary.loc["stage/cpu_to_pageable/large/warm", "status"] == "error"
    assert "wrong result" in summary.loc["stage/cpu_to_pageable/large/warm", "error"]


@pytest.mark.parametrize("name, expected", [
    ("schema_v2.json", 'unsupported stagekit_schema_version "2"'),
    ("no_benchmarks.json", "'benchmarks' is missing"),
])
def test_schema_problems_are_specific(name, expected):
    with pytest.raises(PerfFileError, match=expected):
        load_run(fixture(name))


def test_unreadable_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PerfFileError, match="not valid JSON"):
        load_run(str(bad))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"context": {"date": "x"}, "benchmarks": []}))
    with pytest.raises(PerfFileError, match="no 'stagekit_schema_version'"):
        load_run(str(plain))


def _doc(entries, **context):
    return {"context": {"stagekit_schema_version": "1", "implementation": "x", **context},
            "benchmarks": entries}


def test_time_units_and_aggregate_only_files(tmp_path):
    entries = [{"name": f"limit/u_{unit}/real_time", "run_name": f"limit/u_{unit}/real_time",
                "run_type": "iteration", "real_time": value, "cpu_time": value, "time_unit": unit}
               for unit, value in (("ns", 2e9), ("us", 2e6), ("ms", 2e3), ("s", 2.0))]
    entries.append({"name": "limit/agg_median", "run_name": "limit/agg", "run_type": "aggregate",
                    "aggregate_name": "median", "real_time": 3.0, "time_unit": "s"})
    path = tmp_path / "units.json"
    path.write_text(json.dumps(_doc(entries)))
    run = load_run(str(path))
    times = dict(zip(run.frame["benchmark"], run.frame["real_time_s"]))
    assert all(math.isclose(times[f"limit/u_{u}"], 2.0) for u in ("ns", "us", "ms", "s"))
    assert times["limit/agg"] == 3.0
    assert any("only aggregates" in w for w in run.warnings)


def test_peer_file_without_optional_keys_loads():
    run = load_run(fixture("peer_pytorch.json"))
    assert run.implementation == "pytorch" and run.git_sha == "unknown"


def test_name_grammar():
    assert names.identity("stage/cpu_to_pinned/large/warm/manual_time") == \
        "stage/cpu_to_pinned/large/warm"
    assert names.parse("limit/mlock_per_gib")["kind"] == "limit"
    assert names.glob_to_regex("stage/cpu_to_*/large/warm").match("stage/cpu_to_pinned/large/warm")
    assert not names.glob_to_regex("stage/cpu_to_*/large/warm").match("stage/cpu_to_x/y/large/warm")
