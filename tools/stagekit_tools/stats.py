"""Per-benchmark summaries of a runs frame: median, coefficient of variation, status.

`outcome` is the one status rule of a benchmark's repetitions, used by these summaries and by
`dist.summarize`: "ok" (at least one measured repetition, no error), "skipped" (only
`not_supported` entries) or "error" (any repetition with an error; errors win).  Needs pandas.
"""
import math

import numpy as np
import pandas as pd

from stagekit_tools import names

SUMMARY_COLUMNS = ("benchmark", "kind", "src", "dst", "layout", "mode", "status", "n",
                   "real_time_median_s", "real_time_cv", "bytes_per_second_median",
                   "ratio_to_limit_median", "overhead_ns_per_tensor_median",
                   "conversion_ns_per_tensor_median", "tensors", "bytes",
                   "label", "limit", "error", "skipped_reason")
LIMIT_LABEL = "limit="


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


def median(series):
    """The median of a series' values, nan when it has none (without numpy's warning)."""
    values = series.dropna()
    return float(values.median()) if len(values) else math.nan


def first(series):
    """The first non-empty value of a series, or None."""
    values = series.dropna()
    values = values[values.astype(str) != ""]
    return values.iloc[0] if len(values) else None


def limit_of(label):
    """The limit a benchmark is divided by, from its label `limit=<name>` (else the label)."""
    return label[len(LIMIT_LABEL):] if label.startswith(LIMIT_LABEL) else label


def outcome(group):
    """{ok (the measured rows), n, status, error, skipped_reason, label, limit} of the rows of
    one benchmark."""
    ok = measured(group)
    error, skipped = first(group["error"]), first(group["skipped_reason"])
    status = "error" if error else ("ok" if len(ok) else ("skipped" if skipped else "error"))
    if status == "error" and not error:
        error = "no measured repetition"
    label = first(group["label"]) or ""
    return {"ok": ok, "n": len(ok), "status": status, "error": error,
            "skipped_reason": skipped if status == "skipped" else None, "label": label,
            "limit": limit_of(label)}


def summarize_one(name, group):
    """The summary dict of one benchmark's rows."""
    result = outcome(group)
    ok, first_row = result.pop("ok"), group.iloc[0]
    return {
        "benchmark": name, "kind": first_row["kind"], "src": first_row["src"],
        "dst": first_row["dst"], "layout": first_row["layout"], "mode": first_row["mode"],
        "real_time_median_s": median(ok["real_time_s"]),
        "real_time_cv": cv(ok["real_time_s"]),
        "bytes_per_second_median": median(ok["bytes_per_second"]),
        "ratio_to_limit_median": median(ok["ratio_to_limit"]),
        "overhead_ns_per_tensor_median": median(ok["overhead_ns_per_tensor"]),
        "conversion_ns_per_tensor_median": median(ok["conversion_ns_per_tensor"]),
        "tensors": median(ok["tensors"]), "bytes": median(ok["bytes"]), **result,
    }


def summarize(frame):
    """One row per benchmark, in harness order, indexed by benchmark name."""
    rows = [summarize_one(name, group) for name, group in frame.groupby("benchmark", sort=False)]
    rows.sort(key=lambda row: names.sort_key(row["benchmark"]))
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return summary.set_index("benchmark", drop=False)


def status_counts(summary):
    """{ok, skipped, error: n} of a summary."""
    return {s: int((summary["status"] == s).sum()) for s in ("ok", "skipped", "error")}
