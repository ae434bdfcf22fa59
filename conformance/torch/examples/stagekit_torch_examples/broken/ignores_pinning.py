"""BROKEN: page-locking. Accepts pin_memory=True (and says it can pin) but never page-locks: buffers
are pageable (or shared, as asked). Mirrors examples/broken/ignores_pinning.cpp.

Caught on the pin1 configurations by every family that checks the memory of what it stages
("page-locked: expected page-locked"): pin_threshold_default, pin_threshold_custom,
pin_zero_byte_storages, pin_without_accelerator, tensor_pinned_and_shared, full_contract and 19
more; and by limit.memlock_refused (nothing to refuse: "staging beyond the limit did not
raise")."""

from stagekit_torch_examples.correct import CorrectStager


class IgnoresPinning(CorrectStager):
    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        super().__init__(pin_memory=False, share_memory=share_memory,
                         pin_memory_min_bytes=pin_memory_min_bytes)
