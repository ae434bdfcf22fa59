"""Write the deterministic test fixtures of the benchmark tools into tests/fixtures/perf/.

    ci/python.sh tools/tests/make_fixtures.py [--out DIR]

Every number comes from a seeded random.Random, so rerunning this script reproduces the
committed files byte for byte (tests/test_fixtures.py checks that).  Noise is uniform
within +-2% of each benchmark's nominal time.
"""
import argparse
import hashlib
import os
import random
import statistics
import sys

from stagekit_tools import gbench_json

MIB, GIB = 1 << 20, 1 << 30
NOISE = 0.02
# The shapes of perf/bench/state_dicts.cpp (full size): hidden 512, vocab 8192, 24 layers.
TRANSFORMER_SHAPES = 1 + 24 * 10
TRANSFORMER_PARAMS = 8192 * 512 + 24 * (4 * 512 * 512 + 2 * 2048 * 512 + 4 * 512)
TRANSFORMER_BYTES = 3 * 4 * TRANSFORMER_PARAMS + 4 * TRANSFORMER_SHAPES  # + a 0-dim step each
CUDA_SKIP = ("not_supported: no usable CUDA device: cudaGetDeviceCount returned "
             "cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA "
             "runtime version")
TORCH_PIN_SKIP = ("not_supported: torch pins memory only when CUDA is available "
                  "(torch.cuda.is_available() is False)")
WARM, THP, PINNED = ("limit/memcpy_prefaulted/threads:2", "limit/memcpy_fresh_thp/threads:2",
                     "limit/alloc_copy_fresh/pinned/threads:2")
LIMITS = (("limit/memcpy_prefaulted/threads:1", GIB, 90.0), (WARM, GIB, 45.0), (THP, GIB, 55.0),
          (PINNED, GIB, 70.0))
# name, bytes, tensors, nominal ratio_to_limit, limit (as perf/bench/limits_bench.cpp matches them)
STAGE = (("stage/cpu_to_pageable/large/cold", 64 * 16 * MIB, 64, 0.75, THP),
         ("stage/cpu_to_pageable/large/warm", 64 * 16 * MIB, 64, 0.95, WARM),
         ("stage/cpu_to_pinned/large/cold", 64 * 16 * MIB, 64, 0.85, PINNED),
         ("stage/cpu_to_pinned/large/warm", 64 * 16 * MIB, 64, 0.94, WARM),
         ("stage/cpu_to_pinned/small/warm", 100_000 * 1024, 100_000, 0.11, WARM),
         ("stage/cpu_to_shared/transformer/warm", TRANSFORMER_BYTES, 4 * TRANSFORMER_SHAPES, 0.92,
          WARM),
         ("stage/cpu_to_pinned_shared/views/warm", 32 * 8 * MIB, 64, 0.90, WARM))
SKIPPED = (("limit/cuda_d2h_pinned", CUDA_SKIP), ("stage/cuda_to_pinned/large/warm", CUDA_SKIP))
PEER_LIMIT = "limit/memcpy_prefaulted/threads:1"
PEER_STAGE = (("stage/cpu_to_pageable/large/cold", 64 * 16 * MIB, 64, 0.55, PEER_LIMIT),
              ("stage/cpu_to_pageable/large/warm", 64 * 16 * MIB, 64, 0.85, PEER_LIMIT),
              ("stage/cpu_to_pageable/small/warm", 100_000 * 1024, 100_000, 0.02, PEER_LIMIT),
              ("stage/cpu_to_shared/transformer/warm", TRANSFORMER_BYTES, 4 * TRANSFORMER_SHAPES,
               0.70, PEER_LIMIT),
              ("stage/cpu_to_pageable/views/warm", 32 * 8 * MIB, 64, 0.80, PEER_LIMIT))
PEER_SKIPPED = (("stage/cpu_to_pinned/large/warm", TORCH_PIN_SKIP),
                ("stage/cpu_to_pinned_shared/views/warm", TORCH_PIN_SKIP))
HISTORY_LIMITS = tuple(x for x in LIMITS if x[0] in (WARM, THP))
HISTORY_STAGE = tuple(s for s in STAGE if s[0] in (
    "stage/cpu_to_pageable/large/cold", "stage/cpu_to_pinned/large/warm"))
STEPPED = "stage/cpu_to_pinned/large/warm"


# The build and kernel keys of a recent harness (an older one, like the nightly histories here,
# lacks them).
RECENT_KEYS = {"stagekit_build_type": "Release", "thp_enabled": "always [madvise] never",
               "thp_shmem_enabled": "always within_size advise [never] deny force"}


def stagekit_context(date, sha, mode="full", recent=False):
    """The context keys perf/driver/bench_main.cpp adds (RECENT_KEYS too when recent)."""
    return gbench_json.context(date, "vm", "build/release/perf/stagekit-bench", 2, {
        "implementation": "stagekit-reference", "implementation_version": "0.1.0",
        "git_sha": sha, "git_dirty": "false", "compiler": "gcc 12.2.0",
        "cpu_model": "Intel(R) Xeon(R) Processor", "cpu_count": 2,
        "memory_total": "24683656 kB", "cuda": "none", "cuda_reason": CUDA_SKIP.split(": ", 1)[1],
        "gpu": "none", "copy_threads": 2, "mode": mode, **(RECENT_KEYS if recent else {})})


def peer_context(date):
    """A peer file with only some of the stagekit keys."""
    return gbench_json.context(date, "vm", "stagekit-bench --impl torch", 2, {
        "implementation": "pytorch", "implementation_version": "2.5.1", "cpu_count": 2,
        "cuda": "none", "gpu": "none", "copy_threads": 2, "mode": "full"})


def _sig(value):
    return gbench_json.round_sig(value, 6)


def run(ctx, seed, reps, limits=LIMITS, stage=STAGE, skipped=SKIPPED, slow=None, drop=(),
        errors=None, with_aggregates=True):
    """A result document: limits, stage benchmarks (time x slow[name]), skipped, errored.

    Stage times follow the nominal limit bandwidths; their ratio_to_limit and overhead counters
    use the median of the limit as measured in this run, as the harness does.
    """
    rng, slow, errors = random.Random(seed), slow or {}, errors or {}
    nominal_bps = {n: b / (ms * 1e-3) for n, b, ms in limits}
    measured_bps, benchmarks = {}, []
    specs = [(n, b, None, None, None, ms) for n, b, ms in limits]
    specs += [(n, b, t, ratio, limit, None) for n, b, t, ratio, limit in stage]
    for family, (name, nbytes, tensors, ratio, limit, limit_ms) in enumerate(specs):
        run_name = name + "/manual_time"
        if name in drop:
            continue
        if name in errors:
            benchmarks += [gbench_json.error(run_name, family, reps, errors[name], r)
                           for r in range(reps)]
            continue
        nominal = limit_ms * 1e-3 if limit is None else nbytes / (ratio * nominal_bps[limit])
        entries = []
        for rep in range(reps):
            seconds = nominal * slow.get(name, 1.0) * (1 + rng.uniform(-NOISE, NOISE))
            counters = {"bytes": nbytes, "bytes_per_second": _sig(nbytes / seconds)}
            if limit is not None:
                bps = measured_bps[limit]
                counters.update(
                    tensors=tensors, wrong=0, items_per_second=_sig(tensors / seconds),
                    ratio_to_limit=_sig(nbytes / seconds / bps), limit_bytes_per_second=_sig(bps),
                    overhead_ns_per_tensor=_sig((seconds - nbytes / bps) / tensors * 1e9))
            entries.append(gbench_json.iteration(
                run_name, family, reps, rep, max(1, int(0.5 / seconds)), _sig(seconds * 1e3),
                _sig(seconds * 1e3 * 0.99), "ms", counters, f"limit={limit}" if limit else ""))
        benchmarks += entries + (gbench_json.aggregates(entries) if with_aggregates else [])
        if limit is None:
            median_ms = statistics.median(e["real_time"] for e in entries)
            measured_bps[name] = nbytes / (median_ms * 1e-3)
    for family, (name, message) in enumerate(skipped, start=len(specs)):
        benchmarks += [gbench_json.error(name + "/manual_time", family, reps, message, r)
                       for r in range(reps)]
    return gbench_json.document(ctx, benchmarks)


# stagekit-dist-bench: nominal algbw (bytes/s) of the limits, and each dist benchmark's ratio to
# its limit (perf/bench/dist_bench.cpp names them).
DIST_LIMITS = (("limit/mpi_allgather", 4.0e9), ("limit/memcpy_gather", 20.0e9),
               ("limit/memcpy_local_block", 30.0e9), ("limit/mpi_bcast", 5.0e9),
               ("limit/memcpy_bcast", 25.0e9), ("limit/nccl_allgather", 100.0e9),
               ("limit/nccl_bcast", 100.0e9), ("limit/nccl_sendrecv", 100.0e9))
# The limits that move whole S/N blocks (the others move S bytes).
BLOCK_LIMITS = ("limit/mpi_allgather", "limit/memcpy_gather", "limit/memcpy_local_block")
# The rows with a busbw: the all-gathers ((N-1)/N of algbw) and the broadcasts (= algbw), with
# MPI's own operation; not the memcpy engines of a thread world.
GATHER_BUSBW = ("limit/mpi_allgather", "dist/all_gather", "dist/gather_state_dict",
                "limit/nccl_allgather", "dist/nccl_all_gather")
BCAST_BUSBW = ("limit/mpi_bcast", "dist/broadcast", "limit/nccl_bcast", "dist/nccl_broadcast")
# <ENGINE>: the engine of the world (ENGINES), under mpirun MPI's own operation, in a thread world
# memcpy.
DIST_BENCH = (("dist/all_gather", "<all_gather>", 0.95),
              ("dist/all_gather_copying", "<all_gather>", 0.70),
              ("dist/gather_state_dict/shard0", "<all_gather>", 0.85),
              ("dist/gather_state_dict/many", "<all_gather>", 0.80),
              ("dist/gather_state_dict/uneven", "<all_gather>", 0.82),
              ("dist/distribute_tensors", "limit/memcpy_local_block", 0.90),
              ("dist/broadcast", "<broadcast>", 0.97),
              ("dist/broadcast_state_dict/one", "<broadcast>", 0.90),
              ("dist/broadcast_state_dict/many", "<broadcast>", 0.74),
              ("dist/nccl_all_gather", "limit/nccl_allgather", 0.95),
              ("dist/nccl_broadcast", "limit/nccl_bcast", 0.95),
              ("dist/nccl_send_recv", "limit/nccl_sendrecv", 0.5),
              ("dist/gather_state_dict_cuda/shard0", "limit/nccl_allgather", 0.1),
              ("dist/gather_state_dict_cuda/many", "limit/nccl_allgather", 0.1))
ENGINES = {"mpi": {"<all_gather>": "limit/mpi_allgather", "<broadcast>": "limit/mpi_bcast",
                   "<exchange>": "limit/mpi_sendrecv"},
           "thread": {"<all_gather>": "limit/memcpy_gather", "<broadcast>": "limit/memcpy_bcast",
                      "<exchange>": "limit/memcpy_exchange"}}
# The NCCL rows (perf/bench/nccl_cases.h): not_supported in both worlds on a machine without a
# CUDA device per rank, which is where these fixtures come from.
NCCL_SKIP_MPI = CUDA_SKIP
NCCL_SKIP_THREAD = ("not_supported: the NCCL benchmarks run under mpirun, one rank per CUDA device "
                    "(this is a thread world)")
NCCL_FAMILIES = ("limit/nccl_allgather", "limit/nccl_bcast", "limit/nccl_sendrecv",
                 "dist/nccl_all_gather", "dist/nccl_broadcast", "dist/nccl_send_recv",
                 "dist/gather_state_dict_cuda/shard0", "dist/gather_state_dict_cuda/many")
DIST_SKIPS = {
    "mpi": {"limit/memcpy_gather":
            "not_supported: the MPI world's engine is MPI_Allgather (limit/mpi_allgather)",
            "limit/memcpy_bcast":
            "not_supported: the MPI world's engine is MPI_Bcast (limit/mpi_bcast)",
            "limit/memcpy_exchange":
            "not_supported: the mpi world's engine is MPI send/recv (limit/mpi_sendrecv)"},
    "thread": {"limit/mpi_allgather":
               "not_supported: MPI_Allgather needs the MPI world: run under mpirun",
               "limit/mpi_bcast": "not_supported: MPI_Bcast needs the MPI world: run under mpirun",
               "limit/mpi_sendrecv":
               "not_supported: MPI send/recv needs the MPI world: run under mpirun (a thread "
               "world's engine is memcpy)"},
}
for _world, _message in (("mpi", NCCL_SKIP_MPI), ("thread", NCCL_SKIP_THREAD)):
    DIST_SKIPS[_world].update(dict.fromkeys(NCCL_FAMILIES, _message))
# The replication benchmarks (perf/bench/replication_bench.cpp), registered after the others: their
# limits, then each benchmark with the limits it is divided by (several: one after the other).
REPLICATION_LIMITS = (("limit/mpi_sendrecv", 2.5e9), ("limit/memcpy_exchange", 10.0e9),
                      ("limit/seq_write", 1.2e9))
REPLICATION_BENCH = (("replicate/exchange", ("<exchange>",), 0.85),
                     ("replicate/persist", ("limit/seq_write",), 0.70),
                     ("replicate/stage", ("<exchange>", "limit/seq_write"), 0.75))


def dist_context(date, backend, world_size, mode):
    """The context keys perf/driver/dist_main.cpp adds."""
    return gbench_json.context(date, "vm", "build/release/perf/stagekit-dist-bench", 2, {
        "implementation": "stagekit-reference", "implementation_version": "0.1.0",
        "git_sha": sha_of("dist"), "git_dirty": "false", "compiler": "gcc 12.2.0",
        "cpu_model": "Intel(R) Xeon(R) Processor", "cpu_count": 2,
        "memory_total": "24683656 kB", "mode": mode, "world_backend": backend,
        "world_size": world_size})


def dist_run(ctx, seed, reps, world_size, sizes, errors=None, replication_sizes=()):
    """A stagekit-dist-bench document: limits of every size first, then the dist benchmarks, then
    the replication limits and benchmarks of every replication size."""
    rng, errors, n = random.Random(seed), errors or {}, world_size
    backend = ctx["world_backend"]
    skipped, engines = DIST_SKIPS[backend], ENGINES[backend]
    specs = [(f"{name}/{size}", size, None, bps) for size in sizes for name, bps in DIST_LIMITS]
    specs += [(f"{name}/{size}", size, (f"{engines.get(limit, limit)}/{size}",), ratio)
              for size in sizes for name, limit, ratio in DIST_BENCH]
    specs += [(f"{name}/{size}", size, None, bps) for size in replication_sizes
              for name, bps in REPLICATION_LIMITS]
    specs += [(f"{name}/{size}", size, tuple(f"{engines.get(x, x)}/{size}" for x in limits),
               ratio) for size in replication_sizes for name, limits, ratio in REPLICATION_BENCH]
    nominal = dict(DIST_LIMITS + REPLICATION_LIMITS)
    measured, benchmarks = {}, []
    for family, (name, size, limit, value) in enumerate(specs):
        iterations = 1 if len(sizes) == 1 else max(5, min(50, (256 << 20) // size))
        run_name = f"{name}/iterations:{iterations}/manual_time"
        base = name.rpartition("/")[0]
        if base in skipped or name in errors:
            message = skipped[base] if base in skipped else errors[name]
            benchmarks += [gbench_json.error(run_name, family, reps, message, r)
                           for r in range(reps)]
            continue
        # the dist limits move whole S/N blocks; everything else S bytes
        whole_blocks = base in BLOCK_LIMITS or base.startswith("dist/all_gather")
        nbytes = size // n * n if whole_blocks else size
        bps = value if limit is None else value * serial([nominal[x.rpartition("/")[0]]
                                                          for x in limit])
        entries = []
        for rep in range(reps):
            seconds = nbytes / bps * (1 + rng.uniform(-NOISE, NOISE))
            algbw = _sig(nbytes / seconds)
            counters = {"bytes": nbytes, "bytes_per_second": algbw, "algbw": algbw,
                        "world_size": n, "wrong": 0}
            if base.startswith(GATHER_BUSBW):
                counters["busbw"] = _sig(algbw * (n - 1) / n)
            elif base.startswith(BCAST_BUSBW):
                counters["busbw"] = algbw
            if limit is not None:
                limit_bps = serial([measured[x] for x in limit])
                counters.update(limit_algbw=_sig(limit_bps),
                                ratio_to_limit=_sig(algbw / limit_bps))
            entries.append(gbench_json.iteration(
                run_name, family, reps, rep, iterations, _sig(seconds * 1e3),
                _sig(seconds * 1e3 * 0.99), "ms", counters,
                f"limit={'+'.join(limit)}" if limit else ""))
        benchmarks += entries  # no aggregates: the tools never read them next to iterations
        if limit is None:
            measured[name] = statistics.median(e["algbw"] for e in entries)
    return gbench_json.document(ctx, benchmarks)


def serial(bandwidths):
    """The bandwidth of doing the work of each bandwidth one after the other."""
    return bandwidths[0] if len(bandwidths) == 1 else 1.0 / sum(1.0 / b for b in bandwidths)


def sha_of(text):
    return hashlib.sha1(text.encode()).hexdigest()


def history(out, kind, factor_of_night, nights=10):
    """nights result files; factor_of_night(i) scales the stepped benchmark on night i.

    Nightly files keep 3 repetitions and no aggregates (the tools never read aggregates when
    iteration runs are present), which keeps the fixtures small.
    """
    directory = os.path.join(out, f"history_{kind}")
    os.makedirs(directory, exist_ok=True)
    for night in range(nights):
        sha = sha_of(f"{kind}-{night}")
        doc = run(stagekit_context(f"2026-11-{night + 1:02d}T02:00:00+00:00", sha),
                  seed=1000 * len(kind) + night, reps=3, limits=HISTORY_LIMITS, stage=HISTORY_STAGE,
                  skipped=(), with_aggregates=False,
                  slow={STEPPED: factor_of_night(night)})
        gbench_json.write(os.path.join(directory, sha[:10] + ".json"), doc)


def conformance():
    cuda = ("no usable CUDA device: cudaGetDeviceCount returned cudaErrorInsufficientDriver (35): "
            "CUDA driver version is insufficient for CUDA runtime version")
    rows = [("stager.caching.cpu.pin0_share0", "pass", ""),
            ("stager.caching.cuda.pin0_share0", "not_supported", cuda),
            ("stager.caching.cuda.pin1_share0", "not_supported", cuda),
            ("stager.dtensor.cpu.pin0_share0", "not_supported",
             "the implementation does not declare capability dtensor"),
            ("stager.recursive.cpu.pin0_share0", "pass", ""),
            ("stager.shared.cpu.pin0_share1", "pass", ""),
            ("stager.views.cpu.pin0_share0", "fail",
             "recursive.type.tensor1: storage sharing: staged view does not share the staged base"),
            ("stager.views.cpu.pin1_share0", "pass", ""),
            ("stager.views.cpu.pin1_share1", "pass", ""),
            ("utils.gather_state_dict.cpu.default.ws2", "pass", ""),
            ("replication.basic.cpu.default.ws2", "not_supported",
             "the implementation does not declare capability replication")]
    results = [{"id": i, "outcome": o, "reason": r, "source": "TestStateDictStager.test_views",
                "profile": "upstream", "description": "one line", "seconds": 0.001}
               for i, o, r in rows]
    counts = {o: sum(1 for _, x, _ in rows if x == o) for o in
              ("pass", "fail", "not_supported", "waived", "crash", "timeout")}
    return {"schema_version": 2, "suite": "stagekit-conformance",
            "implementation": {"name": "stagekit-reference", "version": "0.1.0"},
            "environment": {"git": {"sha": sha_of("conformance"), "dirty": False},
                            "compiler": "gcc 12.2.0", "cuda": "none", "cuda_reason": cuda,
                            "host": {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_count": 2,
                                     "hostname": "vm", "memory_total": "24683656 kB"}},
            "run": {"profile": "strict", "started": "2026-11-24T12:00:00Z"},
            "counts": counts, "results": results}


def write_all(out):
    os.makedirs(out, exist_ok=True)
    base_ctx = stagekit_context("2026-11-24T12:40:00+00:00", sha_of("baseline"), recent=True)
    new_ctx = stagekit_context("2026-11-25T12:40:00+00:00", sha_of("candidate"))
    docs = {
        "baseline.json": run(base_ctx, 1, 9),
        "regression.json": run(new_ctx, 2, 9, slow={STEPPED: 1.2}),
        "noise.json": run(new_ctx, 3, 9),
        "missing.json": run(new_ctx, 4, 9, drop=("stage/cpu_to_shared/transformer/warm",)),
        "single_rep.json": run(new_ctx, 6, 1, slow={STEPPED: 1.2}),
        "wrong_result.json": run(new_ctx, 7, 9, errors={
            "stage/cpu_to_pageable/large/warm":
                "wrong result: 3 of 64 tensors differ (first: tensor_7 at byte 4096)"}),
        "peer_pytorch.json": run(peer_context("2026-11-24T13:00:00+00:00"), 8, 9,
                                 limits=LIMITS[:1], stage=PEER_STAGE,
                                 skipped=PEER_SKIPPED),
    }
    v2 = run(new_ctx, 5, 3)
    v2["context"] = dict(v2["context"], stagekit_schema_version="2")
    docs["schema_v2.json"] = v2
    docs["no_benchmarks.json"] = {"context": dict(new_ctx)}
    docs["conformance_results.json"] = conformance()
    # the np-2 run the distributed targets are judged on (ci/perf-report.sh's perf/dist.json), with
    # the sizes they name; dist_mpi_np4.json is its second run (report --dist-also)
    docs["dist_mpi_np2.json"] = dist_run(
        dist_context("2026-11-24T12:45:00+00:00", "mpi", 2, "quick"), 11, 3, 2,
        (16 << 20, 64 << 20), replication_sizes=(64 << 20,))
    docs["dist_mpi_np4.json"] = dist_run(
        dist_context("2026-11-24T12:50:00+00:00", "mpi", 4, "quick"), 9, 3, 4,
        (1 << 20, 16 << 20, 64 << 20), replication_sizes=(1 << 20, 64 << 20))
    docs["dist_thread_errors.json"] = dist_run(
        dist_context("2026-11-24T12:55:00+00:00", "thread", 2, "smoke"), 10, 1, 2, (64 << 10,),
        errors={
            "dist/gather_state_dict/uneven/65536":
                "wrong result: rank 1: b.weight: differs from the full tensor",
            "replicate/persist/65536":
                "wrong result: rank 1: layers.3.weight of the replica file differs from rank 1's"},
        replication_sizes=(64 << 10,))
    for name, doc in docs.items():
        gbench_json.write(os.path.join(out, name), doc)
    history(out, "stable", lambda night: 1.0)
    history(out, "step", lambda night: 1.2 if night >= 6 else 1.0)
    history(out, "spike", lambda night: 1.4 if night == 4 else 1.0)
    history(out, "improvement", lambda night: 0.8 if night >= 6 else 1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "fixtures", "perf"),
                        help="directory to write (default: tests/fixtures/perf next to this "
                             "script)")
    args = parser.parse_args(argv)
    write_all(args.out)
    print(f"fixtures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
