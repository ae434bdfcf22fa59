"""Summaries of stagekit-dist-bench results (names `dist/<op>[/<layout>]/<bytes>`,
`replicate/<op>/<bytes>` and `limit/<what>/<bytes>`, see perf/METRICS.md "Distributed benchmarks"
and "Replication benchmarks").

One row per benchmark: kind, op, layout, bytes (S, from the name), world size, the medians over
repetitions of algbw, busbw and ratio_to_limit (bytes/s and a plain ratio), the limit it was
divided by with that limit's median algbw (a replicate/stage benchmark names two limits joined by
"+", its limit_algbw being their serial combination), and the status (stats.outcome: "ok",
"skipped" for only not_supported entries, "error" when any repetition failed).  Needs pandas.
"""
import pandas as pd

from stagekit_tools import names, stats

# The replication benchmarks and their limits (perf/bench/replication_bench.cpp); the rest of a
# dist file are the distributed state-dict utilities and theirs.
# The exchange limit is limit/mpi_sendrecv under mpirun, limit/memcpy_exchange in a thread world.
REPLICATION_OPS = ("mpi_sendrecv", "memcpy_exchange", "seq_write", "exchange", "persist", "stage")
COLUMNS = ("benchmark", "kind", "op", "layout", "bytes", "world_size", "status", "n", "algbw",
           "busbw", "ratio_to_limit", "limit", "limit_algbw", "error", "skipped_reason")


def summarize(frame):
    """The dist summary DataFrame of a runs frame (rows whose names are not sized are left out)."""
    rows = []
    for name, group in frame.groupby("benchmark", sort=False):
        sized = names.parse_sized(name)
        if sized is None:
            continue
        result = stats.outcome(group)
        ok = result["ok"]
        algbw = ok["algbw"].fillna(ok["bytes"] / ok["real_time_s"])
        rows.append({
            "benchmark": name, "kind": sized["kind"], "op": sized["op"], "layout": sized["layout"],
            "bytes": sized["bytes"], "world_size": stats.median(group["world_size"]),
            "status": result["status"], "n": result["n"], "algbw": stats.median(algbw),
            "busbw": stats.median(ok["busbw"]),
            "ratio_to_limit": stats.median(ok["ratio_to_limit"]),
            "limit": result["limit"], "limit_algbw": stats.median(ok["limit_algbw"]),
            "error": result["error"], "skipped_reason": result["skipped_reason"]})
    rows.sort(key=lambda row: names.sort_key(row["benchmark"]))
    summary = pd.DataFrame(rows, columns=list(COLUMNS))
    return summary.set_index("benchmark", drop=False)


def is_replication(row):
    """True for replicate/<op>/<S> and their limits (limit/mpi_sendrecv or
    limit/memcpy_exchange, limit/seq_write)."""
    return row["kind"] == "replicate" or (row["kind"] == "limit" and row["op"] in REPLICATION_OPS)


def split(summary):
    """(utilities, replication): the rows of a summary without and with the replication ones."""
    mask = summary.apply(is_replication, axis=1).astype(bool) if len(summary) else \
        pd.Series([], dtype=bool)
    return summary[~mask], summary[mask]


def series_label(row):
    """The name of a benchmark without its size: `dist/gather_state_dict/shard0`."""
    return row["benchmark"].rpartition("/")[0]
