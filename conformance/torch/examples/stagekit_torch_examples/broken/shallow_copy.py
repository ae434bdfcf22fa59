"""BROKEN: deep copy of CPU sources. A CPU tensor is returned as it is (the source tensor object,
its storage and attributes), so the "staged" state dict aliases its source: it changes with it, is
never pinned or shared, and allocates nothing. Mirrors examples/broken/shallow_copy.cpp.

Caught by cpu_storage_independence and dataclasses ("independence"), two_stagers_distinct_buffers
("stager isolation"), parameters_staged_plain ("plain tensor"), limit ("did not raise"),
tensor_pinned_and_shared (memory kind), cycle_rejected, and every other family that stages a CPU
tensor ("storage independence": the staged storage is the source's) — 31 families in all."""

from stagekit_torch_examples.correct import CorrectStager


class ShallowCopy(CorrectStager):
    def copy_tensor(self, tensor, memo, non_blocking):
        if tensor.is_cpu:
            return tensor
        return super().copy_tensor(tensor, memo, non_blocking)
