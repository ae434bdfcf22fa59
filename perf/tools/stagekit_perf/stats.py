"""Per-benchmark summaries of a runs frame: median, coefficient of variation, status.

status is "ok" (at least one measured repetition, no error), "skipped" (only
`not_supported` entries) or "error" (any repetition with an error; errors win).
"""
import math

import numpy as np
import pandas as pd

from stagekit_perf import names

SUMMARY_COLUMNS = ("benchmark", "kind", "src", "dst", "layout", "mode", "status", "n",
                   "real_time_median_s", "real_time_cv", "bytes_per_second_median",
                   "ratio_to_limit_median", "overhead_ns_per_tensor_median", "tensors", "bytes",
                   "label", "limit", "error", "skipped_reason")


def cv(values):
    """Sample standard deviation over mean; 0 for fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or values.mean() == 0:
        return 0.0
    return float(values.std(ddof=1) / values.mean())


def geomean(ratios):
    """Geometric mean of positive ratios; nan when there are none."""
    ratios = [r for r in ratios if r > 0 and math.isfinite(r)]
    if not ratios:
        return math.nan
    return float(math.exp(sum(math.log(r) for r in ratios) / len(ratios)))


def measured(group):
    """The repetitions of one benchmark that carry a valid time."""
    return group[group["error"].isna() & group["skipped_reason"].isna()
                 & group["real_time_s"].notna()]


def _first(series):
    values = series.dropna()
    values = values[values.astype(str) != ""]
    return values.iloc[0] if len(values) else None


def summarize_one(name, group):
    """The summary dict of one benchmark's rows."""
    ok = measured(group)
    error, skipped = _first(group["error"]), _first(group["skipped_reason"])
    status = "error" if error else ("ok" if len(ok) else ("skipped" if skipped else "error"))
    if status == "error" and not error:
        error = "no measured repetition"
    label = _first(group["label"]) or ""
    first = group.iloc[0]
    return {
        "benchmark": name, "kind": first["kind"], "src": first["src"], "dst": first["dst"],
        "layout": first["layout"], "mode": first["mode"], "status": status, "n": len(ok),
        "real_time_median_s": ok["real_time_s"].median(),
        "real_time_cv": cv(ok["real_time_s"]),
        "bytes_per_second_median": ok["bytes_per_second"].median(),
        "ratio_to_limit_median": ok["ratio_to_limit"].median(),
        "overhead_ns_per_tensor_median": ok["overhead_ns_per_tensor"].median(),
        "tensors": ok["tensors"].median(), "bytes": ok["bytes"].median(),
        "label": label, "limit": label[len("limit="):] if label.startswith("limit=") else label,
        "error": error, "skipped_reason": skipped if status == "skipped" else None,
    }


def summarize(frame):
    """One row per benchmark, in harness order, indexed by benchmark name."""
    rows = [summarize_one(name, group) for name, group in frame.groupby("benchmark", sort=False)]
    rows.sort(key=lambda row: names.sort_key(row["benchmark"]))
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return summary.set_index("benchmark", drop=False)
