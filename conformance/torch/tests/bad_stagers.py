#!/usr/bin/env python3
"""Runs stagekit-conform on each broken factory of python/stagekit_torch_bad*.py (one case each) and
checks that each is a clear per-case outcome: the expected outcome, with a reason that says what is
wrong, and never a crash of the runner itself.

usage: bad_stagers.py STAGEKIT_CONFORM WORK_DIR
"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = "stager.views.cpu.pin0_share0"

# spec -> (outcome, reason pattern)
EXPECTED = {
    "torch:stagekit_torch_bad_import:Stager":
        ("fail", r"module 'stagekit_torch_bad_import' does not import: "
                 r"RuntimeError: this module is broken on purpose"),
    "torch:stagekit_torch_bad:NoSuchFactory":
        ("fail", r"module 'stagekit_torch_bad' has no 'NoSuchFactory'"),
    "torch:stagekit_torch_bad:NOT_CALLABLE": ("fail", r"is a int, not a callable factory"),
    "torch:stagekit_torch_bad:RaisesInInit":
        ("fail", r"RuntimeError: cannot start: no staging area configured"),
    "torch:stagekit_torch_bad:NoStage": ("fail", r"without a callable stage\(\)"),
    "torch:stagekit_torch_bad:ReturnsList": ("fail", r"list"),
    "torch:stagekit_torch_bad:WrongDevice": ("fail", r"device type 'meta'"),
    "torch:stagekit_torch_bad:StorageTooSmall": ("fail", r"the returned tensor is not valid"),
    "torch:stagekit_torch_bad:Hangs": ("timeout", r"did not finish within"),
    "torch:stagekit_torch_bad:Segfaults": ("crash", r"SIGSEGV"),
    "torch:no_colon_here": ("refused", r"not of the form torch:PACKAGE.MODULE:FACTORY"),
}


def main():
    conform, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, "python"),
                                         os.path.join(HERE, "..", "examples"),
                                         env.get("PYTHONPATH", "")])
    problems = []
    for i, (spec, (outcome, pattern)) in enumerate(EXPECTED.items()):
        out = os.path.join(work, f"run{i}")
        command = [conform, "--impl", spec, "--filter", CASE, "--timeout", "5", "--quiet",
                   "--out", out]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if outcome == "refused":  # the spec itself is refused: said once, every case fails
            ok = proc.returncode == 1 and re.search(pattern, proc.stderr)
            got = f"exit {proc.returncode}: {proc.stderr.strip()[:300]}"
        else:
            try:
                result = json.load(open(os.path.join(out, "results.json")))["results"][0]
            except (OSError, ValueError, IndexError, KeyError) as e:
                problems.append(f"{spec}: no result ({e}); exit {proc.returncode}; "
                                f"{proc.stderr[-500:]}")
                continue
            ok = (proc.returncode in (0, 1) and result["outcome"] == outcome
                  and re.search(pattern, result["reason"]))
            got = f"{result['outcome']}: {result['reason'][:300]}"
        print(f"{'ok  ' if ok else 'FAIL'} {spec}: {got}")
        if not ok:
            problems.append(f"{spec}: expected {outcome} matching /{pattern}/, got {got}")
    if problems:
        print("\n".join(["", f"{len(problems)} problem(s):"] + problems))
        return 1
    print(f"\nevery broken factory ({len(EXPECTED)}) is a clear per-case outcome")
    return 0


if __name__ == "__main__":
    sys.exit(main())
