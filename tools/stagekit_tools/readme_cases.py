"""Keep the case list in conformance/README.md generated from the case registry.

The list lives between the markers <!-- cases:begin --> and <!-- cases:end --> and is exactly the
output of `stagekit-conform --list --list-format markdown`, so it cannot drift from the code.

  ci/python.sh -m stagekit_tools.readme_cases --conform build/dev/conformance/stagekit-conform \
      --readme conformance/README.md
  ci/python.sh -m stagekit_tools.readme_cases ... --check   # exit 1 (and say how to fix it) when
                                                           # the README is out of date, 2 when
                                                           # it lacks the markers
Standard library only.
"""
import argparse
import subprocess
import sys

from stagekit_tools import cli, markers

BEGIN = "<!-- cases:begin -->"
END = "<!-- cases:end -->"


def generated_list(conform):
    out = subprocess.run([conform, "--profile", "full", "--list", "--list-format", "markdown"],
                         check=True, capture_output=True, text=True).stdout
    return out if out.endswith("\n") else out + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("readme_cases"),
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--conform", required=True, help="path of stagekit-conform")
    parser.add_argument("--readme", required=True, help="path of conformance/README.md")
    parser.add_argument("--check", action="store_true", help="only check; do not rewrite")
    args = parser.parse_args(argv)

    regenerate = (f"ci/python.sh -m stagekit_tools.readme_cases --conform {args.conform} "
                  f"--readme {args.readme}")
    return markers.keep_between(args.readme, BEGIN, END, generated_list(args.conform),
                                check=args.check, what="case list", regenerate=regenerate,
                                tool="readme_cases")


if __name__ == "__main__":
    sys.exit(main())
