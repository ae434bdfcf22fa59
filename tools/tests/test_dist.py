"""stagekit-dist-bench results: names, summaries, check_dist, the dist chart and report table."""
import json
import re

import pytest

from conftest import PYTHON, dist_report, fixture, plotted_dist_chart, run_tool
from stagekit_tools import dist, names
from stagekit_tools.perf_frame import load_run


def test_identity_strips_fixed_iterations():
    assert names.identity("dist/gather_state_dict/many/1048576/iterations:50/manual_time") == \
        "dist/gather_state_dict/many/1048576"
    assert names.identity("limit/all_gather/65536/iterations:1") == "limit/all_gather/65536"
    assert names.identity("limit/memcpy_fresh/threads:2/manual_time") == \
        "limit/memcpy_fresh/threads:2"
    assert names.parse("dist/distribute_tensors/1048576")["kind"] == "dist"
    assert names.parse_sized("dist/distribute_tensors/1048576") == {
        "kind": "dist", "op": "distribute_tensors", "layout": None, "bytes": 1048576}
    assert names.parse_sized("dist/gather_state_dict/uneven/64")["layout"] == "uneven"
    assert names.parse_sized("limit/memcpy_prefaulted/threads:2") is None


def test_summary_medians_and_ratio():
    run = load_run(fixture("dist_mpi_np4.json"))
    assert run.warnings == []
    summary = dist.summarize(run.frame)
    assert run.world() == "mpi, 4 ranks"
    assert len(summary) == 3 * 9 + 2 * 5 and set(summary["status"]) == {"ok", "skipped"}
    # under mpirun the engine is MPI_Allgather; the thread world's limit is not supported there
    assert set(summary[summary["status"] == "skipped"]["op"]) == {"memcpy_gather"}
    row = summary.loc["dist/gather_state_dict/shard0/16777216"]
    assert row["n"] == 3 and row["limit"] == "limit/mpi_allgather/16777216"
    assert row["busbw"] == pytest.approx(row["algbw"] * 3 / 4, rel=1e-5)
    limit = summary.loc["limit/mpi_allgather/16777216", "algbw"]
    assert row["ratio_to_limit"] == pytest.approx(row["algbw"] / limit, rel=0.03)
    assert 0.8 < row["ratio_to_limit"] < 0.9
    assert pd_isnan(summary.loc["dist/distribute_tensors/1048576", "busbw"])
    assert list(summary.index[:3]) == ["limit/mpi_allgather/1048576",
                                       "limit/mpi_allgather/16777216",
                                       "limit/mpi_allgather/67108864"]


def pd_isnan(value):
    return value != value


def test_summary_errors_and_skips():
    summary = dist.summarize(load_run(fixture("dist_thread_errors.json")).frame)
    assert summary.loc["limit/mpi_allgather/65536", "status"] == "skipped"
    wrong = summary.loc["dist/gather_state_dict/uneven/65536"]
    assert wrong["status"] == "error" and wrong["error"].startswith("wrong result: rank 1")


def test_check_dist_accepts_a_good_file_and_rejects_errors():
    proc = run_tool("check_dist", fixture("dist_mpi_np4.json"), "--world-backend", "mpi",
                    "--world-size", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok (102 measured, 9 not supported)" in proc.stdout
    proc = run_tool("check_dist", fixture("dist_thread_errors.json"), "--world-size", "2")
    assert proc.returncode == 1
    assert "dist/gather_state_dict/uneven/65536: error: wrong result: rank 1" in proc.stdout
    assert "mpi_allgather" not in proc.stdout  # not_supported is allowed
    proc = run_tool("check_dist", fixture("dist_mpi_np4.json"), "--world-backend", "thread")
    assert proc.returncode == 1 and "world_backend is 'mpi'" in proc.stdout


def test_check_dist_runs_the_command_and_names_missing_families(tmp_path):
    doc = json.load(open(fixture("dist_mpi_np4.json"), encoding="utf-8"))
    doc["benchmarks"] = [b for b in doc["benchmarks"] if "/many/" not in b["name"]]
    for entry in doc["benchmarks"]:
        if entry["name"].startswith("dist/distribute_tensors/1048576"):
            del entry["ratio_to_limit"]
    src = tmp_path / "src.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    copy = [PYTHON, "-c", f"import shutil; shutil.copy({str(src)!r}, {str(out)!r})"]
    proc = run_tool("check_dist", str(out), "--", *copy)
    assert proc.returncode == 1
    assert "no dist/gather_state_dict/many/<bytes> benchmark" in proc.stdout
    assert "dist/distribute_tensors/1048576: no ratio_to_limit counter" in proc.stdout
    proc = run_tool("check_dist", str(tmp_path / "never.json"), "--", PYTHON, "-c",
                    "raise SystemExit(3)")
    assert proc.returncode == 2 and "exited with status 3" in proc.stderr


def test_plot_dist_chart(tmp_path):
    svg = plotted_dist_chart(tmp_path, "dist_bandwidth")
    assert "limit/mpi_allgather algbw" in svg and "dist/gather_state_dict/uneven busbw" in svg
    assert "dist/all_gather algbw" in svg
    proc = run_tool("plot", fixture("baseline.json"), "--dist",
                    fixture("dist_thread_errors.json"), "--out", str(tmp_path / "errors"))
    assert proc.returncode == 0, proc.stderr
    proc = run_tool("plot", fixture("baseline.json"), "--dist", fixture("schema_v2.json"),
                    "--out", str(tmp_path / "bad"))
    assert proc.returncode == 2 and "stagekit_schema_version" in proc.stderr


def test_report_dist_table(tmp_path):
    out = dist_report(tmp_path)
    md = (out / "README.md").read_text()
    html = (out / "index.html").read_text()
    assert "## Distributed benchmarks (stagekit-dist-bench)" in md
    headline = next(line for line in md.splitlines() if line.startswith("| **stagekit-reference**"))
    ratio = re.search(r"gather_state_dict: ([0-9.]+)× the engine's all-gather, 64 MiB", headline)
    assert ratio and 0.78 < float(ratio.group(1)) < 0.87  # the geomean of the three layouts
    line = next(line for line in md.splitlines()
                if line.startswith("| dist/gather_state_dict/shard0/16777216 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "16 MiB" and cells[4] == "limit/mpi_allgather/16777216"
    assert 0.8 < float(cells[6]) < 0.9 and cells[8] == "ok"
    assert "dist_bandwidth.png" in html and "busbw = algbw x (N-1)/N" in html


def test_report_dist_errors_and_absence(tmp_path):
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--dist",
                    fixture("dist_thread_errors.json"), "--out", str(tmp_path / "e"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "e" / "README.md").read_text()
    assert "ERROR dist/gather_state_dict/uneven/65536: wrong result: rank 1" in md
    line = next(line for line in md.splitlines()
                if line.startswith("| limit/mpi_allgather/65536 |"))
    label = re.search(r"\| skipped \[(\d+)\] \|$", line).group(1)
    assert f"{label}. MPI_Allgather needs the MPI world: run under mpirun (1 benchmark)" in md
    assert md.count("MPI_Allgather needs the MPI world") == 1
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--out", str(tmp_path / "n"))
    assert "No dist result file was given" in (tmp_path / "n" / "README.md").read_text()
