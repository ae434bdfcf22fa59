"""Keep the case list in conformance/README.md generated from the case registry.

The list lives between the markers <!-- cases:begin --> and <!-- cases:end --> and is exactly the
output of `stagekit-conform --list --list-format markdown`, so it cannot drift from the code.

  ci/python.sh -m stagekit_tools.readme_cases --conform build/dev/conformance/stagekit-conform \
      --readme conformance/README.md
  ci/python.sh -m stagekit_tools.readme_cases ... --check   # exit 1 (and say how to fix it) when
                                                           # the README is out of date
Standard library only.
"""
import argparse
import subprocess
import sys

from stagekit_tools import cli
from stagekit_tools.jsonfile import write_text

BEGIN = "<!-- cases:begin -->"
END = "<!-- cases:end -->"


def generated_list(conform):
    out = subprocess.run([conform, "--list", "--list-format", "markdown"], check=True,
                         capture_output=True, text=True).stdout
    return out if out.endswith("\n") else out + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("readme_cases"),
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--conform", required=True, help="path of stagekit-conform")
    parser.add_argument("--readme", required=True, help="path of conformance/README.md")
    parser.add_argument("--check", action="store_true", help="only check; do not rewrite")
    args = parser.parse_args(argv)

    with open(args.readme, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit(f"readme_cases: error: {args.readme} lacks the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = head + BEGIN + "\n" + generated_list(args.conform) + END + tail
    if updated == text:
        print(f"{args.readme}: case list up to date")
        return 0
    if args.check:
        print(f"{args.readme}: the case list differs from the registry; regenerate it with\n"
              f"  ci/python.sh -m stagekit_tools.readme_cases --conform {args.conform} "
              f"--readme {args.readme}",
              file=sys.stderr)
        return 1
    write_text(args.readme, updated)
    print(f"{args.readme}: case list regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
