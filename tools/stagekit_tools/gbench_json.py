"""Write Google Benchmark (v1.7.1) JSON with the stagekit context keys.

Used by the test-fixture generator; needs only the standard library.
Entry layout and aggregate rules follow Google Benchmark's JSONReporter: iteration entries
carry repetition_index, aggregates (mean, median, stddev, cv; only with >= 2 repetitions)
carry aggregate_name and aggregate_unit, errored entries carry error_occurred/error_message.
"""
import json
import math
import statistics

STAGEKIT_SCHEMA_VERSION = "1"


def context(date, host_name, executable, num_cpus, stagekit_keys):
    """The context object: Google Benchmark's keys plus stagekit_keys (values become strings)."""
    ctx = {"date": date, "host_name": host_name, "executable": executable, "num_cpus": num_cpus,
           "mhz_per_cpu": 0, "cpu_scaling_enabled": False, "caches": [], "load_avg": [],
           "library_build_type": "release", "stagekit_schema_version": STAGEKIT_SCHEMA_VERSION}
    ctx.update({key: str(value) for key, value in stagekit_keys.items()})
    return ctx


def _head(run_name, family_index, repetitions, run_type, name=None):
    return {"name": name or run_name, "family_index": family_index,
            "per_family_instance_index": 0, "run_name": run_name, "run_type": run_type,
            "repetitions": repetitions}


def iteration(run_name, family_index, repetitions, repetition_index, iterations, real_time,
              cpu_time, time_unit, counters, label=""):
    """One iteration entry; counters is a dict of numbers, written in sorted order."""
    entry = _head(run_name, family_index, repetitions, "iteration")
    entry.update(repetition_index=repetition_index, threads=1, iterations=iterations,
                 real_time=real_time, cpu_time=cpu_time, time_unit=time_unit)
    entry.update({key: counters[key] for key in sorted(counters)})
    if label:
        entry["label"] = label
    return entry


def error(run_name, family_index, repetitions, message, repetition_index=0, time_unit="ms"):
    """An errored entry; a message starting with "not_supported:" marks a skipped benchmark."""
    entry = _head(run_name, family_index, repetitions, "iteration")
    entry.update(repetition_index=repetition_index, threads=1, error_occurred=True,
                 error_message=message, iterations=0, real_time=0.0, cpu_time=0.0,
                 time_unit=time_unit)
    return entry


def _stat(name, values):
    if name == "mean":
        return statistics.fmean(values)
    if name == "median":
        return statistics.median(values)
    spread = statistics.stdev(values)
    if name == "stddev":
        return spread
    mean = statistics.fmean(values)
    return spread / mean if mean else 0.0


def aggregates(entries):
    """mean, median, stddev and cv entries of a benchmark's iteration entries (none if < 2)."""
    if len(entries) < 2:
        return []
    first, out = entries[0], []
    numeric = [k for k, v in first.items() if k not in (
        "family_index", "per_family_instance_index", "repetitions", "repetition_index",
        "threads", "iterations") and isinstance(v, (int, float)) and not isinstance(v, bool)]
    for name in ("mean", "median", "stddev", "cv"):
        entry = _head(first["run_name"], first["family_index"], first["repetitions"], "aggregate",
                      name=f"{first['run_name']}_{name}")
        entry.update(threads=1, aggregate_name=name,
                     aggregate_unit="percentage" if name == "cv" else "time",
                     iterations=len(entries))
        for key, value in first.items():
            if key in numeric:
                entry[key] = round_sig(_stat(name, [e[key] for e in entries]))
            elif key == "time_unit":
                entry[key] = value
        if first.get("label"):
            entry["label"] = first["label"]
        out.append(entry)
    return out


def round_sig(value, digits=9):
    """Round to `digits` significant digits so files stay short and stable."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def document(ctx, benchmarks):
    return {"context": ctx, "benchmarks": benchmarks}


def dumps(doc):
    """JSON text with the context indented and one benchmark entry per line."""
    head = {key: value for key, value in doc.items() if key != "benchmarks"}
    text = json.dumps(head, indent=2)
    if "benchmarks" not in doc:
        return text + "\n"
    lines = ",\n".join("    " + json.dumps(entry) for entry in doc["benchmarks"])
    body = "[\n" + lines + "\n  ]" if lines else "[]"
    return text[:-2] + ',\n  "benchmarks": ' + body + "\n}\n"


def write(path, doc):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(dumps(doc))
