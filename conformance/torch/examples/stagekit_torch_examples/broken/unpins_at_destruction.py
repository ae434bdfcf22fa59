"""BROKEN: the stager's end unpins every buffer it pinned. The stager remembers each range it
page-locked and, when it is garbage-collected (``__del__``), unlocks them all with munlock(2), as a
stager that registers its buffers with the CUDA driver and unregisters them all when it goes would.
Results the caller still holds then sit on pageable memory: a checkpoint still being written when
its stager is dropped is no longer pinned. Mirrors examples/broken/unpins_at_destruction.cpp."""

import ctypes

from stagekit_torch_examples.correct import CorrectStager


class UnpinsAtDestruction(CorrectStager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pinned_ranges = []

    def pin(self, staged, nbytes):
        CorrectStager.pin(staged, nbytes)
        self._pinned_ranges.append((staged.data_ptr(), nbytes))

    def __del__(self):
        libc = ctypes.CDLL(None)
        for address, nbytes in self._pinned_ranges:  # the flaw: results may still hold them
            libc.munlock(ctypes.c_void_p(address), ctypes.c_size_t(nbytes))
