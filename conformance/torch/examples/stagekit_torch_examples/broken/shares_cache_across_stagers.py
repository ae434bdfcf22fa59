"""Keeps its cache in a class attribute, so every stager of the process shares one: a second stager
staging the same sources finds the first one's buffers and copies into them, under the results the
first handed out (the mutable class attribute that was meant to be set in __init__)."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class SharesCacheAcrossStagers(CorrectStager):
    shared_cache = compat.StorageCache()  # the flaw: one cache for every instance

    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        super().__init__(pin_memory=pin_memory, share_memory=share_memory,
                         pin_memory_min_bytes=pin_memory_min_bytes)
        self._cache = SharesCacheAcrossStagers.shared_cache
