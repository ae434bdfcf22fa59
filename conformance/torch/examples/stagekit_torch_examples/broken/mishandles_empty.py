"""BROKEN: empty tensors. A tensor without elements is staged as a 1-D tensor of size 0, losing its
shape ([0, 3] becomes [0]). Mirrors examples/broken/mishandles_empty.cpp.

Caught by empty_tensors ("shape"), empty_tensors_exact, full_contract and pin_zero_byte_storages
("sizes")."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class MishandlesEmpty(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        if result.numel() != 0:
            return result
        flat = compat.tensor_on_storage(compat.untyped_storage(result), result.dtype, 0, (0,), (1,))
        flat.__dict__.update(result.__dict__)
        self.remember(memo, tensor, flat)
        return flat
