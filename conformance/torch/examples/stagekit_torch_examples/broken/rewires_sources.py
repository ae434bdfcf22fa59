"""BROKEN: the caller's state dict is left as it was. After staging, the stager points the caller's
dict at the staged copies ("the training loop may keep the snapshot, and the original can be
freed"): every top-level tensor entry of the caller's dict is replaced by its staged tensor. The
staged dict is exact and no source storage is written, so neither the staged values nor the
sources' bytes show it; only the caller's tree has changed.

Caught by every case that stages a dict with a top-level tensor: the bridge compares the caller's
state dict before and after stage() (stagekit_torch.snapshot)."""

import torch

from stagekit_torch_examples.correct import CorrectStager


class RewiresSources(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        staged = super().stage(state_dict, non_blocking)
        if isinstance(state_dict, dict) and isinstance(staged, dict):
            for key, value in staged.items():
                if isinstance(value, torch.Tensor) and key in state_dict:
                    state_dict[key] = value
        return staged
