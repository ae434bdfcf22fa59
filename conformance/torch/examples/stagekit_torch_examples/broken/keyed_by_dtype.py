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

    def copy_tensor(self, tensor, memo, non_blocking):
        source = compat.untyped_storage(tensor)
        key = ("storage", compat.storage_key(source), tensor.dtype)  # the flaw: the dtype in it
        staged = memo.get(key)
        if staged is None:
            self._cache = self._typed_caches.setdefault(tensor.dtype, compat.StorageCache())
            staged = self.stage_storage(source, non_blocking)
            memo[key] = staged
        result = compat.tensor_on_storage(staged, tensor.dtype, tensor.storage_offset(),
                                          tensor.shape, tensor.stride())
        self.remember(memo, tensor, result)
        for name, value in tensor.__dict__.items():
            self._path.append(name)
            setattr(result, name, self.copy(value, memo, non_blocking))
            self._path.pop()
        return result

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
