"""What the commands share: the name a command's usage line shows.

A command runs as `python3 -m stagekit_tools.<tool>` from the checkout (ci/python.sh), or as the
`stagekit-<tool>` script an installed package provides; its usage line names the way it was
started.  Standard library only.
"""
import os
import sys


def prog(tool):
    """`stagekit-<tool>` when started as the installed script, else `python3 -m ...`."""
    started = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if started.startswith("stagekit-"):
        return started
    return f"python3 -m stagekit_tools.{tool}"
