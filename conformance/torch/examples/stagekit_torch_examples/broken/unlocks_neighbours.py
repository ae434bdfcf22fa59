"""With share_memory, packs small pinned buffers next to each other in arenas of their own
(64-byte aligned, as the unpinned ones) and, to undo its own mlock(2), munlock(2)s each buffer's
range when the buffer goes. Page-locking does not nest: munlock unlocks every page of the range,
so the end of one buffer unlocks the buffers that share its first or last page while they are
still in use (a stage that fails rolls its new buffers back, and their neighbours lose their
locks). On torch 1.13, whose storage objects are wrappers made anew for each call, "when the buffer
goes" is when the stager lets go of its wrapper, at close(): buffers results still hold are
unlocked then too."""

import ctypes
import weakref

from stagekit_torch import compat
from stagekit_torch_examples.correct import CorrectStager


def _munlock(address, nbytes):
    ctypes.CDLL(None).munlock(ctypes.c_void_p(address), ctypes.c_size_t(nbytes))


class UnlocksNeighbours(CorrectStager):
    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        super().__init__(pin_memory=pin_memory, share_memory=share_memory,
                         pin_memory_min_bytes=pin_memory_min_bytes)
        self._pinned_shared_arenas = compat.SharedArenas()  # the flaw's first half: pages shared

    def pin(self, staged, nbytes):
        super().pin(staged, nbytes)
        if self.share_memory:  # the arenas' buffers (the others have mappings of their own)
            # The flaw's second half: each buffer unlocks its own range when it goes.
            weakref.finalize(staged, _munlock, staged.data_ptr(), nbytes)
