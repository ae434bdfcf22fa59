"""BROKEN: a plain tensor that requires grad is staged requiring grad. Parameters are staged as
plain tensors that do not require grad, as they must; but a tensor that is not a parameter keeps
its requires_grad flag ("requires_grad is part of a tensor's metadata, like its dtype"): an
activation, an EMA copy or a learnable buffer held as a plain leaf requiring grad comes back as a
leaf that autograd tracks, which an in-place load into it then refuses. Spec B.1.5 step 1 (a new
CPU tensor, made with autograd off) and the strict verifier's own rule: "a staged copy is a plain
tensor that does not require grad".
"""
import torch

from stagekit_torch_examples.correct import CorrectStager


class GradFlagOfPlainTensors(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        if tensor.requires_grad and not isinstance(tensor, torch.nn.Parameter):
            result.requires_grad_(True)
        return result
