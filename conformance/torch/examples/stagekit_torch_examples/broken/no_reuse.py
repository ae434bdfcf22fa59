"""BROKEN: buffer reuse. The cache is never consulted: every stage() allocates fresh buffers, so
results of earlier stages are not overwritten and memory is not recycled. Mirrors
examples/broken/no_reuse.cpp.

Caught by caching ("buffer reuse") and earlier_results_overwritten ("aliasing of earlier
results")."""

from stagekit_torch_examples.correct import CorrectStager


class NoReuse(CorrectStager):
    def stage_storage(self, source, non_blocking):
        staged = self.allocate(source.nbytes())
        self.copy_storage(staged, source, non_blocking)
        return staged
