"""Find lasting performance steps in a nightly history of stagekit result files.

HISTORY_DIR holds one result file per night; nights are ordered by context.date, then file
name.  For each benchmark the series is the per-night median real_time (errored and skipped
runs left out).  A lasting regression is a change point after which at least --min-size
consecutive nights, up to and including the newest, are all slower than the median of the
nights before it by more than --threshold; the "before" window has --min-size nights or more.
A single bad night followed by normal nights is not a step.  Lasting speedups are reported
for information.

Exit status: 1 when a lasting regression is found, 0 otherwise, 2 on bad input (missing or
empty directory, unreadable or invalid files: each is named).
"""
import argparse
import statistics
import sys

from stagekit_tools import cli, names, stats
from stagekit_tools.history import load_history
from stagekit_tools.jsonfile import write_json


def find_step(values, min_size=3, threshold=0.10, direction=1):
    """Earliest change point c such that every values[c:] is beyond the median of values[:c].

    direction 1 looks for slower (larger) values, -1 for faster ones.  Needs len(values[:c])
    and len(values[c:]) >= min_size; returns None when there is no lasting step.
    """
    for c in range(min_size, len(values) - min_size + 1):
        base = statistics.median(values[:c])
        if direction > 0 and all(v > base * (1 + threshold) for v in values[c:]):
            return c
        if direction < 0 and all(v < base * (1 - threshold) for v in values[c:]):
            return c
    return None


def night_series(runs):
    """{benchmark: [(night index, median real_time_s)]} over the measured nights."""
    series = {}
    for index, run in enumerate(runs):
        summary = stats.summarize(run.frame)
        for name, row in summary.iterrows():
            if row["status"] == "ok":
                series.setdefault(name, []).append((index, row["real_time_median_s"]))
    return series


def detect(runs, min_size=3, threshold=0.10):
    """{regressions, speedups, not_newest, too_short, newest_errors} over the history."""
    newest = len(runs) - 1
    found = {"regressions": [], "speedups": [], "not_newest": [], "too_short": []}
    for name, points in sorted(night_series(runs).items(), key=lambda kv: names.sort_key(kv[0])):
        if points[-1][0] != newest:
            found["not_newest"].append(name)
            continue
        if len(points) < 2 * min_size:
            found["too_short"].append(name)
            continue
        values = [v for _, v in points]
        for key, direction in (("regressions", 1), ("speedups", -1)):
            c = find_step(values, min_size, threshold, direction)
            if c is None:
                continue
            before, after = statistics.median(values[:c]), statistics.median(values[c:])
            night = runs[points[c][0]]
            found[key].append({"benchmark": name, "first_night": night.date,
                               "git_sha": night.git_sha, "file": night.path,
                               "before_median_s": before, "after_median_s": after,
                               "change": after / before - 1, "nights": len(values) - c})
    last = stats.summarize(runs[newest].frame)
    found["newest_errors"] = [f"{n}: {e}" for n, e in last["error"].items() if e]
    return found


def render(found, runs, directory, min_size, threshold):
    lines = [f"# stagekit detect: {len(runs)} night(s) in {directory}, {runs[0].date} .. "
             f"{runs[-1].date} (newest {runs[-1].git_sha[:12]})",
             f"# rule: a lasting step = >= {min_size} consecutive nights up to the newest, each "
             f"beyond the median of the >= {min_size} nights before by > {threshold:.1%}"]
    lines += [f"# ERROR on the newest night: {e}" for e in found["newest_errors"]]
    for key, title in (("regressions", "lasting regressions"),
                       ("speedups", "lasting speedups (informational)")):
        lines.append(f"# {title}: {len(found[key])}")
        if found[key]:
            lines.append(f"# {'benchmark':<44} {'first night of step':<26} {'sha':<12} "
                         f"{'before':>10} {'after':>10} {'change':>8} nights")
        for r in found[key]:
            lines.append(f"{r['benchmark']:<46} {r['first_night']:<26} {r['git_sha'][:12]:<12} "
                         f"{r['before_median_s'] * 1e3:>7.3f} ms {r['after_median_s'] * 1e3:>7.3f}"
                         f" ms {r['change']:>+8.2%} {r['nights']:>6}")
    if found["too_short"]:
        lines.append(f"# not evaluated, fewer than {2 * min_size} measured nights: "
                     + ", ".join(found["too_short"]))
    if found["not_newest"]:
        lines.append("# not evaluated, not measured on the newest night: "
                     + ", ".join(found["not_newest"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("detect"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("history_dir", metavar="HISTORY_DIR",
                        help="directory with one result JSON per night")
    parser.add_argument("--min-size", type=int, default=3,
                        help="nights needed before and after a change point (default 3)")
    parser.add_argument("--threshold", type=float, default=0.10,
                        help="relative change every night after the step exceeds (default 0.10)")
    parser.add_argument("--json", metavar="OUT", help="also write the findings as JSON to OUT")
    args = parser.parse_args(argv)
    if args.min_size < 1 or args.threshold <= 0:
        parser.error("--min-size must be >= 1 and --threshold > 0")
    runs, problems = load_history(args.history_dir)
    for problem in problems:
        print(f"detect: {problem}", file=sys.stderr)
    if problems or not runs:
        print(f"detect: bad input in {args.history_dir}: {len(problems)} problem(s); "
              "nothing evaluated", file=sys.stderr)
        return 2
    found = detect(runs, args.min_size, args.threshold)
    print(render(found, runs, args.history_dir, args.min_size, args.threshold))
    if args.json:
        write_json(args.json, found)
    return 1 if found["regressions"] else 0


if __name__ == "__main__":
    sys.exit(main())
