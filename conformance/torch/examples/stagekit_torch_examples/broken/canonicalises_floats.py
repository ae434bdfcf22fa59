"""Stages floating-point tensors by value: after the copy every NaN becomes the canonical quiet NaN
(its payload and sign lost) and -0.0 becomes +0.0. Values still compare equal; the bytes do not."""

import torch

from stagekit_torch_examples.correct import CorrectStager


class CanonicalisesFloats(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        if result.is_floating_point() and result.numel() > 0:
            with torch.no_grad():
                result[torch.isnan(result)] = float("nan")
                result[result == 0] = 0.0
        return result
