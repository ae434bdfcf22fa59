"""Fail when a stagekit benchmark result file holds a failed benchmark.

    python3 -m stagekit_tools.check_perf RESULT.json [MORE.json ...]

A benchmark failed when an entry has an error other than `not_supported:` (a benchmark that cannot
run here is not a failure) or a `wrong` counter above zero (bench_file.entry_outcome).  Prints one
line per failed benchmark on stderr, `perf error: <benchmark>: <message>`.  Exit status: 0 when
none failed, 1 when one did, 2 when a file is unusable (the message names it).  Used by
ci/report.sh.  Standard library only.
"""
import argparse
import sys

from stagekit_tools import bench_file, cli

PROG = "check_perf"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog(PROG), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", metavar="RESULT.json",
                        help="stagekit-bench or stagekit-dist-bench JSON")
    args = parser.parse_args(argv)
    failed, unusable = 0, False
    for path in args.results:
        try:
            bench = bench_file.load(path)
        except bench_file.PerfFileError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            unusable = True
            continue
        for name, message in bench_file.errors(bench):
            print(f"perf error: {name}: {message}", file=sys.stderr)
            failed += 1
    if unusable:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
