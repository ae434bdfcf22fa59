"""The replication benchmarks of stagekit-dist-bench: names, summaries, check_dist, the
replication_bandwidth chart and the report's replication table."""
import json
import re

import pytest

from conftest import dist_report, fixture, plotted_dist_chart, run_tool
from stagekit_tools import dist, names
from stagekit_tools.perf_frame import load_run

MIB64 = 64 << 20


def test_names_of_the_replication_benchmarks():
    assert names.parse_sized("replicate/exchange/1048576") == {
        "kind": "replicate", "op": "exchange", "layout": None, "bytes": 1048576}
    assert names.parse("replicate/persist/1048576")["kind"] == "replicate"
    assert names.parse_sized("limit/seq_write/65536")["op"] == "seq_write"
    assert names.parse_sized("limit/mpi_sendrecv/65536")["op"] == "mpi_sendrecv"
    ordered = sorted(["replicate/stage/1048576", "replicate/exchange/67108864",
                      "dist/distribute_tensors/1048576", "limit/seq_write/1048576",
                      "replicate/exchange/1048576", "limit/memcpy_exchange/1048576",
                      "limit/mpi_sendrecv/1048576", "limit/all_gather/1048576"],
                     key=names.sort_key)
    assert ordered == ["limit/all_gather/1048576", "limit/mpi_sendrecv/1048576",
                       "limit/memcpy_exchange/1048576", "limit/seq_write/1048576",
                       "dist/distribute_tensors/1048576", "replicate/exchange/1048576",
                       "replicate/exchange/67108864", "replicate/stage/1048576"]


def test_summary_splits_replication_and_divides_by_its_limits():
    summary = dist.summarize(load_run(fixture("dist_mpi_np4.json")).frame)
    utilities, replication = dist.split(summary)
    assert len(utilities) == 3 * 22 and len(replication) == 2 * 6
    assert not any(n.startswith(("replicate/", "limit/mpi_sendrecv", "limit/memcpy_exchange",
                                 "limit/seq_write")) for n in utilities.index)
    # under mpirun the exchange limit is MPI_Isend/MPI_Irecv; memcpy's is the thread world's
    assert replication.loc[f"limit/memcpy_exchange/{MIB64}", "status"] == "skipped"
    assert replication.loc[f"limit/memcpy_exchange/{MIB64}", "skipped_reason"] == \
        "the mpi world's engine is MPI send/recv (limit/mpi_sendrecv)"
    exchange = replication.loc[f"replicate/exchange/{MIB64}"]
    sendrecv = replication.loc[f"limit/mpi_sendrecv/{MIB64}", "algbw"]
    assert exchange["limit"] == f"limit/mpi_sendrecv/{MIB64}" and exchange["bytes"] == MIB64
    assert exchange["ratio_to_limit"] == pytest.approx(exchange["algbw"] / sendrecv, rel=0.03)
    assert 0.8 < exchange["ratio_to_limit"] < 0.9
    persist = replication.loc[f"replicate/persist/{MIB64}"]
    assert persist["limit"] == f"limit/seq_write/{MIB64}"
    assert 0.65 < persist["ratio_to_limit"] < 0.75
    stage = replication.loc[f"replicate/stage/{MIB64}"]
    seq_write = replication.loc[f"limit/seq_write/{MIB64}", "algbw"]
    assert stage["limit"] == f"limit/mpi_sendrecv/{MIB64}+limit/seq_write/{MIB64}"
    assert stage["limit_algbw"] == pytest.approx(1 / (1 / sendrecv + 1 / seq_write), rel=0.03)
    assert pd_isnan(stage["busbw"])


def test_a_thread_world_divides_the_exchange_by_memcpy():
    _, replication = dist.split(dist.summarize(load_run(fixture("dist_thread_errors.json")).frame))
    assert replication.loc["limit/mpi_sendrecv/65536", "status"] == "skipped"
    assert replication.loc["limit/mpi_sendrecv/65536", "skipped_reason"] == \
        "MPI send/recv needs the MPI world: run under mpirun (a thread world's engine is memcpy)"
    memcpy = replication.loc["limit/memcpy_exchange/65536", "algbw"]
    exchange = replication.loc["replicate/exchange/65536"]
    assert exchange["status"] == "ok" and exchange["limit"] == "limit/memcpy_exchange/65536"
    assert exchange["ratio_to_limit"] == pytest.approx(exchange["algbw"] / memcpy, rel=0.03)
    stage = replication.loc["replicate/stage/65536"]
    assert stage["limit"] == "limit/memcpy_exchange/65536+limit/seq_write/65536"
    persist = replication.loc["replicate/persist/65536"]
    assert persist["status"] == "error"


def pd_isnan(value):
    return value != value


def test_check_dist_requires_the_replication_families(tmp_path):
    doc = json.load(open(fixture("dist_mpi_np4.json"), encoding="utf-8"))
    doc["benchmarks"] = [b for b in doc["benchmarks"]
                         if not b["name"].startswith("replicate/persist/")]
    for entry in doc["benchmarks"]:
        if entry["name"].startswith("replicate/stage/1048576/"):
            del entry["ratio_to_limit"]
    path = tmp_path / "dist.json"
    path.write_text(json.dumps(doc))
    proc = run_tool("check_dist", str(path))
    assert proc.returncode == 1
    assert "no replicate/persist/<bytes> benchmark in the file" in proc.stdout
    assert "replicate/stage/1048576: no ratio_to_limit counter" in proc.stdout
    assert "sendrecv" not in proc.stdout and "memcpy_exchange" not in proc.stdout
    proc = run_tool("check_dist", fixture("dist_thread_errors.json"))
    assert "replicate/persist/65536: error: wrong result: rank 1" in proc.stdout
    assert "sendrecv" not in proc.stdout  # the MPI limit is not_supported in a thread world
    # both worlds' exchange limits must be in the file, one of them as not_supported
    doc["benchmarks"] = [b for b in doc["benchmarks"]
                         if not b["name"].startswith("limit/memcpy_exchange/")]
    path.write_text(json.dumps(doc))
    proc = run_tool("check_dist", str(path))
    assert "no limit/memcpy_exchange/<bytes> benchmark in the file" in proc.stdout


def test_plot_replication_chart(tmp_path):
    svg = plotted_dist_chart(tmp_path, "replication_bandwidth", also=("dist_bandwidth",))
    for text in ("limit/mpi_sendrecv algbw", "replicate/exchange algbw", "limit/seq_write algbw",
                 "replicate/persist algbw", "replicate/exchange vs limit/mpi_sendrecv",
                 "replicate/stage vs limit/mpi_sendrecv then limit/seq_write",
                 "vs limit/mpi_sendrecv, MPI_Isend/MPI_Irecv (mpi, 4 ranks)"):
        assert text in svg, text
    assert "memcpy_exchange" not in svg  # the other world's limit, not_supported here
    dist_svg = (tmp_path / "dist_bandwidth.svg").read_text()
    for text in ("sendrecv", "memcpy_exchange", "seq_write", "replicate/"):
        assert text not in dist_svg


def test_plot_replication_chart_with_errors_and_without_replication(tmp_path):
    proc = run_tool("plot", fixture("baseline.json"), "--dist", fixture("dist_thread_errors.json"),
                    "--only", "replication_bandwidth", "--out", str(tmp_path / "errors"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "errors" / "replication_bandwidth.png").stat().st_size > 1000
    svg = (tmp_path / "errors" / "replication_bandwidth.svg").read_text()
    # a thread world: the exchange is drawn next to memcpy, its stage ratio vs memcpy then write
    for text in ("limit/memcpy_exchange algbw", "replicate/exchange algbw",
                 "replicate/stage vs limit/memcpy_exchange then limit/seq_write",
                 "replicate/persist: error: wrong result: rank 1"):
        assert text in svg, text
    assert "sendrecv" not in svg
    doc = json.load(open(fixture("dist_mpi_np4.json"), encoding="utf-8"))
    doc["benchmarks"] = [b for b in doc["benchmarks"]
                         if not b["name"].startswith(("replicate/", "limit/mpi_sendrecv/",
                                                      "limit/memcpy_exchange/",
                                                      "limit/seq_write/"))]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    proc = run_tool("plot", fixture("baseline.json"), "--dist", str(old),
                    "--only", "replication_bandwidth", "--out", str(tmp_path / "old"))
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "old" / "replication_bandwidth.svg").read_text()
    assert "no replication benchmarks" in svg


def report_lines(out):
    md = (out / "README.md").read_text()
    rows = {}
    for line in md.splitlines():
        if line.startswith("| replicate/") or line.startswith("| limit/"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], []).append(cells)
    return md, rows


def test_report_replication_table(tmp_path):
    out = dist_report(tmp_path)
    md, rows = report_lines(out)
    assert "## Replication benchmarks (stagekit-dist-bench)" in md
    headline = next(line for line in md.splitlines() if line.startswith("| **stagekit-reference**"))
    exchange = re.search(r"exchange: ([0-9.]+)× the engine's exchange, 64 MiB", headline)
    assert exchange and 0.8 < float(exchange.group(1)) < 0.9
    stage = re.search(r"stage: ([0-9.]+)× the engine's exchange \+ write, 64 MiB", headline)
    assert stage and 0.7 < float(stage.group(1)) < 0.8
    exchange = rows[f"replicate/exchange/{MIB64}"]
    assert len(exchange) == 1  # in the replication table only, not in the dist table
    cells = exchange[0]
    assert cells[1] == "64 MiB" and cells[3] == f"limit/mpi_sendrecv/{MIB64}"
    assert 0.8 < float(cells[5]) < 0.9 and cells[7] == "ok"
    assert rows[f"replicate/stage/{MIB64}"][0][3] == \
        f"limit/mpi_sendrecv/{MIB64}+limit/seq_write/{MIB64}"
    assert len(rows[f"limit/seq_write/{MIB64}"]) == 1
    assert len(rows[f"limit/mpi_sendrecv/{MIB64}"]) == 1
    assert rows[f"limit/memcpy_exchange/{MIB64}"][0][7].startswith("skipped [")
    html = (out / "index.html").read_text()
    assert "replication_bandwidth.png" in html and "1 / (1/exchange + 1/seq_write)" in html
    assert "limit/mpi_sendrecv under mpirun" in html
    assert html.index("replication_bandwidth.png") > html.index("dist_bandwidth.png")


def test_report_replication_errors_and_absence(tmp_path):
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--dist",
                    fixture("dist_thread_errors.json"), "--out", str(tmp_path / "e"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "e" / "README.md").read_text()
    assert md.count("ERROR replicate/persist/65536: wrong result: rank 1") == 1
    assert "| replicate/persist/65536 | 64 KiB | - | - | - | - | 0 | ERROR: wrong result: " \
        "rank 1: layers.3.weight of the replica file differs from rank 1's |" in md
    proc = run_tool("report", "--perf", fixture("baseline.json"), "--out", str(tmp_path / "n"))
    md = (tmp_path / "n" / "README.md").read_text()
    assert "## Replication benchmarks (stagekit-dist-bench)" in md
    assert "No replication results: they come from the dist result file, and none was given." in md
