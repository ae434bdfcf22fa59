"""Write the stagekit report (index.html and README.md) into --out.

The page leads with a headline per implementation (conformance pass rate per area, how the
outcomes compare with the expectations, the target verdicts, the key ratios), says where the
machine bounds a number and why some cases and benchmarks did not run (each reason once, as a
numbered note), then shows the charts drawn by `python3 -m stagekit_tools.plot` (linked relative
to --out), then the tables: conformance failures, targets, stage benchmarks per file, the
distributed and replication benchmarks (--dist), the environment.  A second distributed run at
another world size (--dist-also; ci/perf-report.sh: mpirun -np 4 next to the -np 2 of --dist) adds
a column to the targets table, named after its world size ("np 4"), with its value of each
distributed target; the verdicts stay those of --dist.  Inputs that are absent or unusable are
stated in the report, never fatal.  The HTML is self-contained apart from the chart
images.  Exit status 0; 2 only when --out cannot be written.
"""
import argparse
import os
import sys

from stagekit_tools import cli
from stagekit_tools.jsonfile import write_text
from stagekit_tools.render import render_html, render_markdown
from stagekit_tools.report import build, inputs

PROG = "report"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=cli.prog(PROG), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--perf", metavar="RESULT.json", help="the stagekit benchmark results")
    parser.add_argument("--peer", action="append", metavar="PEER.json",
                        help="another implementation's stage benchmarks (stagekit-bench --impl "
                             "SPEC); repeatable, one per implementation, shown side by side")
    parser.add_argument("--dist", metavar="DIST.json",
                        help="stagekit-dist-bench results (gather, distribute, broadcast and "
                             "replication benchmarks)")
    parser.add_argument("--dist-also", metavar="DIST.json",
                        help="a second stagekit-dist-bench run at another world size: its "
                             "ratio_to_limit of each distributed target is shown next to the "
                             "--dist verdict, in a column named after its world size (np N), "
                             "not judged")
    parser.add_argument("--conformance", action="append", metavar="[LABEL=]RESULTS.json",
                        help="a conformance results.json (stagekit-conform --out); repeatable, one "
                             "per implementation; LABEL names its headline row (default: "
                             "implementation.name)")
    parser.add_argument("--charts", metavar="DIR", help="directory with the charts of plot")
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write the report")
    parser.add_argument("--link", action="append", metavar="HREF=TEXT",
                        help="a link under the conformance section, e.g. to the side-by-side page "
                             "(repeatable)")
    parser.add_argument("--title", default="stagekit performance and conformance report",
                        help="report title")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    loaded = inputs.load(args)
    blocks = build.build(args, loaded)
    for problem in loaded.problems:
        print(f"{PROG}: note: {problem}", file=sys.stderr)
    written = []
    try:
        os.makedirs(args.out, exist_ok=True)
        for name, text in (("index.html", render_html(blocks, args.title)),
                           ("README.md", render_markdown(blocks))):
            path = os.path.join(args.out, name)
            write_text(path, text)
            written.append(path)
    except OSError as exc:
        print(f"{PROG}: cannot write the report into {args.out}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
