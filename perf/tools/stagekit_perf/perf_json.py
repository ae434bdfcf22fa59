"""Load and validate one stagekit benchmark result file.

A result file is Google Benchmark's JSON (`--benchmark_out_format=json`) whose context
carries the stagekit keys (`stagekit_schema_version`, `implementation`, ...).  `load_run`
returns a `PerfRun` whose `frame` is a pandas DataFrame with one row per iteration run
(aggregates are recomputed by the tools, never read, unless a benchmark has nothing else).
Every problem that makes a file unusable raises `PerfFileError` with a message that names
the file and the problem; smaller problems become `PerfRun.warnings`.
"""
import json
import math
from dataclasses import dataclass, field

import pandas as pd

from stagekit_perf import names

SCHEMA_VERSION = "1"
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
NOT_SUPPORTED_PREFIX = "not_supported:"
COUNTERS = ("bytes_per_second", "items_per_second", "ratio_to_limit", "overhead_ns_per_tensor",
            "limit_bytes_per_second", "tensors", "bytes", "wrong",
            # stagekit-dist-bench (perf/METRICS.md, "Distributed benchmarks")
            "algbw", "busbw", "limit_algbw", "world_size")
COLUMNS = ("benchmark", "kind", "src", "dst", "layout", "mode", "repetition_index", "repetitions",
           "threads", "iterations", "real_time_s", "cpu_time_s") + COUNTERS + (
           "label", "error", "skipped_reason", "from_aggregate", "implementation", "date",
           "git_sha", "source")


class PerfFileError(Exception):
    """A result file that cannot be used; the message names the file and the problem."""


@dataclass
class PerfRun:
    """One loaded result file."""
    path: str
    context: dict
    frame: pd.DataFrame
    warnings: list = field(default_factory=list)

    @property
    def implementation(self):
        return str(self.context.get("implementation", "unknown"))

    @property
    def git_sha(self):
        return str(self.context.get("git_sha", "unknown"))

    @property
    def date(self):
        return str(self.context.get("date", ""))

    def describe(self):
        """One line: implementation, its version, short sha (when known) and date."""
        parts = [self.implementation, str(self.context.get("implementation_version", "")),
                 self.git_sha[:12] if self.git_sha != "unknown" else "", self.date]
        return " ".join(p for p in parts if p)


def read_document(path, error=None):
    """Read JSON from path; `error` (default PerfFileError) when unreadable or not JSON."""
    error = error or PerfFileError
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None
    return doc


def check_document(doc, path):
    """Validate the top level and the context; return warnings, raise PerfFileError."""
    if not isinstance(doc, dict):
        raise PerfFileError(f"{path}: top level is a JSON {type(doc).__name__}, expected an object "
                            "with 'context' and 'benchmarks' (Google Benchmark JSON)")
    context = doc.get("context")
    if not isinstance(context, dict):
        raise PerfFileError(f"{path}: no 'context' object: not Google Benchmark JSON "
                            "(run the harness with --benchmark_out_format=json)")
    if "stagekit_schema_version" not in context:
        raise PerfFileError(f"{path}: context has no 'stagekit_schema_version' (expected "
                            f"\"{SCHEMA_VERSION}\"): not a stagekit result file")
    version = str(context["stagekit_schema_version"])
    if version != SCHEMA_VERSION:
        raise PerfFileError(f"{path}: unsupported stagekit_schema_version \"{version}\"; "
                            f"these tools read version \"{SCHEMA_VERSION}\" (update perf/tools "
                            "or rerun the matching harness)")
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        what = "missing" if benchmarks is None else f"a {type(benchmarks).__name__}, not a list"
        raise PerfFileError(f"{path}: 'benchmarks' is {what}: the benchmark run wrote no results "
                            "(did it crash before finishing?)")
    warnings = []
    if "implementation" not in context:
        warnings.append(f"{path}: context has no 'implementation'; using \"unknown\"")
    if not benchmarks:
        warnings.append(f"{path}: 'benchmarks' is empty")
    return warnings


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
    row["error"] = None
    row["skipped_reason"] = None
    if entry.get("error_occurred"):
        message = str(entry.get("error_message", "")).strip() or "error without a message"
        if message.startswith(NOT_SUPPORTED_PREFIX):
            row["skipped_reason"] = message[len(NOT_SUPPORTED_PREFIX):].strip()
        else:
            row["error"] = message
        row["real_time_s"] = row["cpu_time_s"] = math.nan
    elif row["wrong"] > 0:
        row["error"] = f"wrong result: the verification counted wrong={row['wrong']:g}"
    row["from_aggregate"] = False
    row["implementation"] = str(context.get("implementation", "unknown"))
    row["date"] = str(context.get("date", ""))
    row["git_sha"] = str(context.get("git_sha", "unknown"))
    row["source"] = str(path)
    return row


def runs_frame(doc, path):
    """The DataFrame of iteration runs of a checked document, and warnings."""
    context, warnings = doc["context"], []
    rows, aggregates = [], {}
    for index, entry in enumerate(doc["benchmarks"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            warnings.append(f"{path}: benchmarks[{index}] is not an object with a name; ignored")
            continue
        ident = names.identity(str(entry.get("run_name") or entry["name"]))
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
    doc = read_document(path)
    warnings = check_document(doc, path)
    frame, more = runs_frame(doc, path)
    return PerfRun(path=str(path), context=dict(doc["context"]), frame=frame,
                   warnings=warnings + more)
