"""Check a stagekit-dist-bench result file (optionally after running the command that writes it).

    python3 -m stagekit_tools.check_dist DIST.json [--world-backend mpi|thread] [--world-size N]
        [-- COMMAND ...]

With a COMMAND, runs it first (its exit status must be 0).  The file must be a stagekit result
file (context: stagekit_schema_version, world_backend, world_size) holding every benchmark family
of the harness (limit/mpi_allgather, limit/memcpy_gather, limit/memcpy_local_block,
limit/mpi_bcast, limit/memcpy_bcast, dist/all_gather, dist/all_gather_copying,
dist/gather_state_dict/{shard0,many,uneven}, dist/distribute_tensors, dist/broadcast,
dist/broadcast_state_dict/{one,many}, the NCCL ones (limit/nccl_allgather, limit/nccl_bcast,
limit/nccl_sendrecv, dist/nccl_all_gather, dist/nccl_broadcast, dist/nccl_send_recv,
dist/gather_state_dict_cuda/{shard0,many}: not_supported without a CUDA device per rank under
mpirun), and the replication ones: limit/mpi_sendrecv,
limit/memcpy_exchange, limit/seq_write, replicate/{exchange,persist,stage}).  The engine limits
are world-dependent: a run measures those of its world (limit/mpi_* under mpirun, limit/memcpy_*
of the all-gather, broadcast and exchange in a thread world) and reports the other world's as
not_supported, so both must be in the file.  Every measured entry must carry bytes, algbw and
world_size, the all-gathers, the broadcasts and the MPI engines of both busbw, the dist and
replicate benchmarks ratio_to_limit and limit_algbw; the only errors allowed start with
"not_supported:" (bench_file.entry_outcome).  Prints one line per problem; exit 0 when there is
none, 1 otherwise, 2 when the command fails or the file is unusable.  Standard library only.
"""
import argparse
import subprocess
import sys

from stagekit_tools import bench_file, cli, names
from stagekit_tools.jsonfile import read_json

# The engine limits of both worlds are listed: each run measures its own world's and reports the
# other's as not_supported (names.WORLD_ENGINES).
FAMILIES = ("limit/mpi_allgather", "limit/memcpy_gather", "limit/memcpy_local_block",
            "limit/mpi_bcast", "limit/memcpy_bcast",
            "dist/all_gather", "dist/all_gather_copying", "dist/gather_state_dict/shard0",
            "dist/gather_state_dict/many", "dist/gather_state_dict/uneven",
            "dist/distribute_tensors",
            "dist/broadcast", "dist/broadcast_state_dict/one", "dist/broadcast_state_dict/many",
            "limit/nccl_allgather", "limit/nccl_bcast", "limit/nccl_sendrecv",
            "dist/nccl_all_gather", "dist/nccl_broadcast", "dist/nccl_send_recv",
            "dist/gather_state_dict_cuda/shard0", "dist/gather_state_dict_cuda/many",
            "limit/mpi_sendrecv", "limit/memcpy_exchange", "limit/seq_write",
            "replicate/exchange", "replicate/persist", "replicate/stage")
# The rows with a busbw: the all-gathers (busbw = algbw x (N-1)/N) and the broadcasts (busbw =
# algbw), with MPI's own operation; not the memcpy engines of a thread world.
BUSBW = ("dist/gather_state_dict/", "dist/all_gather/", "dist/all_gather_copying/",
         "dist/broadcast/", "dist/broadcast_state_dict/", "limit/mpi_allgather/",
         "limit/mpi_bcast/", "dist/nccl_all_gather/", "dist/nccl_broadcast/",
         "dist/gather_state_dict_cuda/", "limit/nccl_allgather/", "limit/nccl_bcast/")
PROG = "check_dist"


def required_counters(name):
    needed = ["bytes", "algbw", "world_size"]
    if name.startswith(("dist/", "replicate/")):
        needed += ["ratio_to_limit", "limit_algbw"]
    return needed + (["busbw"] if name.startswith(BUSBW) else [])


def check(doc, backend=None, world_size=None):
    """Problems (one-line strings) of a loaded result document."""
    problems = []
    context = doc.get("context") if isinstance(doc, dict) else None
    if not isinstance(context, dict) or not isinstance(doc.get("benchmarks"), list):
        return ["not Google Benchmark JSON with a context and a benchmarks list"]
    if str(context.get("stagekit_schema_version")) != bench_file.SCHEMA_VERSION:
        problems.append("context.stagekit_schema_version is "
                        f"{context.get('stagekit_schema_version')!r}, "
                        f"expected \"{bench_file.SCHEMA_VERSION}\"")
    if backend and context.get("world_backend") != backend:
        problems.append(f"context.world_backend is {context.get('world_backend')!r}, "
                        f"expected {backend!r}")
    if world_size and str(context.get("world_size")) != str(world_size):
        problems.append(f"context.world_size is {context.get('world_size')!r}, "
                        f"expected {world_size}")
    seen = set()
    for entry in doc["benchmarks"]:
        if entry.get("run_type", "iteration") != "iteration":
            continue
        name = bench_file.entry_identity(entry)
        seen.add(names.family(name))
        if entry.get("error_occurred"):
            status, message = bench_file.entry_outcome(entry)
            if status == bench_file.ERROR:
                problems.append(f"{name}: error: {message}")
            continue
        for counter in required_counters(name):
            value = entry.get(counter)
            if not isinstance(value, (int, float)) or value != value:
                problems.append(f"{name}: no {counter} counter")
            elif counter != "busbw" and value <= 0:
                problems.append(f"{name}: {counter} is {value}, expected > 0")
        if entry.get("wrong", 0) != 0:
            problems.append(f"{name}: wrong = {entry.get('wrong')}")
        if world_size and entry.get("world_size") not in (None, world_size):
            problems.append(f"{name}: world_size counter is {entry.get('world_size')}, "
                            f"expected {world_size}")
    problems += [f"no {f}/<bytes> benchmark in the file" for f in FAMILIES if f not in seen]
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog=cli.prog(PROG), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", metavar="DIST.json")
    parser.add_argument("--world-backend", choices=("mpi", "thread"))
    parser.add_argument("--world-size", type=int)
    args = parser.parse_args(argv)
    if command:
        rc = subprocess.run(command, check=False).returncode
        if rc != 0:
            print(f"{PROG}: the command exited with status {rc}: {' '.join(command)}",
                  file=sys.stderr)
            return 2
    try:
        doc = read_json(args.result, bench_file.PerfFileError)
    except bench_file.PerfFileError as exc:
        print(f"{PROG}: unusable: {exc}", file=sys.stderr)
        return 2
    problems = check(doc, args.world_backend, args.world_size)
    for problem in problems:
        print(f"{PROG}: {args.result}: {problem}")
    if not problems:
        runs = [e for e in doc["benchmarks"] if e.get("run_type", "iteration") == "iteration"]
        measured = sum(1 for e in runs if not e.get("error_occurred"))
        print(f"{PROG}: {args.result}: ok ({measured} measured, "
              f"{len(runs) - measured} not supported)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
