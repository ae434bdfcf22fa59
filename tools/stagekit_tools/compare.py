"""Compare two stagekit benchmark result files: SAME / FASTER / SLOWER per benchmark.

B is judged relative to A on real_time (lower is better).  With at least --min-repetitions
(9) measured repetitions on both sides, a change counts when the two-sided Mann-Whitney U
test gives p < --alpha (0.05) AND the median changed by at least --min-effect (2%).  With
fewer repetitions the median change must exceed max(--threshold (5%), the coefficient of
variation of either side), and the verdict is marked low confidence.

Exit status: 0 normally; 1 with --fail-on-slower when a benchmark is SLOWER or errors in B;
2 when a file cannot be used (the message says which and why).
"""
import argparse
import math
import sys

from scipy.stats import mannwhitneyu

from stagekit_tools import cli, names, stats
from stagekit_tools.bench_file import PerfFileError
from stagekit_tools.jsonfile import write_json
from stagekit_tools.perf_frame import load_run

SAME, FASTER, SLOWER = "SAME", "FASTER", "SLOWER"
SKIPPED, ERROR = "SKIPPED", "ERROR"


def judge(a_times, b_times, alpha=0.05, min_effect=0.02, threshold=0.05, min_reps=9):
    """(verdict, change, p_value or None, confidence) of B's times against A's."""
    a_median, b_median = float(a_times.median()), float(b_times.median())
    if not (a_median > 0 and b_median > 0):
        return SAME, math.nan, None, "low"        # a zero time says nothing about speed
    change = b_median / a_median - 1.0
    verdict = SLOWER if change > 0 else FASTER
    if len(a_times) >= min_reps and len(b_times) >= min_reps:
        p_value = float(mannwhitneyu(a_times, b_times, alternative="two-sided").pvalue)
        significant = p_value < alpha and abs(change) >= min_effect
        return (verdict if significant else SAME), change, p_value, "high"
    noise = max(threshold, stats.cv(a_times), stats.cv(b_times))
    return (verdict if abs(change) > noise else SAME), change, None, "low"


def compare_runs(a, b, alpha=0.05, min_effect=0.02, threshold=0.05, min_reps=9):
    """The comparison as a dict: settings, rows (one per benchmark in either file), geomean."""
    sa, sb = stats.summarize(a.frame), stats.summarize(b.frame)
    rows, ratios = [], []
    for name in sorted(set(sa.index) | set(sb.index), key=names.sort_key):
        row = {"benchmark": name, "a_median_s": None, "b_median_s": None, "change": None,
               "p_value": None, "n_a": 0, "n_b": 0, "verdict": None, "confidence": None,
               "reason": "", "error_in": None}
        if name not in sb.index or name not in sa.index:
            row["verdict"] = "MISSING (only in %s)" % ("A" if name in sa.index else "B")
            rows.append(row)
            continue
        ra, rb = sa.loc[name], sb.loc[name]
        row.update(n_a=int(ra["n"]), n_b=int(rb["n"]))
        if "error" in (ra["status"], rb["status"]):
            side = "A" if ra["status"] == "error" else "B"
            if ra["status"] == rb["status"]:
                side = "A and B"
            bad = ra if ra["status"] == "error" else rb
            row.update(verdict=ERROR, reason=f"{side}: {bad['error']}", error_in=side)
        elif "skipped" in (ra["status"], rb["status"]):
            reasons = {side: r["skipped_reason"] for side, r in (("A", ra), ("B", rb))
                       if r["status"] == "skipped"}
            if len(set(reasons.values())) == 1:
                reason = " and ".join(reasons) + ": " + next(iter(reasons.values()))
            else:
                reason = "; ".join(f"{side}: {why}" for side, why in reasons.items())
            row.update(verdict=SKIPPED, reason=reason)
        else:
            ta, tb = _times(a, name), _times(b, name)
            verdict, change, p_value, confidence = judge(ta, tb, alpha, min_effect, threshold,
                                                         min_reps)
            row.update(a_median_s=float(ta.median()), b_median_s=float(tb.median()),
                       change=change, p_value=p_value, verdict=verdict, confidence=confidence)
            sizes = (ra["bytes"], rb["bytes"])
            if sizes[0] != sizes[1] and not any(math.isnan(x) for x in sizes):
                row["reason"] = (f"not the same work: A stages {ra['bytes']:.0f} bytes, "
                                 f"B {rb['bytes']:.0f}")
            ratios.append(1.0 + change)    # geomean skips the nan of zero times
        rows.append(row)
    geo = stats.geomean(ratios)
    return {"a": _side(a), "b": _side(b),
            "settings": {"alpha": alpha, "min_effect": min_effect, "threshold": threshold,
                         "min_repetitions": min_reps},
            "rows": rows,
            "geomean": {"ratio": None if math.isnan(geo) else geo, "benchmarks": len(ratios)},
            "counts": _counts(rows)}


def _times(run, name):
    return stats.measured(run.frame[run.frame["benchmark"] == name])["real_time_s"]


def _side(run):
    return {"path": run.path, "implementation": run.implementation, "git_sha": run.git_sha,
            "date": run.date, "mode": run.context.get("mode"), "warnings": run.warnings}


def _counts(rows):
    counts = {}
    for row in rows:
        key = row["verdict"].split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def fmt_time(seconds):
    """A time with a unit that keeps 3-4 significant digits."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def render(result):
    """The comparison as text: '#' header lines, the table, the geomean row, notes."""
    s, width = result["settings"], 46
    lines = ["# stagekit compare: B relative to A on real_time (lower is better)",
             f"# A: {result['a']['path']} ({result['a']['implementation']} "
             f"{result['a']['git_sha'][:12]} {result['a']['date']})",
             f"# B: {result['b']['path']} ({result['b']['implementation']} "
             f"{result['b']['git_sha'][:12]} {result['b']['date']})",
             f"# rule: >= {s['min_repetitions']} repetitions on both sides: Mann-Whitney U "
             f"(two-sided) p < {s['alpha']:g} and |median change| >= {s['min_effect']:.1%}; "
             f"fewer: |median change| > max({s['threshold']:.1%}, CV), low confidence"]
    for side in ("a", "b"):
        lines += [f"# warning: {w}" for w in result[side]["warnings"]]
    if result["a"]["mode"] != result["b"]["mode"]:
        lines.append(f"# warning: A ran in mode {result['a']['mode']}, B in mode "
                     f"{result['b']['mode']}: sizes or run times differ")
    errors = [r for r in result["rows"] if r["verdict"] == ERROR]
    lines += [f"# ERROR {r['benchmark']}: {r['reason']}" for r in errors]
    lines.append(f"# {'benchmark':<{width - 2}} {'A median':>11} {'B median':>11} {'change':>8} "
                 f"{'p-value':>8} {'reps':>5}  verdict")
    for r in result["rows"]:
        change = "-" if r["change"] is None or math.isnan(r["change"]) else f"{r['change']:+.2%}"
        p_value = "-" if r["p_value"] is None else f"{r['p_value']:.2g}"
        reps = f"{r['n_a']}/{r['n_b']}" if r["n_a"] or r["n_b"] else "-"
        verdict = r["verdict"] + (" (low confidence)" if r["confidence"] == "low" else "")
        lines.append(f"{r['benchmark']:<{width}} {fmt_time(r['a_median_s']):>11} "
                     f"{fmt_time(r['b_median_s']):>11} {change:>8} {p_value:>8} {reps:>5}  "
                     f"{verdict}")
    geo = result["geomean"]
    geo_change = "-" if geo["ratio"] is None else f"{geo['ratio'] - 1:+.2%}"
    lines.append(f"{'geomean (%d benchmarks)' % geo['benchmarks']:<{width}} {'':>11} {'':>11} "
                 f"{geo_change:>8}")
    lines += [f"# note {r['benchmark']}: {r['reason']}" for r in result["rows"]
              if r["reason"] and r["verdict"] not in (SKIPPED, ERROR)]
    skipped = {}
    for row in result["rows"]:
        if row["verdict"] == SKIPPED:
            skipped[row["reason"]] = skipped.get(row["reason"], 0) + 1
    lines += [f"# skipped: {n} benchmark(s): {reason}" for reason, n in skipped.items()]
    lines.append("# summary: " + ", ".join(f"{n} {k}" for k, n in sorted(result["counts"].items())))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("compare"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", metavar="A.json", help="the reference result file")
    parser.add_argument("b", metavar="B.json", help="the result file judged against A")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the Mann-Whitney U test (default 0.05)")
    parser.add_argument("--min-effect", type=float, default=0.02,
                        help="minimum |median change| that counts, as a fraction (default 0.02)")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="noise threshold with fewer repetitions, fraction (default 0.05)")
    parser.add_argument("--min-repetitions", type=int, default=9,
                        help="repetitions per side needed for the U test (default 9)")
    parser.add_argument("--json", metavar="OUT", help="also write the comparison as JSON to OUT")
    parser.add_argument("--fail-on-slower", action="store_true",
                        help="exit 1 when a benchmark is SLOWER or errors in B")
    args = parser.parse_args(argv)
    try:
        a, b = load_run(args.a), load_run(args.b)
    except PerfFileError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    result = compare_runs(a, b, args.alpha, args.min_effect, args.threshold, args.min_repetitions)
    print(render(result))
    if args.json:
        write_json(args.json, result)
    errors = [r for r in result["rows"] if r["verdict"] == ERROR]
    for row in errors:
        print(f"compare: ERROR {row['benchmark']}: {row['reason']}", file=sys.stderr)
    failing = result["counts"].get(SLOWER, 0) or any("B" in r["error_in"] for r in errors)
    return 1 if args.fail_on_slower and failing else 0


if __name__ == "__main__":
    sys.exit(main())
