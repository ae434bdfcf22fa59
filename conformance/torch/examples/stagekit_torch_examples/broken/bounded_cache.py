"""BROKEN: a cache of at most 1024 buffers. After each stage the oldest entries go, though their
sources live, so a model of many tensors gets most of its buffers allocated, page-locked and
shared again at every stage, and earlier results no longer alias the buffers later stages fill.
A cache entry must go only with its source or at close() (spec B.1.3). Mirrors
examples/broken/bounded_cache.cpp.

Caught by many_tensors ("buffer reuse: the warm stage reused the buffers of")."""

from stagekit_torch_examples.correct import CorrectStager


class BoundedCache(CorrectStager):
    CAPACITY = 1024

    def stage(self, state_dict, non_blocking=False):
        staged = super().stage(state_dict, non_blocking)
        entries = self._cache._entries  # oldest first
        while len(entries) > self.CAPACITY:
            entries.pop(next(iter(entries)))
        return staged
