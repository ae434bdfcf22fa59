"""The stagekit performance targets and their evaluation against a summary.

Each target names a benchmark pattern (`*` matches within one path segment), a metric
and a bound.  Evaluation gives one row per matching benchmark with the measured value and
PASS / MISS, "ERROR" when the benchmark failed, or "NOT MEASURED" with the reason.  The summary
rows are mappings with the columns of `stats.summarize` (a DataFrame's rows or plain dicts), so
this module needs only the standard library.
"""
import math
from dataclasses import dataclass

from stagekit_tools import names


@dataclass(frozen=True)
class Target:
    pattern: str
    metric: str      # a summary column
    op: str          # ">=" or "<="
    bound: float
    why: str
    label: str       # a few words for a chart legend
    # True: a benchmark without the metric is not a row (the metric exists only for some
    # implementations, as the conversion cost of one in another framework).
    where_measured: bool = False

    def holds(self, value):
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def text(self):
        return f"{self.metric.replace('_median', '')} {self.op} {self.bound:g}"


TARGETS = (
    Target("stage/cpu_to_*/large/warm", "ratio_to_limit_median", ">=", 0.90,
           "warm staging of large tensors runs near the memory-copy limit", "warm"),
    Target("stage/cpu_to_*/transformer/warm", "ratio_to_limit_median", ">=", 0.90,
           "warm staging of a transformer state dict runs near the limit", "warm"),
    Target("stage/cpu_to_pageable/large/cold", "ratio_to_limit_median", ">=", 0.80,
           "a first (cold) stage into pageable memory pays little for allocation",
           "cold pageable"),
    Target("stage/cpu_to_*/small/warm", "overhead_ns_per_tensor_median", "<=", 500,
           "per-tensor bookkeeping stays small", "small tensors"),
    Target("stage/cuda_to_*/large/*", "ratio_to_limit_median", ">=", 0.90,
           "GPU sources stage near the device-to-host limit", "GPU"),
    Target("stage/cpu_to_*/small/*", "conversion_ns_per_tensor_median", "<=", 5000,
           "converting the 100,000-tensor state dict to a Python stager's torch tensors and the "
           "result back costs under 5 us per tensor", "conversion", where_measured=True),
)

# The distributed targets, over a stagekit-dist-bench summary (`dist.summarize`: its ratio column is
# `ratio_to_limit`, the median over the repetitions) of a run under mpirun, where every ratio is to
# the engine's own operation in the same run (MPI_Allgather, MPI_Bcast, MPI_Isend/MPI_Irecv of the
# same bytes; the disk's sequential write with fsync for persisting a replica).
_MiB16, _MiB64 = 16 << 20, 64 << 20
DIST_TARGETS = tuple(
    [Target(f"dist/all_gather/{s}", "ratio_to_limit", ">=", 0.90,
            "the communicator's all-gather moves data at MPI_Allgather's speed", "all_gather")
     for s in (_MiB16, _MiB64)]
    + [Target(f"dist/gather_state_dict/{layout}/{s}", "ratio_to_limit", ">=", 0.80,
              "gathering a state dict costs little more than MPI_Allgather of its bytes",
              "gather_state_dict")
       for layout in ("shard0", "many") for s in (_MiB16, _MiB64)]
    + [Target(f"dist/broadcast_state_dict/{layout}/{s}", "ratio_to_limit", ">=", 0.80,
              "broadcasting a state dict costs little more than MPI_Bcast of its bytes",
              "broadcast_state_dict")
       for layout in ("one", "many") for s in (_MiB16, _MiB64)]
    + [Target(f"replicate/exchange/{_MiB64}", "ratio_to_limit", ">=", 0.80,
              "replication's exchange moves data at the speed of MPI send/recv both ways",
              "replication exchange"),
       Target(f"replicate/persist/{_MiB64}", "ratio_to_limit", ">=", 0.90,
              "persisting a replica writes at the disk's sequential speed with fsync",
              "replication persist")])

PASS, MISS, ERROR, NOT_MEASURED = "PASS", "MISS", "ERROR", "NOT MEASURED"


def evaluate(summary_rows, targets=TARGETS):
    """Rows {target, pattern, benchmark, measured, result, note} for every target, from the
    summary rows (mappings with the stats.summarize columns)."""
    summary_rows, rows = list(summary_rows), []
    for target in targets:
        regex = names.glob_to_regex(target.pattern)
        matched = [row for row in summary_rows if regex.match(row["benchmark"])]
        if target.where_measured:
            matched = [row for row in matched if not _missing(row.get(target.metric))]
            if not matched:
                continue
        if not matched:
            rows.append({"target": target.text(), "pattern": target.pattern,
                         "benchmark": target.pattern, "measured": "", "result": NOT_MEASURED,
                         "note": "not measured: no such benchmark in this run"})
        for row in matched:
            rows.append(_evaluate_one(target, row))
    return rows


def _evaluate_one(target, row):
    out = {"target": target.text(), "pattern": target.pattern, "benchmark": row["benchmark"],
           "measured": "", "result": NOT_MEASURED, "note": ""}
    if row["status"] == "skipped":
        out["note"] = f"not measured: {row['skipped_reason']}"
    elif row["status"] == "error":
        out.update(result=ERROR, note=str(row["error"]))
    else:
        value = row[target.metric]
        if _missing(value):
            out["note"] = f"not measured: the run has no {target.metric.replace('_median', '')}"
        else:
            out["measured"] = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
            out["result"] = PASS if target.holds(value) else MISS
    return out


def evaluate_dist(summary_rows, world_backend, targets=DIST_TARGETS):
    """evaluate() of the distributed targets over a dist summary; they hold under mpirun, so a
    thread-world run gives NOT MEASURED rows saying so."""
    if world_backend == "mpi":
        return evaluate(summary_rows, targets)
    return [{"target": t.text(), "pattern": t.pattern, "benchmark": t.pattern, "measured": "",
             "result": NOT_MEASURED,
             "note": f"not measured: the distributed run is a {world_backend or 'thread'} world "
                     "(these targets hold under mpirun, against MPI itself)"}
            for t in targets]


def measured_values(rows):
    """{(pattern, benchmark): measured} of the evaluated rows that measured a value (PASS or
    MISS): what a run that is shown but not judged (report --dist-also) says of each target.
    A run that lacks a benchmark has a NOT MEASURED row whose benchmark is the pattern; the
    distributed targets name one benchmark each (no `*`), so the key of such a row still finds
    the other run's value."""
    return {(row["pattern"], row["benchmark"]): row["measured"] for row in rows
            if row["result"] in (PASS, MISS)}


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def result_counts(rows):
    """{PASS, MISS, ERROR, NOT MEASURED: n} of evaluated rows."""
    results = [row["result"] for row in rows]
    return {key: results.count(key) for key in (PASS, MISS, ERROR, NOT_MEASURED)}


def ratio_bounds(targets=TARGETS):
    """[(bound, "label, label")] of the ratio_to_limit targets, highest bound first: the lines a
    ratio chart draws."""
    bounds = {}
    for target in targets:
        if target.metric == "ratio_to_limit_median":
            labels = bounds.setdefault(target.bound, [])
            if target.label not in labels:
                labels.append(target.label)
    return [(bound, ", ".join(labels)) for bound, labels in sorted(bounds.items(), reverse=True)]
