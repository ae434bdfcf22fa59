"""peer_torch: exit 3 without torch; its measuring flow and output, run on a numpy stand-in."""
import os
import subprocess
import types

import numpy as np
import pytest

from stagekit_tools import peer_torch
from conftest import PYTHON, run_tool
from stagekit_tools import gbench_json, stats
from stagekit_tools.perf_frame import load_run

TORCH_IMPORTABLE = subprocess.run([PYTHON, "-c", "import torch"],
                                  capture_output=True).returncode == 0


@pytest.mark.skipif(TORCH_IMPORTABLE, reason="torch is importable with /usr/bin/python3 here")
def test_exit_3_with_one_clear_line_when_torch_is_missing(tmp_path):
    out = tmp_path / "peer.json"
    proc = run_tool("peer_torch", "--out", str(out), "--quick")
    assert proc.returncode == 3
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == ["peer_torch: PyTorch is not importable here (ModuleNotFoundError: No module "
                     "named 'torch'); no peer data written"]
    assert not out.exists()


def test_exit_3_when_the_stager_module_is_missing(tmp_path):
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text('__version__ = "0.0-stub"\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = run_tool("peer_torch", "--out", str(tmp_path / "peer.json"), env=env)
    assert proc.returncode == 3
    assert "torch 0.0-stub has no importable torch.distributed.checkpoint._state_dict_stager" \
        in proc.stderr
    assert not (tmp_path / "peer.json").exists()


# ---- a numpy stand-in for the few torch calls peer_torch makes ------------------------------

class Tensor:
    def __init__(self, array, device="cpu"):
        self.a, self.device = array, types.SimpleNamespace(type=device)

    def t(self):
        return Tensor(self.a.T)

    def __getitem__(self, index):
        return Tensor(self.a[index])

    def __setitem__(self, index, value):
        self.a[index] = value

    def numel(self):
        return self.a.size

    def dim(self):
        return self.a.ndim

    def untyped_storage(self):
        root = self.a
        while root.base is not None:
            root = root.base
        return types.SimpleNamespace(data_ptr=lambda: root.__array_interface__["data"][0],
                                     nbytes=lambda: root.nbytes)

    def cpu(self):
        return self

    def fill_(self, value):
        self.a.fill(value)
        return self

    def copy_(self, other):
        np.copyto(self.a, other.a)
        return self


def fake_torch():
    rng = np.random.default_rng(0)
    return types.SimpleNamespace(
        __version__="0.0-numpy", Tensor=Tensor, float32=np.float32,
        rand=lambda *shape, device="cpu": Tensor(rng.random(shape, dtype=np.float32)),
        full=lambda shape, value, dtype, device="cpu": Tensor(np.full(shape, value, dtype)),
        empty=lambda n, pin_memory=False: Tensor(np.empty(n, np.float32)),
        equal=lambda x, y: x.a.shape == y.a.shape and np.array_equal(x.a, y.a),
        manual_seed=lambda seed: None, get_num_threads=lambda: 1, set_num_threads=lambda n: None,
        cuda=types.SimpleNamespace(is_available=lambda: False, synchronize=lambda: None),
        version=types.SimpleNamespace(cuda=None))


def stager_class(corrupt=False):
    class Stager:
        def __init__(self, pin_memory=False, share_memory=False):
            assert not pin_memory, "pinned variants are skipped without CUDA"

        def stage(self, obj):
            if isinstance(obj, Tensor):
                copy = Tensor(obj.a.copy())
                if corrupt:
                    copy.a.flat[0] += 1
                return copy
            if isinstance(obj, dict):
                return {k: self.stage(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [self.stage(v) for v in obj]
            return obj

        def close(self):
            pass
    return Stager


def run_peer(tmp_path, filter_, corrupt=False):
    torch = fake_torch()
    args = types.SimpleNamespace(quick=True, repetitions=2, filter=filter_)
    writer = peer_torch.run_all(torch, stager_class(corrupt), args)
    path = tmp_path / "peer.json"
    gbench_json.write(str(path), gbench_json.document(peer_torch.make_context(torch, True),
                                                      writer.entries))
    return load_run(str(path))


def test_measuring_flow_writes_a_loadable_peer_file(tmp_path):
    run = run_peer(tmp_path, r"limit/memcpy|stage/(cpu|cuda)_to_(pageable|pinned)/(small|views)/"
                             r"|stage/cpu_to_shared/transformer/warm")
    assert run.implementation == "pytorch" and run.context["mode"] == "quick"
    summary = stats.summarize(run.frame)
    assert summary.loc["limit/memcpy_prefaulted/threads:1", "status"] == "ok"
    views = summary.loc["stage/cpu_to_pageable/views/warm"]
    assert views["status"] == "ok" and views["n"] == 2
    assert views["tensors"] == 8 and views["bytes"] == 4 * 8 * (1 << 20)  # views share storage
    assert views["limit"] == "limit/memcpy_prefaulted/threads:1"
    assert views["ratio_to_limit_median"] > 0
    assert summary.loc["stage/cpu_to_pageable/small/cold", "tensors"] == 12_500
    transformer = summary.loc["stage/cpu_to_shared/transformer/warm"]   # 1 + 3 layers x 10 shapes
    assert transformer["status"] == "ok" and transformer["tensors"] == 4 * 31
    assert summary.loc["stage/cpu_to_pinned/small/warm", "skipped_reason"].startswith(
        "torch pins memory only when CUDA is available")
    assert summary.loc["stage/cuda_to_pageable/views/warm", "status"] == "skipped"
    assert summary.loc["limit/cuda_d2h_pinned", "status"] == "skipped"


def test_wrong_staged_values_become_an_error(tmp_path):
    run = run_peer(tmp_path, r"limit/memcpy|stage/cpu_to_pageable/views/cold", corrupt=True)
    row = stats.summarize(run.frame).loc["stage/cpu_to_pageable/views/cold"]
    assert row["status"] == "error" and row["error"].startswith("wrong result: 8 of 8")


def test_a_stager_that_skips_re_stage_copies_is_caught(tmp_path):
    class Lazy(stager_class()):
        cache = {}

        def stage(self, obj):
            if isinstance(obj, Tensor):
                return self.cache.setdefault(id(obj), Tensor(obj.a.copy()))
            return super().stage(obj)

    torch = fake_torch()
    views = peer_torch.build(torch, "views", "cpu", 8)
    samples, wrong = peer_torch.measure_stage(torch, Lazy, views, False, False, "warm", 2, False)
    assert len(samples) == 2 and wrong == 8
