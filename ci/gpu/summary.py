"""Prints every figure of a ci/gpu-check.sh run, as Markdown (gpu-check.sh keeps it as
OUT_DIR/summary.md): the GPU model, driver and memory, conformance counts and CUDA-case failures,
the CUDA and NCCL benchmark medians next to their limits, the unit and NCCL
tests, and the PyTorch probe.

    python3 ci/gpu/summary.py OUT_DIR
"""
import json
import os
import sys
from collections import Counter


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"- ({os.path.basename(path)}: {e})")
        return None


def conformance(out):
    print("## Conformance (stagekit-conform, reference, every case)")
    results = load(os.path.join(out, "conformance", "results.json"))
    if not results:
        return
    cases = results.get("results", results.get("cases", []))
    counts = Counter(c.get("outcome") for c in cases)
    cuda = Counter(c.get("outcome") for c in cases if ".cuda." in c.get("id", ""))
    print(f"- all cases: {dict(counts)}")
    print(f"- cuda cases: {dict(cuda)}")
    for c in cases:
        if c.get("outcome") not in ("pass", "not_supported"):
            print(f"- {c.get('outcome')}: {c.get('id')}: {c.get('reason', '')[:300]}")
    reasons = Counter(c.get("reason", "")[:160] for c in cases
                      if c.get("outcome") == "not_supported" and ".cuda." in c.get("id", ""))
    for reason, n in reasons.most_common(5):
        print(f"- not_supported x{n}: {reason}")


def bench(out, which, tool):
    print(f"## Benchmarks, {which} ({tool}, quick, median of 3)")
    data = load(os.path.join(out, f"{which}.json"))
    if not data:
        return
    shown = set()
    ctx = data.get("context", {})
    print(f"- gpu: {ctx.get('gpu')}  cuda: {ctx.get('cuda')}  "
          f"implementation: {ctx.get('implementation')}")
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b.get("name", ""))
        if b.get("aggregate_name", "median") != "median":
            continue
        if "cuda" not in name and "nccl" not in name and not name.startswith("limit/"):
            continue
        if b.get("error_occurred"):
            if name not in shown:
                print(f"- {name}: ERROR {b.get('error_message')}")
            shown.add(name)
            continue
        fields = []
        for key in ("bytes_per_second", "ratio_to_limit", "overhead_ns_per_tensor",
                    "limit_bytes_per_second"):
            if key in b:
                v = b[key]
                per_second = "bytes_per_second" in key
                fields.append(f"{key}={v / 1e9:.2f} GB/s" if per_second else f"{key}={v:.3g}")
        print(f"- {name}: " + " ".join(fields))


def device(out):
    print("# stagekit GPU check")
    print("## Device (nvidia-smi: name, driver, memory)")
    try:
        with open(os.path.join(out, "gpu.csv")) as f:
            for i, line in enumerate(f):
                print(f"- GPU {i}: {line.strip()}")
    except OSError as e:
        print(f"- (gpu.csv: {e})")


def log_lines(out, name, words, title):
    print(title)
    try:
        with open(os.path.join(out, f"{name}.log")) as f:
            for line in f:
                if any(w in line for w in words):
                    print("- " + line.rstrip())
    except OSError as e:
        print(f"- ({name}.log: {e})")


def unit(out):
    print("## Unit tests (every executable)")
    try:
        with open(os.path.join(out, "unit.log")) as f:
            for line in f:
                words = ("PASSED", "FAILED", "SKIPPED")
                if line.startswith("---") or any(w in line for w in words):
                    print("- " + line.rstrip())
    except OSError as e:
        print(f"- (unit.log: {e})")


def torch_probe(out):
    print("## PyTorch probe")
    data = load(os.path.join(out, "torch.json"))
    if data:
        print(json.dumps(data, indent=1))


def main():
    out = sys.argv[1]
    device(out)
    conformance(out)
    bench(out, "bench", "stagekit-bench")
    bench(out, "nccl_bench", "stagekit-dist-bench under mpirun, one rank per GPU")
    unit(out)
    log_lines(out, "nccl", ("PASSED", "FAILED", "SKIPPED", "not run", "no mpirun", "no NCCL"),
              "## NCCL communicator (one rank per GPU)")
    torch_probe(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
