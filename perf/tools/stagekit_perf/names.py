"""Benchmark-name grammar of the stagekit harness.

Stage benchmarks are `stage/<src>_to_<dst>/<layout>/<cold|warm>`, limits are
`limit/<what>/...`.  Google Benchmark appends `/real_time` or `/manual_time`; the
identity of a benchmark is its run_name without that suffix.
"""
import re

TIMING_SUFFIXES = ("/real_time", "/manual_time")
SOURCES = ("cpu", "cuda")
DESTINATIONS = ("pageable", "pinned", "shared", "pinned_shared")
LAYOUTS = ("large", "small", "transformer", "views")
MODES = ("cold", "warm")

_STAGE = re.compile(r"^stage/([a-z0-9]+)_to_([a-z0-9_]+)/([a-z0-9_]+)/([a-z0-9_]+)$")


def identity(run_name):
    """The benchmark's identity: run_name without a trailing /real_time or /manual_time."""
    for suffix in TIMING_SUFFIXES:
        if run_name.endswith(suffix):
            return run_name[: -len(suffix)]
    return run_name


def parse(name):
    """Split a normalised name into kind, src, dst, layout and mode (None where absent).

    kind is "stage", "limit" or "other".
    """
    match = _STAGE.match(name)
    if match:
        src, dst, layout, mode = match.groups()
        return {"kind": "stage", "src": src, "dst": dst, "layout": layout, "mode": mode}
    kind = "limit" if name.startswith("limit/") else "other"
    return {"kind": kind, "src": None, "dst": None, "layout": None, "mode": None}


def glob_to_regex(pattern):
    """Compile a name pattern where `*` matches within one path segment."""
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile("^" + "[^/]*".join(parts) + "$")


def sort_key(name):
    """Order names as the harness lists them: limits first, then src, dst, layout, mode."""
    p = parse(name)
    if p["kind"] != "stage":
        return (0 if p["kind"] == "limit" else 2, 0, 0, 0, 0, name)

    def pos(values, value):
        return values.index(value) if value in values else len(values)

    return (1, pos(SOURCES, p["src"]), pos(LAYOUTS, p["layout"]),
            pos(DESTINATIONS, p["dst"]), pos(MODES, p["mode"]), name)
