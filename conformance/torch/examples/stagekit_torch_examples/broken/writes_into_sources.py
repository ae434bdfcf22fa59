"""BROKEN: the sources are left as they were. Floating-point sources are "cleaned" in place before
they are copied: every NaN in the caller's tensors becomes the canonical quiet NaN and -0.0 becomes
+0.0. The staged dict then equals the sources byte for byte; the caller's state dict is no longer
what it was. Mirrors examples/broken/writes_into_sources.cpp.

Caught by every case that stages floating-point sources and checks that stage() leaves every
source storage as it was ("sources unchanged")."""

import torch

from stagekit_torch_examples.correct import CorrectStager


class WritesIntoSources(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        if tensor.is_floating_point() and tensor.numel() > 0 and tensor.device.type == "cpu":
            with torch.no_grad():
                tensor[torch.isnan(tensor)] = float("nan")
                tensor[tensor == 0] = 0.0
        return super().copy_tensor(tensor, memo, non_blocking)
