"""Drops the Python attributes set on tensor objects."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class LosesAttributes(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        source = compat.untyped_storage(tensor)
        key = ("storage", compat.storage_key(source))
        staged = memo.get(key)
        if staged is None:
            staged = memo[key] = self.stage_storage(source, non_blocking)
        result = compat.tensor_on_storage(staged, tensor.dtype, tensor.storage_offset(),
                                          tensor.shape, tensor.stride())
        self.remember(memo, tensor, result)
        return result
