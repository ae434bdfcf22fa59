"""What PyTorch's own stager does on this machine's GPU (input for the torch route of the suite).

    python3 ci/gpu/torch_probe.py --out FILE.json

Records the torch version, whether torch.distributed.checkpoint has StateDictStager / DefaultStager
and their signatures, runs StateDictStager on a small CUDA state dict with views for every
pin_memory/share_memory pair (checking storage sharing, pinning, sharing and values with torch's
own predicates: a first look, not the suite's independent probes), times a warm stage of a
1 GiB tensor next to a plain copy into a pinned buffer, and records what building the torch route
(the embedded interpreter) against this Python would need ("embedding"). Every part records its
own error and the rest goes on; the exit status is 0 unless torch itself cannot be imported.
"""
import argparse
import dataclasses
import inspect
import json
import sys
import time
import traceback


def _error():
    return traceback.format_exc(limit=3).strip().splitlines()[-1]


@dataclasses.dataclass
class Holder:
    weight: object
    step: int


def stager_semantics(torch, StateDictStager):
    base = torch.arange(64, dtype=torch.float32, device="cuda").reshape(8, 8)
    sd = {"w": base, "w_t": base.t(), "row": base[2], "holder": Holder(base[1:3], 7), "n": 3}
    out = {}
    for pin in (False, True):
        for share in (False, True):
            key = f"pin{int(pin)}_share{int(share)}"
            try:
                staged = StateDictStager(pin_memory=pin, share_memory=share).stage(sd)
                storages = {k: staged[k].untyped_storage().data_ptr() for k in ("w", "w_t", "row")}
                holder = staged["holder"]
                out[key] = {
                    "device": str(staged["w"].device),
                    "one_storage_for_views": len(set(storages.values())) == 1,
                    "dataclass_view_shares":
                        holder.weight.untyped_storage().data_ptr() == storages["w"],
                    "offsets": [staged["row"].storage_offset(), holder.weight.storage_offset()],
                    "strides_kept": list(staged["w_t"].stride()) == list(base.t().stride()),
                    "is_pinned": bool(staged["w"].is_pinned()),
                    "is_shared": bool(staged["w"].is_shared()),
                    "values_equal": bool(torch.equal(staged["w"], base.cpu())),
                    "scalar_kept": staged["n"] == 3,
                }
            except Exception:  # a stager failure is a finding, recorded per configuration
                out[key] = {"error": _error()}
    return out


def timing(torch, StateDictStager):
    n = 1 << 29  # 1 GiB of bfloat16
    src = torch.ones(n, dtype=torch.bfloat16, device="cuda")
    res = {"bytes": 2 * n}
    pinned = torch.empty(n, dtype=torch.bfloat16, pin_memory=True)
    for _ in range(2):
        pinned.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        pinned.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    res["limit_copy_to_pinned_gbps"] = round(2 * n / sorted(times)[2] / 1e9, 2)
    for pin in (True, False):
        stager = StateDictStager(pin_memory=pin, share_memory=False)
        sd = {"w": src}
        stager.stage(sd)  # cold: allocates the buffers
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            stager.stage(sd)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        res[f"stage_warm_pin{int(pin)}_gbps"] = round(2 * n / sorted(times)[2] / 1e9, 2)
    return res


def embedding():
    """What building stagekit's torch route against this Python would need: its headers, its shared
    library, pybind11 (the package's CMake files, or the headers torch carries) and a compiler."""
    import glob
    import os
    import shutil
    import sysconfig
    info = {"python": sys.version.split()[0], "executable": sys.executable}
    include = sysconfig.get_paths().get("include", "")
    info["Python.h"] = os.path.exists(os.path.join(include, "Python.h")) and include
    libpython = os.path.join(sysconfig.get_config_var("LIBDIR") or "",
                             sysconfig.get_config_var("LDLIBRARY") or "")
    info["libpython"] = os.path.isfile(libpython) and libpython
    try:
        import pybind11
        info["pybind11_cmake_dir"] = pybind11.get_cmake_dir()
    except Exception:
        info["pybind11_cmake_dir"] = _error()
    try:
        import torch
        headers = os.path.join(os.path.dirname(torch.__file__), "include", "pybind11")
        info["torch_pybind11_headers"] = os.path.exists(os.path.join(headers, "pybind11.h"))
    except Exception:
        info["torch_pybind11_headers"] = _error()
    tools = ("c++", "g++", "clang++", "cmake", "ninja", "nvcc", "mpirun")
    info["tools"] = {t: shutil.which(t) for t in tools}
    # The libraries stagekit builds against (cmake/StagekitDependencies.cmake), by their headers.
    headers = ("fmt", "absl", "gtest", "benchmark", "nlohmann", "CLI", "mpi.h")
    info["headers"] = {h: any(glob.glob(f"{d}/{h}") for d in ("/usr/include", "/usr/local/include"))
                       for h in headers}
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    report = {}
    try:
        report["embedding"] = embedding()
    except Exception:
        report["embedding"] = {"error": _error()}
    try:
        import torch
    except Exception:
        print(f"torch_probe: torch does not import: {_error()}", file=sys.stderr)
        return 1
    report["torch"] = torch.__version__
    report["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        report["device"] = torch.cuda.get_device_name(0)
    try:
        from torch.distributed.checkpoint._state_dict_stager import StateDictStager
        report["StateDictStager"] = {
            "init": str(inspect.signature(StateDictStager.__init__)),
            "stage": str(inspect.signature(StateDictStager.stage)),
            "methods": sorted(m for m in dir(StateDictStager) if not m.startswith("__")),
        }
    except Exception:
        StateDictStager = None
        report["StateDictStager"] = {"error": _error()}
    try:
        from torch.distributed.checkpoint import staging
        report["staging_module"] = sorted(n for n in dir(staging) if not n.startswith("_"))
        if hasattr(staging, "DefaultStager"):
            report["DefaultStager_init"] = str(inspect.signature(staging.DefaultStager.__init__))
        if hasattr(staging, "StagingOptions"):
            report["StagingOptions"] = str(inspect.signature(staging.StagingOptions))
    except Exception:
        report["staging_module"] = {"error": _error()}
    if StateDictStager is not None and torch.cuda.is_available():
        for name, part in (("semantics", stager_semantics), ("timing", timing)):
            try:
                report[name] = part(torch, StateDictStager)
            except Exception:
                report[name] = {"error": _error()}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
