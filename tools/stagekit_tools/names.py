"""Benchmark-name grammar of the stagekit harness.

Stage benchmarks are `stage/<src>_to_<dst>/<layout>/<cold|warm>`, limits are
`limit/<what>/...`, distributed benchmarks (stagekit-dist-bench) `dist/<op>[/<layout>]/<bytes>`
and `replicate/<op>/<bytes>`.
Google Benchmark appends `/real_time` or `/manual_time`, and `/iterations:N` and `/repeats:N`
before it for a benchmark with a fixed iteration or repetition count; the identity of a benchmark
is its run_name without those suffixes.  Standard library only.
"""
import re

SOURCES = ("cpu", "cuda")
DESTINATIONS = ("pageable", "pinned", "shared", "pinned_shared")
LAYOUTS = ("large", "small", "transformer", "views")
MODES = ("cold", "warm")
# stagekit-dist-bench, in the order it registers them (the replication ones last)
DIST_OPS = ("mpi_allgather", "memcpy_gather", "memcpy_local_block", "mpi_bcast", "memcpy_bcast",
            "all_gather", "all_gather_copying", "gather_state_dict", "distribute_tensors",
            "broadcast", "broadcast_state_dict", "nccl_allgather", "nccl_bcast", "nccl_sendrecv",
            "nccl_all_gather", "nccl_broadcast", "nccl_send_recv", "gather_state_dict_cuda",
            "mpi_sendrecv", "memcpy_exchange", "seq_write", "exchange", "persist", "stage")
DIST_LAYOUTS = ("shard0", "one", "many", "uneven")
# The engine limits of each world (context.world_backend), one per operation: the all-gather,
# the broadcast and the replication exchange.  A run measures those of its world; the other
# world's are not_supported.
WORLD_ENGINES = {
    "mpi": {"all_gather": "limit/mpi_allgather", "broadcast": "limit/mpi_bcast",
            "exchange": "limit/mpi_sendrecv"},
    "thread": {"all_gather": "limit/memcpy_gather", "broadcast": "limit/memcpy_bcast",
               "exchange": "limit/memcpy_exchange"},
}

# The NCCL rows (perf/bench/nccl_cases.h): NCCL's own calls, the limits of the rest.
NCCL_ENGINES = ("limit/nccl_allgather", "limit/nccl_bcast", "limit/nccl_sendrecv")
NCCL_OPS = ("nccl_allgather", "nccl_bcast", "nccl_sendrecv", "nccl_all_gather", "nccl_broadcast",
            "nccl_send_recv", "gather_state_dict_cuda")

_STAGE = re.compile(r"^stage/([a-z0-9]+)_to_([a-z0-9_]+)/([a-z0-9_]+)/([a-z0-9_]+)$")
_SUFFIXES = re.compile(r"(/iterations:[0-9]+)?(/repeats:[0-9]+)?(/real_time|/manual_time)?$")
# dist/<op>/<layout>/<bytes>, dist/<op>/<bytes>, replicate/<op>/<bytes> and limit/<what>/<bytes>
_SIZED = re.compile(r"^(dist|limit|replicate)/([a-z0-9_]+)(?:/([a-z0-9_]+))?/([0-9]+)$")


def identity(run_name):
    """The benchmark's identity: run_name without /iterations:N, /repeats:N, /real_time and
    /manual_time."""
    return _SUFFIXES.sub("", run_name, count=1)


def family(name):
    """The family of an identity: `dist/gather_state_dict/many/1048576` -> its name without the
    trailing /<bytes>; a name without a size is its own family."""
    head, _, tail = name.rpartition("/")
    return head if tail.isdigit() else name


def size_text(nbytes):
    """1048576 -> "1 MiB", 65536 -> "64 KiB", other sizes in bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale} {unit}"
    return f"{nbytes} B"


def parse_sized(name):
    """{kind, op, layout, bytes} of `dist/<op>[/<layout>]/<bytes>`, `replicate/<op>/<bytes>` or
    `limit/<what>/<bytes>`, else None (layout is None where the name has none)."""
    match = _SIZED.match(name)
    if not match:
        return None
    kind, op, layout, size = match.groups()
    return {"kind": kind, "op": op, "layout": layout, "bytes": int(size)}


def parse(name):
    """Split a normalised name into kind, src, dst, layout and mode (None where absent).

    kind is "stage", "limit", "dist", "replicate" or "other".
    """
    match = _STAGE.match(name)
    if match:
        src, dst, layout, mode = match.groups()
        return {"kind": "stage", "src": src, "dst": dst, "layout": layout, "mode": mode}
    kind = next((k for k in ("limit", "dist", "replicate") if name.startswith(k + "/")), "other")
    return {"kind": kind, "src": None, "dst": None, "layout": None, "mode": None}


def glob_to_regex(pattern):
    """Compile a name pattern where `*` matches within one path segment."""
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile("^" + "[^/]*".join(parts) + "$")


def sort_key(name):
    """Order names as the harness lists them: limits first, then src, dst, layout, mode."""
    p = parse(name)
    if p["kind"] != "stage":
        sized = parse_sized(name)
        if sized:  # distributed results: by operation, layout, then size

            def at(values, value):
                return values.index(value) if value in values else len(values)

            return ({"limit": 0, "dist": 2}.get(p["kind"], 3), at(DIST_OPS, sized["op"]),
                    at(DIST_LAYOUTS, sized["layout"]), sized["bytes"], 0, name)
        return (0 if p["kind"] == "limit" else 2, 0, 0, 0, 0, name)

    def pos(values, value):
        return values.index(value) if value in values else len(values)

    return (1, pos(SOURCES, p["src"]), pos(LAYOUTS, p["layout"]),
            pos(DESTINATIONS, p["dst"]), pos(MODES, p["mode"]), name)
