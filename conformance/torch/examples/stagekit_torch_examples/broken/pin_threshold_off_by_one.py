"""BROKEN: the pinning threshold read as "more than" instead of "at least". A storage is
page-locked when it holds more than pin_memory_min_bytes bytes, so one of exactly that size stays
pageable (with the default of 5 bytes: a 5-byte storage; with 4096: one page). Every other size is
pinned or not as it should be. Mirrors examples/broken/pin_threshold_off_by_one.cpp."""

from stagekit_torch_examples.correct import CorrectStager


class PinThresholdOffByOne(CorrectStager):
    def allocate(self, nbytes):
        threshold = self.pin_memory_min_bytes
        self.pin_memory_min_bytes = threshold + 1  # the flaw: pinned from threshold + 1 bytes on
        try:
            return super().allocate(nbytes)
        finally:
            self.pin_memory_min_bytes = threshold
