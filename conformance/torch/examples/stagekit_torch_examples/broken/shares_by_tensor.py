"""Stages one buffer per tensor instead of one per storage: views of one storage stop sharing."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class SharesByTensor(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        staged = self.allocate(compat.untyped_storage(tensor).nbytes())
        source = compat.untyped_storage(tensor)
        if source.nbytes() > 0:
            compat.bytes_of(staged).copy_(compat.bytes_of(source))
        result = compat.tensor_on_storage(staged, tensor.dtype, tensor.storage_offset(),
                                          tensor.shape, tensor.stride())
        self.remember(memo, tensor, result)
        self.copy_attributes(tensor, result, memo, non_blocking)
        return result
