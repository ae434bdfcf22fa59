"""BROKEN: storage identity taken as the storage and the dtype reading it. Buffers are found by
(source storage, dtype), in the memo of one stage and in the cache across stages, as a stager that
keeps one typed buffer per dtype would: a storage viewed as two dtypes (a float8 weight and its
uint8 view, a float32 buffer and its int32 bit view) is staged twice, and the staged views no longer
alias each other. Mirrors examples/broken/keyed_by_dtype.cpp."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class KeyedByDtype(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._typed_caches = {}

    @staticmethod
    def storage_memo_key(tensor, source):
        return ("storage", compat.storage_key(source), tensor.dtype)  # the flaw: the dtype in it

    def staged_storage_of(self, tensor, memo, non_blocking):
        # ... and one cache across stages per dtype
        self._cache = self._typed_caches.setdefault(tensor.dtype, compat.StorageCache())
        return super().staged_storage_of(tensor, memo, non_blocking)

    def stage(self, state_dict, non_blocking=False):
        self._new = []  # (typed cache, source) of each buffer this call made
        try:
            return super().stage(state_dict, non_blocking)
        except BaseException:
            for cache, source in self._new:  # a failed stage takes out what it added
                cache.discard(source)
            raise

    def stage_storage(self, source, non_blocking):
        if self._cache.get(source) is None:
            self._new.append((self._cache, source))
        return super().stage_storage(source, non_blocking)

    def close(self):
        for cache in self._typed_caches.values():
            cache.clear()
        super().close()
