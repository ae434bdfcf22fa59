"""BROKEN: on a re-stage, a small storage is refreshed only where the state dict's views reach.
A storage under 1 MiB found in the cache is not copied whole: each tensor staged on it copies the
byte span its own view covers (from its first to its last element), so small storages cost only
what the checkpoint addresses ("a parameter's storage is the parameter"). The first stage copies
every storage whole, and storages of 1 MiB or more are always copied whole. Bytes of a small
storage that no view of this stage reaches keep the values of the stage that first copied them: a
storage shared with tensors outside the state dict (a flat parameter buffer, a bucket) is staged
as a mix of two steps. Spec B.1.3 step 1 (a cache hit copies the source bytes into the cached
storage: all of them).
"""
from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager

WHOLE_FROM = 1 << 20


class SmallRestagedThroughViews(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        self._through_views = set()
        return super().stage(state_dict, non_blocking)

    def recopy_storage(self, staged, source, non_blocking):
        if source.nbytes() >= WHOLE_FROM:
            return super().recopy_storage(staged, source, non_blocking)
        self._through_views.add(id(staged))

    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        staged = memo[self.storage_memo_key(tensor, compat.untyped_storage(tensor))]
        if id(staged) in self._through_views and tensor.numel() > 0:
            size = tensor.element_size()
            last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride()))
            begin = tensor.storage_offset() * size
            end = (tensor.storage_offset() + last + 1) * size
            source = compat.bytes_of(compat.untyped_storage(tensor))
            compat.bytes_of(staged)[begin:end].copy_(source[begin:end], non_blocking=non_blocking)
        return result
