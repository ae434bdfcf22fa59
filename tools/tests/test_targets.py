"""The targets: a metric only some implementations have (the conversion cost of a stager in
another framework) is judged where it was measured and nowhere else; the distributed targets are
judged on a run under mpirun only."""
from conftest import fixture
from stagekit_tools import dist, targets
from stagekit_tools.perf_frame import load_run

CONVERSION = "conversion_ns_per_tensor <= 5000"


def row(benchmark, status="ok", **metrics):
    base = {"benchmark": benchmark, "status": status, "error": None, "skipped_reason": None,
            "ratio_to_limit_median": float("nan"), "overhead_ns_per_tensor_median": 100.0,
            "conversion_ns_per_tensor_median": float("nan")}
    return {**base, **metrics}


def conversion_rows(summary):
    return [r for r in targets.evaluate(summary) if r["target"] == CONVERSION]


def test_the_conversion_target_judges_the_runs_that_measured_a_conversion():
    rows = conversion_rows([
        row("stage/cpu_to_pageable/small/warm", conversion_ns_per_tensor_median=3200.0),
        row("stage/cpu_to_pinned/small/cold", conversion_ns_per_tensor_median=6400.0),
        row("stage/cpu_to_pageable/large/warm", conversion_ns_per_tensor_median=100.0),
    ])
    assert [(r["benchmark"], r["measured"], r["result"]) for r in rows] == [
        ("stage/cpu_to_pageable/small/warm", "3200", targets.PASS),
        ("stage/cpu_to_pinned/small/cold", "6400", targets.MISS),
    ]


def test_a_run_without_conversions_has_no_conversion_rows_but_keeps_the_others():
    summary = [row("stage/cpu_to_pageable/small/warm"),
               row("stage/cpu_to_shared/small/warm", status="error")]
    assert conversion_rows(summary) == []
    overhead = [r for r in targets.evaluate(summary)
                if r["pattern"] == "stage/cpu_to_*/small/warm"]
    assert [r["result"] for r in overhead] == [targets.PASS, targets.ERROR]
    missing = [r for r in targets.evaluate([]) if r["result"] == targets.NOT_MEASURED]
    assert {r["pattern"] for r in missing} == {t.pattern for t in targets.TARGETS
                                               if not t.where_measured}


def dist_row(benchmark, ratio, status="ok"):
    return {"benchmark": benchmark, "status": status, "error": None, "skipped_reason": None,
            "ratio_to_limit": ratio}


def test_the_distributed_targets_judge_an_mpi_run_against_the_engine():
    summary = [dist_row("dist/all_gather/16777216", 0.95),
               dist_row("dist/all_gather/67108864", 0.7),
               dist_row("dist/all_gather/1048576", 0.2),
               dist_row("dist/gather_state_dict/shard0/16777216", 0.85),
               dist_row("dist/gather_state_dict/many/67108864", 0.1, status="error")]
    rows = {r["benchmark"]: r["result"] for r in targets.evaluate_dist(summary, "mpi")}
    assert rows["dist/all_gather/16777216"] == targets.PASS
    assert rows["dist/all_gather/67108864"] == targets.MISS
    assert "dist/all_gather/1048576" not in rows  # the targets name 16 and 64 MiB only
    assert rows["dist/gather_state_dict/shard0/16777216"] == targets.PASS
    assert rows["dist/gather_state_dict/many/67108864"] == targets.ERROR
    assert rows["dist/gather_state_dict/many/16777216"] == targets.NOT_MEASURED


def test_a_thread_world_run_does_not_judge_the_distributed_targets():
    rows = targets.evaluate_dist([dist_row("dist/all_gather/16777216", 0.99)], "thread")
    assert len(rows) == len(targets.DIST_TARGETS)
    assert {r["result"] for r in rows} == {targets.NOT_MEASURED}
    assert all("thread world" in r["note"] for r in rows)


def fixture_rows(name):
    run = load_run(fixture(name))
    return targets.evaluate_dist(dist.summarize(run.frame).to_dict("records"),
                                 run.context.get("world_backend"))


def by_label(rows):
    """{label: [(benchmark, result)]} of evaluated distributed target rows."""
    labels = {t.pattern: t.label for t in targets.DIST_TARGETS}
    found = {}
    for r in rows:
        found.setdefault(labels[r["pattern"]], []).append((r["benchmark"], r["result"]))
    return found


def test_the_broadcast_and_replication_targets_from_the_mpi_fixture():
    rows = fixture_rows("dist_mpi_np4.json")
    assert len(rows) == len(targets.DIST_TARGETS)  # one benchmark per pattern
    found = by_label(rows)
    # nominal ratios of the fixture: one 0.90, many 0.74 (bound 0.80)
    assert found["broadcast_state_dict"] == [
        ("dist/broadcast_state_dict/one/16777216", targets.PASS),
        ("dist/broadcast_state_dict/one/67108864", targets.PASS),
        ("dist/broadcast_state_dict/many/16777216", targets.MISS),
        ("dist/broadcast_state_dict/many/67108864", targets.MISS)]
    # exchange 0.85 of limit/mpi_sendrecv (bound 0.80), persist 0.70 of limit/seq_write (0.90)
    assert found["replication exchange"] == [("replicate/exchange/67108864", targets.PASS)]
    assert found["replication persist"] == [("replicate/persist/67108864", targets.MISS)]
    exchange = next(r for r in rows if r["benchmark"] == "replicate/exchange/67108864")
    assert exchange["target"] == "ratio_to_limit >= 0.8" and 0.8 < float(exchange["measured"])
    texts = {t.label: t.why for t in targets.DIST_TARGETS}
    assert texts["broadcast_state_dict"] == \
        "broadcasting a state dict costs little more than MPI_Bcast of its bytes"
    assert texts["replication exchange"] == \
        "replication's exchange moves data at the speed of MPI send/recv both ways"
    assert texts["replication persist"] == \
        "persisting a replica writes at the disk's sequential speed with fsync"
    # the existing ones are kept
    assert [r for _, r in found["all_gather"]] == [targets.PASS, targets.PASS]
    assert len(found["gather_state_dict"]) == 4


def test_the_new_targets_fail_when_the_benchmark_failed_or_was_not_run():
    summary = [dist_row("dist/broadcast_state_dict/one/16777216", 0.95),
               dist_row("dist/broadcast_state_dict/many/67108864", 0.5, status="error"),
               dist_row("replicate/exchange/67108864", 0.79),
               dist_row("replicate/persist/67108864", 0.91)]
    rows = {r["benchmark"]: r["result"] for r in targets.evaluate_dist(summary, "mpi")}
    assert rows["dist/broadcast_state_dict/one/16777216"] == targets.PASS
    assert rows["dist/broadcast_state_dict/many/67108864"] == targets.ERROR
    assert rows["dist/broadcast_state_dict/one/67108864"] == targets.NOT_MEASURED
    assert rows["replicate/exchange/67108864"] == targets.MISS
    assert rows["replicate/persist/67108864"] == targets.PASS


def test_the_thread_world_fixture_measures_no_distributed_target():
    rows = fixture_rows("dist_thread_errors.json")
    assert len(rows) == len(targets.DIST_TARGETS)
    assert {r["result"] for r in rows} == {targets.NOT_MEASURED}
    assert all("thread world" in r["note"] for r in rows)
    found = by_label(rows)
    assert set(found) == {"all_gather", "gather_state_dict", "broadcast_state_dict",
                          "replication exchange", "replication persist"}
    assert found["replication persist"] == [("replicate/persist/67108864", targets.NOT_MEASURED)]
