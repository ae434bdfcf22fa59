"""Reuses cached buffers without copying into them again: a re-stage returns the old values."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class StaleCache(CorrectStager):
    def stage_storage(self, source, non_blocking):
        staged = self._cache.get(source)
        if staged is not None:
            return staged
        staged = self.allocate(source.nbytes())
        self._cache.put(source, staged)
        self._added.append(source)
        if source.nbytes() > 0:
            compat.bytes_of(staged).copy_(compat.bytes_of(source), non_blocking=non_blocking)
        return staged
