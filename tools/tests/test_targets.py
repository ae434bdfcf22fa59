"""The targets: a metric only some implementations have (the conversion cost of a stager in
another framework) is judged where it was measured and nowhere else."""
from stagekit_tools import targets

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
