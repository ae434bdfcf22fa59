"""Accepts share_memory=True but stages into private memory no other process can map."""

from stagekit_torch_examples.correct import CorrectStager


class IgnoresShareMemory(CorrectStager):
    def __init__(self, pin_memory=False, share_memory=False, pin_memory_min_bytes=5):
        super().__init__(pin_memory=pin_memory, share_memory=False,
                         pin_memory_min_bytes=pin_memory_min_bytes)
