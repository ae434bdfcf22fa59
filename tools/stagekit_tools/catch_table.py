"""Which broken variants each case family catches: the suite's proof of its own strength.

A broken variant is an implementation that breaks one property on purpose, with an expectations
file naming the cases that must catch it: the C++ plugins of conformance/examples/broken/ and the
Python stagers of conformance/torch/examples/ (their files in expect/). Those expectations are
checked exactly by the tests (conformance.examples_broken_*, torch.stager*), so they are
measured facts, not claims.

For every case family (`area.feature`: stager.views, utils.gather, ...) the table lists the
variants with at least one case of the family expected to fail, crash or time out (an expectation
that also accepts a pass, such as one torch version's limit, proves nothing). A family no
variant catches needs a written reason in the reasons file (JSON: {"schema_version": 1,
"families": {"replication.basic": "why", ...}}), for instance the in-tree mutant that catches it;
a reason for a family a variant does catch is stale and an error, as is a family without either.

  ci/python.sh -m stagekit_tools.catch_table --conform build/ci/conformance/stagekit-conform \\
      --cpp conformance/examples/broken --python conformance/torch/examples/expect \\
      --reasons conformance/catch-reasons.json --readme conformance/README.md [--check]

The table lives in the README between <!-- catch-table:begin --> and <!-- catch-table:end -->;
--check exits 1 (saying how to regenerate it) when it is out of date, 2 on a bad input.
Standard library only.
"""
import argparse
import fnmatch
import glob
import json
import os
import subprocess
import sys

from stagekit_tools import case_ids, cli, markers

BEGIN = "<!-- catch-table:begin -->"
END = "<!-- catch-table:end -->"
CATCHING = {"fail", "crash", "timeout"}


class InputError(Exception):
    """A malformed expectations or reasons file, or a table without a reason where one is due."""


def _outcomes(value, where):
    """The acceptable outcomes of one expectation value (a string, a list, or {"outcome": ...})."""
    if isinstance(value, dict):
        if "outcome" not in value:
            raise InputError(f"{where}: an object without \"outcome\"")
        value = value["outcome"]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise InputError(f"{where}: an outcome must be a string or a list of strings")
    return set(values)


def _specificity(pattern):
    """Higher is more specific: an exact ID, then more literal characters, then fewer wildcards."""
    wild = sum(1 for c in pattern if c in "*?")
    return (wild == 0, len(pattern) - wild, -wild)


def _names_feature(pattern):
    """Whether the text before the pattern's first wildcard spans `area.feature.` (or is exact)."""
    cut = min((pattern.index(c) for c in "*?" if c in pattern), default=None)
    if cut is None:
        return True
    return pattern[:cut].count(".") >= 2


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: {e}") from e


def caught_cases(path, ids):
    """The IDs (of `ids`) whose most specific key in the expectations file at `path` expects a
    failure, crash or timeout, and not a pass."""
    data = _load(path)
    keys = data.get("expectations") if isinstance(data, dict) else None
    if not isinstance(keys, dict):
        raise InputError(f"{path}: no \"expectations\" object")
    failing = {}
    for pattern, value in keys.items():
        outcomes = _outcomes(value, f"{path}: '{pattern}'")
        if outcomes & CATCHING and not _names_feature(pattern):
            raise InputError(f"{path}: '{pattern}' expects a failure but does not name a case "
                             "family (a broad key does not apply to cases of undeclared "
                             "capabilities)")
        failing[pattern] = bool(outcomes & CATCHING) and "pass" not in outcomes
    ordered = sorted(keys, key=lambda p: (tuple(-x for x in _specificity(p)), p))
    caught = set()
    for case in ids:
        for pattern in ordered:
            if fnmatch.fnmatchcase(case, pattern):
                if failing[pattern]:
                    caught.add(case)
                break
    return caught


def variant_files(directory, skip=("correct",)):
    """{variant name: expectations file} of a directory of <name>.expect.json files."""
    files = sorted(glob.glob(os.path.join(directory, "*.expect.json")))
    out = {os.path.basename(f)[:-len(".expect.json")]: f for f in files}
    for name in skip:
        out.pop(name, None)
    if not out:
        raise InputError(f"{directory}: no <name>.expect.json files")
    return out


def load_reasons(path):
    data = _load(path)
    families = data.get("families") if isinstance(data, dict) else None
    if data.get("schema_version") != 1 or not isinstance(families, dict):
        raise InputError(f"{path}: expected {{\"schema_version\": 1, \"families\": {{...}}}}")
    for family, reason in families.items():
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{path}: '{family}': a reason must be a non-empty string")
    return families


def build_rows(ids, cpp, python, reasons):
    """One row per family: (family, cases, C++ variants, Python variants, reason)."""
    families = {}
    for case in ids:
        families.setdefault(case_ids.parse(case).group, []).append(case)
    caught = {}
    for kind, variants in (("cpp", cpp), ("python", python)):
        for name, path in variants.items():
            for case in caught_cases(path, ids):
                group = case_ids.parse(case).group
                caught.setdefault(group, {"cpp": set(), "python": set()})[kind].add(name)
    problems = []
    for family in sorted(set(reasons) - set(families)):
        problems.append(f"the reasons file names '{family}', which is not a case family")
    rows = []
    for family in sorted(families, key=lambda f: case_ids.sort_key(families[f][0])):
        by = caught.get(family, {"cpp": set(), "python": set()})
        reason = reasons.get(family, "")
        if (by["cpp"] or by["python"]) and reason:
            problems.append(f"'{family}' is caught by a variant: its reason is stale, remove it")
        if not (by["cpp"] or by["python"]) and not reason:
            problems.append(f"'{family}': no broken variant catches it and the reasons file "
                            "says nothing")
        rows.append((family, len(families[family]), sorted(by["cpp"]), sorted(by["python"]),
                     reason))
    if problems:
        raise InputError("\n".join(problems))
    return rows


def _names(variants):
    return ", ".join(f"`{v}`" for v in variants) or "—"


def render(rows):
    caught = sum(1 for r in rows if r[2] or r[3])
    lines = [f"{caught} of {len(rows)} case families catch at least one broken variant; "
             "each of the others says why.", "",
             "| family | cases | C++ variants (`examples/broken/`) | Python variants "
             "(`torch/examples/`) | why none |",
             "|---|---|---|---|---|"]
    for family, count, cpp, python, reason in rows:
        lines.append(f"| `{family}` | {count} | {_names(cpp)} | {_names(python)} | {reason} |")
    return "\n".join(lines) + "\n"


def list_ids(conform):
    out = subprocess.run([conform, "--profile", "full", "--list"], check=True, capture_output=True,
                         text=True).stdout
    # Lines start with the case ID; the last one counts them.
    return [line.split()[0] for line in out.splitlines()
            if line.strip() and "." in line.split()[0]]


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("catch_table"),
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--conform", required=True,
                        help="path of stagekit-conform (for the case list)")
    parser.add_argument("--cpp", required=True,
                        help="directory of the C++ variants' <name>.expect.json")
    parser.add_argument("--python", required=True,
                        help="directory of the Python variants' <name>.expect.json")
    parser.add_argument("--reasons", required=True,
                        help="why each family no variant catches is so (JSON)")
    parser.add_argument("--readme",
                        help="the markdown file to keep the table in (between the markers)")
    parser.add_argument("--check", action="store_true",
                        help="only check the README; do not rewrite it")
    args = parser.parse_args(argv)
    try:
        rows = build_rows(list_ids(args.conform), variant_files(args.cpp),
                          variant_files(args.python), load_reasons(args.reasons))
    except InputError as e:
        print(f"catch_table: error: {e}", file=sys.stderr)
        return 2
    table = render(rows)
    if not args.readme:
        sys.stdout.write(table)
        return 0
    regenerate = (f"ci/python.sh -m stagekit_tools.catch_table --conform {args.conform} "
                  f"--cpp {args.cpp} --python {args.python} --reasons {args.reasons} "
                  f"--readme {args.readme}")
    return markers.keep_between(args.readme, BEGIN, END, table, check=args.check,
                                what="catch table", regenerate=regenerate, tool="catch_table")


if __name__ == "__main__":
    sys.exit(main())
