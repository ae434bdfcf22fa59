"""Summaries of stagekit-dist-bench results (names `dist/<op>[/<layout>]/<bytes>`,
`replicate/<op>/<bytes>` and `limit/<what>/<bytes>`, see perf/METRICS.md "Distributed benchmarks"
and "Replication benchmarks").

One row per benchmark: kind, op, layout, bytes (S, from the name), world size, the medians over
repetitions of algbw, busbw and ratio_to_limit (bytes/s and a plain ratio), the limit it was
divided by with that limit's median algbw (a replicate/stage benchmark names two limits joined by
"+", its limit_algbw being their serial combination), and the status (the rules of
stats.summarize_one: "ok", "skipped" for only not_supported entries, "error" when any repetition
failed).
"""
import math

import pandas as pd

from stagekit_perf import names, stats

# The replication benchmarks and their limits (perf/bench/replication_bench.cpp); the rest of a
# dist file are the distributed state-dict utilities and theirs.
REPLICATION_OPS = ("p2p", "seq_write", "exchange", "persist", "stage")
COLUMNS = ("benchmark", "kind", "op", "layout", "bytes", "world_size", "status", "n", "algbw",
           "busbw", "ratio_to_limit", "limit", "limit_algbw", "error", "skipped_reason")


def world(run):
    """"mpi, 4 ranks" from a dist run's context (or "unknown world")."""
    backend = run.context.get("world_backend")
    size = run.context.get("world_size")
    if not backend:
        return "unknown world"
    return f"{backend}, {size} rank{'' if str(size) == '1' else 's'}"


def _first(series):
    values = series.dropna()
    values = values[values.astype(str) != ""]
    return values.iloc[0] if len(values) else None


def _median(series):
    values = series.dropna()
    return float(values.median()) if len(values) else math.nan


def summarize(frame):
    """The dist summary DataFrame of a runs frame (rows whose names are not sized are left out)."""
    rows = []
    for name, group in frame.groupby("benchmark", sort=False):
        sized = names.parse_sized(name)
        if sized is None:
            continue
        ok = stats.measured(group)
        algbw = ok["algbw"].fillna(ok["bytes"] / ok["real_time_s"])
        error, skipped = _first(group["error"]), _first(group["skipped_reason"])
        status = "error" if error else ("ok" if len(ok) else ("skipped" if skipped else "error"))
        label = _first(group["label"]) or ""
        rows.append({
            "benchmark": name, "kind": sized["kind"], "op": sized["op"], "layout": sized["layout"],
            "bytes": sized["bytes"], "world_size": _median(group["world_size"]),
            "status": status, "n": len(ok), "algbw": _median(algbw),
            "busbw": _median(ok["busbw"]), "ratio_to_limit": _median(ok["ratio_to_limit"]),
            "limit": label[len("limit="):] if label.startswith("limit=") else label,
            "limit_algbw": _median(ok["limit_algbw"]),
            "error": error or ("no measured repetition" if status == "error" else None),
            "skipped_reason": skipped if status == "skipped" else None})
    rows.sort(key=lambda row: names.sort_key(row["benchmark"]))
    summary = pd.DataFrame(rows, columns=list(COLUMNS))
    return summary.set_index("benchmark", drop=False)


def is_replication(row):
    """True for replicate/<op>/<S> and their limits (limit/p2p, limit/seq_write)."""
    return row["kind"] == "replicate" or (row["kind"] == "limit" and row["op"] in REPLICATION_OPS)


def split(summary):
    """(utilities, replication): the rows of a summary without and with the replication ones."""
    mask = summary.apply(is_replication, axis=1).astype(bool) if len(summary) else \
        pd.Series([], dtype=bool)
    return summary[~mask], summary[mask]


def series_label(row):
    """The name of a benchmark without its size: `dist/gather_state_dict/shard0`."""
    return row["benchmark"].rpartition("/")[0]


def size_text(nbytes):
    """1048576 -> "1 MiB", 65536 -> "64 KiB", other sizes in bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"
