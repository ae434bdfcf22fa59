"""Hands storages of 16 MiB and more to a copy thread that starts on them 50 ms later, and
returns from a blocking stage() without waiting for it (the next stage() or close() waits). The
staged dict misses those bytes when the caller reads it at once; a little later they are there."""

import threading
import time

from stagekit_torch_examples.correct import CorrectStager

BACKGROUND_BYTES = 16 << 20


class ReturnsBeforeCopying(CorrectStager):
    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        super().__init__(pin_memory=pin_memory, share_memory=share_memory,
                         pin_memory_min_bytes=pin_memory_min_bytes)
        self._copies = []

    def _join(self):
        for thread in self._copies:
            thread.join()
        self._copies = []

    def stage(self, state_dict, non_blocking=False):
        self._join()  # the copies of the previous stage() are waited for here
        return super().stage(state_dict, non_blocking)

    def close(self):
        self._join()
        super().close()

    def copy_storage(self, staged, source, non_blocking):
        if source.nbytes() < BACKGROUND_BYTES:
            return CorrectStager.copy_storage(staged, source, non_blocking)

        def later():  # the flaw: stage() does not wait for this
            time.sleep(0.05)
            CorrectStager.copy_storage(staged, source, non_blocking)

        thread = threading.Thread(target=later, daemon=True)
        thread.start()
        self._copies.append(thread)
