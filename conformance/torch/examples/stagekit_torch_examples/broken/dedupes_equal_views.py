"""BROKEN: two distinct tensors that view the same bytes the same way (same storage, dtype,
offset, sizes and strides) are staged as one tensor object ("they are the same tensor"). Distinct
source nodes must stay distinct staged nodes (spec B.1.4: the memo is keyed by object identity).
"""
from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class DedupesEqualViews(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        key = ("view", compat.storage_key(compat.untyped_storage(tensor)), tensor.dtype,
               tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
        found = memo.get(key)
        if found is not None:
            return found
        result = super().copy_tensor(tensor, memo, non_blocking)
        memo[key] = result
        return result
