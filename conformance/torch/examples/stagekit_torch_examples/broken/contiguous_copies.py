"""Stages every tensor as its own contiguous copy: storage offsets, strides and the sharing between
views are lost (pinning and shared memory are still as asked)."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class ContiguousCopies(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        dense = tensor.detach().contiguous()
        nbytes = dense.numel() * dense.element_size()
        staged = self.allocate(nbytes)
        strides = dense.stride()
        result = compat.tensor_on_storage(staged, tensor.dtype, 0, tensor.shape, strides)
        if nbytes > 0:
            result.copy_(dense)
        self.remember(memo, tensor, result)
        self.copy_attributes(tensor, result, memo, non_blocking)
        return result
