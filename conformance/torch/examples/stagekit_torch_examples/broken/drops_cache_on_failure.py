"""BROKEN: a failed stage empties the whole cache. When stage() fails, the stager starts again
from a clean state: it drops every cache entry, those of earlier stages too, not only the buffers
the failed call made (as "reset on any error" code does). Nothing leaks, and every stage stages
exactly; but after one bad state dict the next checkpoint allocates (and pins) every buffer anew,
and the results staged before no longer alias the cache (entries go only with their source or at
close()). Mirrors examples/broken/drops_cache_on_failure.cpp."""

from stagekit_torch_examples.correct import CorrectStager


class DropsCacheOnFailure(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        try:
            return super().stage(state_dict, non_blocking)
        except BaseException:
            self._cache.clear()  # the flaw: the entries of earlier stages go too
            raise
