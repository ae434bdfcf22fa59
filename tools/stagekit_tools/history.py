"""Load a directory of nightly result files, one file per night, in night order.

Nights are sorted by context.date, then by file name.  Every file that cannot be used is
reported by name; the caller decides what to do with the problems.  Needs pandas.
"""
import os

import pandas as pd

from stagekit_tools.bench_file import PerfFileError
from stagekit_tools.perf_frame import load_run


def load_history(directory):
    """(runs in night order, problems): problems is a list of one-line messages."""
    if not os.path.isdir(directory):
        return [], [f"{directory}: not a directory"]
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        return [], [f"{directory}: no *.json result files"]
    runs, problems = [], []
    for name in files:
        path = os.path.join(directory, name)
        try:
            run = load_run(path)
        except PerfFileError as exc:
            problems.append(str(exc))
            continue
        stamp = pd.to_datetime(run.date, utc=True, errors="coerce")
        if pd.isna(stamp):
            problems.append(f"{path}: context.date {run.date!r} is not an ISO 8601 date")
            continue
        run.night = stamp
        runs.append(run)
    runs.sort(key=lambda run: (run.night, os.path.basename(run.path)))
    return runs, problems
