#!/usr/bin/python3
"""Check that a stagekit-bench or stagekit-dist-bench result file measured the implementation
asked for.

    check_measured_implementation.py RESULT.json --implementation NAME --spec SPEC --kind KIND
        [--plugin PATH] [--build-type TYPE] [--allow-not-supported REGEX]
        [--require-not-supported REGEX] [-- COMMAND ...]

With a COMMAND, runs it first (its exit status must be 0).  The context must name the implementation
(implementation, implementation_spec, implementation_kind, implementation_plugin: PATH, or "" for a
built-in), stagekit's build type (TYPE, "none" when empty) and the kernel's transparent huge page
modes as /sys/kernel/mm/transparent_hugepage/{enabled,shmem_enabled} select them ("unknown" where
absent).  Every benchmark must have run without error; an error starting "not_supported:" is
allowed only for benchmarks whose name matches the --allow-not-supported REGEX, and required for
those matching the --require-not-supported one.  Prints one line per problem; exit 0 when there
is none, 1 otherwise, 2 when the command fails or the file is unusable.  Standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys

THP = "/sys/kernel/mm/transparent_hugepage/"


def thp_mode(name):
    """The bracketed choice of a THP sysfs file, or "unknown" when it cannot be read."""
    try:
        with open(THP + name, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return "unknown"
    match = re.search(r"\[([^\]]*)\]", text)
    return match.group(1) if match else (text.strip() or "unknown")


def check(doc, args):
    """Problems (one-line strings) of a loaded result document."""
    context = doc.get("context") if isinstance(doc, dict) else None
    if not isinstance(context, dict) or not isinstance(doc.get("benchmarks"), list):
        return ["not Google Benchmark JSON with a context and a benchmarks list"]
    plugin = os.path.realpath(args.plugin) if args.plugin else ""
    measured_plugin = context.get("implementation_plugin")
    if measured_plugin:
        measured_plugin = os.path.realpath(measured_plugin)
    expected = {
        "implementation": args.implementation,
        "implementation_spec": args.spec,
        "implementation_kind": args.kind,
        "stagekit_build_type": args.build_type or "none",
        "thp_enabled": thp_mode("enabled"),
        "thp_shmem_enabled": thp_mode("shmem_enabled"),
    }
    problems = [f"context.{key} is {context.get(key)!r}, expected {value!r}"
                for key, value in expected.items() if context.get(key) != value]
    if measured_plugin != plugin:
        measured = context.get('implementation_plugin')
        problems.append(f"context.implementation_plugin is {measured!r}, expected {plugin!r}")
    if not context.get("implementation_version"):
        problems.append("context.implementation_version is empty")
    allowed = re.compile(args.allow_not_supported) if args.allow_not_supported else None
    required = re.compile(args.require_not_supported) if args.require_not_supported else None
    ran = 0
    for entry in doc["benchmarks"]:
        if entry.get("run_type", "iteration") != "iteration":
            continue
        name = str(entry.get("run_name") or entry.get("name"))
        must_skip = bool(required and required.search(name))
        if not entry.get("error_occurred"):
            ran += 1
            if must_skip:
                problems.append(f"{name}: ran, expected not_supported")
            continue
        message = str(entry.get("error_message", ""))
        may_skip = must_skip or bool(allowed and allowed.search(name))
        if not (message.startswith("not_supported:") and may_skip):
            problems.append(f"{name}: error: {message}")
    if ran == 0:
        problems.append("no benchmark ran")
    return problems


def main(argv):
    command = []
    if "--" in argv:
        command = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("--implementation", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--plugin", default="")
    parser.add_argument("--build-type", default="")
    parser.add_argument("--allow-not-supported", default="")
    parser.add_argument("--require-not-supported", default="")
    args = parser.parse_args(argv)
    if command:
        rc = subprocess.run(command, check=False).returncode
        if rc != 0:
            print(f"the command exited with status {rc}: {' '.join(command)}")
            return 2
    try:
        with open(args.result, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {args.result}: {e}")
        return 2
    problems = check(doc, args)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{args.result}: measured {args.implementation} ({args.kind} {args.spec}); "
              "every benchmark ran")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
