"""BROKEN: a contiguous view rebuilt with the strides contiguity implies. A view that is contiguous
is rebuilt with the strides a new contiguous tensor of its shape has, not its own. Contiguity
ignores the strides of size-1 dimensions, so a view made by unsqueeze() or a transposed [1, n] view
comes back with other strides; every other view keeps its strides. Mirrors
examples/broken/canonical_strides.cpp."""

import torch

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class CanonicalStrides(CorrectStager):
    @staticmethod
    def rebuild_view(tensor, staged):
        stride = tensor.stride()
        if tensor.is_contiguous():  # the flaw: the strides of a new tensor, not the view's own
            stride = torch.empty(tensor.shape, device="meta").stride()
        return compat.tensor_on_storage(staged, tensor.dtype, tensor.storage_offset(),
                                        tensor.shape, stride)
