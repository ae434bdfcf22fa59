"""Time PyTorch's own StateDictStager on the stagekit state dicts: the "pytorch" peer.

Builds the state dicts of perf/bench/state_dicts.cpp in PyTorch (large: 64 x 16 MiB float32;
small: 100,000 x 1 KiB; transformer: embedding 8192 x 512 and 24 layers of hidden 512, with
Adam exp_avg, exp_avg_sq and a 0-dim step per parameter; views: 32 bases of 8 MiB, each with a
transposed view or a strided slice; --quick divides the sizes by 8) and times
torch.distributed.checkpoint._state_dict_stager's StateDictStager.stage(): cold = a new
stager per measured stage, warm = re-staging into the buffers a stager cached on an untimed
first stage.  CUDA sources are timed when CUDA is available (synchronised before the clock
stops).  The staged values are compared with the sources after the last repetition (a
mismatch is reported as a "wrong result:" error).  Writes Google Benchmark JSON with
context.implementation = "pytorch" and the stagekit benchmark names; ratio_to_limit is the
throughput over limit/memcpy_prefaulted/threads:1 (CPU sources) or limit/cuda_d2h_pinned
(CUDA sources), both measured here with torch.

Exit status: 0 when the file is written; 3 when PyTorch or its StateDictStager is not
importable (one line says why; nothing is written).
"""
import argparse
import datetime
import gc
import itertools
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time

from stagekit_tools import cli, gbench_json

EXIT_NO_TORCH = 3
MIB, GIB = 1 << 20, 1 << 30
DESTINATIONS = {"pageable": (False, False), "pinned": (True, False), "shared": (False, True),
                "pinned_shared": (True, True)}
LAYOUTS = ("large", "small", "transformer", "views")
LIMIT_CPU, LIMIT_CUDA = "limit/memcpy_prefaulted/threads:1", "limit/cuda_d2h_pinned"
NO_PIN = ("not_supported: torch pins memory only when CUDA is available "
          "(torch.cuda.is_available() is False)")
NO_CUDA = "not_supported: no usable CUDA device (torch.cuda.is_available() is False)"


def import_torch():
    """(torch, StateDictStager, None) or (None, None, why)."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken installation
        return None, None, f"PyTorch is not importable here ({type(exc).__name__}: {exc})"
    try:
        from torch.distributed.checkpoint._state_dict_stager import StateDictStager
    except Exception as exc:
        return None, None, (f"torch {getattr(torch, '__version__', '?')} has no importable "
                            "torch.distributed.checkpoint._state_dict_stager "
                            f"({type(exc).__name__}: {exc})")
    return torch, StateDictStager, None


# ---- state dicts ---------------------------------------------------------------------------

def build(torch, layout, device, div):
    """The state dict of a layout on device, as perf/bench/state_dicts.cpp builds it.

    div is 1, or 8 for --quick (fewer large elements, small tensors, layers, vocabulary rows
    and view bases).
    """
    def rand(*shape):
        return torch.rand(*shape, device=device)

    if layout == "large":
        return {f"tensor{i}": rand(4 * MIB // div) for i in range(64)}       # 16 MiB / div each
    if layout == "small":
        return {f"t{i}": rand(256) for i in range(100_000 // div)}           # 1 KiB each
    if layout == "views":
        out = {}
        for i in range(32 // div):
            base = rand(1024, 2048)                                          # 8 MiB
            out[f"base{i}"] = base
            out[f"view{i}"] = base.t() if i % 2 == 0 else base[:, 1:2048:3]  # shares base
        return out
    hidden, vocab, layers = 512, 8192 // div, 24 // div
    shapes = [("embed.weight", (vocab, hidden))]
    for layer in range(layers):
        p = f"layers.{layer}."
        shapes += [(f"{p}attn.{proj}.weight", (hidden, hidden))
                   for proj in ("q_proj", "k_proj", "v_proj", "o_proj")]
        shapes += [(f"{p}mlp.up_proj.weight", (4 * hidden, hidden)),
                   (f"{p}mlp.down_proj.weight", (hidden, 4 * hidden))]
        shapes += [(f"{p}{norm}.{what}", (hidden,)) for norm in ("input_norm", "post_attn_norm")
                   for what in ("weight", "bias")]
    model = {name: rand(*shape) for name, shape in shapes}
    state = {i: {"step": torch.full((), 100.0, dtype=torch.float32, device=device),
                 "exp_avg": rand(*shape), "exp_avg_sq": rand(*shape)}
             for i, (_, shape) in enumerate(shapes)}
    group = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01,
             "params": list(range(len(shapes)))}
    return {"model": model, "optim": {"state": state, "param_groups": [group]}}


def tensors_of(torch, obj):
    """The tensors of a nested dict/list/tuple, in traversal order."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_of(torch, value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from tensors_of(torch, value)


def size_of(torch, state_dict):
    """(tensors, bytes): bytes counts each distinct storage once (views share their base's)."""
    tensors, storages = 0, {}
    for t in tensors_of(torch, state_dict):
        tensors += 1
        storage = t.untyped_storage()
        storages[(str(t.device), storage.data_ptr())] = storage.nbytes()
    return tensors, sum(storages.values())


def stamp(torch, state_dict, value):
    """Write value into the first element of every source tensor (untimed), as the harness
    does, so that a stager that skips copies on a re-stage fails the verification."""
    for t in tensors_of(torch, state_dict):
        if t.numel():
            t[(0,) * t.dim()] = value


def count_wrong(torch, source, staged):
    """Tensors whose staged copy is not on the CPU or differs from the source."""
    wrong = 0
    for src, dst in itertools.zip_longest(tensors_of(torch, source), tensors_of(torch, staged)):
        if src is None or dst is None or dst.device.type != "cpu":
            wrong += 1
        elif not torch.equal(src.cpu(), dst):
            wrong += 1
    return wrong


# ---- timing --------------------------------------------------------------------------------

def timed(torch, cuda, fn):
    """(wall seconds, this thread's CPU seconds, fn()); CUDA is synchronised on both ends."""
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def release(stager):
    if hasattr(stager, "close"):
        stager.close()
    gc.collect()


def measure_stage(torch, stager_class, state_dict, pin, share, mode, reps, cuda):
    """([(wall, cpu)] per repetition, wrong tensors after the last repetition)."""
    samples = []
    if mode == "warm":
        stager = stager_class(pin_memory=pin, share_memory=share)
        staged = stager.stage(state_dict)                 # untimed: allocates the cache
        for rep in range(reps):
            stamp(torch, state_dict, rep + 1)
            wall, cpu, staged = timed(torch, cuda, lambda: stager.stage(state_dict))
            samples.append((wall, cpu))
    else:
        for rep in range(reps):
            stager = stager_class(pin_memory=pin, share_memory=share)
            stamp(torch, state_dict, rep + 1)
            wall, cpu, staged = timed(torch, cuda, lambda: stager.stage(state_dict))
            samples.append((wall, cpu))
            if rep + 1 < reps:
                del staged
                release(stager)
    wrong = count_wrong(torch, state_dict, staged)
    del staged
    release(stager)
    return samples, wrong


def measure_limit(torch, cuda, nbytes, reps):
    """[(wall, cpu)] of copying nbytes into a pre-touched destination (pinned for CUDA)."""
    if cuda:
        src = torch.rand(nbytes // 4, device="cuda")
        dst = torch.empty(nbytes // 4, pin_memory=True)
    else:
        src = torch.rand(nbytes // 4)
        dst = torch.empty(nbytes // 4)
    dst.fill_(0)                                          # fault every page in before timing
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                              # the limit is named threads:1
    try:
        dst.copy_(src)
        return [timed(torch, cuda, lambda: dst.copy_(src))[:2] for _ in range(reps)]
    finally:
        torch.set_num_threads(threads)


# ---- output --------------------------------------------------------------------------------

class Writer:
    """Collects benchmark entries in Google Benchmark's order (family by family)."""

    def __init__(self, reps):
        self.reps, self.entries, self.family = reps, [], 0

    def errored(self, name, message):
        """An errored entry; "not_supported: ..." messages mark skipped benchmarks."""
        self.entries.append(gbench_json.error(name + "/manual_time", self.family, self.reps,
                                              message))
        self.family += 1

    def measured(self, name, samples, nbytes, tensors=None, wrong=0, limit=None, limit_bps=None):
        if wrong:
            return self.errored(name, f"wrong result: {wrong} of {tensors} staged tensors differ "
                                      "from their sources")
        entries = []
        for index, (wall, cpu) in enumerate(samples):
            counters = {"bytes": nbytes, "bytes_per_second": nbytes / wall}
            if tensors is not None:
                counters.update(tensors=tensors, wrong=wrong, items_per_second=tensors / wall)
            if limit_bps:
                counters.update(ratio_to_limit=nbytes / wall / limit_bps,
                                limit_bytes_per_second=limit_bps,
                                overhead_ns_per_tensor=(wall - nbytes / limit_bps) / tensors * 1e9)
            entries.append(gbench_json.iteration(
                name + "/manual_time", self.family, self.reps, index, 1, wall * 1e3, cpu * 1e3,
                "ms", counters, f"limit={limit}" if limit_bps else ""))
        self.entries += entries + gbench_json.aggregates(entries)
        self.family += 1


def _read(path, pattern):
    try:
        with open(path, encoding="utf-8") as handle:
            match = re.search(pattern, handle.read(), re.M)
        return match.group(1).strip() if match else "unknown"
    except OSError:
        return "unknown"


def make_context(torch, quick):
    cuda = torch.cuda.is_available()
    here = os.path.dirname(os.path.abspath(__file__))
    git = {}
    for key, command in (("sha", ["rev-parse", "HEAD"]), ("dirty", ["status", "--porcelain"])):
        try:
            git[key] = subprocess.run(["git", "-C", here] + command, capture_output=True,
                                      text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            git[key] = None
    memory = _read("/proc/meminfo", r"^MemTotal:\s*(.*)$")
    return gbench_json.context(
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        socket.gethostname(), os.path.abspath(sys.argv[0]), os.cpu_count(), {
            "implementation": "pytorch", "implementation_version": torch.__version__,
            "git_sha": git["sha"] or "unknown",
            "git_dirty": "unknown" if git["dirty"] is None else str(bool(git["dirty"])).lower(),
            "compiler": f"python {platform.python_version()}",
            "cpu_model": _read("/proc/cpuinfo", r"^model name\s*:\s*(.*)$"),
            "cpu_count": os.cpu_count(),
            "memory_total": memory,
            "cuda": f"CUDA {torch.version.cuda}" if cuda else "none",
            "cuda_reason": "" if cuda else "torch.cuda.is_available() is False",
            "gpu": torch.cuda.get_device_name(0) if cuda else "none",
            "copy_threads": torch.get_num_threads(), "mode": "quick" if quick else "full"})


def run_all(torch, stager_class, args):
    """Measure everything selected; returns the Writer."""
    cuda, div, reps = torch.cuda.is_available(), 8 if args.quick else 1, args.repetitions
    selected = re.compile(args.filter).search
    out, limit_bps = Writer(reps), {}
    limit_bytes = GIB // div
    every_stage = [f"stage/{src}_to_{dst}/{layout}/{mode}" for src in ("cpu", "cuda")
                   for layout in LAYOUTS for dst in DESTINATIONS for mode in ("cold", "warm")]
    for name, src in ((LIMIT_CPU, "cpu"), (LIMIT_CUDA, "cuda")):
        needed = any(selected(n) for n in every_stage if n.startswith(f"stage/{src}_"))
        if not (selected(name) or needed):
            continue
        if src == "cuda" and not cuda:
            out.errored(name, NO_CUDA)
            continue
        on_cuda = src == "cuda"
        samples = measure_limit(torch, on_cuda, limit_bytes, reps)
        limit_bps[name] = limit_bytes / statistics.median(s[0] for s in samples)
        out.measured(name, samples, limit_bytes)
        print(f"peer_torch: {name}: {limit_bps[name] / 1e9:.2f} GB/s", file=sys.stderr)
    torch.manual_seed(0)
    for src, layout in itertools.product(("cpu", "cuda"), LAYOUTS):
        names = [(f"stage/{src}_to_{dst}/{layout}/{mode}", dst, mode)
                 for dst in DESTINATIONS for mode in ("cold", "warm")]
        names = [n for n in names if selected(n[0])]
        if not names:
            continue
        if src == "cuda" and not cuda:
            for name, _, _ in names:
                out.errored(name, NO_CUDA)
            continue
        state_dict = build(torch, layout, src, div)
        tensors, nbytes = size_of(torch, state_dict)
        limit = LIMIT_CUDA if src == "cuda" else LIMIT_CPU
        for name, dst, mode in names:
            pin, share = DESTINATIONS[dst]
            if pin and not cuda:
                out.errored(name, NO_PIN)
                continue
            try:
                samples, wrong = measure_stage(torch, stager_class, state_dict, pin, share, mode,
                                               reps, src == "cuda")
            except (RuntimeError, OSError) as exc:
                out.errored(name, f"{type(exc).__name__}: {exc}".replace("\n", " "))
                continue
            out.measured(name, samples, nbytes, tensors, wrong, limit, limit_bps.get(limit))
            print(f"peer_torch: {name}: median {statistics.median(s[0] for s in samples) * 1e3:.2f}"
                  f" ms, wrong={wrong}", file=sys.stderr)
        del state_dict
        gc.collect()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog=cli.prog("peer_torch"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, metavar="FILE.json", help="result file to write")
    parser.add_argument("--quick", action="store_true", help="divide every size by 8")
    parser.add_argument("--repetitions", type=int, default=9,
                        help="measured repetitions per benchmark (default 9)")
    parser.add_argument("--filter", default="", metavar="REGEX",
                        help="only benchmarks whose name matches REGEX (default: all)")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error("--repetitions must be >= 1")
    torch, stager_class, why = import_torch()
    if torch is None:
        print(f"peer_torch: {why}; no peer data written", file=sys.stderr)
        return EXIT_NO_TORCH
    writer = run_all(torch, stager_class, args)
    doc = gbench_json.document(make_context(torch, args.quick), writer.entries)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    gbench_json.write(args.out, doc)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
