"""BROKEN: a parameter re-staged into a cached buffer comes back a parameter. The first stage of
an nn.Parameter gives a plain tensor that does not require grad, as it must; but on a cache hit
the stager rebuilds the result in the source's class ("the re-stage path keeps the tensor type, so
that a state dict loaded from it has parameters again"): from the second checkpoint on, every
staged parameter is an nn.Parameter requiring grad as its source did, which autograd then tracks
and which a later in-place write through the staged dict refuses. Spec C.1.10 and B.1.5 step 1
(a plain CPU tensor; staging runs with autograd off).
"""
import torch

from stagekit_torch_examples.correct import CorrectStager


class ParamsOnWarm(CorrectStager):
    def stage(self, state_dict, non_blocking=False):
        self._hits = set()
        return super().stage(state_dict, non_blocking)

    def recopy_storage(self, staged, source, non_blocking):
        self._hits.add(id(staged))
        super().recopy_storage(staged, source, non_blocking)

    def copy_tensor(self, tensor, memo, non_blocking):
        result = super().copy_tensor(tensor, memo, non_blocking)
        if isinstance(tensor, torch.nn.Parameter):
            staged = memo[self.storage_memo_key(tensor, self._source_of(tensor))]
            if id(staged) in self._hits:
                param = torch.nn.Parameter(result, requires_grad=tensor.requires_grad)
                param.__dict__.update(result.__dict__)
                self.remember(memo, tensor, param)
                return param
        return result

    @staticmethod
    def _source_of(tensor):
        from stagekit_torch import compat
        return compat.untyped_storage(tensor)
