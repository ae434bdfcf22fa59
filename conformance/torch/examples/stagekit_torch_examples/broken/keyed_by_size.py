"""BROKEN: cache identity. A cached buffer is found by size instead of by source storage, so
distinct storages of one size are staged into the same buffer. Mirrors
examples/broken/keyed_by_size.cpp.

Caught by views ("one buffer per source storage"), caching and different_dtypes ("values"),
pin_zero_byte_storages and empty_tensors_exact ("storage sharing"), dead_source_buffer_not_reused
("cache eviction"), and by the values the shared buffer overwrites ("bytes") in
earlier_results_overwritten, sharing_both_directions, full_contract, many_tensors,
python_containers, non_blocking_back_to_back and non_blocking_correct_after_wait."""

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


class _SizeKeyedCache(compat.StorageCache):
    def get(self, storage):
        for staged, _ in self._entries.values():
            if staged.nbytes() == storage.nbytes():
                return staged
        return None


class KeyedBySize(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache = _SizeKeyedCache()
