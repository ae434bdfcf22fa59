"""A stagekit benchmark result file as a pandas table: one row per iteration run.

`load_run` reads and validates the file with `bench_file.load` and returns a `PerfRun` (a
`BenchFile` with a `frame`).  Aggregates are recomputed by the tools, never read, unless a
benchmark has nothing else.  Needs pandas.
"""
import math
from dataclasses import dataclass

import pandas as pd

from stagekit_tools import bench_file, names
from stagekit_tools.bench_file import BenchFile

TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
COUNTERS = ("bytes_per_second", "items_per_second", "ratio_to_limit", "overhead_ns_per_tensor",
            "limit_bytes_per_second", "tensors", "bytes", "wrong",
            # an implementation reached through another framework (the torch route): outside the
            # clock, the conversion of the state dict there and back, per tensor
            "conversion_ns_per_tensor",
            # stagekit-dist-bench (perf/METRICS.md, "Distributed benchmarks")
            "algbw", "busbw", "limit_algbw", "world_size")
COLUMNS = ("benchmark", "kind", "src", "dst", "layout", "mode", "repetition_index", "repetitions",
           "threads", "iterations", "real_time_s", "cpu_time_s") + COUNTERS + (
           "label", "error", "skipped_reason", "from_aggregate", "implementation", "date",
           "git_sha", "source")


@dataclass
class PerfRun(BenchFile):
    """One loaded result file with its runs table (`frame`)."""
    frame: pd.DataFrame = None


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _integer(value, default):
    number = _number(value)
    return default if math.isnan(number) else int(number)


def _row(entry, ident, context, path):
    """One frame row from one Google Benchmark entry (iteration or aggregate)."""
    row = {"benchmark": ident, **names.parse(ident)}
    row["repetition_index"] = _integer(entry.get("repetition_index"), 0)
    row["repetitions"] = _integer(entry.get("repetitions"), 1)
    row["threads"] = _integer(entry.get("threads"), 1)
    row["iterations"] = _number(entry.get("iterations"))
    scale = TIME_UNITS.get(entry.get("time_unit", "ns"), math.nan)
    row["real_time_s"] = _number(entry.get("real_time")) * scale
    row["cpu_time_s"] = _number(entry.get("cpu_time")) * scale
    for counter in COUNTERS:
        row[counter] = _number(entry.get(counter))
    row["label"] = entry.get("label") or ""
    status, message = bench_file.entry_outcome(entry)
    row["error"] = message if status == bench_file.ERROR else None
    row["skipped_reason"] = message if status == bench_file.SKIPPED else None
    if entry.get("error_occurred"):
        row["real_time_s"] = row["cpu_time_s"] = math.nan
    row["from_aggregate"] = False
    row["implementation"] = str(context.get("implementation", bench_file.UNKNOWN))
    row["date"] = str(context.get("date", ""))
    row["git_sha"] = str(context.get("git_sha", bench_file.UNKNOWN))
    row["source"] = str(path)
    return row


def runs_frame(bench):
    """The DataFrame of iteration runs of a BenchFile, and warnings."""
    context, path, warnings = bench.context, bench.path, []
    rows, aggregates = [], {}
    for index, entry in enumerate(bench.benchmarks):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            warnings.append(f"{path}: benchmarks[{index}] is not an object with a name; ignored")
            continue
        ident = bench_file.entry_identity(entry)
        unit = entry.get("time_unit", "ns")
        if unit not in TIME_UNITS and not entry.get("error_occurred"):
            warnings.append(f"{path}: {entry['name']}: unknown time_unit {unit!r}; ignored")
            continue
        if entry.get("run_type", "iteration") == "aggregate":
            aggregates.setdefault(ident, {})[entry.get("aggregate_name")] = entry
            continue
        if "real_time" not in entry and not entry.get("error_occurred"):
            warnings.append(f"{path}: {entry['name']}: no real_time; ignored")
            continue
        rows.append(_row(entry, ident, context, path))
    seen = {row["benchmark"] for row in rows}
    for ident, by_name in aggregates.items():
        chosen = by_name.get("median") or by_name.get("mean")
        if ident in seen or chosen is None:
            continue
        warnings.append(f"{path}: {ident}: only aggregates in the file; using its "
                        f"{chosen.get('aggregate_name')} as a single run")
        row = _row(chosen, ident, context, path)
        row.update(repetition_index=0, repetitions=1, from_aggregate=True)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS)), warnings


def load_run(path):
    """Load, validate and tabulate one result file; PerfFileError when unusable."""
    bench = bench_file.load(path)
    frame, more = runs_frame(bench)
    return PerfRun(path=bench.path, context=bench.context, benchmarks=bench.benchmarks,
                   warnings=bench.warnings + more, frame=frame)
