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
    assert len(summary) == 3 * 22 + 2 * 6 and set(summary["status"]) == {"ok", "skipped"}
    # under mpirun the engines are MPI's own; the thread world's limits are not supported there
    assert set(summary[summary["status"] == "skipped"]["op"]) == {
        "memcpy_gather", "memcpy_bcast", "memcpy_exchange", "nccl_allgather", "nccl_bcast",
        "nccl_sendrecv", "nccl_all_gather", "nccl_broadcast", "nccl_send_recv",
        "gather_state_dict_cuda"}
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
    assert "ok (138 measured, 96 not supported)" in proc.stdout
    proc = run_tool("check_dist", fixture("dist_thread_errors.json"), "--world-size", "2")
    assert proc.returncode == 1
    assert "dist/gather_state_dict/uneven/65536: error: wrong result: rank 1" in proc.stdout
    for limit in ("mpi_allgather", "mpi_bcast", "mpi_sendrecv"):
        assert limit not in proc.stdout  # not_supported is allowed
    # the two wrong results and nothing else (memcpy_bcast needs no busbw)
    assert len(proc.stdout.splitlines()) == 2, proc.stdout
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


def test_the_nccl_panel_is_drawn_where_nccl_was_measured(tmp_path, monkeypatch):
    import make_fixtures
    svg = plotted_dist_chart(tmp_path / "cpu", "dist_bandwidth")  # NCCL rows all not_supported
    assert "nccl" not in svg and "CUDA memory over NCCL" not in svg
    # A GPU machine's file: the same rows, measured.
    skips = {k: v for k, v in make_fixtures.DIST_SKIPS["mpi"].items()
             if k not in make_fixtures.NCCL_FAMILIES}
    monkeypatch.setitem(make_fixtures.DIST_SKIPS, "mpi", skips)
    ctx = make_fixtures.dist_context("2026-11-24T12:50:00+00:00", "mpi", 2, "quick")
    gpu = tmp_path / "gpu.json"
    doc = make_fixtures.dist_run(ctx, 5, 3, 2, (1 << 20, 16 << 20), replication_sizes=(1 << 20,))
    gpu.write_text(json.dumps(doc))
    assert run_tool("check_dist", str(gpu)).returncode == 0
    proc = run_tool("plot", fixture("baseline.json"), "--dist", str(gpu),
                    "--only", "dist_bandwidth", "--out", str(tmp_path / "gpu"))
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "gpu" / "dist_bandwidth.svg").read_text()
    for label in ("limit/nccl_allgather algbw", "dist/nccl_all_gather busbw",
                  "dist/nccl_send_recv algbw", "dist/gather_state_dict_cuda/many algbw"):
        assert label in svg


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


def test_broadcast_rows_in_the_summary():
    summary = dist.summarize(load_run(fixture("dist_mpi_np4.json")).frame)
    for name in ("dist/broadcast/16777216", "dist/broadcast_state_dict/one/16777216",
                 "dist/broadcast_state_dict/many/16777216"):
        row = summary.loc[name]
        assert row["status"] == "ok" and row["limit"] == "limit/mpi_bcast/16777216"
        assert row["bytes"] == 16 << 20
        assert row["busbw"] == pytest.approx(row["algbw"], rel=1e-9)  # a broadcast's busbw
        limit = summary.loc["limit/mpi_bcast/16777216", "algbw"]
        assert row["ratio_to_limit"] == pytest.approx(row["algbw"] / limit, rel=0.03)
    assert summary.loc["limit/memcpy_bcast/16777216", "status"] == "skipped"
    assert summary.loc["limit/memcpy_bcast/16777216", "skipped_reason"] == \
        "the MPI world's engine is MPI_Bcast (limit/mpi_bcast)"
    # in harness order: the broadcast limits after the all-gather ones, the rows after distribute
    order = list(summary.index)
    assert order.index("limit/memcpy_local_block/67108864") < order.index(
        "limit/mpi_bcast/1048576") < order.index("dist/all_gather/1048576")
    assert order.index("dist/distribute_tensors/67108864") < order.index(
        "dist/broadcast/1048576") < order.index("dist/broadcast_state_dict/one/1048576") < \
        order.index("dist/broadcast_state_dict/many/1048576")
    thread = dist.summarize(load_run(fixture("dist_thread_errors.json")).frame)
    assert thread.loc["limit/mpi_bcast/65536", "status"] == "skipped"
    assert thread.loc["limit/memcpy_bcast/65536", "status"] == "ok"
    assert pd_isnan(thread.loc["limit/memcpy_bcast/65536", "busbw"])
    row = thread.loc["dist/broadcast_state_dict/many/65536"]
    assert row["status"] == "ok" and row["limit"] == "limit/memcpy_bcast/65536"


def test_check_dist_requires_the_broadcast_families(tmp_path):
    doc = json.load(open(fixture("dist_mpi_np4.json"), encoding="utf-8"))
    doc["benchmarks"] = [b for b in doc["benchmarks"]
                         if not b["name"].startswith(("dist/broadcast_state_dict/one/",
                                                      "limit/memcpy_bcast/"))]
    for entry in doc["benchmarks"]:
        if entry["name"].startswith(("dist/broadcast/1048576/", "limit/mpi_bcast/1048576/")):
            del entry["busbw"]
        if entry["name"].startswith("dist/broadcast_state_dict/many/16777216/"):
            del entry["limit_algbw"]
    path = tmp_path / "dist.json"
    path.write_text(json.dumps(doc))
    proc = run_tool("check_dist", str(path), "--world-backend", "mpi")
    assert proc.returncode == 1
    assert "no dist/broadcast_state_dict/one/<bytes> benchmark in the file" in proc.stdout
    # the other world's limit must be in the file too, as not_supported
    assert "no limit/memcpy_bcast/<bytes> benchmark in the file" in proc.stdout
    assert "dist/broadcast/1048576: no busbw counter" in proc.stdout
    assert "limit/mpi_bcast/1048576: no busbw counter" in proc.stdout
    assert "dist/broadcast_state_dict/many/16777216: no limit_algbw counter" in proc.stdout
    assert "dist/broadcast_state_dict/many/1048576" not in proc.stdout


def test_plot_dist_chart_draws_the_broadcasts_next_to_their_limit(tmp_path):
    svg = plotted_dist_chart(tmp_path, "dist_bandwidth")
    for text in ("limit/mpi_bcast algbw", "limit/mpi_bcast busbw", "dist/broadcast algbw",
                 "dist/broadcast busbw", "dist/broadcast_state_dict/one algbw",
                 "dist/broadcast_state_dict/many busbw",
                 "broadcast_state_dict and the communicator vs the engine's broadcast "
                 "(mpi, 4 ranks)",
                 "limit/memcpy_bcast: skipped: the MPI world's engine is MPI_Bcast"):
        assert text in svg, text
    proc = run_tool("plot", fixture("baseline.json"), "--dist", fixture("dist_thread_errors.json"),
                    "--only", "dist_bandwidth", "--out", str(tmp_path / "thread"))
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "thread" / "dist_bandwidth.svg").read_text()
    assert "limit/memcpy_bcast algbw" in svg and "dist/broadcast_state_dict/many algbw" in svg
    assert "limit/mpi_bcast: skipped: MPI_Bcast needs the MPI world" in svg


def test_report_broadcast_rows(tmp_path):
    out = dist_report(tmp_path)
    md = (out / "README.md").read_text()
    headline = next(line for line in md.splitlines() if line.startswith("| **stagekit-reference**"))
    ratio = re.search(r"broadcast_state_dict: ([0-9.]+)× the engine's broadcast, 64 MiB",
                      headline)
    assert ratio and 0.78 < float(ratio.group(1)) < 0.85  # the geomean of one and many
    rows = {}
    for line in md.splitlines():
        if line.startswith(("| dist/broadcast", "| limit/mpi_bcast/", "| limit/memcpy_bcast/")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if ":" not in cells[0]:  # the distributed table, not the targets table
                rows[cells[0]] = cells
    cells = rows["dist/broadcast_state_dict/one/67108864"]
    assert cells[1] == "64 MiB" and cells[3] == cells[2]  # busbw = algbw
    assert cells[4] == "limit/mpi_bcast/67108864" and 0.85 < float(cells[6]) < 0.95
    assert cells[8] == "ok"
    assert rows["dist/broadcast/1048576"][4] == "limit/mpi_bcast/1048576"
    assert rows["limit/memcpy_bcast/1048576"][8].startswith("skipped [")
    assert len(rows) == 3 * 5
    html = (out / "index.html").read_text()
    assert "busbw = algbw for a broadcast" in html
    assert "limit/mpi_bcast (MPI_Bcast) under mpirun, limit/memcpy_bcast" in html
    # the broadcast targets are in the targets table
    assert re.search(r"\| dist/broadcast_state_dict/one/16777216: ratio_to_limit >= 0\.8 \| "
                     r"dist/broadcast_state_dict/one/16777216 \| 0\.[0-9]+ \| PASS \|", md)
