"""report --dist-also: a second distributed run (ci/perf-report.sh: mpirun -np 4) shown next to the
distributed targets judged on the first (-np 2), in a column named after its world size."""
import json
import re

from conftest import fixture, run_tool
from stagekit_tools import dist, targets
from stagekit_tools.perf_frame import load_run

NP2, NP4 = fixture("dist_mpi_np2.json"), fixture("dist_mpi_np4.json")


def report(out, *args):
    """Writes the report of the baseline with ARGS into out; returns its README.md's text."""
    proc = run_tool("report", "--perf", fixture("baseline.json"), *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return (out / "README.md").read_text()


def targets_table(md):
    """(header, {benchmark: {column: cell}}) of the report's targets table."""
    lines = md.split("## Targets", 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines
            if line.startswith("| ")]
    header = rows[0]
    return header, {row[1]: dict(zip(header, row)) for row in rows[1:]}


def evaluated(path):
    """{benchmark: row} of the distributed targets evaluated over a dist fixture."""
    run = load_run(path)
    return {r["benchmark"]: r for r in targets.evaluate_dist(
        dist.summarize(run.frame).to_dict("records"), run.context.get("world_backend"))}


def headline_targets(md):
    """The target verdicts of the reference's headline row."""
    line = next(line for line in md.splitlines() if line.startswith("| **stagekit-reference**"))
    return re.search(r"\*\*(\d+ PASS · \d+ MISS)\*\*", line).group(1)


def test_the_targets_table_has_the_np4_values_next_to_the_np2_verdicts(tmp_path):
    md = report(tmp_path / "r", "--dist", NP2, "--dist-also", NP4)
    header, rows = targets_table(md)
    assert header == ["target", "benchmark", "measured", "np 4", "result", "note"]
    np2, np4 = evaluated(NP2), evaluated(NP4)
    assert set(np2) == set(np4) == {t.pattern for t in targets.DIST_TARGETS}
    for name, judged in np2.items():
        assert rows[name]["measured"] == judged["measured"]
        assert rows[name]["result"] == judged["result"]  # the verdict is the np-2 one
        assert rows[name]["np 4"] == np4[name]["measured"]
    # the two runs differ, and a verdict is not the np-4 value's: many/16 MiB is 0.803 at np 2
    # (PASS) and 0.794 at np 4
    many = rows["dist/gather_state_dict/many/16777216"]
    assert (many["measured"], many["np 4"], many["result"]) == ("0.803", "0.794", "PASS")
    assert rows["stage/cpu_to_pageable/large/warm"]["np 4"] == ""  # not a distributed target
    # the headline counts the np-2 verdicts only: the stage targets' (4, 1) and these (8, 4)
    assert headline_targets(md) == "12 PASS · 5 MISS"
    assert headline_targets(report(tmp_path / "plain", "--dist", NP2)) == "12 PASS · 5 MISS"
    # the distributed and replication sections name the second run
    also = "Also run at mpi, 4 ranks: " + NP4
    assert md.count(also) == 2
    assert "is the targets table's np 4 column" in md
    assert "The second run of the distributed benchmarks ran 4 ranks on 2 CPUs" in md
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<th>np 4</th>" in html and also in html


def test_a_target_the_second_run_did_not_measure_shows_a_dash(tmp_path):
    doc = json.load(open(NP4, encoding="utf-8"))
    kept = []
    for entry in doc["benchmarks"]:
        if entry["name"].startswith("replicate/persist/67108864/"):
            continue  # absent
        if entry["name"].startswith("dist/all_gather/16777216/"):
            entry.update(error_occurred=True, error_message="wrong result: rank 3: differs")
        kept.append(entry)
    doc["benchmarks"] = kept
    also = tmp_path / "np4.json"
    also.write_text(json.dumps(doc))
    md = report(tmp_path / "r", "--dist", NP2, "--dist-also", str(also))
    _, rows = targets_table(md)
    assert rows["replicate/persist/67108864"]["np 4"] == "-"
    assert rows["replicate/persist/67108864"]["result"] == "MISS"  # the np-2 verdict stays
    assert rows["dist/all_gather/16777216"]["np 4"] == "-"
    assert rows["dist/all_gather/16777216"]["result"] == "PASS"
    assert rows["dist/all_gather/67108864"]["np 4"] == evaluated(NP4)[
        "dist/all_gather/67108864"]["measured"]
    assert "1 of its benchmarks here ended in an error: dist/all_gather/16777216." in md
    # a thread world's ratios are not to MPI: none stands next to the targets
    md = report(tmp_path / "t", "--dist", NP2, "--dist-also", fixture("dist_thread_errors.json"))
    header, rows = targets_table(md)
    assert header[3] == "thread, 2 ranks"
    assert {rows[t.pattern][header[3]] for t in targets.DIST_TARGETS} == {"-"}


def test_without_a_second_run_there_is_no_such_column(tmp_path):
    md = report(tmp_path / "r", "--dist", NP2)
    header, _ = targets_table(md)
    assert header == ["target", "benchmark", "measured", "result", "note"]
    assert "Also run at" not in md and "second run" not in md
    # an unusable second run: stated, no column
    md = report(tmp_path / "bad", "--dist", NP2, "--dist-also", str(tmp_path / "never.json"))
    header, _ = targets_table(md)
    assert header == ["target", "benchmark", "measured", "result", "note"]
    assert f"The second dist result file {tmp_path / 'never.json'} could not be used" in md
    # without the first run there is nothing to stand next to
    md = report(tmp_path / "alone", "--dist-also", NP4)
    assert "np 4" not in targets_table(md)[0]
    assert "Its figures are not shown" in md


def test_the_cli_accepts_dist_also():
    proc = run_tool("report", "--help")
    assert proc.returncode == 0 and "--dist-also DIST.json" in proc.stdout
